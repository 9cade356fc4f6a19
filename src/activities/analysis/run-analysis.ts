/**
 * One analysis run: every configured metric on every requested track, asked
 * of the metrics provider, judged by domain/analysis.ts, plus canary-vs-stable
 * comparisons. The workflows call it during a canary's steps, while a
 * blue-green deployment is monitored, and after any deployment (registered
 * as `analyzeCanary`, the name running workflows and committed histories
 * use). It never throws for what it measured: no data, NaN, a query error or
 * an unreachable backend come back as inconclusive measurements for the
 * workflow to tally (tallyRun: failureLimit, inconclusiveLimit).
 */
import { describeThreshold, judgeValue, runOutcome } from '../../domain/analysis';
import { compareSamples, type CompareSettings } from '../../domain/compare';
import { compareSettingsSchema } from '../../domain/config-metric-rules';
import type { DeployConfig, MetricConfig } from '../../domain/config';
import type { Track } from '../../domain/promql';
import type { AnalysisRun, Measurement } from '../../domain/status';
import type { AnalysisRequest } from '../contracts';
import { messageOf } from '../failures';
import type { Logger } from '../runtime';
import type { MetricSamples, MetricsProvider, MetricValue } from './provider';

/** A dry-run metric's measurements say so: shown, never counted. */
function dryRunOf(metric: MetricConfig): { dryRun?: true } {
  return metric.dryRun ? { dryRun: true } : {};
}

/** Canary against stable: canary <= stable * maxRatioToStable; inconclusive unless both were measured. */
function compare(
  metric: MetricConfig & { maxRatioToStable: number },
  canary: Measurement,
  stable: Measurement,
): Measurement {
  const name = `${metric.name} vs stable`;
  const ratio = metric.maxRatioToStable;
  if (
    canary.value === null ||
    stable.value === null ||
    canary.outcome === 'inconclusive' ||
    stable.outcome === 'inconclusive'
  ) {
    return {
      metric: name,
      track: 'canary',
      value: canary.value,
      threshold: `<= ${ratio} x stable`,
      outcome: 'inconclusive',
      reason: 'canary and stable were not both measured',
    };
  }
  const limit = stable.value * ratio;
  const judged = judgeValue(canary.value, { max: limit, unit: metric.unit });
  return {
    metric: name,
    track: 'canary',
    value: canary.value,
    threshold: `<= ${ratio} x stable (${Number(stable.value.toPrecision(4))}${metric.unit ? ` ${metric.unit}` : ''})`,
    outcome: judged.outcome,
    ...(judged.reason ? { reason: `${judged.reason} (${ratio} x stable)` } : {}),
  };
}

