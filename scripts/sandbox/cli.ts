/**
 * `npm run sandbox -- up | down | status | reset | fault`: the runbook's
 * stack, real and local, on 127.0.0.1, for two separate environments,
 * production and staging, production spanning two clusters (environments.ts).
 */
import { Command, Option } from 'commander';

// The AWS SDK's notice about future Node versions is noise in the sandbox's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { DIR, ensureDir, PORTS, ROOT, type Component } from './common';
import { backupComponent } from './backup';
import { demoComponent, demoControl, platformComponent } from './demo';
import { dockerComponent } from './docker';
import {
  cluster,
  CLUSTER_NAMES,
  clustersOf,
  ENVIRONMENT_NAMES,
  ENVIRONMENTS,
  environment,
  PRODUCTION_B,
  type SandboxCluster,
  type SandboxEnvironment,
} from './environments';
import { gitComponent } from './git';
import { graphiteComponent } from './graphite';
import { influxdbComponent } from './influxdb';
import { adminClient, kubeComponent, NAMESPACE } from './kube';
import { postgresComponent } from './postgres';
import { prometheusComponent } from './prometheus';
import { redisComponent } from './redis';
import { clearStall, stallRollouts } from './rollout-fault';
import { s3Component } from './s3';
import { smtpComponent } from './smtp';
import { temporalComponent } from './temporal';

/**
 * In start order: the demo platform needs Kubernetes, Docker and git;
 * Prometheus scrapes the demo server, which writes to InfluxDB and Carbon. Per-environment components come once
 * for each environment, production first; the others are shared.
 * Production's second cluster comes last: added to a running sandbox, it
 * leaves the others as they are.
 */
function components(): Component[] {
  const each = (make: (env: SandboxEnvironment) => Component) => ENVIRONMENTS.map(make);
  return [
    ...each((env) => kubeComponent(env.cluster)),
    dockerComponent(),
    postgresComponent(),
    s3Component(),
    ...each(backupComponent),
    ...each(redisComponent),
    smtpComponent(),
    gitComponent(),
    ...each(prometheusComponent),
    ...each(influxdbComponent),
    ...each(graphiteComponent),
    ...each(demoComponent),
    kubeComponent(PRODUCTION_B),
    platformComponent(PRODUCTION_B),
    // Needs PostgreSQL; optional: `up --temporal cluster` or `up temporal`.
    temporalComponent(),
  ];
}

/** "kubernetes (staging)", or "postgres" for a shared component. */
function label(c: Component): string {
  return c.environment ? `${c.name} (${c.environment})` : c.name;
}

function writeEnv(list: Component[]): string {
  // The ports too: commands and tests given only SANDBOX_DIR then reach this instance.
  const env: Record<string, string> = {
    SANDBOX_DIR: DIR,
    ...Object.fromEntries(Object.entries(PORTS).map(([k, v]) => [`SANDBOX_${k}_PORT`, String(v)])),
  };
  for (const c of list) Object.assign(env, c.env?.() ?? {});
  const file = path.join(ensureDir(), 'env');
  writeFileSync(
    file,
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') + '\n',
    { mode: 0o600 },
  );
  return file;
}

/**
 * A name picks the component in every environment; name:environment (kubernetes:staging) one of them,
 * name:production-b production's second cluster's.
 */
function pick(only: string[]): Component[] {
  const all = components();
  const matches = (c: Component, n: string) => c.name === n || `${c.name}:${c.environment}` === n;
  const unknown = only.filter((n) => !all.some((c) => matches(c, n)));
  if (unknown.length)
    throw new Error(
      `unknown component(s) ${unknown.join(', ')}: choose from ${[...new Set(all.map((c) => c.name))].join(', ')} (or name:${CLUSTER_NAMES.join('|')})`,
    );
  return only.length ? all.filter((c) => only.some((n) => matches(c, n))) : all;
}

/** Which Temporal `up` starts: none of its own (the tests and `npm start` run a dev server), or the cluster. */
export const TEMPORAL_MODES = ['dev', 'cluster'] as const;

function secs(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}

