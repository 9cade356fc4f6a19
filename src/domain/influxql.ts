/**
 * InfluxQL templates and InfluxDB 1.x `/query` answers, without I/O.
 * Placeholders for a track, version or namespace become whole single-quoted
 * string literals (`"track" = {{track}}` gives `"track" = 'canary'`), escaped
 * so that no value can leave its literal; {{window}} and {{step}} become
 * duration literals (`time > now() - {{window}}`). Classification accepts
 * one series with one value column; anything else (no series, several,
 * null, a string, an error) is a reason there is no value.
 */
import type { QuerySamples, QueryValue } from './promql';
import { clip, isRecord, renderTemplate, type SampleValues, type TemplateDialect } from './metric-template';

/** `value` as an InfluxQL string literal: backslash, quote and newline escaped, quotes around. */
export function influxStringLiteral(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n')}'`;
}

const INFLUXQL: TemplateDialect = { value: influxStringLiteral, duration: (d) => d };

/** The InfluxQL of a metric for one target (TemplateError when it cannot be built). */
export function renderInfluxQuery(template: string, values: SampleValues): string {
  return renderTemplate(template, values, INFLUXQL);
}

type None = { kind: 'none'; reason: string; error?: boolean };
type Rows = { kind: 'rows'; rows: unknown[] };

/** The rows of the one value column of the one series an answer holds, or why there are none. */
function seriesRows(httpStatus: number, body: unknown): Rows | None {
  if (!isRecord(body))
    return { kind: 'none', reason: `InfluxDB answered HTTP ${httpStatus} without a JSON body`, error: true };
  if (typeof body.error === 'string') return { kind: 'none', reason: `query error: ${clip(body.error)}`, error: true };
  if (httpStatus >= 400) return { kind: 'none', reason: `InfluxDB answered HTTP ${httpStatus}`, error: true };
  const results = Array.isArray(body.results) ? (body.results as unknown[]) : [];
  if (results.length !== 1)
    return {
      kind: 'none',
      reason: `the query holds ${results.length} statements; it must be one SELECT`,
      error: results.length === 0,
    };
  const result = results[0];
  if (!isRecord(result)) return { kind: 'none', reason: 'malformed result in the response', error: true };
  if (typeof result.error === 'string')
    return { kind: 'none', reason: `query error: ${clip(result.error)}`, error: true };
  const series = Array.isArray(result.series) ? (result.series as unknown[]) : [];
  if (series.length === 0) return { kind: 'none', reason: 'no data (no matching series in the window)' };
  if (series.length > 1)
    return {
      kind: 'none',
      reason: `the query returned ${series.length} series; it must return one (no GROUP BY tag)`,
    };
  const one = series[0];
  const columns = isRecord(one) && Array.isArray(one.columns) ? (one.columns as unknown[]) : [];
  const valueColumns = columns.filter((c) => c !== 'time');
  if (valueColumns.length !== 1)
    return {
      kind: 'none',
      reason: `the query returned ${valueColumns.length} value columns (${valueColumns.map(String).join(', ')}); it must select one`,
    };
  const at = columns.indexOf(valueColumns[0]);
  const rows = isRecord(one) && Array.isArray(one.values) ? (one.values as unknown[]) : [];
  return { kind: 'rows', rows: rows.map((r) => (Array.isArray(r) ? (r as unknown[])[at] : undefined)) };
}

function valueOf(raw: unknown): QueryValue {
  if (raw === null || raw === undefined) return { kind: 'none', reason: 'no data (the value is null)' };
  if (typeof raw !== 'number') return { kind: 'none', reason: `not a number: ${clip(JSON.stringify(raw), 60)}` };
  return { kind: 'value', value: raw };
}

/**
 * Classifies the JSON body of `/query` (with its HTTP status) for one value:
 * one series with one row. A query grouped by time returns many rows and is
 * refused rather than guessed at.
 */
export function classifyInfluxValue(httpStatus: number, body: unknown): QueryValue {
  const got = seriesRows(httpStatus, body);
  if (got.kind === 'none') return got;
  if (got.rows.length === 0) return { kind: 'none', reason: 'no data (the series has no row)' };
  if (got.rows.length > 1)
    return {
      kind: 'none',
      reason: `the query returned ${got.rows.length} rows; it must return one (aggregate over the window, no GROUP BY time)`,
    };
  return valueOf(got.rows[0]);
}

/** Classifies the JSON body of `/query` for samples: the finite numbers of the one series' rows, oldest first. */
export function classifyInfluxSamples(httpStatus: number, body: unknown): QuerySamples {
  const got = seriesRows(httpStatus, body);
  if (got.kind === 'none') return got;
  const values = got.rows.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  if (values.length === 0) return { kind: 'none', reason: 'no data (no numeric value in the window)' };
  return { kind: 'samples', values };
}
