/**
 * How `npm start` keeps its worker running. A worker crash (an OOM kill, a bug)
 * must change nothing but latency, so the worker is restarted with backoff while
 * the dev server and its UI stay up; only a crash loop, which a restart cannot
 * fix, ends the run.
 *
 * The decision is pure (`nextRestart`): the process handling below it only
 * records deaths and acts on the answer. Every child runs in its own process
 * group and is stopped by group, because a child is often a launcher (tsx) whose
 * real program is a grandchild: killing the launcher alone orphans the program.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';

export interface RestartPolicy {
  /** Delay before the first restart of a streak; doubles with each quick death. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** A worker that ran this long before dying ends the streak: the next delay is the initial one again. */
  stableAfterMs: number;
  /** This many deaths within `windowMs` is a crash loop: give up. */
  maxDeaths: number;
  windowMs: number;
}

export const DEFAULT_POLICY: RestartPolicy = {
  initialDelayMs: 1000,
  maxDelayMs: 30_000,
  stableAfterMs: 60_000,
  maxDeaths: 5,
  windowMs: 60_000,
};

/** One death of the supervised process: when that run started and when it ended (ms). */
export interface Death {
  startedAt: number;
  diedAt: number;
}

export type RestartDecision =
  | { restart: true; delayMs: number; /** 1 for the first restart of this run */ count: number }
  | { restart: false; reason: string };

/**
 * What to do after the latest death in `history` (oldest first, every death of
 * this run, the latest included). The delay doubles with each death in a row of
 * runs shorter than `stableAfterMs`, up to `maxDelayMs`; `maxDeaths` deaths
 * within `windowMs` of `now` is a crash loop.
 */
export function nextRestart(
  history: readonly Death[],
  now: number,
  policy: RestartPolicy = DEFAULT_POLICY,
): RestartDecision {
  const recent = history.filter((d) => d.diedAt > now - policy.windowMs).length;
  if (recent >= policy.maxDeaths) {
    return {
      restart: false,
      reason: `${recent} exits within ${seconds(policy.windowMs)}, a crash loop`,
    };
  }
  let streak = 0;
  for (let i = history.length - 1; i >= 0; i--) {
    streak++;
    if (history[i].diedAt - history[i].startedAt >= policy.stableAfterMs) break;
  }
  const delayMs = Math.min(policy.initialDelayMs * 2 ** Math.max(0, streak - 1), policy.maxDelayMs);
  return { restart: true, delayMs, count: history.length };
}

/**
 * `SIGKILL`, `exit code 1`, or `exit code 137, SIGKILL`: how a process ended, for one-line messages.
 * A launcher (tsx) whose program was killed exits with 128 + the signal's number; say which signal.
 */
export function exitReason(code: number | null, signal: NodeJS.Signals | null): string {
  if (signal) return signal;
  if (code === null) return 'exit code ?';
  const name = code > 128 ? Object.entries(osConstants.signals).find(([, n]) => n === code - 128)?.[0] : undefined;
  return name ? `exit code ${code}, ${name}` : `exit code ${code}`;
}

/** "worker exited (SIGKILL); restarting in 2 s (restart 2)", or the give-up line. */
export function restartMessage(name: string, reason: string, decision: RestartDecision): string {
  return decision.restart
    ? `${name} exited (${reason}); restarting in ${seconds(decision.delayMs)} (restart ${decision.count})`
    : `${name} exited (${reason}); ${decision.reason}: giving up and stopping everything (its output above says why)`;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

// --- processes -------------------------------------------------------------------------

/** Starts a program as the leader of its own process group (its pid is the group's id). */
export function startGroup(
  file: string,
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv },
): ChildProcess {
  // Own group: the terminal's Ctrl-C reaches only `npm start`, which stops its children in order,
  // and a stop reaches the whole group, grandchildren included.
  return spawn(file, args, { ...options, stdio: 'inherit', detached: true });
}

