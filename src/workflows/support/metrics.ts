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

/** The workflow left one phase for another: the gauge of the one it left drops to 0. */
export function phaseChanged(status: DeploymentStatus, from: Phase, to: Phase): void {
  const labels = { workflow: status.workflow, environment: status.environment };
  set(METRIC.phase, 0, { ...labels, phase: from });
  // A final phase is not "current": nothing runs any more.
  set(METRIC.phase, ['succeeded', 'failed', 'rolled-back', 'aborted', 'planned'].includes(to) ? 0 : 1, {
    ...labels,
    phase: to,
  });
}

export function deploymentStarted(environment: string, strategy: string): void {
  add(METRIC.deploymentsStarted, { environment, strategy });
}

export function deploymentRefused(environment: string, reason: string): void {
  add(METRIC.deploymentsRefused, { environment, reason });
}

export function deploymentFinished(status: DeploymentStatus, outcome: string): void {
  const labels = { environment: status.environment, strategy: status.strategy ?? 'unknown' };
  add(METRIC.deploymentsFinished, { ...labels, outcome });
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
