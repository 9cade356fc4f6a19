/**
 * Heartbeats of the running activity, and the worker-side keep-alive.
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
