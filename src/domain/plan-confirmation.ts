/**
 * Whether a plan handed to a child workflow (canary, blue-green, an automatic
 * rollback) is what the worker's configuration decides. One rule decides: the
 * planner rebuilds the plan from the plan's own choices (version,
 * environment, strategy, services, the settings input may set), and every
 * field but the facts of one deployment must come out the same. Anyone who
 * can start a workflow can type a plan; only the planner can make one.
 */
import type { DeployConfig } from './config';
import { differences } from './differences';
import type { CheckedDeployInput } from './input';
import { InputError } from './input';
import { trafficService, type DeployPlan } from './plan';
import { buildPlan } from './planner';
import { VersionError } from './version';

/**
 * Plan fields that record one deployment (which run, which commit, the tag
 * below it, a dry run, who asked), not what configuration decides.
 */
export const PLAN_FACTS: readonly string[] = [
  'workflowId',
  'commit',
  // The commit's time, read from git with the commit: not configuration.
  'committedAt',
  'previousVersion',
  'dryRun',
  'requestedBy',
  'requestedVia',
  // Which release a stage belongs to and the digests it was handed: confirmed by the stage's resolvePlan against the
  // release, the tag and the registry; a child never acts on it (a traffic image is confirmed on its own).
  'release',
  // Which of the plan's clusters a child acts in: the activities route it only to a cluster the config names.
  'cluster',
];

/**
 * The input that makes the planner choose what `plan` chose. Built as the
 * checked input the planner takes (never parsed again), so configured values
 * outside the input's bounds pass through unchanged: whether a choice may
 * differ from the configuration is the planner's to say, not this function's.
 */
export function planChoices(plan: DeployPlan): CheckedDeployInput {
  return {
    version: plan.version,
    environment: plan.environment,
    strategy: plan.strategy,
    services: plan.services.map((s) => s.name),
    backup: plan.backup,
    migrate: plan.migrate,
    allowImageOverwrite: plan.allowImageOverwrite,
    canary: {
      steps: plan.canary.steps,
      soak: plan.canary.soakMs,
      analysisInterval: plan.canary.analysisIntervalMs,
      approval: plan.canary.approval,
      approvalTimeout: plan.canary.approvalTimeoutMs,
    },
    blueGreen: {
      monitor: plan.blueGreen.monitorMs,
      approval: plan.blueGreen.approval,
      approvalTimeout: plan.blueGreen.approvalTimeoutMs,
    },
  };
}

/**
 * Why `plan` is not what `config` decides for its own choices, one line per
 * field (empty: confirmed). A plan whose choices the planner refuses (an
 * unknown environment or service, a loosening the environment forbids) is
 * one line saying why.
 */
export function planMismatches(config: DeployConfig, plan: DeployPlan): string[] {
  let rebuilt: DeployPlan;
  try {
    rebuilt = buildPlan(config, planChoices(plan), { workflowId: plan.workflowId, commit: plan.commit, tags: [] });
  } catch (err) {
    if (err instanceof InputError || err instanceof VersionError) return [err.message];
    // A plan that is not even plan-shaped (fields missing or of another type).
    return [`not a plan: ${(err as Error).message}`];
  }
  return differences(plan, rebuilt, '', PLAN_FACTS);
}

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/**
 * The image a child deploys must be the traffic service's: its tag reference
 * in the plan, or that image pinned by digest (what the build step hands
 * over). `digest` is returned for the caller to confirm with the registry.
 */
export function childImageCheck(
  image: string | undefined,
  plan: DeployPlan,
): { ok: true; digest?: string } | { ok: false; problem: string } {
  if (image === undefined) return { ok: true };
  const svc = trafficService(plan);
  if (!svc) return { ok: false, problem: `the plan does not deploy the traffic service ${plan.traffic.service}` };
  if (image === svc.reference) return { ok: true };
  const pinned = `${plan.registry}/${svc.image}@`;
  if (image.startsWith(pinned) && DIGEST_RE.test(image.slice(pinned.length)))
    return { ok: true, digest: image.slice(pinned.length) };
  return {
    ok: false,
    problem: `image ${image} is not ${svc.name}'s: expected ${svc.reference} or ${pinned}sha256:<digest>`,
  };
}
