/**
 * Graphite: the metric's target rendered for the track (values made into
 * inert path segments, see domain/graphite.ts) and read from graphite-web's
 * render API, `analysis.graphite.url`/render?target=...&from=-<window>&format=json.
 * `measure` is the mean of the series' non-null datapoints over the window;
 * `samples` are those datapoints (from `samplesQuery`, default `query`),
 * oldest first, at the resolution Graphite stores the series with.
 */
import { classifyGraphiteSamples, classifyGraphiteValue, renderGraphiteTarget } from '../../domain/graphite';
import { TemplateError, windowSeconds, type SampleValues } from '../../domain/metric-template';
import type { QuerySamples, QueryValue } from '../../domain/promql';
import { getJson } from './http-json';
import type { MetricsProvider, ProviderSettings } from './provider';

type None = { kind: 'none'; reason: string; error?: boolean };

async function render<T>(
  { analysis }: ProviderSettings,
  template: string,
  values: SampleValues,
  classify: (status: number, body: unknown, text: string) => T,
): Promise<T | None> {
  // The schema requires the section with this provider; an injected config without it measures nothing.
  if (!analysis.graphite) return { kind: 'none', reason: 'analysis.graphite is not set', error: true };
  let target: string;
  try {
    target = renderGraphiteTarget(template, values);
  } catch (err) {
    if (err instanceof TemplateError) return { kind: 'none', reason: err.message };
    throw err;
  }
  const params = new URLSearchParams({ target, from: `-${windowSeconds(values.window)}s`, format: 'json' });
  const got = await getJson(`${analysis.graphite.url.replace(/\/+$/, '')}/render?${params.toString()}`, {
    backend: 'Graphite',
    timeoutMs: analysis.queryTimeout,
  });
  return got.kind === 'none' ? got : classify(got.status, got.body, got.text);
}

/** The Graphite provider over `analysis.graphite` (read at each query). */
export function graphiteProvider(settings: ProviderSettings): MetricsProvider {
  return {
    type: 'graphite',
    measure: (metric, target): Promise<QueryValue> => render(settings, metric.query, target, classifyGraphiteValue),
    samples: (metric, target): Promise<QuerySamples> =>
      render(settings, metric.samplesQuery ?? metric.query, target, classifyGraphiteSamples),
  };
}
