/**
 * Per-metric analysis rules as Argo Rollouts users know them (failureLimit,
 * inconclusiveLimit, consecutiveErrorLimit, count, interval, dryRun) and the
 * `compare` kind: canary against stable by a Mann-Whitney U test
 * (domain/compare.ts). Spread into the config's metric schema.
 */
import { z } from 'zod';
import { duration } from './config-fields';

const limit = z.number().int().min(0).max(1000);

/** A Prometheus-style step: one sample every this long. */
const step = z
  .string()
  .regex(/^[1-9]\d{0,5}(s|m|h)$/, 'a step of at least 1s, such as 10s or 1m')
  .default('10s');

export const compareSettingsSchema = z.strictObject({
  /** A verdict of worse needs p < 1 - confidence. */
  confidence: z.number().min(0.5).max(0.999).default(0.95),
  /** Allowed relative degradation: 0.1 lets the canary be up to 10% worse than stable. */
  maxDegradation: z.number().min(0).max(10).default(0.1),
  direction: z.enum(['higher-is-worse', 'lower-is-worse']).default('higher-is-worse'),
  /** One sample of the metric every step over the analysis window, on each track. */
  step,
  /** Fewer samples than this on either side is inconclusive. */
  minSamples: z.number().int().min(3).max(10_000).default(5),
});

export const metricRuleFields = {
  /** `threshold` (default): each track's value against min/max. `compare`: canary against stable (settings in `compare`). */
  kind: z.enum(['threshold', 'compare']).optional(),
  compare: compareSettingsSchema.optional(),
  /** Failed measurements of this metric tolerated before the analysis fails (default: analysis.failureLimit). */
  failureLimit: limit.optional(),
  /** Inconclusive measurements of this metric tolerated before the analysis fails (default: analysis.inconclusiveLimit). */
  inconclusiveLimit: limit.optional(),
  /** Query errors in a row tolerated before the analysis fails (default 4). */
  consecutiveErrorLimit: limit.optional(),
  /** Measure this metric at most this many times per analysis; then its verdict stands. */
  count: z.number().int().min(1).max(10_000).optional(),
  /** Measure this metric at most this often (at the next analysis run after it has passed). */
  interval: duration('metric interval', 1000, 24 * 3_600_000).optional(),
  /** Measured, recorded and shown; never fails the rollout. */
  dryRun: z.boolean().optional(),
};

/** What a metric's rule fields must agree on; issues are added to `ctx`. */
export function metricRuleProblems(
  m: {
    kind?: 'threshold' | 'compare';
    compare?: unknown;
    max?: number;
    min?: number;
    maxRatioToStable?: number;
  },
  ctx: z.RefinementCtx,
): void {
  if (m.kind === 'compare') {
    for (const key of ['max', 'min', 'maxRatioToStable'] as const) {
      if (m[key] !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: `a compare metric judges canary against stable; ${key} does not apply (use a threshold metric beside it)`,
        });
    }
    const c = m.compare as { direction?: string; maxDegradation?: number } | undefined;
    if (c?.direction === 'lower-is-worse' && (c.maxDegradation ?? 0) >= 1)
      ctx.addIssue({
        code: 'custom',
        path: ['compare', 'maxDegradation'],
        message: 'for lower-is-worse, maxDegradation must be below 1 (1 would allow the canary to drop to nothing)',
      });
  } else if (m.compare !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['compare'], message: 'compare settings need kind: compare' });
  }
}

/** The keys that switch an analysis to per-metric counting when any metric sets one. */
export const PER_METRIC_KEYS = [
  'failureLimit',
  'inconclusiveLimit',
  'consecutiveErrorLimit',
  'count',
  'interval',
  'dryRun',
] as const;
