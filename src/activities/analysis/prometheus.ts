/**
 * Prometheus: the metric's PromQL template rendered for the track (values
 * escaped, see domain/promql.ts) and sent as an instant query to
 * `analysis.prometheusUrl`/api/v1/query. Whatever comes back (a number, NaN,
 * an empty vector, several series, an error, nothing within queryTimeout) is
 * classified by domain/promql.ts into a value or the reason there is none.
 */
import { classifyQueryResponse, renderQuery, TemplateError, type QueryValue } from '../../domain/promql';
import { describeBody } from '../../domain/verification';
import { describeFetchError } from '../clients/http';
import type { AnalysisConfig, MetricsProvider, ProviderSettings } from './provider';

/** The answer to one instant query; never throws (unreachable, timed out or not JSON: a reason). */
async function instantQuery(analysis: AnalysisConfig, query: string): Promise<QueryValue> {
  const url = `${analysis.prometheusUrl.replace(/\/+$/, '')}/api/v1/query?query=${encodeURIComponent(query)}`;
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      signal: AbortSignal.timeout(analysis.queryTimeout),
      headers: { accept: 'application/json' },
    });
    text = await res.text();
  } catch (err) {
    return { kind: 'none', reason: `Prometheus unreachable: ${describeFetchError(err, analysis.queryTimeout)}` };
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return {
      kind: 'none',
      reason: `Prometheus answered HTTP ${res.status} that is not JSON: ${describeBody(text, [], 120)}`,
    };
  }
  return classifyQueryResponse(res.status, body);
}

/** The Prometheus provider over `analysis` (read at each query, so a changed URL or timeout applies at once). */
export function prometheusProvider({ analysis }: ProviderSettings): MetricsProvider {
  return {
    type: 'prometheus',
    async measure(metric, target) {
      let query: string;
      try {
        query = renderQuery(metric.query, target);
      } catch (err) {
        // A template that cannot be filled ({{version}} unknown, a bad window) is inconclusive with that reason.
        if (err instanceof TemplateError) return { kind: 'none', reason: err.message };
        throw err;
      }
      return instantQuery(analysis, query);
    },
  };
}
