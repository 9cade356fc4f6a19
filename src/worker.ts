/**
 * The worker: loads and validates the config, builds the clients, registers
 * the activities and the workflows (a prebuilt bundle when present, see
 * scripts/build-workflow-bundle.ts), and polls the deployments task queue.
 * With TEMPORAL_DEPLOYMENT_NAME it is one build of a worker deployment
 * (src/worker-versioning.ts). SIGINT / SIGTERM drain it cleanly.
 */
import { installMetricsRuntime, zeroCounters } from './worker-metrics';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { createActivities, defaultDeps } from './activities';
import { keepAliveInterceptor } from './activities/runtime';
import { CodecConfigError, dataConverterFromEnv } from './codec';
import { ConfigError } from './domain/config';
import { configFilePath, loadConfig } from './load-config';
import { BUNDLE_PATH, repoRoot } from './repo-root';
import { temporalSettings } from './temporal-connection';
import { heapLimit } from './worker-memory';
import { setCurrentCommand, VersioningConfigError, workerVersioningFromEnv } from './worker-versioning';

function packageVersion(): string {
  return (JSON.parse(readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

async function run(): Promise<void> {
  const file = configFilePath();
  const config = loadConfig(file);
  const settings = temporalSettings();
  const taskQueue = process.env.TEMPORAL_TASK_QUEUE || config.temporal.taskQueue;
  // DEPLOY_CODEC_KEY set: every payload is encrypted (src/codec.ts); unset: nothing changes.
  const codec = dataConverterFromEnv(process.env);
  const versioning = workerVersioningFromEnv(process.env, packageVersion());
  const connectOptions = {
    address: settings.address,
    ...(settings.tls ? { tls: settings.tls } : {}),
    ...(settings.apiKey ? { apiKey: settings.apiKey } : {}),
  };
  // Before the first connection: the SDK's runtime is made once per process.
  const metricsUrl = await installMetricsRuntime(
    process.env.DEPLOY_METRICS_ADDRESS ?? config.temporal.metricsAddress,
    process.env.DEPLOY_METRICS_ADDRESS !== undefined ? 'DEPLOY_METRICS_ADDRESS' : 'temporal.metricsAddress',
  );
  const connection = await NativeConnection.connect(connectOptions);
  // A client too: activities look up which deployment holds an environment.
  const clientConnection = await Connection.connect(connectOptions);
  const client = new Client({ connection: clientConnection, namespace: settings.namespace, ...codec });
  try {
    // The compiled worker (npm run build) loads the bundle built with it; run from
    // source (tsx), it bundles the source, so a stale bundle is never used.
    const bundle =
      process.env.DEPLOY_WORKFLOW_BUNDLE ??
      (__filename.endsWith('.js') && existsSync(BUNDLE_PATH) ? BUNDLE_PATH : undefined);
    const workflows = bundle
      ? { workflowBundle: { codePath: bundle } }
      : { workflowsPath: require.resolve('./workflows') };
    const worker = await Worker.create({
      connection,
      namespace: settings.namespace,
      taskQueue,
      ...workflows,
      // Codecs run outside the workflow sandbox, so the prebuilt bundle needs no change.
      ...codec,
      activities: createActivities(defaultDeps(config, process.env, client.workflow)),
      // Heartbeats repeated while an activity runs: a dead worker is noticed within one heartbeat timeout.
      interceptors: { activity: [keepAliveInterceptor] },
      ...(versioning.deployment ? { workerDeploymentOptions: versioning.deployment } : {}),
      maxCachedWorkflows: config.temporal.maxCachedWorkflows,
    });
    if (metricsUrl)
      zeroCounters({ namespace: settings.namespace, taskQueue, environments: Object.keys(config.environments) });
    console.log(
      `worker: polling task queue "${taskQueue}" on ${settings.address} (namespace ${settings.namespace}, config ${file}${versioning.buildId ? `, build ${versioning.buildId}` : ''}; workflow cache ${config.temporal.maxCachedWorkflows}, ${heapLimit()}; metrics ${metricsUrl ?? 'off'})`,
    );
    if (versioning.deployment) {
      const { version } = versioning.deployment;
      console.log(
        `worker: version ${version.buildId} of worker deployment "${version.deploymentName}"; new workflows come here once it is current: ${setCurrentCommand(version)}`,
      );
    }
    await worker.run();
  } finally {
    await clientConnection.close();
    await connection.close();
  }
}

if (require.main === module) {
  run().catch((err: unknown) => {
    if (err instanceof ConfigError) {
      console.error(`worker: invalid configuration: ${err.message}`);
    } else if (err instanceof VersioningConfigError) {
      console.error(`worker: invalid worker versioning settings: ${err.message}`);
    } else if (err instanceof CodecConfigError) {
      console.error(`worker: invalid payload encryption settings: ${err.message}`);
    } else {
      console.error(err);
    }
    process.exit(1);
  });
}
