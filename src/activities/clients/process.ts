/**
 * Runs programs with argument arrays (never a shell), so no user-controlled
 * string is ever interpreted. Output is kept bounded for error messages.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  input?: string;
  signal?: AbortSignal;
  /** Keep at most this many bytes of each output stream (the tail). */
  maxOutput?: number;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

export class CommandError extends Error {
  constructor(
    message: string,
    readonly result: RunResult,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

function tailAppend(buf: string, chunk: string, max: number): string {
  const s = buf + chunk;
  return s.length > max ? s.slice(s.length - max) : s;
}

export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const max = opts.maxOutput ?? 1_000_000;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      shell: false,
      stdio: ['pipe', 'pipe', 'pipe'],
      signal: opts.signal,
    });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout = tailAppend(stdout, d, max)));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = tailAppend(stderr, d, max)));
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    // A program that exits before reading its input must not crash the worker with EPIPE.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** Runs and requires exit code 0; the error carries the tail of stderr. */
export async function runOk(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(file, args, opts);
  if (r.code !== 0) {
    const why = r.timedOut ? `timed out after ${opts.timeoutMs}ms` : `exited with ${r.code ?? r.signal}`;
    throw new CommandError(`${file} ${args[0] ?? ''} ${why}: ${lastLines(r.stderr || r.stdout, 5)}`, r);
  }
  return r;
}

export function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

/** How much of a streaming tool's stderr is kept for its failure message. */
const STDERR_TAIL = 64 * 1024;

export interface Tool {
  child: ChildProcess;
  /** Resolves when the process has exited and its output is closed. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * Starts a program with an argument array (no shell); stderr's tail is kept for messages.
 * `stdin` may be another tool's stdout: the pipe itself is handed to this
 * program, as a shell's `a | b` does, so the bytes between two programs never
 * pass through the worker, and this process's end of it is closed so that
 * the writer sees a broken pipe when the reader dies.
 */
export function startTool(
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  stdio: { stdin: 'pipe' | 'ignore' | Readable; stdout: 'pipe' | 'ignore' },
): Tool {
  const child = spawn(file, args, { env, shell: false, stdio: [stdio.stdin, stdio.stdout, 'pipe'] });
  if (typeof stdio.stdin !== 'string') stdio.stdin.destroy();
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-STDERR_TAIL);
  });
  child.stdin?.on('error', () => undefined); // the program may exit before reading all of its input
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  exit.catch(() => undefined);
  return {
    child,
    exit,
    stderr: () => stderr,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}

/** What every child process may have from the worker's environment: where programs are, locale, time zone. */
const BASE_ENV = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR'];

/**
 * A child's environment built from names, never a copy of the worker's:
 * the base variables and `pass` taken from `from` when set, then `set`
 * (which wins). Secrets the worker holds reach no child that is not given
 * them by name.
 */
export function childEnv(
  from: NodeJS.ProcessEnv,
  pass: readonly string[] = [],
  set: Record<string, string> = {},
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of [...BASE_ENV, ...pass]) if (from[name] !== undefined) env[name] = from[name];
  return { ...env, ...set };
}