/**
 * The running members of process group `pgid`. From /proc where there is one,
 * so that a zombie (an exited process its parent has not collected) does not
 * count; elsewhere, whether a signal 0 to the group reaches anyone.
 */
export function groupMembers(pgid: number): number[] {
  if (!existsSync('/proc/self/stat')) {
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch {
      return [];
    }
  }
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') members.push(Number(entry));
    } catch {
      // Gone between the listing and the read.
    }
  }
  return members;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // ESRCH: nobody left in the group
  }
}

async function groupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (groupMembers(pgid).length > 0) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/**
 * Stops every process of group `pgid`: SIGTERM, then SIGKILL to whoever is
 * left after `graceMs`. Resolves once the group is empty (or, should a process
 * ignore even SIGKILL, after a few more seconds).
 */
export async function stopGroup(pgid: number, graceMs: number): Promise<void> {
  if (groupMembers(pgid).length === 0) return;
  if (!signalGroup(pgid, 'SIGTERM')) return;
  if (await groupGone(pgid, graceMs)) return;
  signalGroup(pgid, 'SIGKILL');
  await groupGone(pgid, 5000);
}

/** Kills every process of group `pgid` at once (a second Ctrl-C). */
export function killGroup(pgid: number): void {
  signalGroup(pgid, 'SIGKILL');
}

export interface SupervisedOptions {
  name: string;
  /** Starts one run of the program, in its own process group (`startGroup`). */
  start: () => ChildProcess;
  /** One line for the person watching (restarts, the give-up). */
  log: (line: string) => void;
  /** A crash loop: the supervisor has stopped restarting; the caller stops the rest. */
  onGiveUp: (line: string) => void;
  policy?: RestartPolicy;
  /** How long a straggler of a dead run (an orphaned grandchild) gets to stop after SIGTERM. */
  stragglerGraceMs?: number;
  now?: () => number;
}

/** Keeps one program running: restarts it after any exit that `stop()` did not ask for. */
export class Supervised {
  private proc?: ChildProcess;
  private startedAt = 0;
  private readonly deaths: Death[] = [];
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly options: SupervisedOptions) {
    this.now = options.now ?? Date.now;
  }

  /** The current run's pid (its process group's id). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  start(): void {
    if (this.stopped) return;
    this.timer = undefined;
    const proc = this.options.start();
    this.proc = proc;
    this.startedAt = this.now();
    let ended = false;
    const end = (reason: string): void => {
      if (ended) return;
      ended = true;
      void this.died(proc, reason);
    };
    proc.once('exit', (code, signal) => end(exitReason(code, signal)));
    // Could not be started at all (no such program): a death like any other.
    proc.once('error', (err) => end(`could not start: ${err.message}`));
  }

  private async died(proc: ChildProcess, reason: string): Promise<void> {
    if (this.stopped) return;
    const diedAt = this.now();
    this.deaths.push({ startedAt: this.startedAt, diedAt });
    // The launcher died; what it launched may not have: stop the rest of its group first,
    // so that two workers never poll at once and nothing is orphaned.
    if (proc.pid && groupMembers(proc.pid).length > 0) {
      this.options.log(`${this.options.name} (pid ${proc.pid}) exited but left processes in its group; stopping them`);
      await stopGroup(proc.pid, this.options.stragglerGraceMs ?? 10_000);
      if (this.stopped) return;
    }
    const decision = nextRestart(this.deaths, diedAt, this.options.policy);
    const line = restartMessage(this.options.name, reason, decision);
    if (!decision.restart) {
      this.stopped = true;
      this.options.onGiveUp(line);
      return;
    }
    this.options.log(line);
    this.timer = setTimeout(() => this.start(), decision.delayMs);
  }

  /** No more restarts; stops the current run's whole group (SIGTERM, then SIGKILL after `graceMs`). */
  async stop(graceMs: number): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.proc?.pid) await stopGroup(this.proc.pid, graceMs);
  }

  /** A second Ctrl-C: the current run's group, at once. */
  kill(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.proc?.pid) killGroup(this.proc.pid);
  }
}
