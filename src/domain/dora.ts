/**
 * The four DORA figures (deployment frequency, lead time for changes, change
 * failure rate, time to restore) over the deployments of a window, per
 * environment and overall, each with the counts it stands on. Pure: the
 * caller (deployctl stats) reads the deployments' results from Temporal and
 * hands them over as facts; nothing here reads a clock.
 *
 * A figure that has nothing to stand on is null, never 0: "no deployments"
 * and "no failures" are different answers. What could not be measured is
 * counted, not dropped, so a figure never looks better for missing data.
 */
import { median, quantile } from 'simple-statistics';

/** How a deployment that is one ended (refused deployments and dry runs are not deployments). */
export type FactOutcome = 'succeeded' | 'rolled-back' | 'aborted' | 'failed';

/** One deployment's milestones (ISO times), from its recorded result. */
export interface DeploymentFact {
  workflowId: string;
  environment: string;
  version: string;
  outcome: FactOutcome;
  startedAt: string;
  endedAt: string;
  /** The rollout began: absent when it never did (a failure before it is no change failure). */
  rolloutStartedAt?: string;
  /** The release commit's committer time. */
  committedAt?: string;
  /** A success: the version went live. */
  liveAt?: string;
  /** The first failure or abort once the rollout had begun. */
  failedAt?: string;
  /** After such a failure: workloads and traffic back on the previous version. */
  stableAt?: string;
  /** The deployment recorded no timeline: its times were read from its steps (cli/dora-facts.ts). */
  fromSteps?: boolean;
}

/** [since, until): half-open, so that adjacent windows never count a deployment twice. */
export interface Window {
  since: string;
  until: string;
}

/** Median and 90th percentile (linear interpolation) of what was measured; null when nothing was. */
export interface Spread {
  medianMs: number | null;
  p90Ms: number | null;
}

export interface DeploymentFrequency {
  successes: number;
  perDay: number;
  perWeek: number;
  band: Band;
}

export type Band = 'none' | 'daily or more' | 'weekly' | 'monthly' | 'less than monthly';

export interface LeadTime extends Spread {
  /** Successes live in the window with a commit time and a live time. */
  measured: number;
  /** Successes live in the window without a commit time (or with a commit time after going live). */
  missing: number;
}

export interface ChangeFailureRate {
  /** Deployments whose rollout began in the window. */
  began: number;
  failures: { rolledBack: number; aborted: number; failed: number; total: number };
  /** failures.total / began; null when none began. */
  rate: number | null;
  /** Ended without success before their rollout began (not change failures), ended in the window. */
  failedBeforeRollout: number;
}

export interface OpenFailure {
  workflowId: string;
  failedAt: string;
  /** From the failure to the end of the window: how long it has not been restored. */
  ageMs: number;
}

export interface Restore extends Spread {
  restored: number;
  notRestored: number;
  /** Failures whose failure or restore time was not recorded. */
  unmeasured: number;
  /** The longest-open failure that is not restored. */
  oldestOpen?: OpenFailure;
}

export interface TimeToRestore {
  /** The change failures of the window (those counted by the change failure rate). */
  failures: number;
  /** Failure → workloads and traffic back on the previous version. */
  toStable: Restore;
  /** Failure → the next successful deployment in the same environment went live. */
  toNextSuccess: Restore;
}

export interface Figures {
  /** Facts of this scope (whatever their times). */
  deployments: number;
  /** Facts whose times were read from their steps (no timeline). */
  fromSteps: number;
  deploymentFrequency: DeploymentFrequency;
  leadTime: LeadTime;
  changeFailureRate: ChangeFailureRate;
  timeToRestore: TimeToRestore;
}

export interface DoraReport {
  window: Window & { days: number };
  overall: Figures;
  environments: Record<string, Figures>;
  definitions: string[];
}

const DAY_MS = 86_400_000;

