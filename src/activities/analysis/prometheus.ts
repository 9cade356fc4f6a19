/**
 * Prometheus: the metric's PromQL template rendered for the track (values
 * escaped, see domain/promql.ts) and sent as an instant query to
 * `analysis.prometheusUrl`/api/v1/query. Whatever comes back (a number, NaN,
 * an empty vector, several series, an error, nothing within queryTimeout) is
 * classified by domain/promql.ts into a value or the reason there is none.
 */
import { parseDuration } from '../../domain/duration';
import {
  classifyQueryResponse,
  classifyRangeResponse,
  renderQuery,
  TemplateError,
  type QuerySamples,
  type QueryValue,
} from '../../domain/promql';
import { describeBody } from '../../domain/verification';
import { describeFetchError } from '../clients/http';
import type { AnalysisConfig, MetricsProvider, ProviderSettings } from './provider';

/** The answer to one query at `path` with `params`, classified; never throws (unreachable, timed out or not JSON: an error). */
async function ask<T>(
  analysis: AnalysisConfig,
  path: string,
  params: Record<string, string>,
  classify: (status: number, body: unknown) => T,
): Promise<T | { kind: 'none'; reason: string; error: true }> {
  // The schema requires it with this provider; an injected config without it measures nothing.
  if (!analysis.prometheusUrl) return { kind: 'none', reason: 'analysis.prometheusUrl is not set', error: true };
  const url = `${analysis.prometheusUrl.replace(/\/+$/, '')}${path}?${new URLSearchParams(params).toString()}`;
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      signal: AbortSignal.timeout(analysis.queryTimeout),
      headers: { accept: 'application/json' },
    });
    text = await res.text();
  } catch (err) {
    return {
      kind: 'none',
      reason: `Prometheus unreachable: ${describeFetchError(err, analysis.queryTimeout)}`,
      error: true,
    };
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return {
      kind: 'none',
      reason: `Prometheus answered HTTP ${res.status} that is not JSON: ${describeBody(text, [], 120)}`,
      error: true,
    };
  }
  return classify(res.status, body);
}

/** The query for the target, or the reason it cannot be built ({{version}} unknown, a bad window). */
function queryFor(
  template: string,
  target: Parameters<typeof renderQuery>[1],
): string | { kind: 'none'; reason: string } {
  try {
    return renderQuery(template, target);
  } catch (err) {
    if (err instanceof TemplateError) return { kind: 'none', reason: err.message };
    throw err;
  }
}

/** The Prometheus provider over `analysis` (read at each query, so a changed URL or timeout applies at once). */
export function prometheusProvider({ analysis }: ProviderSettings): MetricsProvider {
  return {
    type: 'prometheus',
    async measure(metric, target): Promise<QueryValue> {
      const query = queryFor(metric.query, target);
      if (typeof query !== 'string') return query;
      return ask(analysis, '/api/v1/query', { query }, classifyQueryResponse);
    },
    // The window's samples of the same query, as Kayenta reads a metric store: a range query ending now.
    async samples(metric, target): Promise<QuerySamples> {
      const query = queryFor(metric.query, target);
      if (typeof query !== 'string') return query;
      const end = Date.now() / 1000;
      const start = end - parseDuration(target.window) / 1000;
      return ask(
        analysis,
        '/api/v1/query_range',
        { query, start: start.toFixed(3), end: end.toFixed(3), step: target.step },
        classifyRangeResponse,
      );
    },
  };
}
