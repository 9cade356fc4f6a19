/**
 * Nothing trusted from outside (design §2): a canary or blue-green runs only
 * as a deployment's child, and even then confirms the plan and image it was
 * handed with the worker's configuration before it changes anything. Anyone
 * who can reach Temporal can start a workflow with any input; only the
 * planner, on the worker, decides what a plan may say.
 */
import { ApplicationFailure } from '@temporalio/common';
import { workflowInfo } from '@temporalio/workflow';
import { ErrorType } from '../../domain/errors';
import type { DeployPlan } from '../../domain/plan';
import { isVersion } from '../../domain/version';
import { short } from '../activity-options';
import { describeError, errorType, type Tracker } from './tracker';

/** What to start instead, with the version when it is one (a message never echoes other text it was handed). */
function deployInstead(strategy: 'canary' | 'blue-green', version: unknown): string {
  const v = isVersion(version) ? (version as string) : '<version>';
  return `start deployWorkflow with ${JSON.stringify({ version: v, strategy })} (deployctl deploy --version ${v} --strategy ${strategy})`;
}

/** Refuses a canary or blue-green that no workflow started: ParentRequired, before anything else happens. */
export function requireParent(strategy: 'canary' | 'blue-green', version: unknown): void {
  if (workflowInfo().parent) return;
  throw ApplicationFailure.create({
    type: ErrorType.ParentRequired,
    nonRetryable: true,
    message: `${workflowInfo().workflowType} runs only as a deployment's child, which hands it a plan the configuration confirms: ${deployInstead(strategy, version)}`,
  });
}

/**
 * The confirmPlan step: the plan and image a child was handed, confirmed
 * against config. A mismatch ends the workflow with PlanMismatch, its status
 * failed, before any side effect.
 */
export async function confirmHandedPlan(t: Tracker, plan: DeployPlan, image: string | undefined): Promise<void> {
  try {
    await t.step(
      'confirm plan',
      () => short.confirmPlan({ plan, ...(image !== undefined ? { image } : {}) }),
      (r) => `${r.environment}: as configured${r.image ? `, image by ${r.image}` : ''}`,
    );
  } catch (err) {
    t.finish('failed', describeError(err));
    if (errorType(err) !== ErrorType.PlanMismatch) throw err;
    throw ApplicationFailure.create({
      type: ErrorType.PlanMismatch,
      nonRetryable: true,
      message: (err as { cause?: { message?: string } }).cause?.message ?? describeError(err),
    });
  }
}
