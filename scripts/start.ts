/**
 * `npm start`, the main job.
 * - Temporal: with TEMPORAL_ADDRESS set, that server; without it, a local dev
 *   server (UI on 8233, SQLite under .local/ so restarts keep history, the
 *   Deploy* search attributes registered).
 * - The platform: with real endpoints configured (KUBECONFIG, KUBECONFIG_WORKER
 *   or DATABASE_URL in the environment, or DEPLOY_SANDBOX=0), those; without
 *   them, the local sandbox (`npm run sandbox -- up`), whose environment the
 *   worker gets.
 * - Then the worker. Ctrl-C stops the worker, then what this run started (the
 *   dev server, and the sandbox if it was not already up), and leaves nothing
 *   running.
 */
import { Connection } from '@temporalio/client';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../src/repo-root';
import { SEARCH_ATTRIBUTE_NAMES } from '../src/search-attributes';

const ROOT = repoRoot();
const PORT = Number(process.env.TEMPORAL_PORT ?? 7233);
const UI_PORT = Number(process.env.TEMPORAL_UI_PORT ?? 8233);

const children: { name: string; proc: ChildProcess }[] = [];
let stopping = false;
let sandboxStartedHere = false;
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

function startChild(name: string, file: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  // Own process group: Ctrl-C reaches only us, and we stop the children in order.
  const proc = spawn(file, args, { cwd: ROOT, env, stdio: 'inherit', detached: true });
  children.push({ name, proc });
  proc.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`start: ${name} exited (${signal ?? code}); stopping the rest`);
      void stopAll(code ?? 1);
    }
  });
  return proc;
}

function waitExit(proc: ChildProcess, ms: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function stopAll(code: number): Promise<never> {
  stopping = true;
  // Reverse order: the worker drains before the server goes away.
  for (const { name, proc } of [...children].reverse()) {
    if (proc.exitCode !== null || proc.signalCode !== null || !proc.pid) continue;
    console.log(`start: stopping ${name} (pid ${proc.pid})`);
    proc.kill('SIGINT');
    if (!(await waitExit(proc, 20_000))) {
      proc.kill('SIGKILL');
      await waitExit(proc, 5000);
    }
  }
  if (sandboxStartedHere) {
    console.log('start: stopping the sandbox it started');
    spawnSync(tsx, [sandboxCli, 'down'], { cwd: ROOT, stdio: 'inherit' });
  }
  process.exit(code);
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
  process.on('SIGINT', () => void stopAll(0));
  process.on('SIGTERM', () => void stopAll(0));
  const env = { ...process.env };
  if (!env.TEMPORAL_ADDRESS) {
    const address = `127.0.0.1:${PORT}`;
    const dataDir = path.join(ROOT, '.local', 'temporal');
    mkdirSync(dataDir, { recursive: true });
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
      path.join(dataDir, 'dev.db'),
      '--log-level',
      'error',
    ];
    for (const name of SEARCH_ATTRIBUTE_NAMES) args.push('--search-attribute', `${name}=Keyword`);
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
    console.log(
      `start: Temporal dev server on ${address}, UI http://127.0.0.1:${UI_PORT} (history in ${path.relative(ROOT, dataDir)}/dev.db)`,
    );
    env.TEMPORAL_ADDRESS = address;
  } else {
    console.log(`start: using Temporal at ${env.TEMPORAL_ADDRESS}`);
  }
  if (!usesRealPlatform(env)) {
    const already = spawnSync(tsx, [sandboxCli, 'status'], { cwd: ROOT, stdio: 'ignore' }).status === 0;
    if (!already) {
      console.log(
        'start: bringing up the local sandbox (the first time builds Kubernetes from the Go module proxy: 15-25 minutes)',
      );
      const up = spawnSync(tsx, [sandboxCli, 'up'], { cwd: ROOT, stdio: 'inherit' });
      sandboxStartedHere = true;
      if (up.status !== 0)
        throw new Error(
          'the sandbox did not come up (see above); set DEPLOY_SANDBOX=0 and real endpoints to run without it',
        );
    }
    Object.assign(env, readEnvFile(path.join(process.env.SANDBOX_DIR ?? path.join(ROOT, '.sandbox'), 'env')));
    console.log('start: platform: the local sandbox (npm run sandbox -- status)');
  } else {
    console.log('start: platform: the endpoints in your environment (no sandbox)');
  }
  startChild('worker', tsx, [path.join(ROOT, 'src', 'worker.ts')], env);
  const ui = env.TEMPORAL_ADDRESS === `127.0.0.1:${PORT}` ? `http://127.0.0.1:${UI_PORT}` : '(your Temporal UI)';
  console.log(
    [
      'start: worker starting; Ctrl-C stops everything',
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
