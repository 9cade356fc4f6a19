/**
 * The metrics providers' settings in the `analysis` config section
 * (config.ts): each provider's own section, the placeholders metric queries
 * may use, and the checks that the chosen provider has what it needs. Checked
 * on the section, so an environment that switches provider is held to them.
 */
import { z } from 'zod';
import type { METRICS_PROVIDERS } from './analysis';
import { envName, url } from './config-fields';
import { metricRuleFields, metricRuleProblems } from './config-metric-rules';
import { parseDuration } from './duration';

export const PROMQL_PLACEHOLDERS = ['track', 'version', 'namespace', 'window'];
/** The window's bounds in epoch seconds, which only the web provider's URLs take. */
export const TIME_PLACEHOLDERS = ['start', 'end'];

/** The names of the {{placeholders}} a query uses. */
export const placeholdersIn = (q: string) => [...q.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)].map((m) => m[1]);

/** The influxdb provider: an InfluxDB 1.x server, its database, and the variables holding its credentials. */
export const influxdbSettings = z
  .strictObject({
    url,
    database: z.string().min(1).max(255),
    usernameEnv: envName.optional(),
    passwordEnv: envName.optional(),
  })
  .refine((i) => (i.usernameEnv === undefined) === (i.passwordEnv === undefined), {
    message: 'give both usernameEnv and passwordEnv, or neither',
    path: ['usernameEnv'],
  });

/** The graphite provider: graphite-web's base URL (its render API). */
export const graphiteSettings = z.strictObject({ url });

/** An HTTP header name (an RFC 9110 token). */
const headerName = z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$/, 'an HTTP header name such as DD-API-KEY');

/** The web provider: headers sent with every request, as header name -> the variable holding its value. */
export const webSettings = z.strictObject({ headers: z.record(headerName, envName).default({}) });

/**
 * The settings the chosen metrics provider needs: its own section (or
 * prometheusUrl); for web a URL and a JSONPath per metric; {{start}} and
 * {{end}} only in web URLs.
 */
export function providerSettingsProblems(
  a: {
    provider: (typeof METRICS_PROVIDERS)[number];
    prometheusUrl?: string;
    influxdb?: unknown;
    graphite?: unknown;
    metrics: {
      query: string;
      jsonPath?: string;
      samplesQuery?: string;
      samplesJsonPath?: string;
      kind?: 'threshold' | 'compare';
    }[];
  },
  ctx: z.RefinementCtx,
): void {
  const need = { prometheus: 'prometheusUrl', influxdb: 'influxdb', graphite: 'graphite', web: undefined }[a.provider];
  if (need && a[need as 'prometheusUrl' | 'influxdb' | 'graphite'] === undefined)
    ctx.addIssue({ code: 'custom', path: [need], message: `required when provider is ${a.provider}` });
  a.metrics.forEach((m, i) => {
    for (const field of ['query', 'samplesQuery'] as const) {
      const q = m[field];
      if (q === undefined) continue;
      if (a.provider !== 'web' && placeholdersIn(q).some((p) => TIME_PLACEHOLDERS.includes(p)))
        ctx.addIssue({
          code: 'custom',
          path: ['metrics', i, field],
          message: `{{start}} and {{end}} are filled in the web provider's URLs only, not with provider ${a.provider}`,
        });
      if (a.provider === 'web' && !/^https?:\/\/[^\s]+$/i.test(q))
        ctx.addIssue({
          code: 'custom',
          path: ['metrics', i, field],
          message: 'with provider web, an http(s) URL template such as https://api.example.com/v1/query?q=...',
        });
    }
    if (a.provider === 'web' && m.jsonPath === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['metrics', i, 'jsonPath'],
        message: 'required with provider web: the JSONPath of the value, e.g. $.errorRate',
      });
    // A compare metric reads samples: without their JSONPath it could never be anything but inconclusive.
    if (a.provider === 'web' && m.kind === 'compare' && m.samplesJsonPath === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['metrics', i, 'samplesJsonPath'],
        message: 'required for a compare metric with provider web: the JSONPath of the samples, e.g. $.history[*].p95',
      });
  });
}

