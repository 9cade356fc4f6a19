/**
 * Canary against stable, not only against thresholds (Kayenta's judge):
 * the same metric's samples from both tracks over the same window, compared
 * with a one-sided Mann-Whitney U test. Two questions, both at the configured
 * confidence:
 *   - fail: is the canary worse than stable by more than the allowed
 *     degradation? (canary against stable's samples scaled by 1 + allowed)
 *   - marginal: is it worse at all? (canary against stable as measured)
 * Neither: pass. Too few samples on either side: inconclusive. Pure.
 */
import { median } from 'simple-statistics';
import { mannWhitneyU, type Alternative } from './mann-whitney';

export interface CompareSettings {
  /** e.g. 0.95: a verdict of worse needs p < 1 - confidence. */
  confidence: number;
  /** Allowed relative degradation, e.g. 0.1: canary up to 10% worse than stable passes. */
  maxDegradation: number;
  /** Latency and error rates are worse when higher; throughput and success rates when lower. */
  direction: 'higher-is-worse' | 'lower-is-worse';
  /** Fewer samples than this on either side is inconclusive. */
  minSamples: number;
}

export type CompareVerdict = 'pass' | 'marginal' | 'fail' | 'inconclusive';

/** What the status records of one comparison: the verdict and its evidence. */
export interface Comparison {
  verdict: CompareVerdict;
  /** U of the canary against stable scaled by the allowed degradation (the fail test). */
  u?: number;
  /** p-value of the fail test. */
  pValue?: number;
  /** p-value of the canary against stable as measured (the marginal test). */
  pWorse?: number;
  method?: 'exact' | 'normal';
  canaryMedian?: number;
  stableMedian?: number;
  canarySamples: number;
  stableSamples: number;
  /** One line for people: what was compared and what it showed. */
  detail: string;
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : Number(n.toPrecision(3)).toString();
}

/** Judges canary samples against stable samples of the same metric and window. */
export function compareSamples(canary: readonly number[], stable: readonly number[], s: CompareSettings): Comparison {
  const counts = { canarySamples: canary.length, stableSamples: stable.length };
  if (canary.length < s.minSamples || stable.length < s.minSamples) {
    return {
      verdict: 'inconclusive',
      ...counts,
      detail: `too few samples (canary ${canary.length}, stable ${stable.length}; need ${s.minSamples} each)`,
    };
  }
  const worse: Alternative = s.direction === 'higher-is-worse' ? 'greater' : 'less';
  const factor = s.direction === 'higher-is-worse' ? 1 + s.maxDegradation : 1 - s.maxDegradation;
  const failTest = mannWhitneyU(
    canary,
    stable.map((v) => v * factor),
    worse,
  );
  const worseTest = mannWhitneyU(canary, stable, worse);
  const alpha = 1 - s.confidence;
  const verdict: CompareVerdict = failTest.pValue < alpha ? 'fail' : worseTest.pValue < alpha ? 'marginal' : 'pass';
  const canaryMedian = median([...canary]);
  const stableMedian = median([...stable]);
  const allowed = `${fmt(s.maxDegradation * 100)}% ${s.direction === 'higher-is-worse' ? 'higher' : 'lower'}`;
  const said =
    verdict === 'fail'
      ? `worse than stable by more than ${allowed}`
      : verdict === 'marginal'
        ? `worse than stable, within ${allowed}`
        : `not worse than stable`;
  return {
    verdict,
    u: failTest.u,
    pValue: failTest.pValue,
    pWorse: worseTest.pValue,
    method: failTest.method,
    canaryMedian,
    stableMedian,
    ...counts,
    detail:
      `canary ${said} at ${fmt(s.confidence * 100)}% confidence ` +
      `(median ${fmt(canaryMedian)} vs ${fmt(stableMedian)}; Mann-Whitney U ${fmt(failTest.u)}, ` +
      `p ${fmt(failTest.pValue)}, n ${canary.length}/${stable.length})`,
  };
}
