/**
 * Any HTTP JSON endpoint (how a team reads Datadog, New Relic or an internal
 * service): the metric's `query` is a URL template (values URL-encoded, see
 * domain/web-metrics.ts), its `jsonPath` picks the one number of the answer
 * and `samplesJsonPath` the samples (from `samplesQuery`, default `query`).
 * JSONPath runs without script evaluation. Headers come from the worker's
 * environment, `analysis.web.headers` naming the variable of each; their
 * values are never logged nor quoted in a reason, and redirects are not
 * followed, so they reach no other host.
 */
import { JSONPath } from 'jsonpath-plus';
import { TemplateError, type SampleValues } from '../../domain/metric-template';
import type { QuerySamples, QueryValue } from '../../domain/promql';
import { describeBody } from '../../domain/verification';
import { classifyWebSamples, classifyWebValue, renderWebUrl } from '../../domain/web-metrics';
import { messageOf } from '../failures';
import { getJson } from './http-json';
import type { MetricsProvider, ProviderSettings } from './provider';

type None = { kind: 'none'; reason: string; error?: boolean };

/** The headers to send, from the variables analysis.web.headers names, or which variable is missing. */
function headersFrom(
  named: Record<string, string>,
  env: Record<string, string | undefined>,
): { headers: Record<string, string>; secrets: string[] } | None {
  const headers: Record<string, string> = {};
  for (const [header, variable] of Object.entries(named)) {
    const value = env[variable];
    if (!value)
      return { kind: 'none', reason: `header ${header}: environment variable ${variable} is not set`, error: true };
    headers[header] = value;
  }
  return { headers, secrets: Object.values(headers) };
}

async function ask<T>(
  { analysis, env }: ProviderSettings,
  template: string,
  values: SampleValues,
  jsonPath: string | undefined,
  field: string,
  classify: (matches: unknown[], jsonPath: string) => T,
): Promise<T | None> {
  if (!jsonPath) return { kind: 'none', reason: `the metric has no ${field} (required with provider web)` };
  let url: string;
  try {
    url = renderWebUrl(template, { ...values, now: Date.now() });
  } catch (err) {
    if (err instanceof TemplateError) return { kind: 'none', reason: err.message };
    throw err;
  }
  const sent = headersFrom(analysis.web?.headers ?? {}, env);
  if ('kind' in sent) return sent;
  const got = await getJson(url, {
    backend: 'the metrics endpoint',
    timeoutMs: analysis.queryTimeout,
    headers: sent.headers,
    secrets: sent.secrets,
  });
  if (got.kind === 'none') return got;
  if (got.status < 200 || got.status > 299)
    return { kind: 'none', reason: `the metrics endpoint answered HTTP ${got.status}: ${got.text}`, error: true };
  let matches: unknown[];
  try {
    // eval: false: a JSONPath from config never runs script (filters like [?(...)] are refused).
    matches = JSONPath<unknown[]>({ path: jsonPath, json: got.body as object, eval: false, wrap: true });
  } catch (err) {
    return { kind: 'none', reason: `${field} ${jsonPath}: ${describeBody(messageOf(err), sent.secrets, 160)}` };
  }
  return classify(Array.isArray(matches) ? matches : [], jsonPath);
}

/** The web provider over `analysis.web` (read at each request). */
export function webProvider(settings: ProviderSettings): MetricsProvider {
  return {
    type: 'web',
    measure: (metric, target): Promise<QueryValue> =>
      ask(settings, metric.query, target, metric.jsonPath, 'jsonPath', classifyWebValue),
    samples: (metric, target): Promise<QuerySamples> =>
      ask(
        settings,
        metric.samplesQuery ?? metric.query,
        target,
        metric.samplesJsonPath,
        'samplesJsonPath',
        classifyWebSamples,
      ),
  };
}
