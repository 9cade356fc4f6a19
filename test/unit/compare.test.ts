import { compareSamples, type CompareSettings } from '../../src/domain/compare';
import { mannWhitneyU } from '../../src/domain/mann-whitney';

describe('mannWhitneyU against published values', () => {
  // R's wilcox.test documentation: wilcox.test(x, y, alternative = "g") gives W = 35, p-value = 0.1272.
  const x = [0.8, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46];
  const y = [1.15, 0.88, 0.9, 0.74, 1.21];

  test('exact, one-sided (R: W = 35, p = 0.1272)', () => {
    const r = mannWhitneyU(x, y, 'greater');
    expect(r.method).toBe('exact');
    expect(r.u).toBe(35);
    expect(r.pValue).toBeCloseTo(0.1272061272, 8);
  });

  // SciPy's mannwhitneyu documentation: males against females, U1 = 17, exact p = 0.1111,
  // asymptotic p = 0.11134688653314041.
  const males = [19, 22, 16, 29, 24];
  const females = [20, 11, 17, 12];

  test('exact, two-sided (SciPy: U1 = 17, p = 0.1111)', () => {
    const r = mannWhitneyU(males, females, 'two-sided');
    expect(r.u).toBe(17);
    expect(r.pValue).toBeCloseTo(1 / 9, 10);
  });

  test('normal approximation with continuity correction (SciPy: p = 0.111347)', () => {
    const r = mannWhitneyU(males, females, 'two-sided', 'normal');
    expect(r.u).toBe(17);
    expect(r.pValue).toBeCloseTo(0.11134688653314041, 6);
  });

  test('ties: averaged ranks and the tie-corrected variance (SciPy: U = 7.5, p = 0.0031866 one-sided)', () => {
    const a = [1, 2, 2, 3, 3, 3, 4, 5];
    const b = [3, 4, 4, 5, 5, 6, 7, 7, 8];
    const less = mannWhitneyU(a, b, 'less');
    expect(less.method).toBe('normal');
    expect(less.u).toBe(7.5);
    expect(less.pValue).toBeCloseTo(0.0031865669190429364, 6);
    expect(mannWhitneyU(a, b, 'two-sided').pValue).toBeCloseTo(0.006373133838085873, 6);
  });

  test('the exact and normal p-values agree closely for larger samples', () => {
    const a = Array.from({ length: 30 }, (_, i) => i * 1.7 + 0.3);
    const b = Array.from({ length: 25 }, (_, i) => i * 1.9 + 5.1);
    const exact = mannWhitneyU(a, b, 'less', 'exact');
    const normal = mannWhitneyU(a, b, 'less', 'normal');
    expect(exact.method).toBe('exact');
    expect(Math.abs(exact.pValue - normal.pValue)).toBeLessThan(0.01);
  });

  test('every value equal gives no evidence; empty or non-finite samples are refused', () => {
    expect(mannWhitneyU([1, 1, 1], [1, 1], 'greater').pValue).toBe(1);
    expect(() => mannWhitneyU([], [1], 'greater')).toThrow(RangeError);
    expect(() => mannWhitneyU([Number.NaN], [1], 'greater')).toThrow('finite');
  });
});

describe('compareSamples: canary against stable', () => {
  const settings: CompareSettings = {
    confidence: 0.95,
    maxDegradation: 0.1,
    direction: 'higher-is-worse',
    minSamples: 5,
  };
  // Twelve P95 samples of a stable track around 115 ms, and the same shape shifted.
  const stable = [112, 118, 109, 121, 115, 117, 111, 119, 114, 116, 113, 120];
  const scaled = (f: number) => stable.map((v) => v * f);

  test('30% slower fails: worse by more than the 10% allowed', () => {
    const c = compareSamples(scaled(1.3), stable, settings);
    expect(c.verdict).toBe('fail');
    expect(c.pValue).toBeLessThan(0.05);
    expect(c.detail).toContain('worse than stable by more than 10% higher');
    expect(c.canaryMedian).toBeCloseTo(115.5 * 1.3, 6);
  });

  test('an identical canary passes', () => {
    const c = compareSamples([...stable], stable, settings);
    expect(c.verdict).toBe('pass');
    expect(c.pWorse).toBeGreaterThan(0.05);
  });

  test('5% slower is marginal: worse, but within what is allowed', () => {
    const c = compareSamples(scaled(1.05), stable, settings);
    expect(c.verdict).toBe('marginal');
    expect(c.pValue).toBeGreaterThanOrEqual(0.05);
    expect(c.pWorse).toBeLessThan(0.05);
  });

  test('faster is not worse; lower-is-worse turns the question around', () => {
    expect(compareSamples(scaled(0.7), stable, settings).verdict).toBe('pass');
    const lower = { ...settings, direction: 'lower-is-worse' as const };
    expect(compareSamples(scaled(0.7), stable, lower).verdict).toBe('fail');
    expect(compareSamples(scaled(1.3), stable, lower).verdict).toBe('pass');
  });

  test('too few samples on either side is inconclusive, saying how many', () => {
    const c = compareSamples([1, 2, 3], stable, settings);
    expect(c).toMatchObject({ verdict: 'inconclusive', canarySamples: 3, stableSamples: 12 });
    expect(c.detail).toBe('too few samples (canary 3, stable 12; need 5 each)');
  });

  test('error rates of zero on both sides pass (all tied)', () => {
    expect(compareSamples([0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0], settings).verdict).toBe('pass');
    expect(compareSamples([0.2, 0.3, 0.25, 0.2, 0.3, 0.28], [0, 0, 0, 0, 0, 0], settings).verdict).toBe('fail');
  });
});
