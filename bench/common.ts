/**
 * Helpers the benchmarks share: the sandbox's environment and the example
 * config, timing of commands, the superuser connection to the sandbox's
 * PostgreSQL, child processes (a worker measured apart from the benchmark
 * that drives it) and what /proc says about a process's memory and disk
 * writes.
 */
import { bundleWorkflowCode } from '@temporalio/worker';
import { fork, spawn, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import type { DeployConfig } from '../src/domain/config';
import { loadConfig } from '../src/load-config';
import { ipcChild, type Child } from '../test/helpers/ipc-child';
import { sandboxEnv, sandboxVar } from '../test/helpers/sandbox';
import { REPO_ROOT } from '../test/helpers/tools';
import type { Size } from './report';

export { REPO_ROOT, sandboxVar, type Child };

export interface BenchOptions {
  size: Size;
}

/**
 * The sandbox's environment in process.env (DATABASE_URL, KUBECONFIG, DOCKER_HOST, AWS_*...), without
 * its Temporal cluster's address: each benchmark measures on the Temporal it names (its own dev
 * servers; scale-out reads the cluster's address itself).
 */
export function loadSandbox(): void {
  const { TEMPORAL_ADDRESS: _a, TEMPORAL_NAMESPACE: _n, TEMPORAL_UI_URL: _u, ...platform } = sandboxEnv();
  Object.assign(process.env, platform);
}

/** The example config filled from the sandbox's environment, as the worker would load it. */
export function benchConfig(): DeployConfig {
  loadSandbox();
  return loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), process.env);
}

export function runId(): string {
  return randomBytes(3).toString('hex');
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Milliseconds with sub-millisecond resolution, comparable across processes of this machine. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

export interface CommandOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Where stdout goes: ignored (/dev/null), a file descriptor, or kept. */
  stdout?: 'ignore' | 'pipe' | number;
}

/** Runs a program (no shell) and times it; a non-zero exit is an error with the end of its stderr. */
export function runCommand(
  file: string,
  args: string[],
  opts: CommandOptions = {},
): Promise<{ ms: number; stdout: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const stdio: StdioOptions = ['ignore', opts.stdout ?? 'pipe', 'pipe'];
    const child = spawn(file, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio });
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout = (stdout + d).slice(-1_000_000)));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-8000)));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const elapsed = performance.now() - t0;
      if (code === 0) resolve({ ms: elapsed, stdout });
      else
        reject(
          new Error(
            `${path.basename(file)} ${args.join(' ').slice(0, 200)} exited with ${code ?? signal}: ${stderr.trim().split('\n').slice(-5).join(' | ')}`,
          ),
        );
    });
  });
}

/** Runs a bash script (for the runbook's pipelines, `a | b > /dev/null`) with pipefail, and times it. */
export function runShell(script: string, env: NodeJS.ProcessEnv): Promise<{ ms: number; stdout: string }> {
  return runCommand('bash', ['-c', `set -euo pipefail\n${script}`], { env });
}

// --- PostgreSQL as superuser (the sandbox's unix socket) -----------------------------------

export async function adminSql<T extends object = Record<string, unknown>>(
  database: string,
  sql: string,
  params?: unknown[],
): Promise<T[]> {
  const c = new Client({
    host: sandboxVar('PG_ADMIN_SOCKET'),
    port: Number(sandboxVar('PGPORT')),
    user: 'postgres',
    database,
  });
  await c.connect();
  try {
    const r = await c.query(sql, params);
    const last = Array.isArray(r) ? (r as { rows: T[] }[])[(r as unknown[]).length - 1] : r;
    return last.rows as T[];
  } finally {
    await c.end();
  }
}

/** The sandbox's DATABASE_URL pointed at another database. */
export function databaseUrlFor(database: string): string {
  const u = new URL(sandboxVar('DATABASE_URL'));
  u.pathname = `/${database}`;
  return u.toString();
}

// --- /proc ------------------------------------------------------------------------------

export { procStatus, procWriteBytes, resetPeakRss, RssSampler } from './proc';

// --- child processes --------------------------------------------------------------------

let compiled: Promise<string> | undefined;

/**
 * The worker processes compiled to JavaScript once per benchmark process
 * (tsc, the project's compiler, into a temporary folder), so they run as the
 * production worker does, `node` on compiled code: under tsx a process
 * carries the loader's caches too, which would be counted as the worker's
 * memory.
 */
export function compileChildren(): Promise<string> {
  compiled ??= (async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-workers-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    const entries = ['bench/backup-worker.ts', 'bench/concurrency-worker.ts'];
    const flags = [
      '--outDir',
      dir,
      '--rootDir',
      REPO_ROOT,
      '--module',
      'commonjs',
      '--moduleResolution',
      'node',
      '--target',
      'ES2022',
      '--strict',
      '--esModuleInterop',
      '--skipLibCheck',
      '--resolveJsonModule',
      '--isolatedModules',
      '--types',
      'node',
    ];
    // Type errors are the type-check's business (npm run typecheck); tsc still emits.
    await runCommand(
      path.join(REPO_ROOT, 'node_modules/.bin/tsc'),
      [...flags, ...entries.map((e) => path.join(REPO_ROOT, e))],
      { cwd: REPO_ROOT },
    ).catch((err: Error) => {
      if (!existsSync(path.join(dir, 'bench', 'backup-worker.js'))) throw err;
    });
    return dir;
  })();
  return compiled;
}

/** Forks a worker module of bench/ (compiled, see compileChildren) with an IPC channel. */
export async function forkChild<In, Out>(file: string, env: NodeJS.ProcessEnv): Promise<Child<In, Out>> {
  const dir = await compileChildren();
  const main = path.join(dir, 'bench', file.replace(/\.ts$/, '.js'));
  const nodePath = [path.join(REPO_ROOT, 'node_modules'), env.NODE_PATH].filter(Boolean).join(path.delimiter);
  // The AWS SDK's notice about Node 22 is about its releases after January 2027, not about this run.
  const child = fork(main, [], {
    cwd: REPO_ROOT,
    env: { ...env, NODE_PATH: nodePath, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return ipcChild<In, Out>(child, file);
}

/** Bundles workflow code once into a temporary file, so a worker process loads it as production does (no webpack in the worker). */
export async function bundleToFile(workflowsPath: string): Promise<{ codePath: string; remove(): void }> {
  const noop = (): void => undefined;
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    logger: { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop },
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-bundle-'));
  const codePath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(codePath, code);
  return { codePath, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs `fn` over items with at most `limit` at once, in order of the items. */
export async function inPool<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
      while (next < items.length && !errors.length) {
        const i = next++;
        try {
          await fn(items[i], i);
        } catch (err) {
          errors.push(err);
        }
      }
    }),
  );
  if (errors.length) throw errors[0];
}

export function loadAverage(): number[] {
  return os.loadavg();
}
