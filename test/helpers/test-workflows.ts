/**
 * The workflows the tests' worker bundles: the product's, and a parent that
 * starts one of them as its child, as deployWorkflow starts canary,
 * blue-green and rollback (they refuse to run without one). Workflow code:
 * deterministic, bundled.
 */
import { executeChild, proxyActivities } from '@temporalio/workflow';

export * from '../../src/workflows';

/** Starts `workflowType` as this workflow's child with `args` and waits for it, whatever its end. */
export async function testParentWorkflow(req: {
  workflowType: string;
  workflowId: string;
  args: unknown[];
}): Promise<void> {
  await executeChild(req.workflowType, { workflowId: req.workflowId, args: req.args }).catch(() => undefined);
}

/** Runs one activity on `taskQueue` (an I/O worker's) once, without retries, and returns its result. */
export async function ioStepWorkflow(req: { taskQueue: string; activity: string; args: unknown[] }): Promise<unknown> {
  const acts = proxyActivities<Record<string, (...a: unknown[]) => Promise<unknown>>>({
    taskQueue: req.taskQueue,
    startToCloseTimeout: '5m',
    retry: { maximumAttempts: 1 },
  });
  return acts[req.activity](...req.args);
}
