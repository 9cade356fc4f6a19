/**
 * The Mann-Whitney U test (Wilcoxon rank-sum), which Kayenta's judge uses to
 * tell whether a canary's samples are worse than stable's without assuming
 * any distribution. Exact p-values for small samples without ties (as R's
 * wilcox.test does below 50 per side), otherwise the normal approximation
 * with tie and continuity corrections (as R and SciPy do). Pure.
 */
import { errorFunction } from 'simple-statistics';

/** `greater`: x tends to be larger than y; `less`: smaller; `two-sided`: either. */
export type Alternative = 'greater' | 'less' | 'two-sided';

export interface UTest {
  /** U of the first sample: pairs (x, y) with x > y, ties counting one half. */
  u: number;
  pValue: number;
  method: 'exact' | 'normal';
  n1: number;
  n2: number;
}

/** Samples this size or larger on either side, or any tie, use the normal approximation. */
const EXACT_BELOW = 50;

/** Ranks 1..n of the pooled values, ties given the mean of the ranks they span; with the tie group sizes. */
function ranks(values: number[]): { ranks: number[]; ties: number[] } {
  const order = values.map((v, i) => ({ v, i })).sort((a, b) => a.v - b.v);
  const out = new Array<number>(values.length);
  const ties: number[] = [];
  for (let start = 0; start < order.length;) {
    let end = start;
    while (end + 1 < order.length && order[end + 1].v === order[start].v) end++;
    const mean = (start + end) / 2 + 1;
    for (let k = start; k <= end; k++) out[order[k].i] = mean;
    if (end > start) ties.push(end - start + 1);
    start = end + 1;
  }
  return { ranks: out, ties };
}

/** Standard normal CDF. */
function phi(z: number): number {
  return 0.5 * (1 + errorFunction(z / Math.SQRT2));
}

/**
 * Counts of each U in 0..n1*n2 over all arrangements of n1 x's and n2 y's
 * (no ties), by the recurrence f(m, n, u) = f(m-1, n, u-n) + f(m, n-1, u).
 */
function uDistribution(n1: number, n2: number): number[] {
  // prev[n][u] for m-1, rebuilt for each m.
  let prev: number[][] = Array.from({ length: n2 + 1 }, () => [1]);
  for (let m = 1; m <= n1; m++) {
    const next: number[][] = [];
    for (let n = 0; n <= n2; n++) {
      const size = m * n + 1;
      const row = new Array<number>(size).fill(0);
      for (let u = 0; u < size; u++) {
        const withX = u - n >= 0 ? (prev[n][u - n] ?? 0) : 0;
        const withY = n > 0 ? (next[n - 1][u] ?? 0) : 0;
        row[u] = withX + withY;
      }
      next.push(row);
    }
    prev = next;
  }
  return prev[n2];
}

function exactP(u: number, n1: number, n2: number, alternative: Alternative): number {
  const counts = uDistribution(n1, n2);
  const total = counts.reduce((a, b) => a + b, 0);
  const atLeast = counts.slice(Math.ceil(u)).reduce((a, b) => a + b, 0) / total;
  const atMost = counts.slice(0, Math.floor(u) + 1).reduce((a, b) => a + b, 0) / total;
  if (alternative === 'greater') return atLeast;
  if (alternative === 'less') return atMost;
  return Math.min(1, 2 * Math.min(atLeast, atMost));
}

function normalP(u: number, n1: number, n2: number, ties: number[], alternative: Alternative): number {
  const n = n1 + n2;
  const mean = (n1 * n2) / 2;
  const tieTerm = ties.reduce((s, t) => s + (t * t * t - t), 0) / (n * (n - 1));
  const sigma = Math.sqrt(((n1 * n2) / 12) * (n + 1 - tieTerm));
  // Every value tied: no evidence either way.
  if (!(sigma > 0)) return 1;
  if (alternative === 'greater') return 1 - phi((u - mean - 0.5) / sigma);
  if (alternative === 'less') return phi((u - mean + 0.5) / sigma);
  return Math.min(1, 2 * (1 - phi((Math.abs(u - mean) - 0.5) / sigma)));
}

/**
 * Tests whether x tends to be greater than (less than, different from) y.
 * Needs at least one value on each side; values must be finite.
 */
export function mannWhitneyU(
  x: readonly number[],
  y: readonly number[],
  alternative: Alternative,
  method?: 'exact' | 'normal',
): UTest {
  if (x.length === 0 || y.length === 0) throw new RangeError('the U test needs at least one value in each sample');
  if (![...x, ...y].every(Number.isFinite)) throw new RangeError('the U test takes finite values only');
  const n1 = x.length;
  const n2 = y.length;
  const { ranks: r, ties } = ranks([...x, ...y]);
  const rankSumX = r.slice(0, n1).reduce((a, b) => a + b, 0);
  const u = rankSumX - (n1 * (n1 + 1)) / 2;
  const chosen = method ?? (ties.length === 0 && n1 < EXACT_BELOW && n2 < EXACT_BELOW ? 'exact' : 'normal');
  const pValue = chosen === 'exact' ? exactP(u, n1, n2, alternative) : normalP(u, n1, n2, ties, alternative);
  return { u, pValue: Math.min(1, Math.max(0, pValue)), method: chosen, n1, n2 };
}
