/**
 * Per-metric analysis counting, as Argo Rollouts counts an AnalysisRun's
 * metrics: each metric has its own failure, inconclusive and consecutive
 * error limits, may be measured only every `interval` and at most `count`
 * times, and a dry-run metric is measured and shown but never counted.
 * Used when any metric sets one of these rules (or is a compare metric);
 * otherwise the analysis keeps counting whole runs (domain/analysis.ts
 * tallyRun), so existing configs and running workflows judge as before. Pure.
 */
import type { AnalysisTally } from './analysis';
import type { AnalysisRun, Measurement } from './status';

/** One metric's limits, fixed in the plan. */
export interface MetricRule {
  failureLimit: number;
  inconclusiveLimit: number;
  consecutiveErrorLimit: number;
  count?: number;
  intervalMs?: number;
  dryRun: boolean;
  /** A compare metric: measured only where both tracks run (a canary), never on stable alone. */
  compare?: true;
}

export type MetricRules = Record<string, MetricRule>;

/** What one metric has shown so far in this analysis. */
export interface MetricTally {
  measured: number;
  failed: number;
  inconclusive: number;
  consecutiveErrors: number;
  /** Workflow time (ms) of its last measurement. */
  lastAtMs?: number;
}

export type MetricTallies = Record<string, MetricTally>;

/** Argo's default: a metric whose queries fail five times in a row fails the analysis. */
export const DEFAULT_CONSECUTIVE_ERROR_LIMIT = 4;

interface MetricFields {
  name: string;
  kind?: 'threshold' | 'compare';
  failureLimit?: number;
  inconclusiveLimit?: number;
  consecutiveErrorLimit?: number;
  count?: number;
  interval?: number;
  dryRun?: boolean;
}

/**
 * The per-metric rules for the plan, or undefined when no metric asks for
 * any (the analysis then counts whole runs, as it always has).
 */
export function metricRulesOf(
  metrics: readonly MetricFields[],
  defaults: { failureLimit: number; inconclusiveLimit: number },
): MetricRules | undefined {
  const perMetric = metrics.some(
    (m) =>
      m.kind === 'compare' ||
      m.failureLimit !== undefined ||
      m.inconclusiveLimit !== undefined ||
      m.consecutiveErrorLimit !== undefined ||
      m.count !== undefined ||
      m.interval !== undefined ||
      m.dryRun !== undefined,
  );
  if (!perMetric) return undefined;
  return Object.fromEntries(
    metrics.map((m) => [
      m.name,
      {
        failureLimit: m.failureLimit ?? defaults.failureLimit,
        inconclusiveLimit: m.inconclusiveLimit ?? defaults.inconclusiveLimit,
        consecutiveErrorLimit: m.consecutiveErrorLimit ?? DEFAULT_CONSECUTIVE_ERROR_LIMIT,
        ...(m.count !== undefined ? { count: m.count } : {}),
        ...(m.interval !== undefined ? { intervalMs: m.interval } : {}),
        dryRun: m.dryRun ?? false,
        ...(m.kind === 'compare' ? { compare: true as const } : {}),
      },
    ]),
  );
}

/** How early a metric's interval may be taken as passed (analysis runs drift by their activities' time). */
const INTERVAL_SLACK_MS = 1000;

const EMPTY: MetricTally = { measured: 0, failed: 0, inconclusive: 0, consecutiveErrors: 0 };

/** A metric's tally so far; own properties only, so a metric named like an Object method starts empty too. */
function tallyOf(tallies: MetricTallies, name: string): MetricTally {
  return Object.hasOwn(tallies, name) ? tallies[name] : EMPTY;
}

/** The metrics that can be measured on these tracks: a compare metric needs both. */
export function applicableMetrics(rules: MetricRules, tracks: readonly string[]): string[] {
  const both = tracks.includes('canary') && tracks.includes('stable');
  return Object.entries(rules)
    .filter(([, rule]) => both || !rule.compare)
    .map(([name]) => name);
}

/**
 * The metrics to measure now on these tracks: applicable, not yet measured
 * `count` times, and `interval` passed since the last time.
 */
export function dueMetrics(
  rules: MetricRules,
  tallies: MetricTallies,
  nowMs: number,
  tracks: readonly string[],
): string[] {
  return applicableMetrics(rules, tracks)
    .map((name): [string, MetricRule] => [name, rules[name]])
    .filter(([name, rule]) => {
      const t = tallyOf(tallies, name);
      if (rule.count !== undefined && t.measured >= rule.count) return false;
      if (rule.intervalMs === undefined || t.lastAtMs === undefined) return true;
      // Runs drift by the time their activities take: a run a moment short of the interval is still on time.
      return nowMs - t.lastAtMs >= rule.intervalMs - Math.min(INTERVAL_SLACK_MS, rule.intervalMs / 10);
    })
    .map(([name]) => name);
}

