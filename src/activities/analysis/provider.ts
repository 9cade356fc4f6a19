/**
 * The seam between analysis and a metrics backend (Argo Rollouts'
 * `metricproviders.Provider`, reduced to what analysis asks): one value per
 * metric and track over a window. A provider only fetches; whether a value
 * passes, fails or is inconclusive is decided by domain/analysis.ts, the same
 * for every provider, so no backend can turn "no data" into a pass.
 *
 * Adding a provider: a file here implementing MetricsProvider, one line in
 * the factory map (index.ts), its name in METRICS_PROVIDERS
 * (domain/analysis.ts) with any settings of its own in the `analysis` section
 * of domain/config.ts, and its tests.
 */
import type { DeployConfig, MetricConfig } from '../../domain/config';
import type { QuerySamples, QueryValue, Track } from '../../domain/promql';

/** The `analysis` config section: the provider's name and settings, the metrics, the limits. */
export type AnalysisConfig = DeployConfig['analysis'];

/** What one metric is measured on: a track, the version it runs, where, and over what window. */
export interface MetricTarget {
  track: Track;
  /** The version running on the track; undefined when the workflow does not know it (a query that needs it is then inconclusive). */
  version?: string;
  namespace: string;
  /** Range of the rate windows, e.g. `1m` (config analysis.window unless the request names another). */
  window: string;
}

/**
 * A number to judge, or why there is none (no data, an error, the backend
 * unreachable). NaN and ±Inf are values: domain/analysis.ts names them and
 * keeps them inconclusive.
 */
export type MetricValue = QueryValue;

/** Samples of a metric on a target over its window, one every `step`, for comparing canary with stable. */
export type MetricSamples = QuerySamples;

/** One metrics backend, as analysis sees it: one value per metric and target, or why there is none. */
export interface MetricsProvider {
  /** The name config analysis.provider selects this provider by. */
  readonly type: string;
  /**
   * The metric's value on the target. Resolves with `{ kind: 'none', reason }`
   * for anything it could not measure, including a query it cannot build and
   * a backend that does not answer; it does not throw for those (a throw is
   * still recorded as inconclusive by the analysis, with its message).
   */
  measure(metric: MetricConfig, target: MetricTarget): Promise<MetricValue>;
  /**
   * The metric's samples on the target over its window, one every `step`
   * (e.g. `10s`), oldest first, for a `compare` metric (canary against
   * stable by a Mann-Whitney U test). Values that are not finite are left
   * out. Never throws for what it could not measure, as measure.
   */
  samples(metric: MetricConfig, target: MetricTarget & { step: string }): Promise<MetricSamples>;
}

/** What a provider is built from: its settings in the `analysis` config section, and the worker's environment for its secrets. */
export interface ProviderSettings {
  analysis: AnalysisConfig;
  env: Record<string, string | undefined>;
}

/** Builds a provider; it reads its settings when measuring, so a changed setting applies at once. */
export type MetricsProviderFactory = (settings: ProviderSettings) => MetricsProvider;
