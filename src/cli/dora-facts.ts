/**
 * A deployment's recorded result as the DORA figures read it (domain/dora.ts).
 * Its timeline when it has one; deployments recorded before the timeline
 * existed have only their steps, and the fallbacks below read the same
 * milestones from those (domain/dora.ts DEFINITIONS says which). Pure.
 */
import type { DeploymentFact } from '../domain/dora';
import type { DeploymentStatus, StepRecord } from '../domain/status';
import type { DeployResult } from '../workflows/deploy';

/**
 * The steps that run once the rollout has begun (workflows/deploy-rollout.ts
 * rollOut, deploy-steps.ts shiftTraffic), with or without a wave or cluster
 * label: the first to start is when deploy.ts set `rolloutBegun`.
 */
const ROLLOUT_STEP = /^(configuration snapshots|update images|wait for rollout|canary|blue-green)( \(|$)/;

const time = (iso: string | undefined) => (iso === undefined ? NaN : Date.parse(iso));

function sorted(times: (string | undefined)[]): string[] {
  return times.filter((t): t is string => t !== undefined && !Number.isNaN(time(t))).sort((a, b) => time(a) - time(b));
}
const earliest = (times: (string | undefined)[]) => sorted(times)[0];
const latest = (times: (string | undefined)[]) => sorted(times).at(-1);

function rolloutStartFromSteps(steps: StepRecord[]): string | undefined {
  return earliest(steps.filter((s) => ROLLOUT_STEP.test(s.name)).map((s) => s.startedAt));
}

/** The first failed step, abort or the rollback's start at or after the rollout began. */
function failureFromSteps(s: DeploymentStatus, began: string): string | undefined {
  const after = (t: string | undefined) => (t !== undefined && time(t) >= time(began) ? t : undefined);
  return earliest([
    ...s.steps.filter((x) => x.state === 'failed').map((x) => after(x.endedAt)),
    ...s.aborts.map((a) => after(a.at)),
    after(s.steps.find((x) => x.name === 'rollback')?.startedAt),
  ]);
}

/** A successful rollback step's end: workloads back, and any database decision taken. */
function stableFromSteps(s: DeploymentStatus): string | undefined {
  const rollback = s.steps.find((x) => x.name === 'rollback' && x.state === 'succeeded');
  return rollback?.endedAt;
}

/** The fact of one deployment; undefined for what is not a deployment (refused, a dry run). */
export function factOf(result: DeployResult): DeploymentFact | undefined {
  if (result.refused || result.outcome === 'planned') return undefined;
  const s = result.status;
  const t = s.timeline;
  const endedAt = s.endedAt ?? latest(s.steps.map((x) => x.endedAt)) ?? s.startedAt;
  const outcome = result.outcome;
  const rolloutStartedAt = t?.rolloutStartedAt ?? rolloutStartFromSteps(s.steps);
  const failedAt =
    t?.failedAt ?? (outcome !== 'succeeded' && rolloutStartedAt ? failureFromSteps(s, rolloutStartedAt) : undefined);
  const stableAt = t?.stableAt ?? (outcome === 'rolled-back' || outcome === 'aborted' ? stableFromSteps(s) : undefined);
  const liveAt = t?.liveAt ?? (outcome === 'succeeded' ? endedAt : undefined);
  return {
    workflowId: result.workflowId,
    environment: result.environment,
    version: result.version,
    outcome,
    startedAt: s.startedAt,
    endedAt,
    ...(rolloutStartedAt ? { rolloutStartedAt } : {}),
    ...(t?.committedAt ? { committedAt: t.committedAt } : {}),
    ...(liveAt ? { liveAt } : {}),
    ...(failedAt && outcome !== 'succeeded' ? { failedAt } : {}),
    ...(stableAt && outcome !== 'succeeded' ? { stableAt } : {}),
    ...(t ? {} : { fromSteps: true }),
  };
}
