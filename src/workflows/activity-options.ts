/**
 * Named activity option presets (design §3.10): every activity call picks one,
 * so timeouts and retries are explicit and permanent failures (listed once in
 * domain/errors) are never retried.
 */
import { ApplicationFailure, TimeoutFailure, TimeoutType } from '@temporalio/common';
import {
  ActivityFailure,
  proxyActivities,
  type ActivityInterfaceFor,
  type ActivityOptions,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { Activities } from '../activities/contracts';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES } from '../domain/errors';

const retry: RetryPolicy = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '30s',
  nonRetryableErrorTypes: [...NON_RETRYABLE_ERROR_TYPES],
};

/**
 * How soon an attempt whose worker died is given to another worker. The worker
 * repeats each running activity's heartbeat (activities/runtime.ts), so this
 * only has to outlast a busy event loop, not the activity's silent stretches.
 */
const DEAD_WORKER = '10s';

/** Quick calls to an API (read state, set a weight, notify): seconds each, a few retries. */
export const SHORT: ActivityOptions = {
  startToCloseTimeout: '30s',
  heartbeatTimeout: DEAD_WORKER,
  retry: { ...retry, maximumAttempts: 5 },
};

/** Traffic changes: retried fast, because an abort must land within a second or two. */
export const TRAFFIC: ActivityOptions = {
  startToCloseTimeout: '20s',
  heartbeatTimeout: DEAD_WORKER,
  retry: { ...retry, initialInterval: '200ms', maximumInterval: '5s', maximumAttempts: 10 },
};

/** Long work that heartbeats progress (build, backup, rollout wait): resumed after a worker crash. */
export const LONG: ActivityOptions = {
  startToCloseTimeout: '2h',
  heartbeatTimeout: '15s',
  retry: { ...retry, maximumAttempts: 10 },
};

/** One measurement: a failure is an inconclusive run for the workflow, not a retry storm. */
export const ANALYSIS: ActivityOptions = {
  startToCloseTimeout: '30s',
  heartbeatTimeout: DEAD_WORKER,
  retry: { ...retry, initialInterval: '500ms', maximumAttempts: 2 },
};

/** The lock's lease check: a quick question; when it cannot be answered the lock is kept and asked again later. */
export const LEASE: ActivityOptions = {
  startToCloseTimeout: '10s',
  retry: { ...retry, maximumAttempts: 2 },
};

/** Best effort: a failing webhook never fails a deployment. */
export const NOTIFY: ActivityOptions = {
  startToCloseTimeout: '30s',
  heartbeatTimeout: DEAD_WORKER,
  retry: { ...retry, maximumAttempts: 3 },
};

/**
 * An audit record: idempotent (by run and event), so it is retried for about
 * two minutes of a store that does not answer before the workflow gives up
 * on it and says so in its status.
 */
export const AUDIT: ActivityOptions = {
  startToCloseTimeout: '30s',
  heartbeatTimeout: DEAD_WORKER,
  retry: { ...retry, maximumAttempts: 6 },
};

/** The summary of the activities scheduled now: the step that schedules them (Tracker.step sets it). */
let summary: string | undefined;

/**
 * Calls `fn` with `text` as the summary of every activity it schedules before
 * its first await: the Temporal UI shows it on the activity in the history
 * and timeline (user metadata), so a person sees "build and push images"
 * rather than only `buildImages`.
 */
export function withSummary<T>(text: string, fn: () => T): T {
  const before = summary;
  summary = text;
  try {
    return fn();
  } finally {
    summary = before;
  }
}

/** proxyActivities with the current summary (if any) on each call. */
function summarised(options: ActivityOptions): ActivityInterfaceFor<Activities> {
  const activities = proxyActivities<Activities>(options);
  return new Proxy(activities, {
    get(target, name: keyof Activities) {
      const activity = target[name];
      const call = (...args: unknown[]) =>
        summary === undefined
          ? (activity as (...a: unknown[]) => Promise<unknown>)(...args)
          : activity.executeWithOptions({ summary }, args as never);
      return Object.assign(call, {
        executeWithOptions: (o: ActivityOptions, args: never) => activity.executeWithOptions(o, args),
      });
    },
  });
}

/** The long steps that move bulk data, which an I/O worker can take off the workflows' workers. */
type HeavyActivities = Pick<ActivityInterfaceFor<Activities>, 'buildImages' | 'backupDatabase' | 'restoreDatabase'>;
const heavyByQueue = new Map<string, HeavyActivities>();

/** How long a step waits on the I/O queue for a worker to take it: past that, no I/O worker polls it. */
const IO_PICKUP = '15 minutes';

/** A step on the I/O queue that timed out waiting for a worker, as the one-line failure that says what to do. */
export function noIoWorker(err: unknown, activity: string, ioTaskQueue: string): ApplicationFailure | undefined {
  if (
    !(err instanceof ActivityFailure) ||
    !(err.cause instanceof TimeoutFailure) ||
    err.cause.timeoutType !== TimeoutType.SCHEDULE_TO_START
  )
    return undefined;
  return ApplicationFailure.create({
    type: ErrorType.NoIoWorker,
    nonRetryable: true,
    message: `no I/O worker took ${activity} from task queue ${ioTaskQueue} within ${IO_PICKUP}: start one on it (npm run worker:io), or unset temporal.ioTaskQueue for new deployments`,
    cause: err,
  });
}

/**
 * Image builds, backups and restores: on the I/O workers' task queue when
 * the plan names one (temporal.ioTaskQueue), else with the other long steps.
 * Plans recorded before it name none, so their commands are unchanged. A
 * step no I/O worker takes fails after IO_PICKUP saying so, instead of
 * waiting without end.
 */
export function heavy(ioTaskQueue: string | undefined): HeavyActivities {
  if (!ioTaskQueue) return long;
  let h = heavyByQueue.get(ioTaskQueue);
  if (!h) {
    const proxied = summarised({ ...LONG, taskQueue: ioTaskQueue, scheduleToStartTimeout: IO_PICKUP });
    h = new Proxy(proxied, {
      get(target, name: keyof HeavyActivities) {
        const fn = target[name] as (...a: unknown[]) => Promise<unknown>;
        return (...args: unknown[]) =>
          fn(...args).catch((err: unknown) => {
            throw noIoWorker(err, name, ioTaskQueue) ?? err;
          });
      },
    });
    heavyByQueue.set(ioTaskQueue, h);
  }
  return h;
}

export const short = summarised(SHORT);
export const traffic = summarised(TRAFFIC);
export const long = summarised(LONG);
export const analysis = summarised(ANALYSIS);
export const notifier = summarised(NOTIFY);
export const lease = summarised(LEASE);
export const ledger = summarised(AUDIT);
