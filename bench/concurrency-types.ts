/** IPC messages between the concurrency benchmark and its worker process. */

export type ConcurrencyWorkerIn = { type: 'stop' };

/** What the worker's fake activities saw, timestamped in the worker (ms since the epoch, sub-ms). */
export interface ActivityEvent {
  workflowId: string;
  /** setCanaryWeight started for `weight`, or the step's notification (the last call before a soak) finished. */
  what: 'weight' | 'soaking';
  weight: number;
  t: number;
}

export type ConcurrencyWorkerOut =
  | { type: 'ready'; rss: number; maxCachedWorkflows: number }
  | { type: 'events'; events: ActivityEvent[] }
  /** The worker's V8 heap in use (live objects and garbage not yet collected), every second. */
  | { type: 'memory'; heapUsed: number }
  | { type: 'failed'; message: string };
