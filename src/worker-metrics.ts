/**
 * The worker's /metrics for Prometheus: the Temporal SDK's runtime serves it
 * (its own series: task latencies, slots, sticky cache, polls) and the
 * product's series go through the same meter (workflows/support/metrics.ts,
 * names in domain/metric-names.ts). One endpoint per process, installed
 * before the first connection, as the SDK requires.
 */
import { Runtime } from '@temporalio/worker';
import { createServer } from 'node:net';
import { ConfigError } from './domain/config';
import { parseListenAddress } from './domain/listen-address';
import { counterSeries, METRIC_BUCKETS, METRIC_HELP } from './domain/metric-names';

/**
 * Installs the runtime with a Prometheus endpoint at `address` (off: none);
 * returns the URL it serves, if any. `source` names where the address came
 * from, for the one-line error a bad one gets.
 */
export async function installMetricsRuntime(address: string, source: string): Promise<string | undefined> {
  let listen;
  try {
    listen = parseListenAddress(address);
  } catch (err) {
    throw new ConfigError(`${source}: ${(err as Error).message}`);
  }
  if (!listen) return undefined;
  // The SDK binds lazily and reports a taken port as a stack trace at the first connection: say it in one line first.
  const problem = await bindProblem(listen.host, listen.port);
  if (problem)
    throw new ConfigError(
      `${source}: cannot serve /metrics on ${listen.host}:${listen.port} (${problem}): another worker or exporter has it; give this one another host:port, or off`,
    );
  Runtime.install({
    telemetryOptions: {
      metrics: {
        prometheus: {
          bindAddress: `${listen.host}:${listen.port}`,
          // Seconds, as Prometheus names durations; the product's histograms are in seconds too.
          useSecondsForDurations: true,
          histogramBucketOverrides: METRIC_BUCKETS,
        },
      },
    },
  });
  return `http://${listen.host}:${listen.port}/metrics`;
}

/**
 * Starts the product's counters at 0 for the configured environments, under
 * the labels the workflows' meter gives them (namespace, taskQueue,
 * workflowType), so a dashboard's increase() counts the first deployment.
 */
export function zeroCounters(opts: { namespace: string; taskQueue: string; environments: readonly string[] }): void {
  const meter = Runtime.instance().metricMeter;
  for (const c of counterSeries(opts.environments))
    meter.createCounter(c.name, undefined, METRIC_HELP[c.name]).add(0, {
      ...c.labels,
      namespace: opts.namespace,
      taskQueue: opts.taskQueue,
      workflowType: c.workflowType,
    });
}

/** Why nothing can listen on host:port now (e.g. EADDRINUSE), or undefined when it can. */
function bindProblem(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}
