/**
 * The config's `temporal` section: the task queues, the worker's workflow
 * cache and where its /metrics listens.
 */
import { z } from 'zod';
import { url } from './config-fields';
import { listenAddressField } from './listen-address';

/** Where the worker and the I/O worker serve /metrics by default: loopback only. */
export const METRICS_ADDRESS = '127.0.0.1:9464';
export const IO_METRICS_ADDRESS = '127.0.0.1:9465';

/** The worker's workflow cache by default (temporal.maxCachedWorkflows), chosen from the concurrency benchmark. */
export const MAX_CACHED_WORKFLOWS = 500;

export const temporalSchema = z
  .strictObject({
    taskQueue: z.string().min(1).max(200).default('deployments'),
    uiUrl: url.optional(),
    /** Upsert DeployEnvironment/Version/Strategy/Phase; the server must have them registered. */
    searchAttributes: z.boolean().default(true),
    /**
     * Workflows the worker keeps in memory between their tasks (0: none). A soaking canary and
     * its deployment take ~370 KiB each; one evicted from the cache is replayed from its history
     * at its next task, a few milliseconds of CPU. The default keeps 1000 soaking canaries under
     * 512 MiB (docs/benchmarks.md, concurrency); the SDK's own default fills the memory first.
     */
    maxCachedWorkflows: z
      .number()
      .int()
      .min(0)
      .max(100_000)
      .refine((n) => n !== 1, '0 (no cache) or at least 2: the SDK keeps 2 when given 1')
      .default(MAX_CACHED_WORKFLOWS),
    /**
     * The task queue of the I/O workers (npm run worker:io): image builds, backups and restores
     * run there, in a process without the workflow bundle or the cluster clients, so a backup's
     * memory and CPU stay apart from the workflows'. Unset: they run on taskQueue, as before.
     */
    ioTaskQueue: z.string().min(1).max(200).optional(),
    /**
     * Where the worker serves /metrics for Prometheus (the SDK's series and the product's,
     * domain/metric-names.ts): host:port, loopback unless set otherwise, or off.
     */
    metricsAddress: listenAddressField.default(METRICS_ADDRESS),
    /** The same for the I/O worker (npm run worker:io), which runs beside the worker. */
    ioMetricsAddress: listenAddressField.default(IO_METRICS_ADDRESS),
  })
  .prefault({});
