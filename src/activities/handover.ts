/**
 * What a child workflow was handed, confirmed against the worker's config
 * before it changes anything: a canary's or blue-green's plan and image, an
 * automatic rollback's plan, records, traffic targets and backup key. The
 * rules are domain/plan-confirmation.ts and domain/rollback-handover.ts; this
 * adapter adds what only the outside can say (the registry's digest of the
 * plan's version, whether the backup object exists) and turns every refusal
 * into PlanMismatch, which is never retried.
 */
import type { DeployConfig } from '../domain/config';
import { childImageCheck, planMismatches } from '../domain/plan-confirmation';
import { backupKeyProblem, checkedRecords, trafficTargetProblems } from '../domain/rollback-handover';
import { trafficService, type DeployPlan } from '../domain/plan';
import type { ConfirmPlanRequest, ConfirmRollbackRequest, PlanConfirmed, RollbackConfirmed } from './contracts';
import { fail } from './failures';

export interface HandoverDeps {
  config: DeployConfig;
  /** The registry's manifest digest of image:tag; undefined when the tag does not exist. */
  imageDigest(image: string, tag: string): Promise<string | undefined>;
  /** Whether the backup bucket holds `key` (HEAD). */
  backupExists(key: string): Promise<boolean>;
}

/** One line for the failure: what was handed, what is wrong, and what to do. */
function refused(what: string, problems: string[], plan?: DeployPlan): Error {
  const env = typeof plan?.environment === 'string' ? ` for ${plan.environment}` : '';
  return fail.PlanMismatch(
    `${what} is not what the configuration decides${env}: ${problems.join('; ')}; nothing was changed (start the deployment again with deployWorkflow)`,
  );
}

export function handoverActivities(deps: HandoverDeps) {
  const { config } = deps;

  /** The plan as the planner would make it from its own choices. */
  function confirmPlanOnly(plan: DeployPlan, what: string): void {
    if (typeof plan !== 'object' || plan === null) throw refused(what, ['no plan']);
    const problems = planMismatches(config, plan);
    if (problems.length) throw refused(what, problems, plan);
  }

  return {
    async confirmPlan(req: ConfirmPlanRequest): Promise<PlanConfirmed> {
      confirmPlanOnly(req.plan, 'the plan handed over');
      const image = childImageCheck(req.image, req.plan);
      if (!image.ok) throw refused('the image handed over', [image.problem], req.plan);
      if (image.digest) {
        // A digest names bytes, not a version: only the registry can say it is this version's build.
        const svc = trafficService(req.plan)!;
        const built = await deps.imageDigest(svc.image, req.plan.version);
        if (built !== image.digest)
          throw refused(
            'the image handed over',
            [
              built
                ? `${req.image} is not ${svc.image}:${req.plan.version} (the registry has ${built})`
                : `${svc.image}:${req.plan.version} is not in the registry`,
            ],
            req.plan,
          );
      }
      return {
        environment: req.plan.environment,
        ...(req.image ? { image: image.digest ? 'digest' : 'reference' } : {}),
      };
    },

    async confirmRollback(req: ConfirmRollbackRequest): Promise<RollbackConfirmed> {
      confirmPlanOnly(req.plan, "the rollback's plan");
      const p = req.plan;
      const checked = checkedRecords(Array.isArray(req.records) ? req.records : [], p, config.registry.previousHosts);
      const problems = [...checked.problems];
      if (!Array.isArray(req.records)) problems.push('records must be a list');
      if (req.canary) problems.push(...trafficTargetProblems(req.canary, p).map((x) => `canary target: ${x}`));
      const switches = [...(req.blueGreen ? [req.blueGreen] : []), ...(req.earlierBlueGreen ?? [])];
      if (req.earlierBlueGreen !== undefined && !Array.isArray(req.earlierBlueGreen))
        problems.push('earlierBlueGreen must be a list');
      for (const bg of Array.isArray(req.earlierBlueGreen) || !req.earlierBlueGreen ? switches : []) {
        problems.push(...trafficTargetProblems(bg?.target, p).map((x) => `blue-green target: ${x}`));
        if (bg?.back !== 'blue' && bg?.back !== 'green')
          problems.push(`blue-green colour ${JSON.stringify(bg?.back)} is neither blue nor green`);
      }
      if (req.backupKey !== undefined) {
        const keyProblem = backupKeyProblem(req.backupKey, {
          prefix: config.backup.prefix,
          database: config.database.name,
        });
        if (keyProblem) problems.push(keyProblem);
        else if (!(await deps.backupExists(req.backupKey)))
          problems.push(`backupKey ${req.backupKey} is not in s3://${config.backup.bucket}`);
      }
      if (problems.length) throw refused("the rollback's hand-over", problems, p);
      return { records: checked.records };
    },
  };
}
