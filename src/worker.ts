/**
 * The worker: loads and validates the config, builds the clients, registers
 * the activities and the workflows (a prebuilt bundle when present, see
 * scripts/build-workflow-bundle.ts), and polls the deployments task queue.
 * SIGINT / SIGTERM drain it cleanly.
 */
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { existsSync } from 'node:fs';
import { createActivities, defaultDeps } from './activities';
import { ConfigError } from './domain/config';
import { configFilePath, loadConfig } from './load-config';
import { BUNDLE_PATH } from './repo-root';
import { temporalSettings } from './temporal-connection';


async function run(): Promise<void> {
  const file = configFilePath();
  const config = loadConfig(file);
  const settings = temporalSettings();
  const taskQueue = process.env.TEMPORAL_TASK_QUEUE || config.temporal.taskQueue;
  const connectOptions = {
    address: settings.address,
    ...(settings.tls ? { tls: settings.tls } : {}),
    ...(settings.apiKey ? { apiKey: settings.apiKey } : {}),
  };
  const connection = await NativeConnection.connect(connectOptions);
  // A client too: activities look up which deployment holds an environment.
  const clientConnection = await Connection.connect(connectOptions);
  const client = new Client({ connection: clientConnection, namespace: settings.namespace });
  try {
    const workflows = existsSync(BUNDLE_PATH) && process.env.DEPLOY_WORKFLOW_SOURCE !== '1'
      ? { workflowBundle: { codePath: BUNDLE_PATH } }
      : { workflowsPath: require.resolve('./workflows') };
    const worker = await Worker.create({
      connection,
      namespace: settings.namespace,
      taskQueue,
      ...workflows,
      activities: createActivities(defaultDeps(config, process.env, client.workflow)),
    });
    console.log(`worker: polling task queue "${taskQueue}" on ${settings.address} (namespace ${settings.namespace}, config ${file})`);
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
    } else {
      console.error(err);
    }
    process.exit(1);
  });
}
