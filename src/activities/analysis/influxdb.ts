/**
 * InfluxDB 1.x: the metric's InfluxQL rendered for the target (values as
 * escaped string literals, see domain/influxql.ts) and sent to
 * `analysis.influxdb.url`/query against `analysis.influxdb.database`.
 * `measure` runs `query` and takes the one value of its one series and row;
 * `samples` runs `samplesQuery` (default `query`), written to give one row
 * per `{{step}}` (`GROUP BY time({{step}})`), and takes its values, oldest
 * first. Credentials, when the config names their variables, go in a Basic
 * Authorization header, never in the URL.
 */
import { classifyInfluxSamples, classifyInfluxValue, renderInfluxQuery } from '../../domain/influxql';
import { TemplateError, type SampleValues } from '../../domain/metric-template';
import type { QuerySamples, QueryValue } from '../../domain/promql';
import { getJson } from './http-json';
import type { AnalysisConfig, MetricsProvider, ProviderSettings } from './provider';

type None = { kind: 'none'; reason: string; error?: boolean };

/** The Authorization header and the values to keep out of reasons, or why the credentials are missing. */
function credentials(
  settings: NonNullable<AnalysisConfig['influxdb']>,
  env: Record<string, string | undefined>,
): { headers: Record<string, string>; secrets: string[] } | None {
  if (!settings.usernameEnv || !settings.passwordEnv) return { headers: {}, secrets: [] };
  const missing = [settings.usernameEnv, settings.passwordEnv].filter((n) => !env[n]);
  if (missing.length)
    return { kind: 'none', reason: `InfluxDB credentials: ${missing.join(' and ')} not set`, error: true };
  const user = env[settings.usernameEnv]!;
  const password = env[settings.passwordEnv]!;
  return {
    headers: { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` },
    secrets: [password],
  };
}

async function ask<T>(
  { analysis, env }: ProviderSettings,
  template: string,
  values: SampleValues,
  classify: (status: number, body: unknown) => T,
): Promise<T | None> {
  const settings = analysis.influxdb;
  // The schema requires the section with this provider; an injected config without it measures nothing.
  if (!settings) return { kind: 'none', reason: 'analysis.influxdb is not set', error: true };
  let q: string;
  try {
    q = renderInfluxQuery(template, values);
  } catch (err) {
    if (err instanceof TemplateError) return { kind: 'none', reason: err.message };
    throw err;
  }
  const creds = credentials(settings, env);
  if ('kind' in creds) return creds;
  const params = new URLSearchParams({ db: settings.database, q, epoch: 'ms' });
  const got = await getJson(`${settings.url.replace(/\/+$/, '')}/query?${params.toString()}`, {
    backend: 'InfluxDB',
    timeoutMs: analysis.queryTimeout,
    headers: creds.headers,
    secrets: creds.secrets,
  });
  return got.kind === 'none' ? got : classify(got.status, got.body);
}

/** The InfluxDB provider over `analysis.influxdb` (read at each query, so a changed setting applies at once). */
export function influxdbProvider(settings: ProviderSettings): MetricsProvider {
  return {
    type: 'influxdb',
    measure: (metric, target): Promise<QueryValue> => ask(settings, metric.query, target, classifyInfluxValue),
    samples: (metric, target): Promise<QuerySamples> =>
      ask(settings, metric.samplesQuery ?? metric.query, target, classifyInfluxSamples),
  };
}
