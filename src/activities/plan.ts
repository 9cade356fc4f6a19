/** The resolvePlan activity: reads the worker's config and fixes the plan in history. */
import type { DeployConfig } from '../domain/config';
import { checkInput, deployInputSchema, InputError } from '../domain/input';
import type { DeployPlan } from '../domain/plan';
import { buildPlan } from '../domain/planner';
import { VersionError } from '../domain/version';
import type { ResolvePlanRequest, SenderCheck, VerifySenderRequest } from './contracts';
import { fail } from './failures';
import { verifiedRequester } from './identity/requester';

export interface PlanDeps {
  config: DeployConfig;
  /** Release tags known to the release repository's origin. */
  listTags(): Promise<string[]>;
  /** Head of the release branch on origin (fetched). */
  branchHead(): Promise<string>;
  verifySender(req: VerifySenderRequest): Promise<SenderCheck>;
}

export function planActivities(deps: PlanDeps) {
  return {
    async resolvePlan(req: ResolvePlanRequest): Promise<DeployPlan> {
      try {
        const input = checkInput(deployInputSchema, req.input, 'deploy');
        const [tags, commit] = await Promise.all([deps.listTags(), deps.branchHead()]);
        const plan = buildPlan(deps.config, input, { workflowId: req.workflowId, tags, commit });
        const requester = await verifiedRequester(
          { kind: 'deploy', environment: plan.environment, workflowId: req.workflowId, policy: plan.approvals, input },
          (r) => deps.verifySender(r),
        );
        return { ...plan, ...requester };
      } catch (err) {
        if (err instanceof InputError || err instanceof VersionError) {
          throw fail.InvalidInput(err.message);
        }
        throw err;
      }
    },
  };
}