/** The metric a measurement counts for: its own name, or the base of a `<name> vs stable` comparison. */
function ruleOf(m: Measurement, rules: MetricRules): string | undefined {
  if (Object.hasOwn(rules, m.metric)) return m.metric;
  const base = m.metric.replace(/ vs stable$/, '');
  return Object.hasOwn(rules, base) ? base : undefined;
}

type Outcome = 'pass' | 'fail' | 'inconclusive' | 'error';

/** A metric's outcome in one run: any failed measurement fails it; then a query error; then inconclusive. */
function outcomeOf(ms: Measurement[]): Outcome {
  if (ms.some((m) => m.outcome === 'fail')) return 'fail';
  if (ms.some((m) => m.outcome === 'inconclusive' && m.error)) return 'error';
  if (ms.some((m) => m.outcome === 'inconclusive')) return 'inconclusive';
  return 'pass';
}

export type MetricVerdict =
  | { verdict: 'continue'; tallies: MetricTallies; summary: AnalysisTally }
  | { verdict: 'fail'; tallies: MetricTallies; summary: AnalysisTally; reason: string };

/**
 * Adds one run's measurements to each metric's tally and says whether a
 * metric has now failed the analysis. `asked`: the metrics the run was asked
 * for; one the run did not measure is inconclusive (nothing measured is never
 * a pass). A dry-run metric (by the plan's rules) is counted as measured, for
 * its count and interval, but its outcomes never are.
 */
export function tallyByMetric(
  tallies: MetricTallies,
  run: AnalysisRun,
  rules: MetricRules,
  nowMs: number,
  asked: readonly string[],
): MetricVerdict {
  const next: MetricTallies = { ...tallies };
  const byMetric = new Map<string, Measurement[]>(asked.filter((n) => Object.hasOwn(rules, n)).map((n) => [n, []]));
  for (const m of run.measurements) {
    const name = ruleOf(m, rules);
    if (name === undefined) continue;
    byMetric.set(name, [...(byMetric.get(name) ?? []), m]);
  }
  const reasons: string[] = [];
  for (const [name, measured] of byMetric) {
    const rule = rules[name];
    const t = { ...tallyOf(next, name) };
    t.measured += 1;
    t.lastAtMs = nowMs;
    next[name] = t;
    if (rule.dryRun) continue;
    const ms = measured.length
      ? measured
      : [
          {
            metric: name,
            track: '-',
            value: null,
            outcome: 'inconclusive' as const,
            reason: 'not measured in this run',
          },
        ];
    const outcome = outcomeOf(ms);
    if (outcome === 'fail') t.failed += 1;
    if (outcome === 'inconclusive') t.inconclusive += 1;
    t.consecutiveErrors = outcome === 'error' ? t.consecutiveErrors + 1 : 0;
    const why = ms
      .filter((m) => m.outcome !== 'pass')
      .map((m) => `${m.metric}[${m.track}] ${m.reason ?? ''}`.trim())
      .join('; ');
    if (t.failed > rule.failureLimit)
      reasons.push(`${name} failed ${t.failed} times (limit ${rule.failureLimit}): ${why}`);
    else if (t.inconclusive > rule.inconclusiveLimit)
      reasons.push(`${name} inconclusive ${t.inconclusive} times (limit ${rule.inconclusiveLimit}): ${why}`);
    else if (t.consecutiveErrors > rule.consecutiveErrorLimit)
      reasons.push(
        `${name} could not be queried ${t.consecutiveErrors} times in a row (limit ${rule.consecutiveErrorLimit}): ${why}`,
      );
  }
  // Run-level counters for the status (failed measurements in all, the most inconclusive metric).
  const counted = Object.entries(next).filter(([name]) => Object.hasOwn(rules, name) && !rules[name].dryRun);
  const summary: AnalysisTally = {
    failedRuns: counted.reduce((n, [, t]) => n + t.failed, 0),
    consecutiveInconclusive: counted.reduce((n, [, t]) => Math.max(n, t.inconclusive), 0),
  };
  if (reasons.length)
    return { verdict: 'fail', tallies: next, summary, reason: `analysis failed: ${reasons.join('; ')}` };
  return { verdict: 'continue', tallies: next, summary };
}

/** `{ metricRules }` for a plan when the analysis's metrics set per-metric rules; otherwise nothing. */
export function metricRulesField(analysis: {
  metrics: readonly MetricFields[];
  failureLimit: number;
  inconclusiveLimit: number;
}): { metricRules?: MetricRules } {
  const rules = metricRulesOf(analysis.metrics, analysis);
  return rules ? { metricRules: rules } : {};
}
