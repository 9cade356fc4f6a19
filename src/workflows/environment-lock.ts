/**
 * One deployment per environment at a time. The deploy workflow starts this
 * as a child with the id `deploy-lock-<environment>`; Temporal refuses a
 * second child of that id while the first runs, and the child ends with its
 * parent (ParentClosePolicy TERMINATE) or when released. The lock lives in
 * Temporal itself: no external store, nothing to clean up after a crash.
 */
import {
  CancellationScope,
  ParentClosePolicy,
  condition,
  defineQuery,
  defineSignal,
  log,
  setCurrentDetails,
  setHandler,
  startChild,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';

export interface EnvironmentLockInput {
  environment: string;
  holder: string;
}

export const releaseLockSignal = defineSignal('release');
export const lockHolderQuery = defineQuery<string>('holder');

export function lockWorkflowId(environment: string): string {
  return `deploy-lock-${environment}`;
}

export async function environmentLockWorkflow(input: EnvironmentLockInput): Promise<void> {
  let released = false;
  setHandler(releaseLockSignal, () => {
    released = true;
  });
  setHandler(lockHolderQuery, () => input.holder);
  setCurrentDetails(
    `**held by** ${input.holder}: no other deployment or manual rollback of ${input.environment} starts until it ends`,
  );
  await condition(() => released);
}

export type EnvironmentLock = ChildWorkflowHandle<typeof environmentLockWorkflow>;

/**
 * Takes the environment for `holder` (a child of the calling workflow, ended
 * with it); undefined when another workflow holds it.
 */
export async function acquireEnvironmentLock(
  environment: string,
  holder: string,
): Promise<EnvironmentLock | undefined> {
  try {
    return await startChild(environmentLockWorkflow, {
      workflowId: lockWorkflowId(environment),
      args: [{ environment, holder }],
      parentClosePolicy: ParentClosePolicy.TERMINATE,
      staticSummary: `environment lock of ${environment}, held by ${holder}`,
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return undefined;
    throw err;
  }
}

/** Releases it explicitly; ParentClosePolicy TERMINATE is only the safety net. */
export async function releaseEnvironmentLock(lock: EnvironmentLock): Promise<void> {
  await CancellationScope.nonCancellable(async () => {
    await lock.signal(releaseLockSignal);
    await lock.result();
  }).catch((err: unknown) =>
    log.warn('environment lock release failed', { error: err instanceof Error ? err.message : String(err) }),
  );
}
