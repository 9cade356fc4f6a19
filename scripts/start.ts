/**
 * `npm start`, the main job. With TEMPORAL_ADDRESS set it runs only the
 * worker against that server. Without it, it starts a local Temporal dev
 * server first (UI on 8233, SQLite under .local/ so restarts keep history,
 * the Deploy* search attributes registered) and then the worker. Ctrl-C stops
 * both, worker first, and leaves nothing running.
 */
import { Connection } from '@temporalio/client';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { repoRoot } from '../src/repo-root';
import { SEARCH_ATTRIBUTE_NAMES } from '../src/search-attributes';

const ROOT = repoRoot();
const PORT = Number(process.env.TEMPORAL_PORT ?? 7233);
const UI_PORT = Number(process.env.TEMPORAL_UI_PORT ?? 8233);

const children: { name: string; proc: ChildProcess }[] = [];
let stopping = false;

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
      if (Date.now() > deadline) throw new Error(`Temporal at ${address} not ready after ${timeoutMs / 1000}s: ${(err as Error).message}`, { cause: err });
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
    const cli = execFileSync('bash', [path.join(ROOT, 'scripts/tools/temporal.sh'), 'cli'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
    const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(PORT), '--ui-port', String(UI_PORT), '--db-filename', path.join(dataDir, 'dev.db'), '--log-level', 'error'];
    for (const name of SEARCH_ATTRIBUTE_NAMES) args.push('--search-attribute', `${name}=Keyword`);
    startChild('temporal dev server', cli, args, env);
    await serverReady(address, 60_000);
    console.log(`start: Temporal dev server on ${address}, UI http://127.0.0.1:${UI_PORT} (history in ${path.relative(ROOT, dataDir)}/dev.db)`);
    env.TEMPORAL_ADDRESS = address;
  } else {
    console.log(`start: using Temporal at ${env.TEMPORAL_ADDRESS}`);
  }
  const tsx = path.join(ROOT, 'node_modules', '.bin', 'tsx');
  startChild('worker', tsx, [path.join(ROOT, 'src', 'worker.ts')], env);
  console.log('start: worker starting; Ctrl-C stops everything');
}

run().catch((err: unknown) => {
  console.error(`start: ${(err as Error).message}`);
  void stopAll(1);
});
