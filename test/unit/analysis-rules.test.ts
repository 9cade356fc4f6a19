import { measurementLine, runOutcome } from '../../src/domain/analysis';
import {
  applicableMetrics,
  dueMetrics,
  metricRulesOf,
  tallyByMetric,
  type MetricRules,
  type MetricTallies,
  type MetricVerdict,
} from '../../src/domain/analysis-rules';
import type { AnalysisRun, Measurement } from '../../src/domain/status';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../../src/domain/config';
import { REPO_ROOT } from '../helpers/tools';

const defaults = { failureLimit: 0, inconclusiveLimit: 2 };
const BOTH = ['canary', 'stable'];

function m(metric: string, outcome: Measurement['outcome'], extra: Partial<Measurement> = {}): Measurement {
  return { metric, track: 'canary', value: outcome === 'pass' ? 1 : null, outcome, ...extra };
}
function run(...measurements: Measurement[]): AnalysisRun {
  return { at: '2026-12-01T00:00:00Z', outcome: runOutcome(measurements), measurements };
}

describe('metricRulesOf: per-metric counting only when a metric asks for it', () => {
  test('no rule anywhere: undefined, so whole runs are counted as before', () => {
    expect(metricRulesOf([{ name: 'a' }, { name: 'b', kind: 'threshold' }], defaults)).toBeUndefined();
  });

  test('one rule: every metric gets its limits, the unset ones from the analysis defaults', () => {
    expect(
      metricRulesOf(
        [
          { name: 'a', failureLimit: 2, count: 3, interval: 30_000 },
          { name: 'b', dryRun: true },
        ],
        defaults,
      ),
    ).toEqual({
      a: {
        failureLimit: 2,
        inconclusiveLimit: 2,
        consecutiveErrorLimit: 4,
        count: 3,
        intervalMs: 30_000,
        dryRun: false,
      },
      b: { failureLimit: 0, inconclusiveLimit: 2, consecutiveErrorLimit: 4, dryRun: true },
    });
    expect(metricRulesOf([{ name: 'c', kind: 'compare' }], defaults)).toHaveProperty('c.consecutiveErrorLimit', 4);
  });
});

describe('dueMetrics: count and interval', () => {
  const rules: MetricRules = {
    every: { failureLimit: 0, inconclusiveLimit: 2, consecutiveErrorLimit: 4, dryRun: false },
    twice: { failureLimit: 0, inconclusiveLimit: 2, consecutiveErrorLimit: 4, count: 2, dryRun: false },
    slow: { failureLimit: 0, inconclusiveLimit: 2, consecutiveErrorLimit: 4, intervalMs: 60_000, dryRun: false },
  };

  test('all are due at first; a counted-out metric never again; an interval waits', () => {
    expect(dueMetrics(rules, {}, 0, BOTH)).toEqual(['every', 'twice', 'slow']);
    const tallies: MetricTallies = {
      every: { measured: 5, failed: 0, inconclusive: 0, consecutiveErrors: 0, lastAtMs: 0 },
      twice: { measured: 2, failed: 0, inconclusive: 0, consecutiveErrors: 0, lastAtMs: 0 },
      slow: { measured: 1, failed: 0, inconclusive: 0, consecutiveErrors: 0, lastAtMs: 0 },
    };
    expect(dueMetrics(rules, tallies, 30_000, BOTH)).toEqual(['every']);
    expect(dueMetrics(rules, tallies, 60_000, BOTH)).toEqual(['every', 'slow']);
  });
});