/** One line per figure: exactly what compute() does, printed by deployctl stats and in docs/operations.md. */
export const DEFINITIONS: readonly string[] = [
  'Window: [since, until); every time is the workflow time the deployment recorded. Refused deployments, dry runs and running ones are not counted.',
  'Deployment frequency: successful deployments that went live in the window (liveAt, else endedAt), per day and per week; band by that rate: at least 1/day daily or more, 1/week weekly, 1/30 days monthly, else less than monthly.',
  'Lead time for changes: committedAt (committer time of the release commit) → liveAt, over successes live in the window that have both; median and p90; successes without a commit time are counted as missing.',
  'Change failure rate: of the deployments whose rollout began in the window (rolloutStartedAt; a success without one: startedAt), those that ended rolled back, aborted or failed; failures before the rollout began are not change failures; none began → no rate.',
  'Time to restore, to stable: for each change failure, failedAt → stableAt (workloads and traffic back); a failed deployment without stableAt is not restored (its age counted to the end of the window); a rollback or abort without one is unmeasured.',
  'Time to restore, to the next success: for each change failure, failedAt → liveAt of the next successful deployment in the same environment (by the end of the window); none yet → not restored, with its age.',
  'Older records without a timeline: rolloutStartedAt is the start of the first rollout step (configuration snapshots, update images, wait for rollout, canary, blue-green), liveAt of a success its endedAt, failedAt the first failed step, abort or rollback start after the rollout began, stableAt the end of a successful rollback step (which includes any wait for the database decision); committedAt has no fallback.',
];

const ms = (iso: string | undefined): number | undefined => {
  if (iso === undefined) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
};

const within = (t: number | undefined, since: number, until: number): t is number =>
  t !== undefined && t >= since && t < until;

function spread(values: number[]): Spread {
  return values.length ? { medianMs: median(values), p90Ms: quantile(values, 0.9) } : { medianMs: null, p90Ms: null };
}

/** When a success went live: liveAt, else when it ended (a success ends once live). */
const liveOf = (f: DeploymentFact) => (f.outcome === 'succeeded' ? (ms(f.liveAt) ?? ms(f.endedAt)) : undefined);

/** When the rollout began; a success necessarily rolled out, so without a record it began no later than its start. */
const beganOf = (f: DeploymentFact) =>
  ms(f.rolloutStartedAt) ?? (f.outcome === 'succeeded' ? ms(f.startedAt) : undefined);

export function bandOf(perDay: number): Band {
  if (perDay <= 0) return 'none';
  if (perDay >= 1) return 'daily or more';
  if (perDay * 7 >= 1) return 'weekly';
  if (perDay * 30 >= 1) return 'monthly';
  return 'less than monthly';
}

function frequency(facts: DeploymentFact[], since: number, until: number): DeploymentFrequency {
  const successes = facts.filter((f) => within(liveOf(f), since, until)).length;
  const days = (until - since) / DAY_MS;
  const perDay = days > 0 ? successes / days : 0;
  return { successes, perDay, perWeek: perDay * 7, band: bandOf(perDay) };
}

function leadTime(facts: DeploymentFact[], since: number, until: number): LeadTime {
  const live = facts.filter((f) => within(liveOf(f), since, until));
  const values: number[] = [];
  for (const f of live) {
    const committed = ms(f.committedAt);
    const d = committed === undefined ? undefined : liveOf(f)! - committed;
    // A commit time after going live is a wrong clock, not a lead time: missing.
    if (d !== undefined && d >= 0) values.push(d);
  }
  return { measured: values.length, missing: live.length - values.length, ...spread(values) };
}

const isFailure = (f: DeploymentFact) => f.outcome !== 'succeeded';

/** Change failures: rollout began in the window, then not a success. */
function changeFailures(facts: DeploymentFact[], since: number, until: number): DeploymentFact[] {
  return facts.filter((f) => isFailure(f) && within(beganOf(f), since, until));
}

