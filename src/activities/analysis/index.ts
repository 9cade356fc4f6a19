/**
 * Analysis: the metrics providers behind one factory, and the runAnalysis
 * activity that asks the configured one. Built-in providers are listed once
 * here, keyed by the names of METRICS_PROVIDERS; deps may add or replace
 * providers (a test registers a throwaway one through this seam).
 */
import type { MetricsProviderName } from '../../domain/analysis';
import type { DeployConfig } from '../../domain/config';
import { providerFactory } from '../providers';
import { activityLogger, type Logger } from '../runtime';
import { graphiteProvider } from './graphite';
import { influxdbProvider } from './influxdb';
import { prometheusProvider } from './prometheus';
import type { MetricsProvider, MetricsProviderFactory, ProviderSettings } from './provider';
import { analysisRunner } from './run-analysis';
import { webProvider } from './web';

export type {
  AnalysisConfig,
  MetricsProvider,
  MetricsProviderFactory,
  MetricTarget,
  MetricValue,
  ProviderSettings,
} from './provider';

/** The built-in providers, one line each. */
export const METRICS_PROVIDER_FACTORIES: Record<MetricsProviderName, MetricsProviderFactory> = {
  prometheus: prometheusProvider,
  influxdb: influxdbProvider,
  graphite: graphiteProvider,
  web: webProvider,
};

/** The provider config analysis.provider names, from the built-in ones and `extra` (which wins on a shared name). */
export function createMetricsProvider(
  settings: ProviderSettings,
  extra: Record<string, MetricsProviderFactory> = {},
): MetricsProvider {
  return providerFactory('analysis.provider', settings.analysis.provider, METRICS_PROVIDER_FACTORIES, extra)(settings);
}

/** What the analysis activity is built over; only config is required. */
export interface AnalysisDeps {
  config: DeployConfig;
  /** The worker's environment, where a provider finds its credentials (InfluxDB's, the web provider's headers). */
  env?: Record<string, string | undefined>;
  /** Providers added to (or replacing) the built-in ones, by name. */
  providers?: Record<string, MetricsProviderFactory>;
  log?: Logger;
  now?: () => Date;
}

/** The analysis activities; the provider is built once, from config.analysis.provider. */
export function analysisActivities(deps: AnalysisDeps) {
  const provider = createMetricsProvider({ analysis: deps.config.analysis, env: deps.env ?? {} }, deps.providers);
  const runAnalysis = analysisRunner({
    config: deps.config,
    provider,
    log: deps.log ?? activityLogger(),
    now: deps.now ?? (() => new Date()),
  });
  return { runAnalysis };
}

/** The analysis activities' type, for callers that take them as a dependency. */
export type AnalysisActivities = ReturnType<typeof analysisActivities>;
