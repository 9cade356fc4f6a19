/**
 * Prometheus (Debian's), one per environment, each scraping only its own
 * environment's demo server every 2 s (its series labelled with the
 * environment), and production's also the pipeline's workers' /metrics, so the PromQL in deploy.config.yaml returns real numbers
 * within seconds of a change and the two environments' metrics never mix.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { HOST, running, startDaemon, stopDaemon, waitReady, which, type Component } from './common';
import { IO_METRICS_ADDRESS, METRICS_ADDRESS } from '../../src/domain/config';
import { PRODUCTION, type SandboxEnvironment } from './environments';

export function prometheusUrl(env: SandboxEnvironment = PRODUCTION): string {
  return `http://${HOST}:${env.ports.prometheus}`;
}

async function ready(env: SandboxEnvironment): Promise<boolean> {
  const r = await fetch(`${prometheusUrl(env)}/-/ready`);
  return r.ok;
}

function scrapeConfig(env: SandboxEnvironment): string {
  return [
    'global:',
    '  scrape_interval: 2s',
    '  evaluation_interval: 2s',
    'scrape_configs:',
    '  - job_name: ai-saas-demo',
    '    static_configs:',
    `      - targets: ['${HOST}:${env.ports.demo}']`,
    `        labels: { environment: ${env.name} }`,
    // The pipeline's own workers (npm start, npm run worker, and the tests' worker processes), on
    // their default /metrics addresses: their series carry the environment they deploy to.
    ...(env.name === PRODUCTION.name
      ? [
          '  - job_name: deploy-pipelines',
          '    honor_labels: true',
          '    static_configs:',
          `      - targets: ['${METRICS_ADDRESS}', '${IO_METRICS_ADDRESS}']`,
        ]
      : []),
    '',
  ].join('\n');
}

export function prometheusComponent(env: SandboxEnvironment): Component {
  const daemon = env.daemon('prometheus');
  return {
    name: 'prometheus',
    environment: env.name,
    async up() {
      const bin = which('prometheus');
      if (!bin) throw new Error('prometheus not found: install Debian prometheus (scripts/setup.sh does)');
      const dir = env.dir('prometheus');
      const cfg = path.join(dir, 'prometheus.yml');
      const text = scrapeConfig(env);
      const changed = !existsSync(cfg) || readFileSync(cfg, 'utf8') !== text;
      if (changed) writeFileSync(cfg, text);
      if (!running(daemon)) {
        startDaemon(daemon, bin, [
          `--config.file=${cfg}`,
          `--storage.tsdb.path=${path.join(dir, 'data')}`,
          `--web.listen-address=${HOST}:${env.ports.prometheus}`,
          '--storage.tsdb.retention.time=1d',
          '--web.enable-lifecycle',
          '--log.level=warn',
        ]);
      } else if (changed) {
        // A running Prometheus reads a changed scrape configuration when told to.
        const r = await fetch(`${prometheusUrl(env)}/-/reload`, { method: 'POST' });
        if (!r.ok) throw new Error(`${daemon} refused to reload ${cfg}: ${await r.text()}`);
      }
      await waitReady(daemon, () => ready(env), 60_000, daemon);
      return `${prometheusUrl(env)} scraping ${HOST}:${env.ports.demo}`;
    },
    async status() {
      const ok = running(daemon) && (await ready(env).catch(() => false));
      return { ok, detail: ok ? prometheusUrl(env) : 'down' };
    },
    async down() {
      await stopDaemon(daemon);
    },
    env() {
      return { [env.envVar('PROMETHEUS_URL')]: prometheusUrl(env) };
    },
  };
}
