/**
 * Judging analysis measurements (runbook "Monitoring & Alerts"). No data, NaN,
 * ±Inf, an empty result and a query error are inconclusive, never a pass
 * (the argo-rollouts #4479 / #1466 class of bug). Limits are explicit: the
 * analysis fails when failed measurements exceed `failureLimit` or when
 * inconclusive runs in a row exceed `inconclusiveLimit`.
 */
import type { MetricRules } from './analysis-rules';
import type { AnalysisRun, Measurement, MeasurementOutcome } from './status';

/**
 * The metrics backends analysis can ask (config analysis.provider), declared
 * once: the config schema validates against this list and the activities'
 * factory (activities/analysis/index.ts) has one entry per name.
 */
export const METRICS_PROVIDERS = ['prometheus', 'influxdb', 'graphite', 'web'] as const;

export type MetricsProviderName = (typeof METRICS_PROVIDERS)[number];

export interface Threshold {
  max?: number;
  min?: number;
  unit?: string;
}

/** Classifies one value against its threshold. `value` is what the query returned, if anything. */
export function judgeValue(
  value: number | null | undefined,
  t: Threshold,
): { outcome: MeasurementOutcome; reason?: string } {
  if (value === null || value === undefined) return { outcome: 'inconclusive', reason: 'no data' };
  if (Number.isNaN(value)) return { outcome: 'inconclusive', reason: 'NaN (no traffic in the window?)' };
  if (!Number.isFinite(value)) return { outcome: 'inconclusive', reason: `${value > 0 ? '+' : '-'}Inf` };
  const unit = t.unit ? ` ${t.unit}` : '';
  if (t.max !== undefined && value > t.max)
    return { outcome: 'fail', reason: `${fmt(value)}${unit} > ${fmt(t.max)}${unit}` };
  if (t.min !== undefined && value < t.min)
    return { outcome: 'fail', reason: `${fmt(value)}${unit} < ${fmt(t.min)}${unit}` };
  return { outcome: 'pass' };
}

export function describeThreshold(t: Threshold): string {
  const unit = t.unit ? ` ${t.unit}` : '';
  return [t.min !== undefined ? `>= ${fmt(t.min)}${unit}` : '', t.max !== undefined ? `<= ${fmt(t.max)}${unit}` : '']
    .filter(Boolean)
    .join(' and ');
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : Number(n.toPrecision(4)).toString();
}

/**
 * The outcome of a run: any fail fails it; otherwise any inconclusive (or
 * nothing measured) makes it inconclusive. Dry-run measurements are shown,
 * never counted: a run of only those passes.
 */
export function runOutcome(measurements: readonly Measurement[]): MeasurementOutcome {
  if (measurements.length === 0) return 'inconclusive';
  const counted = measurements.filter((m) => !m.dryRun);
  if (counted.some((m) => m.outcome === 'fail')) return 'fail';
  if (counted.some((m) => m.outcome === 'inconclusive')) return 'inconclusive';
  return 'pass';
}

export interface AnalysisTally {
  failedRuns: number;
  consecutiveInconclusive: number;
}

export interface AnalysisLimits {
  failureLimit: number;
  inconclusiveLimit: number;
  /** Per-metric counting (domain/analysis-rules.ts) instead of whole runs, when the plan has it. */
  metricRules?: MetricRules;
}

export type Verdict =
  { verdict: 'continue'; tally: AnalysisTally } | { verdict: 'fail'; tally: AnalysisTally; reason: string };

/** Adds one run to the tally and says whether the analysis has now failed. */
export function tallyRun(tally: AnalysisTally, run: AnalysisRun, limits: AnalysisLimits): Verdict {
  const next: AnalysisTally = {
    failedRuns: tally.failedRuns + (run.outcome === 'fail' ? 1 : 0),
    consecutiveInconclusive: run.outcome === 'inconclusive' ? tally.consecutiveInconclusive + 1 : 0,
  };
  if (next.failedRuns > limits.failureLimit) {
    const why = run.measurements
      .filter((m) => m.outcome === 'fail')
      .map((m) => `${m.metric}[${m.track}] ${m.reason ?? ''}`.trim());
    return {
      verdict: 'fail',
      tally: next,
      reason: `analysis failed (${next.failedRuns} failed, limit ${limits.failureLimit}): ${why.join('; ')}`,
    };
  }
  if (next.consecutiveInconclusive > limits.inconclusiveLimit) {
    const why = run.measurements
      .filter((m) => m.outcome === 'inconclusive')
      .map((m) => `${m.metric}[${m.track}] ${m.reason ?? ''}`.trim());
    return {
      verdict: 'fail',
      tally: next,
      reason: `analysis inconclusive ${next.consecutiveInconclusive} times in a row (limit ${limits.inconclusiveLimit}): ${why.join('; ') || 'nothing measured'}`,
    };
  }
  return { verdict: 'continue', tally: next };
}

/**
 * One measurement for people: value, outcome, threshold and why; a dry run
 * says so; a comparison shows its verdict and evidence (a marginal verdict
 * passes, and says it was worse within what is allowed).
 */
export function measurementLine(m: Measurement): string {
  const value = m.value === null ? 'no data' : fmt(m.value);
  const dry = m.dryRun ? ' [dry run: not counted]' : '';
  const c = m.comparison;
  const evidence =
    c && c.verdict !== 'inconclusive'
      ? ` [${c.verdict}: U ${fmt(c.u ?? 0)}, p ${fmt(c.pValue ?? 1)}, p(worse at all) ${fmt(c.pWorse ?? 1)}, medians ${fmt(c.canaryMedian ?? 0)} vs ${fmt(c.stableMedian ?? 0)}, n ${c.canarySamples}/${c.stableSamples}]`
      : '';
  return `${m.metric}[${m.track}] ${value} ${m.outcome}${m.threshold ? ` (${m.threshold})` : ''}${m.reason ? `: ${m.reason}` : ''}${evidence}${dry}`;
}
