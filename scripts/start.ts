/**
 * `npm start`, the main job.
 * - Temporal: with TEMPORAL_ADDRESS set, that server; without it, the
 *   sandbox's Temporal cluster when it runs one (or SANDBOX_TEMPORAL=cluster);
 *   otherwise a local dev server (UI on 8233, SQLite under .local/ so restarts
 *   keep history, the Deploy* search attributes registered).
 * - The platform: with real endpoints configured (KUBECONFIG, KUBECONFIG_WORKER
 *   or DATABASE_URL in the environment, or DEPLOY_SANDBOX=0), those; without
 *   them, the local sandbox (`npm run sandbox -- up`), whose environment the
 *   worker gets.
 * - Then the worker, supervised (scripts/supervisor.ts), with the build id of
 *   the checkout as it is at each start (TEMPORAL_BUILD_ID, unless it or
 *   DEPLOY_GIT_COMMIT is set; used with TEMPORAL_DEPLOYMENT_NAME, see
 *   src/worker-versioning.ts). A worker that dies is
 *   restarted with backoff while the dev server and its UI stay up; only a crash
 *   loop (5 exits within 60 s) stops the run. Ctrl-C stops the worker, then what
 *   this run started (the dev server, and the sandbox if it was not already up),
 *   each child by its process group, and leaves nothing running; a second
 *   Ctrl-C kills them at once.
 */
import { Connection } from '@temporalio/client';
import { spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../src/repo-root';
import { SEARCH_ATTRIBUTE_NAMES } from '../src/search-attributes';
import { devServerDynamicConfigArgs } from './temporal-dynamic-config';
import { configFilePath, loadConfig } from '../src/load-config';
import { workerProcessEnv } from '../src/worker-memory';
import { buildIdOf } from '../src/worker-versioning';
import { exitReason, killGroup, startGroup, stopGroup, Supervised } from './supervisor';

const ROOT = repoRoot();
const PORT = Number(process.env.TEMPORAL_PORT ?? 7233);
const UI_PORT = Number(process.env.TEMPORAL_UI_PORT ?? 8233);
/** How long a child gets after SIGTERM (the worker drains) before SIGKILL. */
const STOP_GRACE_MS = 20_000;
/** What the sandbox's cluster writes to .sandbox/env (scripts/sandbox/temporal.ts). */
const SANDBOX_TEMPORAL_VARS = ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TEMPORAL_UI_URL'];

/** What this run started, in start order; stopped in reverse. */
const children: { name: string; pid: () => number | undefined; stop: () => Promise<void> }[] = [];
let stopping = false;
let sandboxStartedHere = false;
/** The sandbox was up, its Temporal cluster was not: only that is stopped at the end. */
let clusterStartedHere = false;
const tsx = path.join(ROOT, 'node_modules', '.bin', 'tsx');
const sandboxCli = path.join(ROOT, 'scripts', 'sandbox', 'cli.ts');

/** Real endpoints are configured, or the sandbox is turned off: do not start it. */
function usesRealPlatform(env: NodeJS.ProcessEnv): boolean {
  return env.DEPLOY_SANDBOX === '0' || !!env.KUBECONFIG || !!env.KUBECONFIG_WORKER || !!env.DATABASE_URL;
}

function readEnvFile(file: string): Record<string, string> {
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

/** A child that this run needs as long as it runs (the dev server, the codec server): its exit ends the run. */
function startChild(name: string, file: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess | undefined {
  if (stopping) return undefined;
  const proc = startGroup(file, args, { cwd: ROOT, env });
  children.push({
    name,
    pid: () => proc.pid,
    stop: () => (proc.pid ? stopGroup(proc.pid, STOP_GRACE_MS) : Promise.resolve()),
  });
  proc.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`start: ${name} exited (${exitReason(code, signal)}); stopping the rest`);
      void stopAll(code || 1);
    }
  });
  proc.on('error', (err) => {
    if (!stopping) {
      console.error(`start: ${name} could not start (${err.message}); stopping the rest`);
      void stopAll(1);
    }
  });
  return proc;
}

/**
 * `<package version>+<commit>`, `.dirty` when src/ has changes the commit does not: the worker runs
 * from source, so a restart after an edit runs other code. Undefined outside a git checkout.
 */
function checkoutBuildId(): string | undefined {
  const git = (...args: string[]) => spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
  const head = git('rev-parse', 'HEAD');
  if (head.status !== 0) return undefined;
  const dirty = git('status', '--porcelain', '--', 'src').stdout.trim() !== '';
  const { version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  return buildIdOf(version, head.stdout.trim(), dirty);
}

/** The worker's environment at each (re)start: a build id the person did not choose follows the checkout. */
function workerEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  if (env.TEMPORAL_BUILD_ID || env.DEPLOY_GIT_COMMIT) return env;
  const buildId = checkoutBuildId();
  return buildId ? { ...env, TEMPORAL_BUILD_ID: buildId } : env;
}

