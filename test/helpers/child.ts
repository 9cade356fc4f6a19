/**
 * Starting canary, blue-green and automatic rollbacks in tests the way the
 * product does: as the child of a parent workflow (test-workflows.ts). The
 * handle is the child's, so tests signal, query and await it as before;
 * commands in its status name the parent, which people would signal.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { Workflow } from '@temporalio/common';

/** The parent's id for a child `workflowId`. */
export const parentIdOf = (workflowId: string): string => `${workflowId}-parent`;

export async function startAsChild<W extends Workflow>(
  client: Client,
  workflow: W,
  opts: { taskQueue: string; workflowId: string; args: Parameters<W> },
): Promise<WorkflowHandle<W>> {
  await client.workflow.start('testParentWorkflow', {
    taskQueue: opts.taskQueue,
    workflowId: parentIdOf(opts.workflowId),
    args: [{ workflowType: workflow.name, workflowId: opts.workflowId, args: opts.args }],
  });
  const h = client.workflow.getHandle<W>(opts.workflowId);
  // The child exists once the parent's first task has run: wait for it, so a signal or query finds it.
  for (let i = 0; ; i++) {
    try {
      await h.describe();
      return h;
    } catch (err) {
      if (i > 200) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}
