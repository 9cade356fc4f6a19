/**
 * One deployment per environment at a time. The deploy workflow (and a
 * manual rollback) starts this as a child with the id
 * `deploy-lock-<environment>`; Temporal refuses a second child of that id
 * while the first runs. The lock lives in Temporal itself: no external store,
 * nothing to clean up after a crash.
 *
 * Nobody can squat it. The prefix is reserved (domain/workflow-id.ts: no
 * deployment or rollback runs under it), and a lock that was not started by
 * its holder (started by hand, with no parent, or by a workflow that is not
 * the `holder` it names) ends at once, holding nothing, and says so.
 *
 * It does not outlive its holder: a lease. ParentClosePolicy TERMINATE ends
 * it when the holder closes; besides, every `leaseCheckIntervalMs` (a durable
 * timer, default one minute) the lock asks Temporal, through an activity,
 * whether the holder is still open, and releases itself when it is not
 * (completed, failed, terminated, cancelled, timed out, continued as new, or
 * gone). That covers what the parent close policy does not: a holder that
 * closed while the policy could not act, a lock left by an older worker, or
 * one abandoned on purpose. The renewal is the holder being open: a
 * deployment waiting days at an approval gate makes no history, and must
 * keep its lock, so neither a renew signal it would have to send from every
 * wait nor the age of its last event is the measure. A holder that is open
 * but stuck (its workflow task failing) keeps the lock: releasing it would
 * let a second deployment run beside one that resumes once fixed; a person
 * terminates the stuck one, and the next check frees the environment.
 */
import {
  CancellationScope,
  ParentClosePolicy,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  log,
  patched,
  setCurrentDetails,
  setHandler,
  startChild,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { LOCK_ID_PREFIX, workflowIdProblem } from '../domain/workflow-id';
import { lease } from './activity-options';
import { LOCK_HOLDER_PATCH, LOCK_LEASE_PATCH } from './patches';

export interface EnvironmentLockInput {
  environment: string;
  /** The workflow id of the deployment or rollback that holds it: the lock's parent. */
  holder: string;
  /** How often the lease asks whether the holder is still open (default one minute). */
  leaseCheckIntervalMs?: number;
}

/** One minute: an environment whose holder ended is free again within a minute or two. */
export const DEFAULT_LEASE_CHECK_MS = 60_000;
/** A lease check costs about ten history events: a new run well before Temporal's history limits. */
const CONTINUE_AS_NEW_AFTER_EVENTS = 10_000;

export const releaseLockSignal = defineSignal('release');
export const lockHolderQuery = defineQuery<string>('holder');

export function lockWorkflowId(environment: string): string {
  return `${LOCK_ID_PREFIX}${environment}`;
}

/** Why this run may not hold the lock, or undefined when its holder started it under the lock's own id. */
function squatted(input: EnvironmentLockInput): string | undefined {
  const info = workflowInfo();
  // A new run of a lock (continue-as-new) was checked by its first run, and keeps its parent.
  if (info.continuedFromExecutionRunId) return undefined;
  const holder = workflowIdProblem(input?.holder) ? JSON.stringify(input?.holder) : input.holder;
  if (!info.parent) return `not started by its holder ${holder} (started by hand, with no parent)`;
  if (info.parent.workflowId !== input.holder)
    return `not started by its holder ${holder} (started by ${info.parent.workflowId})`;
  if (typeof input.environment !== 'string' || info.workflowId !== lockWorkflowId(input.environment))
    return `not started under the id of ${JSON.stringify(input.environment)}'s lock`;
  return undefined;
}

/** Holds the environment until released or its holder ends; resolves with how it ended. */
export async function environmentLockWorkflow(input: EnvironmentLockInput): Promise<string> {
  let released = false;
  setHandler(releaseLockSignal, () => {
    released = true;
  });
  setHandler(lockHolderQuery, () => input.holder);

  // Checked before it holds anything; locks recorded before this check was added took no such decision.
  const refusal = squatted(input);
  if (refusal && patched(LOCK_HOLDER_PATCH)) {
    const end = `refused: this lock was ${refusal}; it holds nothing, and ${input?.environment ?? 'the environment'} stays free`;
    setCurrentDetails(`**${end}**`);
    log.warn('environment lock refused', { refusal });
    return end;
  }
  setCurrentDetails(
    `**held by** ${input.holder}: no other deployment or manual rollback of ${input.environment} starts until it ends`,
  );
  if (!patched(LOCK_LEASE_PATCH)) {
    await condition(() => released);
    return 'released';
  }

  const every = Math.max(1000, input.leaseCheckIntervalMs ?? DEFAULT_LEASE_CHECK_MS);
  for (;;) {
    if (await condition(() => released, every)) return 'released';
    // Racing the release: a signal ends the lock at once, whatever the check is doing.
    const state = await Promise.race([
      lease.lockHolderState({ holder: input.holder }).catch((err: unknown) => {
        log.warn('lease check failed; the lock is kept', { error: err instanceof Error ? err.message : String(err) });
        return undefined;
      }),
      condition(() => released).then(() => undefined),
    ]);
    if (released) return 'released';
    if (state && !state.open) {
      const end = `released: its holder ${input.holder} has ended (${state.status}); ${input.environment} is free`;
      setCurrentDetails(`**${end}**`);
      log.info('environment lock released by its lease', { holder: input.holder, status: state.status });
      return end;
    }
    if (workflowInfo().historyLength > CONTINUE_AS_NEW_AFTER_EVENTS || workflowInfo().continueAsNewSuggested) {
      // The same lock in a new run: same id, same parent, same holder.
      return continueAsNew<typeof environmentLockWorkflow>(input);
    }
  }
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

/** Releases it explicitly; ParentClosePolicy TERMINATE and the lease are the safety nets. */
export async function releaseEnvironmentLock(lock: EnvironmentLock): Promise<void> {
  await CancellationScope.nonCancellable(async () => {
    await lock.signal(releaseLockSignal);
    await lock.result();
  }).catch((err: unknown) =>
    log.warn('environment lock release failed', { error: err instanceof Error ? err.message : String(err) }),
  );
}
