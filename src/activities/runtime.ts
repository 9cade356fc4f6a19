/**
 * The one activity runtime every adapter uses: the current attempt's context,
 * heartbeats and the details a retried attempt resumes from, cancellation, a
 * sleep that gives up when cancelled, the logger, and the worker-side
 * keep-alive. Outside an activity (scripts, plain unit tests) every part
 * degrades to a no-op or the console, so adapters need no second code path.
 *
 * Activities heartbeat when they make progress (an image pushed, bytes of a
 * backup uploaded, a rollout poll). Some steps are silent for long stretches
 * (a Dockerfile RUN, one large table in pg_dump, a check script), so the
 * heartbeat timeout used to be long (60 s) — and a worker that died was then
 * noticed only a minute later. The keep-alive repeats the latest progress on a
 * timer from inside the worker process, so the heartbeat timeout now measures
 * one thing: is the worker that runs this attempt still alive? A SIGKILLed or
 * cut-off worker's attempt is retried elsewhere within one timeout (seconds).
 * A step that hangs is still bounded by its start-to-close timeout and by the
 * adapters' own request timeouts.
 */
import { Context } from '@temporalio/activity';
import { CancelledFailure } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';

/** The latest details each running attempt sent: what the keep-alive repeats, so a retry resumes from them. */
const latest = new WeakMap<Context, { details: unknown }>();

/** The activity context when called inside an activity; undefined in scripts and plain unit use. */
export function currentActivity(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/** Send progress for the running activity (a no-op outside one) and remember it for the keep-alive. */
export function heartbeat(details: unknown): void {
  const ctx = currentActivity();
  if (!ctx) return;
  latest.set(ctx, { details });
  ctx.heartbeat(details);
}

/** How often the keep-alive beats: well inside the timeout, whatever the SDK's throttling (80 % of it). */
export function keepAliveEveryMs(heartbeatTimeoutMs: number): number {
  return Math.max(500, Math.floor(heartbeatTimeoutMs / 3));
}

/** Run `fn` for the attempt of `ctx`, repeating its latest heartbeat until it settles (when it has a heartbeat timeout). */
export async function withKeepAlive<T>(ctx: Context, fn: () => Promise<T>): Promise<T> {
  const timeout = ctx.info.heartbeatTimeoutMs;
  if (!timeout || ctx.info.isLocal) return fn();
  const timer = setInterval(() => {
    const last = latest.get(ctx);
    // Before the first progress report, repeat the previous attempt's details rather than erase them.
    ctx.heartbeat(last ? last.details : ctx.info.heartbeatDetails);
  }, keepAliveEveryMs(timeout));
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}

/** Worker interceptor: every activity attempt runs under the keep-alive. */
export const keepAliveInterceptor: ActivityInterceptorsFactory = (ctx) => ({
  inbound: { execute: (input, next) => withKeepAlive(ctx, () => next(input)) },
});

/** The last heartbeat details of the previous attempt, if this is a retry. */
export function previousDetails(): unknown {
  return currentActivity()?.info.heartbeatDetails as unknown;
}

/** The running attempt's cancellation signal (undefined outside an activity). */
export function cancellationSignal(): AbortSignal | undefined {
  return currentActivity()?.cancellationSignal;
}

/**
 * The parts of the activity context an adapter uses, injectable so tests and
 * benchmarks can observe progress or cancel without a Temporal worker.
 */
export interface ActivityRuntime {
  heartbeat(details: unknown): void;
  /** The last heartbeat of the previous attempt, if any. */
  previousDetails(): unknown;
  cancellationSignal(): AbortSignal | undefined;
}

/** The real activity context when there is one, no-ops otherwise. */
export const temporalRuntime: ActivityRuntime = { heartbeat, previousDetails, cancellationSignal };

/** A runtime with some parts replaced (tests pass their own heartbeat or signal). */
export function runtimeWith(overrides: Partial<ActivityRuntime> = {}): ActivityRuntime {
  return { ...temporalRuntime, ...overrides };
}

/** The cancellation's reason when it is an error, else a CancelledFailure. */
export function cancelledError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new CancelledFailure('activity cancelled');
}

export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelledError(signal);
}

/** setTimeout that gives up as soon as the activity is cancelled. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(cancelledError(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(cancelledError(signal as AbortSignal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface Logger {
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
}

/** The activity's logger inside an activity, the console outside one (scripts, plain tests). */
export function activityLogger(): Logger {
  const pick = (): Logger =>
    currentActivity()?.log ?? {
      info: (m, meta) => console.log(m, meta ?? ''),
      warn: (m, meta) => console.warn(m, meta ?? ''),
    };
  return { info: (m, meta) => pick().info(m, meta), warn: (m, meta) => pick().warn(m, meta) };
}