/** A worker (src/worker.ts, or src/io-worker.ts): restarted after every exit but our own stop, with backoff, until a crash loop. */
function startWorker(env: NodeJS.ProcessEnv, name = 'worker', script = 'worker.ts'): void {
  if (stopping) return;
  const worker = new Supervised({
    name,
    start: () =>
      startGroup(tsx, [path.join(ROOT, 'src', script)], { cwd: ROOT, env: workerProcessEnv(workerEnv(env)) }),
    log: (line) => console.error(`start: ${line}`),
    onGiveUp: (line) => {
      console.error(`start: ${line}`);
      void stopAll(1);
    },
  });
  children.push({ name, pid: () => worker.pid, stop: () => worker.stop(STOP_GRACE_MS) });
  worker.start();
}

/** The config's temporal.ioTaskQueue; a config that does not load is the worker's to report. */
function configuredIoTaskQueue(env: NodeJS.ProcessEnv): string | undefined {
  try {
    return loadConfig(configFilePath(env), env).temporal.ioTaskQueue;
  } catch {
    return undefined;
  }
}

async function stopAll(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  // Reverse order: the worker drains before the server goes away.
  for (const { name, pid, stop } of [...children].reverse()) {
    if (pid()) console.log(`start: stopping ${name} (process group ${pid()})`);
    await stop();
  }
  if (sandboxStartedHere) {
    console.log('start: stopping the sandbox it started');
    spawnSync(tsx, [sandboxCli, 'down'], { cwd: ROOT, stdio: 'inherit' });
  } else if (clusterStartedHere) {
    console.log("start: stopping the sandbox's Temporal cluster it started");
    spawnSync(tsx, [sandboxCli, 'down', 'temporal'], { cwd: ROOT, stdio: 'inherit' });
  }
  process.exit(code);
}

/** When the first Ctrl-C came: signals soon after it are the same Ctrl-C delivered twice. */
let firstSignalAt = 0;

/**
 * Ctrl-C: stop in order; another Ctrl-C while stopping kills every child's group at once.
 * The terminal signals the whole foreground group and tsx relays the signal to this process
 * as well, so one Ctrl-C can arrive twice: only one more than 2 s later counts as a second.
 */
function onSignal(): void {
  if (!stopping) {
    firstSignalAt = Date.now();
    void stopAll(0);
    return;
  }
  if (Date.now() - firstSignalAt < 2000) return;
  console.error('start: killing everything it started');
  for (const { pid } of children) {
    const p = pid();
    if (p) killGroup(p);
  }
  process.exit(130);
}

async function serverReady(address: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.workflowService.getSystemInfo({});
        return;
      } finally {
        await conn.close();
      }
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`Temporal at ${address} not ready after ${timeoutMs / 1000}s: ${(err as Error).message}`, {
          cause: err,
        });
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}