async function up(only: string[], temporal: (typeof TEMPORAL_MODES)[number]): Promise<void> {
  const total = Date.now();
  const chosen = pick(only).filter(
    (c) => !c.optional || only.length > 0 || (c.name === 'temporal' && temporal === 'cluster'),
  );
  if (temporal === 'cluster' && only.length && !chosen.some((c) => c.name === 'temporal'))
    chosen.push(...pick(['temporal']));
  for (const c of chosen) {
    const t = Date.now();
    process.stdout.write(`sandbox: ${label(c).padEnd(26)} … `);
    const detail = await c.up();
    console.log(`up in ${secs(Date.now() - t)}: ${detail}`);
  }
  const file = writeEnv(components());
  console.log(
    `sandbox: up in ${secs(Date.now() - total)}; environment in ${path.relative(ROOT, file)} (load it with: set -a; . ${path.relative(ROOT, file)}; set +a)`,
  );
}

async function status(): Promise<boolean> {
  let ok = true;
  for (const c of components()) {
    const s = await c.status();
    const off = !s.ok && !!c.optional;
    ok &&= s.ok || off;
    console.log(`${s.ok ? 'up  ' : off ? 'off ' : 'DOWN'}  ${label(c).padEnd(26)} ${s.detail}`);
  }
  return ok;
}

async function down(only: string[]): Promise<void> {
  for (const c of pick(only).reverse()) {
    await c.down();
    console.log(`sandbox: ${label(c)} stopped`);
  }
}

async function reset(only: string[]): Promise<void> {
  const t = Date.now();
  for (const c of pick(only)) {
    if (!c.reset) continue;
    await c.reset();
    console.log(`sandbox: ${label(c)} back to v1.0.0`);
  }
  console.log(`sandbox: reset in ${secs(Date.now() - t)}`);
}

function fraction(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 1)
    throw new Error(`--error-rate must be between 0 and 1, got ${JSON.stringify(v)}`);
  return n;
}
function factor(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0.1 || n > 100)
    throw new Error(`--latency-factor must be a number from 0.1 to 100 (1.3: 30% slower), got ${JSON.stringify(v)}`);
  return n;
}
function millis(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 60_000)
    throw new Error(`--latency-ms must be a whole number of milliseconds up to 60000, got ${JSON.stringify(v)}`);
  return n;
}

const program = new Command('sandbox').description(
  'The local production and staging stacks for tests and demos (everything on 127.0.0.1, data in .sandbox/).',
);
program
  .command('up')
  .argument(
    '[components...]',
    'only these (kubernetes, docker, postgres, s3, backup, redis, smtp, git, prometheus, influxdb, graphite, demo, temporal; kubernetes:staging for one environment, kubernetes:production-b for one cluster)',
  )
  .addOption(
    new Option(
      '--temporal <mode>',
      'dev: no Temporal here (tests and `npm start` run a dev server); cluster: also a real Temporal cluster on PostgreSQL and its UI, which .sandbox/env then points everything at',
    )
      .choices([...TEMPORAL_MODES])
      .default(process.env.SANDBOX_TEMPORAL === 'cluster' ? 'cluster' : 'dev'),
  )
  .description('start what is not running and wait until ready (idempotent); writes .sandbox/env')
  .action(async (only: string[], o: { temporal: (typeof TEMPORAL_MODES)[number] }) => up(only, o.temporal));
program
  .command('status')
  .description('print each component; exit 0 only when all are up')
  .action(async () => {
    if (!(await status())) process.exitCode = 1;
  });
program
  .command('down')
  .argument('[components...]', 'only these')
  .description('stop what up started, by pid')
  .action(async (only: string[]) => down(only));
program
  .command('reset')
  .argument('[components...]', "only these (demo:production-b: only that cluster's Deployments)")
  .description(
    "return both environments' demo platforms (in each cluster) and databases, the bucket, registry tags and git origin to v1.0.0",
  )
  .action(async (only: string[]) => reset(only));

/** Stalls or lets go the rollouts of each cluster named (rollout-fault.ts). */
async function rolloutFault(clusters: SandboxCluster[], stall: boolean): Promise<void> {
  for (const c of clusters) {
    const kc = adminClient(c);
    if (stall) {
      await stallRollouts(kc, NAMESPACE);
      console.log(`sandbox (cluster ${c.name}): rollouts stalled: no new pod can start in ${NAMESPACE}`);
    } else if (await clearStall(kc, NAMESPACE)) {
      console.log(`sandbox (cluster ${c.name}): rollouts no longer stalled`);
    }
  }
}

