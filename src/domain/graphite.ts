/**
 * Graphite targets and render API answers, without I/O. A track, version or
 * namespace fills a path segment: every character other than a letter, a
 * digit, `_` or `-` becomes `_` (so `1.0.1` is `1_0_1`, the usual way a
 * version is written into a Graphite path), which leaves no value able to add
 * a separator, a wildcard, a brace list or a function call. {{window}} and
 * {{step}} become Graphite intervals in seconds (`60s`).
 *
 * One value of a series over the window is the mean of its non-null
 * datapoints (a target can still pick another figure itself, e.g. with
 * summarize or a max of the series); samples are those datapoints, oldest
 * first, at the resolution the series is stored with.
 */
import type { QuerySamples, QueryValue } from './promql';
import {
  clip,
  isRecord,
  renderTemplate,
  windowSeconds,
  type SampleValues,
  type TemplateDialect,
} from './metric-template';

/** A value as one Graphite path segment: anything but letters, digits, `_` and `-` becomes `_`. */
export function graphiteSegment(value: string): string {
  return value.replace(/[^A-Za-z0-9_-]/g, '_') || '_';
}

const GRAPHITE: TemplateDialect = { value: graphiteSegment, duration: (d) => `${windowSeconds(d)}s` };

/** The Graphite target of a metric for one target (TemplateError when it cannot be built). */
export function renderGraphiteTarget(template: string, values: SampleValues): string {
  return renderTemplate(template, values, GRAPHITE);
}

type None = { kind: 'none'; reason: string; error?: boolean };

/** The datapoint values of the one series in the answer, nulls left out, or why there are none. */
function seriesValues(httpStatus: number, body: unknown, text: string): { kind: 'values'; values: unknown[] } | None {
  if (httpStatus >= 400)
    return {
      kind: 'none',
      reason: `Graphite answered HTTP ${httpStatus}: ${clip(text, 160) || '(empty body)'}`,
      error: true,
    };
  if (!Array.isArray(body))
    return { kind: 'none', reason: 'Graphite did not answer with a list of series', error: true };
  if (body.length === 0) return { kind: 'none', reason: 'no data (no series matches the target)' };
  if (body.length > 1)
    return {
      kind: 'none',
      reason: `the target returned ${body.length} series; it must return one (combine them with sumSeries or averageSeries)`,
    };
  const series: unknown = body[0];
  const points = isRecord(series) && Array.isArray(series.datapoints) ? (series.datapoints as unknown[]) : [];
  const values = points
    .map((p) => (Array.isArray(p) ? (p as unknown[])[0] : undefined))
    .filter((v) => v !== null && v !== undefined);
  if (values.length === 0) return { kind: 'none', reason: 'no data (no datapoint in the window)' };
  return { kind: 'values', values };
}

function nonNumeric(values: unknown[]): None | undefined {
  const bad = values.find((v) => typeof v !== 'number');
  return bad === undefined ? undefined : { kind: 'none', reason: `not a number: ${clip(JSON.stringify(bad), 60)}` };
}

/** Classifies a `/render?format=json` answer for one value: the mean of the series' non-null datapoints. */
export function classifyGraphiteValue(httpStatus: number, body: unknown, text = ''): QueryValue {
  const got = seriesValues(httpStatus, body, text);
  if (got.kind === 'none') return got;
  const bad = nonNumeric(got.values);
  if (bad) return bad;
  const numbers = got.values as number[];
  return { kind: 'value', value: numbers.reduce((a, b) => a + b, 0) / numbers.length };
}

/** Classifies a `/render?format=json` answer for samples: the finite non-null datapoints, oldest first. */
export function classifyGraphiteSamples(httpStatus: number, body: unknown, text = ''): QuerySamples {
  const got = seriesValues(httpStatus, body, text);
  if (got.kind === 'none') return got;
  const bad = nonNumeric(got.values);
  if (bad) return bad;
  const values = (got.values as number[]).filter((v) => Number.isFinite(v));
  if (values.length === 0) return { kind: 'none', reason: 'no data (no finite datapoint in the window)' };
  return { kind: 'samples', values };
}
