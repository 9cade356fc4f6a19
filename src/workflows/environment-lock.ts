/**
 * One deployment per environment at a time. The deploy workflow starts this
 * as a child with the id `deploy-lock-<environment>`; Temporal refuses a
 * second child of that id while the first runs, and the child ends with its
 * parent (ParentClosePolicy TERMINATE) or when released. The lock lives in
 * Temporal itself: no external store, nothing to clean up after a crash.
 */
import { condition, defineQuery, defineSignal, setHandler } from '@temporalio/workflow';

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
  await condition(() => released);
}