program
  .command('fault')
  .description(
    "change what a track of an environment's demo platform reports, or stall rollouts in a cluster, at run time",
  )
  .addOption(
    new Option('--env <environment>', 'which environment').choices([...ENVIRONMENT_NAMES]).default('production'),
  )
  .addOption(
    new Option(
      '--cluster <cluster>',
      "which cluster --stall-rollouts and --clear act on (default: every cluster of --env); with --clear, only that cluster's stall is lifted",
    ).choices(CLUSTER_NAMES),
  )
  .addOption(new Option('--track <track>', 'which track').choices(['canary', 'stable']).default('canary'))
  .option('--error-rate <fraction>', 'share of requests answered with 500 (0..1)', fraction)
  .option('--latency-ms <ms>', 'latency added to every request', millis)
  .option('--latency-factor <factor>', "every request's base latency multiplied (1.3: 30% slower)", factor)
  .option('--health-fail [reason]', 'make GET /health answer 503')
  .option('--preview-fail [reason]', "make the preview (a blue-green release's new colour) answer 503")
  .option('--log-errors <containers>', 'comma-separated containers whose logs get an error line every second')
  .option(
    '--stall-rollouts',
    `no new pod can start in ${NAMESPACE} (a ResourceQuota of 0 pods): running pods stay, a rolling update never completes`,
  )
  .option('--clear', 'remove every fault')
  .addHelpText(
    'after',
    '\nExamples:\n  npm run sandbox -- fault --track canary --error-rate 0.3 --latency-ms 800\n  npm run sandbox -- fault --env staging --log-errors auth-service\n  npm run sandbox -- fault --cluster production-b --stall-rollouts\n  npm run sandbox -- fault --clear',
  )
  .action(
    async (o: {
      env: string;
      cluster?: string;
      track: string;
      errorRate?: number;
      latencyMs?: number;
      latencyFactor?: number;
      healthFail?: string | boolean;
      logErrors?: string;
      previewFail?: string | boolean;
      stallRollouts?: boolean;
      clear?: boolean;
    }) => {
      const env = environment(o.env);
      const clusters = o.cluster ? [cluster(o.cluster)] : clustersOf(env);
      const control = (pathname: string, body: unknown) => demoControl(pathname, body, env);
      const where = env.name === 'production' ? '' : ` (${env.name})`;
      if (o.clear) {
        // A cluster named: only its stall. Otherwise the environment's demo faults and its clusters' stalls.
        if (!o.cluster) {
          await control('/__sandbox/fault', { clear: true });
          await control('/__sandbox/health', { fail: false });
        }
        await rolloutFault(clusters, false);
        console.log(`sandbox${o.cluster ? ` (cluster ${o.cluster})` : where}: faults cleared`);
        return;
      }
      if (o.stallRollouts) await rolloutFault(clusters, true);
      if (o.healthFail) {
        await control('/__sandbox/health', {
          fail: true,
          reason: typeof o.healthFail === 'string' ? o.healthFail : 'fault injected',
        });
        console.log(`sandbox${where}: /health now answers 503`);
      }
      if (o.previewFail) {
        const reason = typeof o.previewFail === 'string' ? o.previewFail : 'fault injected';
        await control('/__sandbox/preview', { fail: true, reason });
        console.log(`sandbox${where}: the preview now answers 503`);
      }
      if (o.logErrors !== undefined) {
        const containers = o.logErrors.split(',').filter(Boolean);
        await control('/__sandbox/log-errors', { containers });
        console.log(`sandbox${where}: error lines in the logs of ${containers.join(', ') || 'no container'}`);
      }
      if (o.errorRate !== undefined || o.latencyMs !== undefined || o.latencyFactor !== undefined) {
        await control('/__sandbox/fault', {
          track: o.track,
          ...(o.errorRate !== undefined ? { errorRate: o.errorRate } : {}),
          ...(o.latencyMs !== undefined ? { latencyMs: o.latencyMs } : {}),
          ...(o.latencyFactor !== undefined ? { latencyFactor: o.latencyFactor } : {}),
        });
        console.log(
          `sandbox${where}: ${o.track} track: error rate ${o.errorRate ?? 0}, latency x${o.latencyFactor ?? 1} + ${o.latencyMs ?? 0} ms`,
        );
      } else if (!o.healthFail && !o.previewFail && o.logErrors === undefined && !o.stallRollouts) {
        throw new Error(
          'say what to inject: --error-rate, --latency-ms, --latency-factor, --health-fail, --preview-fail, --log-errors, --stall-rollouts or --clear',
        );
      }
    },
  );

program.parseAsync(process.argv).catch((err: unknown) => {
  console.error(`\nsandbox: ${(err as Error).message}`);
  process.exit(1);
});
