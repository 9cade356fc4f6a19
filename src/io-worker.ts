/**
 * The I/O worker (`npm run worker:io`): polls temporal.ioTaskQueue and runs
 * the steps that move bulk data (image builds, backups, restores) that the
 * workflows send there. No workflow bundle, no cluster clients: the process
 * that runs a backup holds the backup's buffers and little else (about
 * 106 MiB idle against the full worker's 187-230; docs/benchmarks.md). Run one
 * or more beside the workers of src/worker.ts. SIGINT / SIGTERM drain it.
 */
import { installMetricsRuntime } from './worker-metrics';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createIoActivities, ioClients, IO_ACTIVITY_NAMES } from './activities/io';
import { keepAliveInterceptor } from './activities/runtime';
import { CodecConfigError, dataConverterFromEnv } from './codec';
import { ConfigError } from './domain/config';
import { configFilePath, loadConfig } from './load-config';
import { temporalSettings } from './temporal-connection';
import { heapLimit } from './worker-memory';

/** Why this process cannot be an I/O worker, in one line. */
export class IoWorkerConfigError extends Error {}

async function run(): Promise<void> {
  const file = configFilePath();
  const config = loadConfig(file);
  // Only the config's: it is the queue the workflows' plans name, so another would get no work.
  const taskQueue = config.temporal.ioTaskQueue;
  if (!taskQueue)
    throw new IoWorkerConfigError(
      `${file} names no temporal.ioTaskQueue: set it (e.g. deployments-io) so the workflows send image builds, backups and restores there, or run only npm run worker`,
    );
  const settings = temporalSettings();
  const codec = dataConverterFromEnv(process.env);
  // Before the first connection: the SDK's runtime is made once per process.
  const metricsUrl = await installMetricsRuntime(
    process.env.DEPLOY_IO_METRICS_ADDRESS ?? config.temporal.ioMetricsAddress,
    process.env.DEPLOY_IO_METRICS_ADDRESS !== undefined ? 'DEPLOY_IO_METRICS_ADDRESS' : 'temporal.ioMetricsAddress',
  );
  const connection = await NativeConnection.connect({
    address: settings.address,
    ...(settings.tls ? { tls: settings.tls } : {}),
    ...(settings.apiKey ? { apiKey: settings.apiKey } : {}),
  });
  try {
    const worker = await Worker.create({
      connection,
      namespace: settings.namespace,
      taskQueue,
      ...codec,
      activities: createIoActivities(ioClients(config, process.env)),
      interceptors: { activity: [keepAliveInterceptor] },
    });
    console.log(
      `io-worker: polling task queue "${taskQueue}" on ${settings.address} for ${IO_ACTIVITY_NAMES.join(', ')} (namespace ${settings.namespace}, config ${file}, ${heapLimit()}; metrics ${metricsUrl ?? 'off'})`,
    );
    await worker.run();
  } finally {
    await connection.close();
  }
}

if (require.main === module) {
  run().catch((err: unknown) => {
    if (err instanceof ConfigError) console.error(`io-worker: invalid configuration: ${err.message}`);
    else if (err instanceof IoWorkerConfigError) console.error(`io-worker: ${err.message}`);
    else if (err instanceof CodecConfigError)
      console.error(`io-worker: invalid payload encryption settings: ${err.message}`);
    else console.error(err);
    process.exit(1);
  });
}
