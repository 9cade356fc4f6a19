/**
 * PromQL templates and Prometheus answers, without I/O. Rendering escapes every
 * value it puts into a query, so a version string can never change what the
 * query selects. Classification turns whatever came back (a number, NaN,
 * ±Inf, an empty vector, several series, an error, nothing at all) into a
 * value or a reason; only a single finite number can ever be judged, so no
 * data is never a pass (argo-rollouts #4479, #1466).
 */

export type Track = 'stable' | 'canary';

export interface TemplateValues {
  track: Track;
  /** The version running on the track; undefined when the caller does not know it. */
  version?: string;
  namespace: string;
  window: string;
}

export class TemplateError extends Error {
  override name = 'TemplateError';
}

const PLACEHOLDER_RE = /\{\{\s*([^}]*?)\s*\}\}/g;
const WINDOW_RE = /^\d{1,6}(ms|s|m|h|d)$/;

/** Escapes a value for a PromQL double-quoted string (label matchers use these). */
export function escapePromString(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Placeholders the template uses, e.g. ['track', 'window']. */
export function placeholdersOf(template: string): string[] {
  return [...new Set([...template.matchAll(PLACEHOLDER_RE)].map((m) => m[1]))];
}

/**
 * Fills {{track}}, {{version}}, {{namespace}} and {{window}}. Throws
 * TemplateError for an unknown placeholder, a bad window or a {{version}}
 * nobody supplied, so the measurement is inconclusive with that reason.
 */
export function renderQuery(template: string, values: TemplateValues): string {
  if (!WINDOW_RE.test(values.window))
    throw new TemplateError(`window must look like 30s or 5m, got ${JSON.stringify(values.window)}`);
  return template.replace(PLACEHOLDER_RE, (_m, name: string) => {
    switch (name) {
      case 'track':
        return escapePromString(values.track);
      case 'namespace':
        return escapePromString(values.namespace);
      case 'window':
        return values.window;
      case 'version':
        if (values.version === undefined || values.version === '') {
          throw new TemplateError(`the query uses {{version}} but the ${values.track} version is not known`);
        }
        return escapePromString(values.version);
      default:
        throw new TemplateError(`unknown placeholder {{${name}}}`);
    }
  });
}

/**
 * A value, or why there is none. `error: true` when the backend failed (a
 * query error, unreachable, timed out, an answer that does not parse), as
 * opposed to answering with no data: analysis counts consecutive errors
 * against a metric's consecutiveErrorLimit.
 */
export type QueryValue = { kind: 'value'; value: number } | { kind: 'none'; reason: string; error?: boolean };

/** Samples of one series over a window, oldest first (NaN and ±Inf dropped by the provider), or why there are none. */
export type QuerySamples = { kind: 'samples'; values: number[] } | { kind: 'none'; reason: string; error?: boolean };

/** Prometheus sample values are strings; "NaN", "+Inf" and "-Inf" are spelled out. */
export function parseSampleValue(raw: unknown): number | undefined {
  if (typeof raw !== 'string') return undefined;
  if (raw === 'NaN') return Number.NaN;
  if (raw === '+Inf' || raw === 'Inf') return Number.POSITIVE_INFINITY;
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY;
  if (raw.trim() === '') return undefined;
  const n = Number(raw);
  return Number.isNaN(n) ? undefined : n;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clip(text: string, max = 200): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max)}...` : oneLine;
}

/** Why a Prometheus answer is an error (no JSON body, status not success), or undefined when it succeeded. */
function queryFailure(httpStatus: number, body: unknown): { kind: 'none'; reason: string; error: true } | undefined {
  if (!isRecord(body))
    return { kind: 'none', reason: `Prometheus answered HTTP ${httpStatus} without a JSON body`, error: true };
  if (body.status === 'success') return undefined;
  const type = typeof body.errorType === 'string' ? body.errorType : 'error';
  const error = typeof body.error === 'string' ? clip(body.error) : 'no error message';
  return { kind: 'none', reason: `query error (${type}): ${error}`, error: true };
}

function sampleOf(pair: unknown): QueryValue {
  if (!Array.isArray(pair) || pair.length !== 2) return { kind: 'none', reason: 'malformed sample in the response' };
  const value = parseSampleValue(pair[1]);
  if (value === undefined) return { kind: 'none', reason: `unparseable sample value ${JSON.stringify(pair[1])}` };
  // NaN and ±Inf are passed on as values: judgeValue names them and keeps them inconclusive.
  return { kind: 'value', value };
}

/**
 * Classifies the JSON body of `/api/v1/query` (with its HTTP status). One
 * series or a scalar gives a value; an empty vector is "no data"; several
 * series are refused rather than guessed at.
 */
export function classifyQueryResponse(httpStatus: number, body: unknown): QueryValue {
  const failed = queryFailure(httpStatus, body);
  if (failed) return failed;
  const data = (body as Record<string, unknown>).data;
  if (!isRecord(data)) return { kind: 'none', reason: 'response has no data', error: true };
  switch (data.resultType) {
    case 'scalar':
      return sampleOf(data.result);
    case 'vector': {
      const result = Array.isArray(data.result) ? (data.result as unknown[]) : [];
      if (result.length === 0)
        return { kind: 'none', reason: 'no data (empty vector: no matching series in the window)' };
      if (result.length > 1)
        return {
          kind: 'none',
          reason: `the query returned ${result.length} series; it must return one (aggregate with sum or max)`,
        };
      const series = result[0];
      return sampleOf(isRecord(series) ? series.value : undefined);
    }
    default:
      return {
        kind: 'none',
        reason: `unsupported result type ${JSON.stringify(data.resultType)} (expected an instant vector or scalar)`,
      };
  }
}

/**
 * Classifies the JSON body of `/api/v1/query_range`: one series gives its
 * finite samples, oldest first; no series or no finite sample is "no data";
 * several series are refused, as for an instant query.
 */
export function classifyRangeResponse(httpStatus: number, body: unknown): QuerySamples {
  const failed = queryFailure(httpStatus, body);
  if (failed) return failed;
  const data = (body as Record<string, unknown>).data;
  if (!isRecord(data) || data.resultType !== 'matrix')
    return { kind: 'none', reason: 'the range query did not return a matrix', error: true };
  const result = Array.isArray(data.result) ? (data.result as unknown[]) : [];
  if (result.length === 0) return { kind: 'none', reason: 'no data (no matching series in the window)' };
  if (result.length > 1)
    return {
      kind: 'none',
      reason: `the query returned ${result.length} series; it must return one (aggregate with sum or max)`,
    };
  const series = result[0];
  const pairs = isRecord(series) && Array.isArray(series.values) ? (series.values as unknown[]) : [];
  const values = pairs
    .map((pair) => sampleOf(pair))
    .flatMap((v) => (v.kind === 'value' && Number.isFinite(v.value) ? [v.value] : []));
  if (values.length === 0) return { kind: 'none', reason: 'no data (no finite sample in the window)' };
  return { kind: 'samples', values };
}
