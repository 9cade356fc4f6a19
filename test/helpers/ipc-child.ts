/**
 * A child process spoken to over Node's IPC channel: the benchmarks' worker
 * processes (bench/common.ts forkChild) and the tests' (scale-out), so a
 * worker is measured, or killed, apart from the process that drives it.
 */
import type { ChildProcess } from 'node:child_process';

export interface Child<In, Out> {
  process: ChildProcess;
  pid: number;
  send(message: In): void;
  /** The next message that satisfies `pick`, or a rejection when the child exits first or the time runs out. */
  next<T extends Out>(pick: (m: Out) => m is T, timeoutMs?: number): Promise<T>;
  on(listener: (m: Out) => void): void;
  /** Resolves when the process has exited (at once if it already has). */
  exited: Promise<void>;
  /** Asks the child to stop (message), then SIGTERM, then SIGKILL; resolves when it has exited. */
  stop(message?: In): Promise<void>;
}

/** Wraps a process forked with an IPC channel; `name` is what errors call it. */
export function ipcChild<In, Out>(child: ChildProcess, name: string): Child<In, Out> {
  const listeners: ((m: Out) => void)[] = [];
  child.on('message', (m) => listeners.forEach((l) => l(m as Out)));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    process: child,
    pid: child.pid!,
    exited,
    send: (m) => child.connected && child.send(m as object),
    on: (l) => listeners.push(l),
    next<T extends Out>(pick: (m: Out) => m is T, timeoutMs = 120_000): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no answer within ${timeoutMs} ms`)), timeoutMs);
        const l = (m: Out) => {
          if (pick(m)) {
            clearTimeout(timer);
            resolve(m);
          }
        };
        listeners.push(l);
        void exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (code ${child.exitCode ?? child.signalCode}) before answering`));
        });
      });
    },
    async stop(message?: In): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (message && child.connected) child.send(message);
      // The timer is cleared once the child has exited, so it never keeps the caller's process alive.
      const within = (t: number) =>
        new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), t);
          void exited.then(() => {
            clearTimeout(timer);
            resolve(true);
          });
        });
      if (await within(15_000)) return;
      child.kill('SIGTERM');
      if (await within(5_000)) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

// --- the child's side ------------------------------------------------------------------

/** Resolves when the parent asks this process to stop (`{ type: 'stop' }`) or goes away. */
export function stopRequested(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.on('message', (m: { type?: string }) => m?.type === 'stop' && resolve());
    process.once('disconnect', () => resolve());
  });
}

/** Runs a child's main function; a failure is told to the parent (`{ type: 'failed' }`) and ends the process. */
export function runChild(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    process.send?.({ type: 'failed', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    console.error(err);
    process.exit(1);
  });
}