/** The runAnalysis activity asking `provider`; config.analysis is read at each run. */
export function analysisRunner(deps: {
  config: DeployConfig;
  provider: MetricsProvider;
  log: Logger;
  now: () => Date;
}) {
  const { config, provider, log, now } = deps;

  async function measure(
    metric: MetricConfig,
    track: Track,
    req: AnalysisRequest,
    window: string,
  ): Promise<Measurement> {
    const threshold = describeThreshold(metric);
    const base = { metric: metric.name, track, ...(threshold ? { threshold } : {}) };
    const target = {
      track,
      version: track === 'canary' ? req.version : req.stableVersion,
      namespace: req.namespace,
      window,
    };
    // A provider that throws anyway has measured nothing: inconclusive, never a pass and never a failed activity.
    const got = await provider.measure(metric, target).catch((err: unknown): MetricValue => ({
      kind: 'none',
      reason: `${provider.type}: ${messageOf(err)}`,
      error: true,
    }));
    if (got.kind === 'none')
      return {
        ...base,
        value: null,
        outcome: 'inconclusive',
        reason: got.reason,
        ...(got.error ? { error: true as const } : {}),
        ...dryRunOf(metric),
      };
    const judged = judgeValue(got.value, metric);
    // JSON has no NaN or Infinity: a value that is not finite is reported as null, with the reason saying what it was.
    return {
      ...base,
      value: Number.isFinite(got.value) ? got.value : null,
      outcome: judged.outcome,
      ...(judged.reason ? { reason: judged.reason } : {}),
      ...dryRunOf(metric),
    };
  }

  /** A compare metric: both tracks' samples over the same window, judged by compareSamples. */
  async function compareTracks(metric: MetricConfig, req: AnalysisRequest, window: string): Promise<Measurement> {
    const settings: CompareSettings & { step: string } = metric.compare ?? compareSettingsSchema.parse({});
    const sample = (track: Track) =>
      provider
        .samples(metric, {
          track,
          version: track === 'canary' ? req.version : req.stableVersion,
          namespace: req.namespace,
          window,
          step: settings.step,
        })
        .catch((err: unknown): MetricSamples => ({
          kind: 'none',
          reason: `${provider.type}: ${messageOf(err)}`,
          error: true,
        }));
    const [canary, stable] = await Promise.all([sample('canary'), sample('stable')]);
    const threshold = `canary at most ${Number((settings.maxDegradation * 100).toPrecision(3))}% ${
      settings.direction === 'higher-is-worse' ? 'higher' : 'lower'
    } than stable (${settings.confidence * 100}% confidence)`;
    const base = { metric: metric.name, track: 'canary', threshold, ...dryRunOf(metric) };
    const missing = [canary, stable].find((s) => s.kind === 'none');
    if (missing?.kind === 'none')
      return {
        ...base,
        value: null,
        outcome: 'inconclusive',
        reason: `${missing === canary ? 'canary' : 'stable'}: ${missing.reason}`,
        ...(missing.error ? { error: true as const } : {}),
      };
    if (canary.kind !== 'samples' || stable.kind !== 'samples') throw new Error('unreachable');
    const c = compareSamples(canary.values, stable.values, settings);
    return {
      ...base,
      value: c.canaryMedian ?? null,
      // Marginal (worse, within what is allowed) passes; the status shows it with its evidence.
      outcome: c.verdict === 'marginal' ? 'pass' : c.verdict,
      ...(c.verdict !== 'pass' ? { reason: c.detail } : {}),
      comparison: c,
    };
  }

  /**
   * One analysis run: every configured metric for every requested track, plus
   * canary-vs-stable comparisons. Never throws for what it measured; the
   * workflow tallies runs with tallyRun (failureLimit, inconclusiveLimit).
   */
  return async function runAnalysis(req: AnalysisRequest): Promise<AnalysisRun> {
    const window = req.window ?? config.analysis.window;
    const tracks = [...new Set(req.tracks)].filter((t): t is Track => t === 'stable' || t === 'canary');
    const chosen = config.analysis.metrics.filter((m) => !req.metrics || req.metrics.includes(m.name));
    const thresholds = chosen.filter((m) => m.kind !== 'compare');
    const both = tracks.includes('canary') && tracks.includes('stable');
    // A compare metric needs both tracks: a stable-only run (blue-green, between stages) leaves it out.
    const compares = both ? chosen.filter((m) => m.kind === 'compare') : [];
    const pairs = tracks.flatMap((track) => thresholds.map((metric) => ({ track, metric })));
    const [measured, compared] = await Promise.all([
      Promise.all(pairs.map(({ track, metric }) => measure(metric, track, req, window))),
      Promise.all(compares.map((metric) => compareTracks(metric, req, window))),
    ]);
    const measurements = [...measured, ...compared];
    if (both) {
      for (const metric of thresholds) {
        if (metric.maxRatioToStable === undefined) continue;
        const c = measured.find((m) => m.metric === metric.name && m.track === 'canary');
        const s = measured.find((m) => m.metric === metric.name && m.track === 'stable');
        if (c && s)
          measurements.push({
            ...compare({ ...metric, maxRatioToStable: metric.maxRatioToStable }, c, s),
            ...dryRunOf(metric),
          });
      }
    }
    const run: AnalysisRun = {
      at: now().toISOString(),
      outcome: runOutcome(measurements),
      measurements,
      weight: req.weight,
    };
    const notPassing = measurements
      .filter((m) => m.outcome !== 'pass')
      .map((m) => `${m.metric}[${m.track}] ${m.outcome}: ${m.reason ?? ''}`);
    if (run.outcome === 'pass')
      log.info('analysis passed', { version: req.version, weight: req.weight, measurements: measurements.length });
    else log.warn(`analysis ${run.outcome}`, { version: req.version, weight: req.weight, measurements: notPassing });
    return run;
  };
}
