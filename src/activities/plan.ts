/** The resolvePlan activity: reads the worker's config and fixes the plan in history. */
import type { DeployConfig } from '../domain/config';
import { checkInput, deployInputSchema, InputError, type CheckedDeployInput } from '../domain/input';
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
  /** A commit's committer time, for lead time; undefined when unknown (the plan then has none). */
  commitTime?(sha: string): Promise<string | undefined>;
  verifySender(req: VerifySenderRequest): Promise<SenderCheck>;
  /** A release stage's hand-over, confirmed against the release, the tag and the registry (release.ts). */
  confirmHandover?(input: CheckedDeployInput, plan: DeployPlan): Promise<void>;
}

export function planActivities(deps: PlanDeps) {
  return {
    async resolvePlan(req: ResolvePlanRequest): Promise<DeployPlan> {
      try {
        const input = checkInput(deployInputSchema, req.input, 'deploy');
        const [tags, commit] = await Promise.all([deps.listTags(), deps.branchHead()]);
        const built = buildPlan(deps.config, input, { workflowId: req.workflowId, tags, commit });
        const committedAt = await deps.commitTime?.(built.commit);
        const plan = committedAt ? { ...built, committedAt } : built;
        if (input.release) {
          // A release's stage: its requester was verified by every stage's verifier when the release began.
          if (!deps.confirmHandover) throw new InputError('release: this worker cannot confirm a release hand-over');
          await deps.confirmHandover(input, plan);
          return { ...plan, requestedVia: input.release.requestedVia };
        }
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
