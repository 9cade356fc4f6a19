/**
 * What deployments and manual rollbacks share about the environment lock:
 * the refusal when another one holds it, and the refusal of an id that
 * squats the lock's prefix or is outside the id rule.
 */
import { ApplicationFailure, patched } from '@temporalio/workflow';
import { ErrorType } from '../../domain/errors';
import { FREEZE_ID_PREFIX, LOCK_ID_PREFIX, workflowIdProblem } from '../../domain/workflow-id';
import { shellCommand } from '../../domain/shell';
import { short } from '../activity-options';
import { lockWorkflowId } from '../environment-lock';
import { WORKFLOW_ID_RULE_PATCH } from '../patches';

/** Names the holder (looked up by an activity) and what a person can do about it. */
export async function environmentBusy(environment: string): Promise<string> {
  const holder = await short.lockHolder({ environment }).catch(() => ({ workflowId: undefined }));
  return `${ErrorType.DeploymentInProgress}: another deployment is running on ${environment}: ${holder.workflowId ?? lockWorkflowId(environment)}; wait for it or abort it (${holder.workflowId ? shellCommand(['deployctl', 'abort', holder.workflowId, '--by']) : 'deployctl abort <id> --by'} <name> --reason <text>)`;
}

/**
 * Fails the workflow at once (before any activity, lock or notification) when
 * its id is outside the id rule or takes a reserved prefix (lock, freeze): such
 * an id would be printed into commands and notifications, or would block the
 * environment's lock or stand in for its freeze. `prefixOnly`: a child whose id its parent made from its own checked id.
 */
export function refuseBadWorkflowId(workflowId: string, o: { prefixOnly?: boolean } = {}): void {
  const checked = !o.prefixOnly || workflowId.startsWith(LOCK_ID_PREFIX) || workflowId.startsWith(FREEZE_ID_PREFIX);
  const problem = checked ? workflowIdProblem(workflowId) : undefined;
  if (!problem) return;
  // Workflows that ran before this rule took no such decision.
  if (!patched(WORKFLOW_ID_RULE_PATCH)) return;
  throw ApplicationFailure.create({
    type: ErrorType.InvalidWorkflowId,
    nonRetryable: true,
    message: `${ErrorType.InvalidWorkflowId}: ${problem}`,
  });
}
