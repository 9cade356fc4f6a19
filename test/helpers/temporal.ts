/**
 * Test environments on real Temporal servers: the time-skipping test server
 * for workflow logic, and the dev server (or one already running, when
 * TEMPORAL_ADDRESS is set) for everything that needs a full server.
 */
import type { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { devServerDynamicConfigArgs } from '../../scripts/temporal-dynamic-config';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/search-attributes';
import { toolPath, REPO_ROOT } from './tools';

/** The product's workflows and the tests' parent workflow (test-workflows.ts). */
export const WORKFLOWS_PATH = path.join(REPO_ROOT, 'test/helpers/test-workflows.ts');

export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  return TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: toolPath('test-server') } },
  });
}

/**
 * A dev server with the project's dynamic config (deploy/temporal/dynamicconfig.yaml).
 * `dynamicConfig`: server settings a test needs on top; such a test always starts
 * its own dev server, as a shared one (TEMPORAL_ADDRESS) cannot take them.
 * `serverDefaults`: without the project's file (a benchmark's "before").
 */
export async function devServerEnv(
  dynamicConfig: Record<string, unknown> = {},
  opts: { serverDefaults?: boolean } = {},
): Promise<TestWorkflowEnvironment> {
  const address = process.env.TEMPORAL_ADDRESS;
  const settings = devServerDynamicConfigArgs(dynamicConfig, opts.serverDefaults ? {} : undefined);
  if (address && Object.keys(dynamicConfig).length === 0 && !opts.serverDefaults) {
    return TestWorkflowEnvironment.createFromExistingServer({
      address,
      namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
    });
  }
  return TestWorkflowEnvironment.createLocal({
    server: {
      executable: { type: 'existing-path', path: toolPath('cli') },
      ip: '127.0.0.1',
      searchAttributes: SEARCH_ATTRIBUTE_KEYS,
      extraArgs: ['--log-level', 'error', ...settings],
    },
  });
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** One webpack bundle of src/workflows per test file, shared by its workers. */
export function workflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  return bundle;
}

const noop = (): void => undefined;
const quietLogger = { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop };

export function uniqueQueue(prefix = 'test'): string {
  return `${prefix}-${randomUUID()}`;
}

/** Whether devServerEnv() uses a server that outlives the test file (TEMPORAL_ADDRESS: the sandbox's cluster). */
export function sharedServer(): boolean {
  return !!process.env.TEMPORAL_ADDRESS;
}

/**
 * On a shared server, what a test file leaves running (a failed test's deployment, and with it
 * the environment's lock `deploy-lock-<env>`) would hold up the next file: terminated by task queue.
 */
export async function terminateLeftovers(client: Client, taskQueue: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of client.workflow.list({
    query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'`,
  }))
    ids.push(wf.workflowId);
  for (const id of ids)
    await client.workflow
      .getHandle(id)
      .terminate(`test file ended with it running (task queue ${taskQueue})`)
      .catch(() => undefined);
  return ids;
}