describe('tallyByMetric: each metric against its own limits', () => {
  const rule = { failureLimit: 1, inconclusiveLimit: 1, consecutiveErrorLimit: 2, dryRun: false };
  const rules: MetricRules = { latency: rule, errors: rule, shadow: { ...rule, failureLimit: 0, dryRun: true } };

  function replay(runs: AnalysisRun[]) {
    let tallies: MetricTallies = {};
    const verdicts: string[] = [];
    let last: MetricVerdict | undefined;
    for (const [i, r] of runs.entries()) {
      const asked = [...new Set(r.measurements.map((x) => x.metric.replace(/ vs stable$/, '')))];
      last = tallyByMetric(tallies, r, rules, i * 1000, asked);
      tallies = last.tallies;
      verdicts.push(last.verdict);
    }
    if (!last) throw new Error('no runs');
    return { verdicts, last, tallies };
  }

  test('failures of different metrics are not added together (unlike whole runs)', () => {
    const { verdicts } = replay([run(m('latency', 'fail')), run(m('errors', 'fail')), run(m('latency', 'pass'))]);
    expect(verdicts).toEqual(['continue', 'continue', 'continue']);
  });

  test('a metric past its failureLimit fails the analysis, naming it', () => {
    const { verdicts, last } = replay([
      run(m('latency', 'fail', { reason: '130 ms > 100 ms' })),
      run(m('latency', 'fail', { reason: '140 ms > 100 ms' })),
    ]);
    expect(verdicts).toEqual(['continue', 'fail']);
    expect(last).toMatchObject({
      verdict: 'fail',
      reason: 'analysis failed: latency failed 2 times (limit 1): latency[canary] 140 ms > 100 ms',
    });
  });

  test('inconclusive measurements count in total (Argo), not only in a row', () => {
    const { verdicts } = replay([
      run(m('errors', 'inconclusive')),
      run(m('errors', 'pass')),
      run(m('errors', 'inconclusive')),
    ]);
    expect(verdicts).toEqual(['continue', 'continue', 'fail']);
  });

  test('query errors count only in a row, against consecutiveErrorLimit, and not as inconclusive', () => {
    const err = () => m('latency', 'inconclusive', { error: true, reason: 'Prometheus unreachable' });
    const recovered = replay([run(err()), run(err()), run(m('latency', 'pass')), run(err()), run(err())]);
    expect(recovered.verdicts).toEqual(['continue', 'continue', 'continue', 'continue', 'continue']);
    expect(recovered.tallies.latency).toMatchObject({ inconclusive: 0, consecutiveErrors: 2 });
    const { last } = replay([run(err()), run(err()), run(err())]);
    expect(last.verdict).toBe('fail');
    expect(last).toHaveProperty('reason', expect.stringContaining('latency could not be queried 3 times in a row'));
  });

  test('a dry-run metric is measured and shown, never counted (its count and interval still hold)', () => {
    const { verdicts, tallies } = replay([
      run(m('shadow', 'fail', { dryRun: true })),
      run(m('shadow', 'fail', { dryRun: true })),
    ]);
    expect(verdicts).toEqual(['continue', 'continue']);
    expect(tallies.shadow).toMatchObject({ measured: 2, failed: 0 });
    const once = { shadow: { ...rules.shadow, count: 1 } };
    expect(dueMetrics(once, { shadow: tallies.shadow }, 10_000, BOTH)).toEqual([]);
    // The plan decides: a measurement the worker marks dry-run still counts for a metric the plan counts.
    expect(replay([run(m('latency', 'fail', { dryRun: true })), run(m('latency', 'fail'))]).verdicts).toEqual([
      'continue',
      'fail',
    ]);
    expect(runOutcome([m('shadow', 'fail', { dryRun: true })])).toBe('pass');
    expect(runOutcome([m('shadow', 'fail', { dryRun: true }), m('latency', 'inconclusive')])).toBe('inconclusive');
  });

  test('a metric asked for but not measured is inconclusive: nothing measured is never a pass', () => {
    let tallies: MetricTallies = {};
    const verdicts = [1, 2].map((i) => {
      const v = tallyByMetric(tallies, run(m('errors', 'pass')), rules, i, ['errors', 'latency']);
      tallies = v.tallies;
      return v.verdict;
    });
    expect(verdicts).toEqual(['continue', 'fail']);
    expect(tallies.latency).toMatchObject({ measured: 2, inconclusive: 2 });
  });

  test('a metric named like an Object method is counted like any other', () => {
    const own: MetricRules = { constructor: rule };
    let tallies: MetricTallies = {};
    const verdicts = [1, 2].map((i) => {
      const v = tallyByMetric(tallies, run(m('constructor', 'fail')), own, i, ['constructor']);
      tallies = v.tallies;
      return v.verdict;
    });
    expect(verdicts).toEqual(['continue', 'fail']);
    expect(dueMetrics(own, {}, 0, BOTH)).toEqual(['constructor']);
  });

  test('a compare metric is due only where both tracks run', () => {
    const withCompare: MetricRules = { latency: rule, p95: { ...rule, compare: true } };
    expect(dueMetrics(withCompare, {}, 0, BOTH)).toEqual(['latency', 'p95']);
    expect(dueMetrics(withCompare, {}, 0, ['stable'])).toEqual(['latency']);
    expect(applicableMetrics({ p95: { ...rule, compare: true } }, ['stable'])).toEqual([]);
  });

  test('a ratio comparison counts for its metric; the summary adds failures and shows the most inconclusive', () => {
    const { last } = replay([run(m('latency vs stable', 'fail'), m('errors', 'inconclusive'))]);
    expect(last.tallies.latency).toMatchObject({ measured: 1, failed: 1 });
    expect(last.summary).toEqual({ failedRuns: 1, consecutiveInconclusive: 1 });
  });
});