async function run(): Promise<void> {
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // The terminal closed: the children (in their own sessions) would not notice; stop them all the same,
  // and let a write to the closed terminal fail quietly instead of ending this process half-way.
  process.on('SIGHUP', onSignal);
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
  const env = { ...process.env };
  const sandboxFile = path.join(process.env.SANDBOX_DIR ?? path.join(ROOT, '.sandbox'), 'env');
  // The sandbox's own Temporal cluster (SANDBOX_TEMPORAL=cluster, or a sandbox already up with
  // `--temporal cluster`) when no other Temporal is named: no dev server then.
  const sandboxCluster =
    !env.TEMPORAL_ADDRESS &&
    !usesRealPlatform(env) &&
    (env.SANDBOX_TEMPORAL === 'cluster' || (existsSync(sandboxFile) && !!readEnvFile(sandboxFile).TEMPORAL_ADDRESS));
  if (sandboxCluster) {
    console.log("start: Temporal: the sandbox's cluster (npm run sandbox -- up --temporal cluster)");
  } else if (!env.TEMPORAL_ADDRESS) {
    const address = `127.0.0.1:${PORT}`;
    const dbFile = path.resolve(ROOT, process.env.TEMPORAL_DB_FILE ?? path.join('.local', 'temporal', 'dev.db'));
    mkdirSync(path.dirname(dbFile), { recursive: true });
    const cli = execFileSync('bash', [path.join(ROOT, 'scripts/tools/temporal.sh'), 'cli'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    const args = [
      'server',
      'start-dev',
      '--ip',
      '127.0.0.1',
      '--port',
      String(PORT),
      '--ui-port',
      String(UI_PORT),
      '--db-filename',
      dbFile,
      '--log-level',
      'error',
    ];
    for (const name of SEARCH_ATTRIBUTE_NAMES) args.push('--search-attribute', `${name}=Keyword`);
    args.push(...devServerDynamicConfigArgs());
    // Encrypted payloads (DEPLOY_CODEC_KEY): the UI decodes them through the local codec server.
    if (env.DEPLOY_CODEC_KEY) {
      const codecPort = env.DEPLOY_CODEC_SERVER_PORT ?? '8888';
      env.TEMPORAL_UI_URL ??= `http://127.0.0.1:${UI_PORT}`;
      startChild(
        'codec server',
        path.join(ROOT, 'node_modules', '.bin', 'tsx'),
        [path.join(ROOT, 'src', 'codec-server.ts')],
        env,
      );
      args.push('--ui-codec-endpoint', `http://127.0.0.1:${codecPort}`);
    }
    startChild('temporal dev server', cli, args, env);
    await serverReady(address, 60_000);
    if (stopping) return;
    console.log(
      `start: Temporal dev server on ${address}, UI http://127.0.0.1:${UI_PORT} (history in ${dbFile.startsWith(ROOT + path.sep) ? path.relative(ROOT, dbFile) : dbFile})`,
    );
    env.TEMPORAL_ADDRESS = address;
  } else {
    console.log(`start: using Temporal at ${env.TEMPORAL_ADDRESS}`);
  }
  if (!usesRealPlatform(env)) {
    // `status` passes with the cluster off (it is optional); what was up before is left up at the end.
    const before = spawnSync(tsx, [sandboxCli, 'status'], { cwd: ROOT, encoding: 'utf8' });
    const wasUp = before.status === 0;
    const clusterWasUp = /^up\s+temporal\b/m.test(before.stdout ?? '');
    if (!wasUp || (sandboxCluster && !clusterWasUp)) {
      console.log(
        wasUp
          ? "start: starting the sandbox's Temporal cluster"
          : 'start: bringing up the local sandbox (the first time builds Kubernetes from the Go module proxy: 15-25 minutes)',
      );
      const up = spawnSync(tsx, [sandboxCli, 'up', ...(sandboxCluster ? ['--temporal', 'cluster'] : [])], {
        cwd: ROOT,
        stdio: 'inherit',
      });
      if (wasUp) clusterStartedHere = true;
      else sandboxStartedHere = true;
      if (up.status !== 0)
        throw new Error(
          'the sandbox did not come up (see above); set DEPLOY_SANDBOX=0 and real endpoints to run without it',
        );
    }
    const sandbox = readEnvFile(sandboxFile);
    // A Temporal already chosen (yours, or the dev server) is kept: the sandbox's cluster does not replace it.
    Object.assign(
      env,
      env.TEMPORAL_ADDRESS
        ? Object.fromEntries(Object.entries(sandbox).filter(([k]) => !SANDBOX_TEMPORAL_VARS.includes(k)))
        : sandbox,
    );
    if (sandboxCluster) {
      if (!env.TEMPORAL_ADDRESS)
        throw new Error("the sandbox's Temporal cluster is not running: npm run sandbox -- up --temporal cluster");
      console.log(`start: Temporal cluster at ${env.TEMPORAL_ADDRESS}, UI ${env.TEMPORAL_UI_URL}`);
    }
    console.log('start: platform: the local sandbox (npm run sandbox -- status)');
  } else {
    console.log('start: platform: the endpoints in your environment (no sandbox)');
  }
  startWorker(env);
  // temporal.ioTaskQueue: image builds, backups and restores go to an I/O worker of their own.
  const ioTaskQueue = configuredIoTaskQueue(env);
  if (ioTaskQueue) {
    console.log(`start: I/O worker for task queue ${ioTaskQueue} (temporal.ioTaskQueue)`);
    startWorker(env, 'io-worker', 'io-worker.ts');
  }
  const ui =
    env.TEMPORAL_ADDRESS === `127.0.0.1:${PORT}`
      ? `http://127.0.0.1:${UI_PORT}`
      : sandboxCluster
        ? env.TEMPORAL_UI_URL
        : '(your Temporal UI)';
  console.log(
    [
      'start: worker starting (restarted if it dies); Ctrl-C stops everything',
      '',
      `  Temporal UI:   ${ui}  (Start Workflow → type deployWorkflow, task queue deployments, input {"version":"1.0.1"})`,
      '  First canary:  npx deployctl deploy --version 1.0.1 --soak 30s --analysis-interval 10s --wait',
      '  Watch it:      npx deployctl watch deploy-1.0.1',
      '',
    ].join('\n'),
  );
}

run().catch((err: unknown) => {
  console.error(`start: ${(err as Error).message}`);
  void stopAll(1);
});