/** Prometheus answers at most this many points per series of a range query. */
const MAX_POINTS = 11_000;

/**
 * A compare metric's step against the analysis window: enough samples for
 * its minSamples, and not more than a range query may return.
 */
export function compareWindowProblems(
  a: {
    window: string;
    metrics: { kind?: 'threshold' | 'compare'; compare?: { step: string; minSamples: number } }[];
  },
  ctx: z.RefinementCtx,
): void {
  const ms = (d: string) => parseDuration(d);
  a.metrics.forEach((m, i) => {
    if (m.kind !== 'compare') return;
    const step = m.compare?.step ?? '10s';
    const minSamples = m.compare?.minSamples ?? 5;
    const samples = Math.floor(ms(a.window) / ms(step)) + 1;
    if (samples < minSamples)
      ctx.addIssue({
        code: 'custom',
        path: ['metrics', i, 'compare', 'step'],
        message: `a window of ${a.window} in steps of ${step} gives ${samples} samples, fewer than minSamples ${minSamples}: shorten the step or lengthen analysis.window`,
      });
    else if (samples > MAX_POINTS)
      ctx.addIssue({
        code: 'custom',
        path: ['metrics', i, 'compare', 'step'],
        message: `a window of ${a.window} in steps of ${step} asks for ${samples} samples, more than a range query returns (${MAX_POINTS}): lengthen the step`,
      });
  });
}

/** One analysis metric: its query in the provider's language, its thresholds or comparison, its rules. */
export const metricSchema = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][-a-z0-9_]{0,62}$/),
    /**
     * The provider's query (PromQL, InfluxQL, a Graphite target, a URL) with
     * {{track}}, {{version}}, {{namespace}} and {{window}} placeholders.
     * It must return one series (aggregate with sum/max); {{version}} is the
     * version running on the track, so a stable-track query that uses it needs
     * the workflow to pass the stable version.
     */
    query: z
      .string()
      .min(1)
      .max(4096)
      .refine((q) => placeholdersIn(q).every((p) => [...PROMQL_PLACEHOLDERS, ...TIME_PLACEHOLDERS].includes(p)), {
        message:
          'placeholders must be {{track}}, {{version}}, {{namespace}} or {{window}} ({{start}}, {{end}} in web URLs)',
      }),
    /** The measurement passes when value <= max (and >= min when set). */
    max: z.number().finite().optional(),
    min: z.number().finite().optional(),
    unit: z.string().max(16).optional(),
    /** Optional relative check: canary value <= stable value * maxRatioToStable. */
    maxRatioToStable: z.number().positive().optional(),
    ...metricRuleFields,
    /**
     * The query samples are read with (canary against stable), when it differs
     * from `query`: InfluxDB's samples need one row per step (`GROUP BY
     * time({{step}})`), and a web endpoint may serve its history elsewhere.
     * {{step}} is filled here only.
     */
    samplesQuery: z
      .string()
      .min(1)
      .max(4096)
      .refine(
        (q) => placeholdersIn(q).every((p) => [...PROMQL_PLACEHOLDERS, ...TIME_PLACEHOLDERS, 'step'].includes(p)),
        {
          message:
            'placeholders must be {{track}}, {{version}}, {{namespace}}, {{window}} or {{step}} ({{start}}, {{end}} in web URLs)',
        },
      )
      .optional(),
    /** web provider: the JSONPath (jsonpath-plus, no script) of the one number in the answer, e.g. $.errorRate. */
    jsonPath: z.string().min(1).max(1024).optional(),
    /** web provider: the JSONPath of the samples, one array or several numbers, e.g. $.history[*].errorRate. */
    samplesJsonPath: z.string().min(1).max(1024).optional(),
  })
  .superRefine(metricRuleProblems);
