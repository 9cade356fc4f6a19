/**
 * The real worker process (src/worker.ts under tsx), as `npm run worker`
 * runs it, for the tests that need what only a process has: its own SDK
 * runtime (the /metrics endpoint), its own environment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './tools';
import { waitFor } from './wait';

const TSX = path.join(REPO_ROOT, 'node_modules/.bin/tsx');

export interface WorkerProcess {
  child: ChildProcess;
  /** The worker's output so far. */
  log(): string;
  /** SIGTERM, then SIGKILL after 20 s. */
  stop(): Promise<void>;
}

/** Starts the worker with `env` and waits until it polls (its start line). */
export async function startWorkerProcess(env: NodeJS.ProcessEnv, logFile: string): Promise<WorkerProcess> {
  const clean: NodeJS.ProcessEnv = { ...env };
  for (const k of Object.keys(clean)) if (k.startsWith('JEST_')) delete clean[k];
  const out = createWriteStream(logFile);
  const child = spawn(TSX, [path.join(REPO_ROOT, 'src/worker.ts')], {
    cwd: REPO_ROOT,
    env: clean,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(out, { end: false });
  child.stderr.pipe(out, { end: false });
  child.once('exit', () => out.end());
  const log = () => readFileSync(logFile, 'utf8');
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`the worker exited (${child.exitCode}): ${log().slice(-2000)}`);
      return log().includes('worker: polling');
    },
    120_000,
    500,
  );
  return {
    child,
    log,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
