/**
 * The product's metrics as the workflows emit them, through the SDK's
 * workflow metric meter: the worker's runtime exports them on its /metrics
 * (src/worker-metrics.ts) beside the SDK's own. The SDK drops them while a
 * workflow replays, so a deployment counts once however often a worker
 * rebuilds it; emitting one adds no command, so no history changes.
 *
 * A gauge is per worker process: after a workflow moves to another worker
 * (a crash, a cache eviction), the old process keeps its last value until it
 * stops. Dashboards read gauges with max by (environment), see
 * deploy/grafana/deploy-pipelines.json.
 */
import { metricMeter } from '@temporalio/workflow';
import { METRIC, METRIC_HELP, stepKind, type MetricName } from '../../domain/metric-names';
import type { AnalysisRun, DeploymentStatus, Phase } from '../../domain/status';

type Labels = Record<string, string>;

const counter = (name: MetricName) => metricMeter.createCounter(name, undefined, METRIC_HELP[name]);
const histogram = (name: MetricName) => metricMeter.createHistogram(name, 'float', 's', METRIC_HELP[name]);
const gauge = (name: MetricName) => metricMeter.createGauge(name, 'float', undefined, METRIC_HELP[name]);

const add = (name: MetricName, labels: Labels, n = 1) => counter(name).add(n, labels);
const observe = (name: MetricName, seconds: number, labels: Labels) => {
  if (Number.isFinite(seconds) && seconds >= 0) histogram(name).record(seconds, labels);
};
const set = (name: MetricName, value: number, labels: Labels) => gauge(name).set(value, labels);

/** Seconds between two ISO times (workflow time); NaN when either is missing. */
export function secondsBetween(from: string | undefined, to: string | undefined): number {
  if (!from || !to) return NaN;
  return (Date.parse(to) - Date.parse(from)) / 1000;
}

export function stepEnded(workflow: DeploymentStatus['workflow'], name: string, state: string, seconds: number): void {
  observe(METRIC.stepDuration, seconds, { workflow, step: stepKind(name), state });
}

export interface PhaseLabels {
  workflow: string;
  environment: string;
  phase: Phase;
}

/**
 * The workflow is in a new phase: the labels it last set to 1 drop to 0 (a
 * release moves from one environment to the next), its current phase's go
 * to 1 unless final. Returns the labels now at 1. `now` undefined: not yet a
 * labelled workflow (its environment is unconfirmed).
 */
export function phaseChanged(
  before: PhaseLabels | undefined,
  now: Pick<DeploymentStatus, 'workflow' | 'environment' | 'phase'> | undefined,
): PhaseLabels | undefined {
  if (before) set(METRIC.phase, 0, { ...before });
  if (!now || FINAL.includes(now.phase)) return undefined;
  const labels: PhaseLabels = { workflow: now.workflow, environment: now.environment, phase: now.phase };
  set(METRIC.phase, 1, { ...labels });
  return labels;
}

const FINAL: readonly Phase[] = ['succeeded', 'failed', 'rolled-back', 'aborted', 'planned'];

export function deploymentStarted(environment: string, strategy: string): void {
  add(METRIC.deploymentsStarted, { environment, strategy });
}

export function deploymentRefused(environment: string, reason: string): void {
  add(METRIC.deploymentsRefused, { environment, reason });
}

/** `rolloutBegan`: a workload changed (what makes a failure a change failure in the DORA figures). */
export function deploymentFinished(status: DeploymentStatus, outcome: string, rolloutBegan: boolean): void {
  const labels = { environment: status.environment, strategy: status.strategy ?? 'unknown' };
  add(METRIC.deploymentsFinished, { ...labels, outcome, rollout: rolloutBegan ? 'began' : 'not-began' });
  observe(METRIC.deploymentDuration, secondsBetween(status.startedAt, status.endedAt), { ...labels, outcome });
  const tl = status.timeline;
  if (outcome === 'succeeded') observe(METRIC.leadTime, secondsBetween(tl?.committedAt, tl?.liveAt), labels);
}

export function canaryWeight(environment: string, weight: number, running: boolean): void {
  set(METRIC.canaryWeight, running ? weight : 0, { environment });
  set(METRIC.canaryRunning, running ? 1 : 0, { environment });
}

export function analysisRan(environment: string, run: AnalysisRun): void {
  add(METRIC.analysisRuns, { environment, outcome: run.outcome });
  for (const m of run.measurements)
    add(METRIC.analysisMeasurements, { environment, metric: m.metric, outcome: m.outcome });
}

export function approved(environment: string, gate: string, waitedSeconds: number): void {
  // Gate ids are bounded by the config: traffic-<weight>, database, the clusters' names.
  add(METRIC.approvals, { environment, gate });
  observe(METRIC.approvalWait, waitedSeconds, { environment });
}

export function rolledBack(
  environment: string,
  kind: 'automatic' | 'manual',
  outcome: string,
  toStableSeconds: number,
): void {
  add(METRIC.rollbacks, { environment, kind, outcome });
  observe(METRIC.rollbackDuration, toStableSeconds, { environment, kind });
}

export function freezeChanged(environment: string, action: 'freeze' | 'unfreeze' | 'refused'): void {
  add(METRIC.freezes, { environment, action });
  if (action !== 'refused') set(METRIC.frozen, action === 'freeze' ? 1 : 0, { environment });
}
