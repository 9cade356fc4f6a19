/**
 * Named activity option presets (design §3.10): every activity call picks one,
 * so timeouts and retries are explicit and permanent failures (listed once in
 * domain/errors) are never retried.
 */
import { proxyActivities, type ActivityOptions, type RetryPolicy } from '@temporalio/workflow';
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

/** Best effort: a failing webhook never fails a deployment. */
export const NOTIFY: ActivityOptions = {
  startToCloseTimeout: '30s',
  heartbeatTimeout: DEAD_WORKER,
  retry: { ...retry, maximumAttempts: 3 },
};

export const short = proxyActivities<Activities>(SHORT);
export const traffic = proxyActivities<Activities>(TRAFFIC);
export const long = proxyActivities<Activities>(LONG);
export const analysis = proxyActivities<Activities>(ANALYSIS);
export const notifier = proxyActivities<Activities>(NOTIFY);
