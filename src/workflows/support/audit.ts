/**
 * Appends a workflow's records to its environment's audit ledger (the
 * appendAudit activity, activities/audit/ledger.ts): each finished
 * deployment, rollback, release stage and approval, each freeze and
 * unfreeze. Keyed by this run and the event, so a retry or a replay after a
 * crash appends nothing twice. Histories from before the ledger append
 * nothing (AUDIT_PATCH). Never fatal: a ledger that cannot be written is a
 * note in the status and a warning in the log, and the workflow ends as it
 * would have.
 */
import { CancellationScope, log, patched, workflowInfo } from '@temporalio/workflow';
import type { AuditEventKind, AuditFacts } from '../../domain/audit';
import { approvalFacts } from '../../domain/audit-facts';
import type { SignalRecord } from '../../domain/status';
import { ledger, withSummary } from '../activity-options';
import { AUDIT_PATCH } from '../patches';
import { describeError, nowIso, type Tracker } from './tracker';

/** One record; false when it could not be written (the tracker's status says so). */
export async function recordAudit(
  environment: string,
  event: AuditEventKind,
  eventId: string,
  facts: AuditFacts,
  t?: Tracker,
): Promise<boolean> {
  if (!patched(AUDIT_PATCH)) return false;
  const info = workflowInfo();
  try {
    // A cancelled workflow still records how it ended. The run's own id: a reset run records its own events.
    await CancellationScope.nonCancellable(() =>
      withSummary(`audit: ${eventId}`, () =>
        ledger.appendAudit({
          environment,
          workflowId: info.workflowId,
          runId: info.runId,
          event,
          eventId,
          at: nowIso(),
          facts,
        }),
      ),
    );
    return true;
  } catch (err) {
    const why = describeError(err);
    log.warn('audit record not written', { environment, event, eventId, error: why });
    t?.note('audit', `**the audit record ${eventId} could not be written:** ${why}`);
    return false;
  }
}

/**
 * Each approval a workflow counted (its own and its children's), one record
 * each, in order; false when one could not be written (the rest are not
 * tried: a store that does not answer is waited for once, not per approval).
 */
export async function recordApprovals(
  environment: string,
  approvals: readonly SignalRecord[],
  t?: Tracker,
): Promise<boolean> {
  for (const [i, a] of approvals.entries())
    if (!(await recordAudit(environment, 'approval', `approval-${i + 1}`, approvalFacts(a), t))) return false;
  return true;
}