function changeFailureRate(facts: DeploymentFact[], since: number, until: number): ChangeFailureRate {
  const began = facts.filter((f) => within(beganOf(f), since, until)).length;
  const failed = changeFailures(facts, since, until);
  const count = (o: FactOutcome) => failed.filter((f) => f.outcome === o).length;
  const failedBeforeRollout = facts.filter(
    (f) => isFailure(f) && beganOf(f) === undefined && within(ms(f.endedAt), since, until),
  ).length;
  return {
    began,
    failures: {
      rolledBack: count('rolled-back'),
      aborted: count('aborted'),
      failed: count('failed'),
      total: failed.length,
    },
    rate: began ? failed.length / began : null,
    failedBeforeRollout,
  };
}

type Restored = { kind: 'restored'; ms: number } | { kind: 'open'; open: OpenFailure } | { kind: 'unmeasured' };

function restore(outcomes: Restored[]): Restore {
  const values = outcomes.flatMap((o) => (o.kind === 'restored' ? [o.ms] : []));
  const open = outcomes.flatMap((o) => (o.kind === 'open' ? [o.open] : []));
  const oldestOpen = open.reduce<OpenFailure | undefined>((a, b) => (a && a.ageMs >= b.ageMs ? a : b), undefined);
  return {
    restored: values.length,
    notRestored: open.length,
    unmeasured: outcomes.filter((o) => o.kind === 'unmeasured').length,
    ...spread(values),
    ...(oldestOpen ? { oldestOpen } : {}),
  };
}

/**
 * `all`: every fact given (any environment, any time), where the next success
 * after a failure is looked for; a restore after the window's end has not
 * happened yet as far as the window is concerned.
 */
function timeToRestore(facts: DeploymentFact[], all: DeploymentFact[], since: number, until: number): TimeToRestore {
  const failures = changeFailures(facts, since, until);
  const open = (f: DeploymentFact, failed: number): Restored => ({
    kind: 'open',
    open: { workflowId: f.workflowId, failedAt: new Date(failed).toISOString(), ageMs: Math.max(0, until - failed) },
  });
  const toStable = failures.map((f): Restored => {
    const failed = ms(f.failedAt);
    const stable = ms(f.stableAt);
    if (failed === undefined) return { kind: 'unmeasured' };
    if (stable !== undefined && stable < until) return { kind: 'restored', ms: Math.max(0, stable - failed) };
    // A failed deployment's rollback did not bring the previous version back; a rolled-back one did, unrecorded.
    return f.outcome === 'failed' || stable !== undefined ? open(f, failed) : { kind: 'unmeasured' };
  });
  const toNextSuccess = failures.map((f): Restored => {
    const failed = ms(f.failedAt);
    if (failed === undefined) return { kind: 'unmeasured' };
    const next = all
      .filter((s) => s.environment === f.environment)
      .map(liveOf)
      .filter((t): t is number => t !== undefined && t > failed && t < until)
      .sort((a, b) => a - b)[0];
    return next === undefined ? open(f, failed) : { kind: 'restored', ms: next - failed };
  });
  return { failures: failures.length, toStable: restore(toStable), toNextSuccess: restore(toNextSuccess) };
}

function figures(facts: DeploymentFact[], all: DeploymentFact[], since: number, until: number): Figures {
  return {
    deployments: facts.length,
    fromSteps: facts.filter((f) => f.fromSteps).length,
    deploymentFrequency: frequency(facts, since, until),
    leadTime: leadTime(facts, since, until),
    changeFailureRate: changeFailureRate(facts, since, until),
    timeToRestore: timeToRestore(facts, all, since, until),
  };
}

/** The four figures over the window, overall and per environment (in name order). */
export function computeDora(facts: DeploymentFact[], window: Window): DoraReport {
  const since = ms(window.since);
  const until = ms(window.until);
  if (since === undefined || until === undefined || until < since)
    throw new RangeError(`invalid window ${window.since} .. ${window.until}`);
  const environments: Record<string, Figures> = {};
  for (const env of [...new Set(facts.map((f) => f.environment))].sort())
    environments[env] = figures(
      facts.filter((f) => f.environment === env),
      facts,
      since,
      until,
    );
  return {
    window: { ...window, days: (until - since) / DAY_MS },
    overall: figures(facts, facts, since, until),
    environments,
    definitions: [...DEFINITIONS],
  };
}
