/**
 * End-to-end harness: the real worker activities (createActivities with the
 * real clients) against the sandbox, on the dev server, with the example
 * config and the sandbox's environment. Each test starts from `sandbox reset`
 * (v1.0.0 everywhere).
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import * as k8s from '@kubernetes/client-node';
import { createActivities, defaultDeps } from '../../src/activities';
import { keepAliveInterceptor } from '../../src/activities/runtime';
import type { DeployConfig } from '../../src/domain/config';
import { loadConfig } from '../../src/load-config';
import { sandboxEnv, sandboxVarOf, type SandboxEnvironmentName } from './sandbox';
import { devServerEnv, sharedServer, terminateLeftovers, uniqueQueue, workflowBundle } from './temporal';
import { REPO_ROOT } from './tools';

const run = promisify(execFile);

export async function sandboxCli(...args: string[]): Promise<string> {
  const { stdout } = await run(
    path.join(REPO_ROOT, 'node_modules/.bin/tsx'),
    [path.join(REPO_ROOT, 'scripts/sandbox/cli.ts'), ...args],
    { cwd: REPO_ROOT, maxBuffer: 10 * 1024 * 1024 },
  );
  return stdout;
}

/**
 * The example config, filled from the sandbox's environment, with a short
 * analysis window, configured as a test environment: the input may only
 * tighten the config, so the soaks of seconds, the rolling deployments and
 * the skipped migrations the tests ask for are allowed here.
 */
export function e2eConfig(): DeployConfig {
  Object.assign(process.env, sandboxEnv());
  const config = loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), process.env);
  return {
    ...config,
    environments: Object.fromEntries(
      Object.entries(config.environments).map(([name, env]) => [name, { ...env, policy: TEST_POLICY }]),
    ),
    analysis: { ...config.analysis, window: '10s' },
    rollout: {
      ...config.rollout,
      canary: { ...config.rollout.canary, soak: 1000 },
      blueGreen: { ...config.rollout.blueGreen, monitor: 1000 },
    },
  };
}

/** A test environment's policy: any strategy, backup and migrations may be skipped. */
export const TEST_POLICY: DeployConfig['environments'][string]['policy'] = {
  backup: 'optional',
  migrations: 'optional',
  strategies: ['rolling', 'canary', 'blue-green'],
};

export interface E2E {
  env: TestWorkflowEnvironment;
  taskQueue: string;
  worker: Worker;
  running: Promise<void>;
  stop(): Promise<void>;
}

/** The worker's config and environment as a test changes them (e.g. another migration tool). */
export interface E2EOptions {
  config?: (c: DeployConfig) => DeployConfig;
  env?: (e: NodeJS.ProcessEnv) => NodeJS.ProcessEnv;
}

export async function startE2E(o: E2EOptions = {}): Promise<E2E> {
  const base = e2eConfig();
  const config = o.config ? o.config(base) : base;
  const workerEnv = o.env ? o.env({ ...process.env }) : process.env;
  const env = await devServerEnv();
  const shared = sharedServer();
  const taskQueue = uniqueQueue('e2e');
  const activities = createActivities(defaultDeps(config, workerEnv, env.client.workflow));
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities,
    interceptors: { activity: [keepAliveInterceptor] },
  });
  const running = worker.run();
  return {
    env,
    taskQueue,
    worker,
    running,
    async stop() {
      worker.shutdown();
      await running;
      if (shared) await terminateLeftovers(env.client, taskQueue);
      await env.teardown();
    },
  };
}

/** Admin clients of an environment's cluster (production's unless told). */
export function adminKube(environment: SandboxEnvironmentName = 'production') {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(sandboxVarOf(environment, 'KUBECONFIG'));
  return {
    apps: kc.makeApiClient(k8s.AppsV1Api),
    core: kc.makeApiClient(k8s.CoreV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
  };
}

/** Admin clients of the staging cluster. */
export function stagingKube() {
  return adminKube('staging');
}

export async function virtualServiceWeights(
  environment: SandboxEnvironmentName = 'production',
): Promise<{ stable: number; canary: number }> {
  const vs = (await adminKube(environment).custom.getNamespacedCustomObject({
    group: 'networking.istio.io',
    version: 'v1beta1',
    namespace: 'ai-saas',
    plural: 'virtualservices',
    name: 'api-gateway',
  })) as {
    spec: { http: { route: { destination: { subset: string }; weight?: number }[] }[] };
  };
  const route = vs.spec.http[0].route;
  return {
    stable: route.find((r) => r.destination.subset === 'stable')?.weight ?? 0,
    canary: route.find((r) => r.destination.subset === 'canary')?.weight ?? 0,
  };
}

export async function deploymentImages(
  environment: SandboxEnvironmentName = 'production',
): Promise<Record<string, string>> {
  const list = await adminKube(environment).apps.listNamespacedDeployment({ namespace: 'ai-saas' });
  return Object.fromEntries(list.items.map((d) => [d.metadata!.name!, d.spec!.template.spec!.containers[0].image!]));
}
