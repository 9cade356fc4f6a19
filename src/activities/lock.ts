/**
 * The environment lock's lease check: is the workflow holding the lock still
 * open? Asked of Temporal itself (describe), through the worker's client, so
 * the answer is the server's record of the holder, not anything the holder
 * or a person says.
 */
import { WorkflowNotFoundError, type WorkflowClient } from '@temporalio/client';
import type { LockHolderState } from './contracts';

export interface LockDeps {
  /** The worker's client (activities/deps.ts); without one the holder is never judged ended. */
  temporal?: WorkflowClient;
}

export function lockActivities(deps: LockDeps) {
  return {
    async lockHolderState(req: { holder: string }): Promise<LockHolderState> {
      // Unknown is not ended: without a client the lock keeps to ParentClosePolicy alone.
      if (!deps.temporal) return { open: true, status: 'UNKNOWN' };
      try {
        const d = await deps.temporal.getHandle(req.holder).describe();
        return { open: d.status.name === 'RUNNING', status: d.status.name };
      } catch (err) {
        // Gone from the namespace (past retention, or never there): it holds nothing.
        if (err instanceof WorkflowNotFoundError) return { open: false, status: 'NOT_FOUND' };
        throw err;
      }
    },
  };
}
