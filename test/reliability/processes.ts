/**
 * The harness's processes: a program in its own process group, its output
 * appended to a log file, started until a readiness probe answers and
 * stopped or killed -9 only by its own pid (the whole group, so tsx's node
 * child dies with it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { REPO_ROOT } from '../helpers/tools';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A program in its own process group, output appended to a log file; stopped only by its pid. */
export class Proc {
  private child?: ChildProcess;
  private exited?: Promise<void>;
  readonly exits: string[] = [];
  private expectingExit = false;
  /** When it last became ready (ms). */
  readyAt = 0;

  constructor(
    readonly name: string,
    private readonly file: string,
    private readonly args: string[],
    private readonly env: NodeJS.ProcessEnv,
    readonly logFile: string,
    private readonly readyLine?: RegExp,
  ) {}

  get pid(): number | undefined {
    return this.alive ? this.child?.pid : undefined;
  }

  get alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(ready: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
    appendFileSync(this.logFile, `\n--- ${new Date().toISOString()} start ${this.name}\n`);
    const child = spawn(this.file, this.args, {
      cwd: REPO_ROOT,
      env: this.env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.expectingExit = false;
    let sawReady = !this.readyLine;
    const onData = (d: Buffer): void => {
      const text = d.toString('utf8');
      appendFileSync(this.logFile, text);
      if (this.readyLine && this.readyLine.test(text)) sawReady = true;
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        if (!this.expectingExit) this.exits.push(`${this.name} exited by itself (${signal ?? `code ${code}`})`);
        appendFileSync(this.logFile, `--- ${new Date().toISOString()} ${this.name} exited (${signal ?? code})\n`);
        resolve();
      }),
    );
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!this.alive)
        throw new Error(`${this.name} exited during start-up; see ${this.logFile}:\n${tail(this.logFile)}`);
      if (sawReady && (await ready().catch(() => false))) {
        this.readyAt = Date.now();
        return;
      }
      if (Date.now() > deadline)
        throw new Error(
          `${this.name} not ready after ${timeoutMs / 1000}s; see ${this.logFile}:\n${tail(this.logFile)}`,
        );
      await sleep(200);
    }
  }

  /** SIGKILL to the whole process group (tsx runs node as a child; both must die). */
  async kill9(): Promise<void> {
    const pid = this.pid;
    if (!pid) return;
    this.expectingExit = true;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await this.exited;
    await waitGroupGone(pid);
  }

  /** SIGTERM (a clean drain), SIGKILL after a grace period. */
  async stop(graceMs = 15_000): Promise<void> {
    const pid = this.pid;
    if (!pid) return;
    this.expectingExit = true;
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      this.exited!.then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!done) await this.kill9();
    await waitGroupGone(pid);
  }

  /** For process exit: no await, no survivors. */
  killNow(): void {
    const pid = this.pid;
    if (!pid) return;
    this.expectingExit = true;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

async function waitGroupGone(pgid: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await sleep(50);
  }
}

export function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
