/**
 * Prometheus (Debian's) scraping the demo platform every 2 s, so the PromQL in
 * deploy.config.yaml returns real numbers within seconds of a change.
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ensureDir, HOST, PORTS, running, startDaemon, stopDaemon, waitReady, which, type Component } from './common';

export function prometheusUrl(): string {
  return `http://${HOST}:${PORTS.PROMETHEUS}`;
}

async function ready(): Promise<boolean> {
  const r = await fetch(`${prometheusUrl()}/-/ready`);
  return r.ok;
}

export function prometheusComponent(): Component {
  return {
    name: 'prometheus',
    async up() {
      const bin = which('prometheus');
      if (!bin) throw new Error('prometheus not found: install Debian prometheus (scripts/setup.sh does)');
      const dir = ensureDir('prometheus');
      const cfg = path.join(dir, 'prometheus.yml');
      writeFileSync(
        cfg,
        [
          'global:',
          '  scrape_interval: 2s',
          '  evaluation_interval: 2s',
          'scrape_configs:',
          '  - job_name: ai-saas-demo',
          '    static_configs:',
          `      - targets: ['${HOST}:${PORTS.DEMO}']`,
          '',
        ].join('\n'),
      );
      if (!running('prometheus')) {
        startDaemon('prometheus', bin, [
          `--config.file=${cfg}`,
          `--storage.tsdb.path=${path.join(dir, 'data')}`,
          `--web.listen-address=${HOST}:${PORTS.PROMETHEUS}`,
          '--storage.tsdb.retention.time=1d',
          '--web.enable-lifecycle',
          '--log.level=warn',
        ]);
      }
      await waitReady('prometheus', ready, 60_000, 'prometheus');
      return prometheusUrl();
    },
    async status() {
      const ok = running('prometheus') && (await ready().catch(() => false));
      return { ok, detail: ok ? prometheusUrl() : 'down' };
    },
    async down() {
      await stopDaemon('prometheus');
    },
    env() {
      return { PROMETHEUS_URL: prometheusUrl() };
    },
  };
}
