/**
 * Metrics read from any HTTP JSON endpoint (Datadog, New Relic, an internal
 * service), without I/O: the metric's URL template filled with URL-encoded
 * values, and what its JSONPath picked from the answer classified into a
 * value, samples, or the reason there are none.
 */
import type { QuerySamples, QueryValue } from './promql';
import { clip, renderTemplate, TemplateError, type SampleValues, type TemplateDialect } from './metric-template';

const URL_ENCODED: TemplateDialect = {
  value: encodeURIComponent,
  duration: encodeURIComponent,
  // Vendors' query APIs (Datadog's /api/v1/query) take the window as absolute times.
  epoch: String,
};

/**
 * The URL of a metric for one target: each value URL-encoded (it can neither
 * end a path segment nor add a query parameter). TemplateError when it cannot
 * be built or is not an absolute http(s) URL.
 */
export function renderWebUrl(template: string, values: SampleValues): string {
  const rendered = renderTemplate(template, values, URL_ENCODED);
  let parsed: URL;
  try {
    parsed = new URL(rendered);
  } catch {
    throw new TemplateError(`the metric's URL is not an absolute URL: ${clip(rendered, 120)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new TemplateError(`the metric's URL must be http(s), got ${parsed.protocol}`);
  return rendered;
}

function describe(v: unknown): string {
  return clip(JSON.stringify(v) ?? String(v), 60);
}

/** What a JSONPath picked (every match, in document order), as one value: exactly one number. */
export function classifyWebValue(matches: readonly unknown[], jsonPath: string): QueryValue {
  if (matches.length === 0) return { kind: 'none', reason: `no data (${jsonPath} matched nothing)` };
  if (matches.length > 1)
    return { kind: 'none', reason: `${jsonPath} matched ${matches.length} values; it must match one` };
  const [v] = matches;
  if (v === null) return { kind: 'none', reason: `no data (${jsonPath} is null)` };
  if (typeof v !== 'number') return { kind: 'none', reason: `${jsonPath} is not a number: ${describe(v)}` };
  return { kind: 'value', value: v };
}

/**
 * What a JSONPath picked, as samples: one array (`$.history`) or several
 * matches (`$.history[*].value`), nulls left out, every other entry a number;
 * only finite numbers are kept.
 */
export function classifyWebSamples(matches: readonly unknown[], jsonPath: string): QuerySamples {
  const entries = matches.length === 1 && Array.isArray(matches[0]) ? (matches[0] as unknown[]) : [...matches];
  const present = entries.filter((v) => v !== null && v !== undefined);
  const bad = present.find((v) => typeof v !== 'number');
  if (bad !== undefined)
    return { kind: 'none', reason: `${jsonPath} holds a value that is not a number: ${describe(bad)}` };
  const values = (present as number[]).filter((v) => Number.isFinite(v));
  if (values.length === 0) return { kind: 'none', reason: `no data (${jsonPath} matched no number)` };
  return { kind: 'samples', values };
}