describe('config: per-metric rules and the compare kind', () => {
  const withMetric = ({ window, ...metric }: Record<string, unknown>) => {
    const r = parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8'));
    r.analysis.metrics = [metric];
    if (window) r.analysis.window = window;
    return parseConfig(r, 'deploy.config.yaml', {});
  };

  test('a compare metric with its settings loads; its defaults are filled in', () => {
    const cfg = withMetric({
      name: 'p95-vs-stable',
      kind: 'compare',
      query: 'histogram_quantile(0.95, sum by (le) (rate(x_bucket{track="{{track}}"}[15s])))',
      compare: { maxDegradation: 0.1 },
      failureLimit: 0,
    });
    expect(cfg.analysis.metrics[0]).toMatchObject({
      kind: 'compare',
      compare: { confidence: 0.95, maxDegradation: 0.1, direction: 'higher-is-worse', step: '10s', minSamples: 5 },
    });
  });

  test.each([
    [{ kind: 'compare', max: 1 }, /a compare metric judges canary against stable; max does not apply/],
    [{ max: 1, compare: { confidence: 0.9 } }, /compare settings need kind: compare/],
    [{ kind: 'compare', compare: { confidence: 1.5 } }, /confidence/],
    [{ max: 1, interval: 'soon' }, /interval/],
    [{ kind: 'compare', compare: { step: '0s' } }, /a step of at least 1s/],
    [
      { kind: 'compare', compare: { direction: 'lower-is-worse', maxDegradation: 1 } },
      /maxDegradation must be below 1/,
    ],
    [{ max: 1, count: 0 }, /count/],
    [{ kind: 'compare', compare: { step: '1m' } }, /gives 2 samples, fewer than minSamples 5/],
    [{ kind: 'compare', compare: { step: '1s' }, window: '4h' }, /more than a range query returns/],
  ])('refuses %j', (fields, message) => {
    expect(() => withMetric({ name: 'x', query: 'up', ...fields })).toThrow(message);
  });
});

describe('measurementLine: what deployctl status prints of a measurement', () => {
  test('a comparison shows its verdict and evidence; a dry run says it is not counted', () => {
    expect(
      measurementLine({
        metric: 'p95-vs-stable',
        track: 'canary',
        value: 149.5,
        outcome: 'fail',
        threshold: 'canary at most 10% higher than stable (95% confidence)',
        reason: 'canary worse than stable by more than 10% higher',
        comparison: {
          verdict: 'fail',
          u: 140,
          pValue: 0.00012,
          pWorse: 0.00001,
          method: 'exact',
          canaryMedian: 149.5,
          stableMedian: 118.75,
          canarySamples: 12,
          stableSamples: 12,
          detail: '',
        },
      }),
    ).toBe(
      'p95-vs-stable[canary] 149.5 fail (canary at most 10% higher than stable (95% confidence)): canary worse than stable by more than 10% higher [fail: U 140, p 0.00012, p(worse at all) 0.00001, medians 149.5 vs 118.8, n 12/12]',
    );
    expect(measurementLine(m('shadow', 'fail', { dryRun: true, reason: '9 > 1' }))).toBe(
      'shadow[canary] no data fail: 9 > 1 [dry run: not counted]',
    );
  });
});
