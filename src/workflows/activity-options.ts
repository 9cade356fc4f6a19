/**
 * Named activity option presets (design §3.10): every activity call picks one,
 * so timeouts and retries are explicit and permanent failures (listed once in
 * domain/errors) are never retried.
 */
import {
  proxyActivities,
  type ActivityInterfaceFor,
  type ActivityOptions,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { Activities } from '../activities/contracts';
import { NON_RETRYABLE_ERROR_TYPES } from '../domain/errors';

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

/**
 * Image builds, backups and restores: on the I/O workers' task queue when
 * the plan names one (temporal.ioTaskQueue), else with the other long steps.
 * Plans recorded before it name none, so their commands are unchanged.
 */
export function heavy(ioTaskQueue: string | undefined): HeavyActivities {
  if (!ioTaskQueue) return long;
  let h = heavyByQueue.get(ioTaskQueue);
  if (!h) heavyByQueue.set(ioTaskQueue, (h = summarised({ ...LONG, taskQueue: ioTaskQueue })));
  return h;
}

export const short = summarised(SHORT);
export const traffic = summarised(TRAFFIC);
export const long = summarised(LONG);
export const analysis = summarised(ANALYSIS);
export const notifier = summarised(NOTIFY);
export const lease = summarised(LEASE);
