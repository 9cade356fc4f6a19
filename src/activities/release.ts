/**
 * A release's plan (resolveRelease), and the check a stage's deployment makes
 * of what its release hands it: nothing a workflow receives is trusted to
 * choose images, so each stage confirms the release workflow, the tag's
 * commit and every image digest against the release repository and the
 * registry before it uses them.
 */
import type { WorkflowClient } from '@temporalio/client';
import type { DeployConfig } from '../domain/config';
import { mayApprove, type VerifyMode } from '../domain/identity';
import { approvalPolicy } from '../domain/planner';
import { checkInput, InputError, releaseInputSchema, type CheckedDeployInput } from '../domain/input';
import type { DeployPlan } from '../domain/plan';
import { planRelease, type ReleasePlan } from '../domain/release';
import { VersionError } from '../domain/version';
import type { SenderCheck, VerifySenderRequest } from './contracts';
import { fail } from './failures';
import { verifiedRequester } from './identity/requester';

/** A quarantine that refuses a release of its version (activities/quarantine.ts). */
export interface QuarantineHold {
  version: string;
  environment: string;
  workflowId: string;
  reason: string;
}

export interface ReleaseDeps {
  config: DeployConfig;
  branchHead(): Promise<string>;
  remoteTagCommit(tag: string): Promise<string | undefined>;
  imageDigest(image: string, tag: string): Promise<string | undefined>;
  verifySender(req: VerifySenderRequest): Promise<SenderCheck>;
  quarantineOf(version: string): Promise<QuarantineHold | undefined>;
  temporal?: WorkflowClient;
}

/** The one line that refuses a quarantined version, naming why, where and how to lift it. */
export function quarantinedMessage(q: QuarantineHold): string {
  return `${q.version} is quarantined: ${q.reason} (in ${q.environment}, by workflow ${q.workflowId}); an approver may lift it with deployctl quarantine lift ${q.version} --by <name> --reason <text>`;
}

export function releaseActivities(deps: ReleaseDeps) {
  return {
    async resolveRelease(req: { workflowId: string; input: unknown }): Promise<ReleasePlan> {
      try {
        const input = checkInput(releaseInputSchema, req.input, 'release');
        const held = await deps.quarantineOf(input.version);
        if (held) throw new InputError(quarantinedMessage(held));
        // A version tagged before (a release retried after a lift) is the tagged commit; otherwise the branch head.
        const commit = (await deps.remoteTagCommit(`v${input.version}`)) ?? (await deps.branchHead());
        const draft = planRelease(deps.config, input, { workflowId: req.workflowId, commit });
        // The same proof is checked by every stage's verifier now, while it is fresh: a stage hours later relies on this.
        const stages = [];
        let verified: { by: string; via: VerifyMode } | undefined;
        for (const stage of draft.stages) {
          const r = await verifiedRequester(
            {
              kind: 'release',
              environment: stage.environment,
              workflowId: req.workflowId,
              policy: stage.approvals,
              input,
            },
            (x) => deps.verifySender(x),
          );
          if (r.requestedVia !== 'none') {
            if (verified && verified.by !== r.requestedBy)
              throw new InputError(
                `requestProof: ${stage.environment} knows the requester as ${r.requestedBy}, another stage as ${verified.by}`,
              );
            verified = { by: r.requestedBy, via: r.requestedVia };
          }
          stages.push({ ...stage, requestedVia: r.requestedVia });
        }
        return { ...draft, stages, requestedBy: verified?.by ?? input.requestedBy ?? 'unknown' };
      } catch (err) {
        if (err instanceof InputError || err instanceof VersionError) throw fail.InvalidInput(err.message);
        throw err;
      }
    },
  };
}

/**
 * A stage's hand-over from its release, confirmed: the release workflow runs,
 * the tag points at the handed commit, and each image is the configured
 * image pinned by the registry's digest of the version's tag. Throws
 * InputError naming what does not hold.
 */
export async function confirmStageHandover(
  deps: Pick<ReleaseDeps, 'temporal' | 'remoteTagCommit' | 'imageDigest'>,
  input: CheckedDeployInput,
  plan: DeployPlan,
): Promise<void> {
  const handed = input.release;
  if (!handed) return;
  if (!deps.temporal) throw new InputError('release: this worker has no Temporal client to confirm the release');
  let type: string;
  let running: boolean;
  try {
    const d = await deps.temporal.getHandle(handed.workflowId).describe();
    type = d.type;
    running = d.status.name === 'RUNNING';
  } catch {
    throw new InputError(`release: ${handed.workflowId} is not a workflow this server knows`);
  }
  if (type !== 'releaseWorkflow' || !running)
    throw new InputError(
      `release: ${handed.workflowId} is not a running release (${type}, ${running ? 'running' : 'closed'})`,
    );
  const tagged = await deps.remoteTagCommit(plan.tag);
  if (tagged !== handed.commit)
    throw new InputError(
      `release: ${plan.tag} points at ${tagged ?? 'nothing'}, not the handed commit ${handed.commit}`,
    );
  const extra = Object.keys(handed.images).filter((n) => !plan.services.some((s) => s.name === n));
  if (extra.length) throw new InputError(`release: images for services not deployed here: ${extra.join(', ')}`);
  for (const s of plan.services) {
    const digest = await deps.imageDigest(s.image, plan.version);
    const expected = digest ? `${plan.registry}/${s.image}@${digest}` : undefined;
    const image = handed.images[s.name];
    if (!expected || image !== expected)
      throw new InputError(
        `release: the image of ${s.name} is ${image ?? 'missing'}, but ${plan.registry}/${s.image}:${plan.version} is ${digest ?? 'not in the registry'}`,
      );
  }
}

export interface LiftDeps {
  config: DeployConfig;
  verifySender(req: VerifySenderRequest): Promise<SenderCheck>;
  quarantineOf(version: string): Promise<QuarantineHold | undefined>;
  lift(req: { version: string; by: string; via: VerifyMode; reason: string; workflowId: string }): Promise<unknown[]>;
}

/**
 * `deployctl quarantine lift`: an approver of the environment that
 * quarantined the version lifts it, verified as that environment verifies
 * its approvers; the lift is recorded with who, how and why.
 */
export async function approveQuarantineLift(
  deps: LiftDeps,
  req: { workflowId: string; version: string; by: string; reason: string; proof?: unknown },
): Promise<unknown[]> {
  const held = await deps.quarantineOf(req.version);
  if (!held) throw fail.InvalidInput(`${req.version} is not quarantined: nothing to lift`);
  const env = deps.config.environments[held.environment];
  if (!env)
    throw fail.InvalidInput(`${req.version} was quarantined in ${held.environment}, which the config no longer has`);
  const policy = approvalPolicy(env.approvals);
  let by = req.by;
  let via: VerifyMode = 'none';
  let groups: string[] = [];
  if (policy.verify !== 'none') {
    const r = await deps.verifySender({
      environment: held.environment,
      message: { workflowId: req.workflowId, signal: 'lift', by: req.by, reason: req.reason },
      proof: req.proof,
    });
    if (!r.ok) throw fail.InvalidInput(`not verified: ${r.reason}`);
    ({ identity: by, via, groups } = { ...r.sender, groups: r.sender.groups });
  }
  if (!mayApprove(policy, by, groups))
    throw fail.InvalidInput(`${by} is not an approver for ${held.environment}, where ${req.version} was quarantined`);
  return deps.lift({ version: req.version, by, via, reason: req.reason, workflowId: req.workflowId });
}
