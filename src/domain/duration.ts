/**
 * Durations as people write them in config, CLI flags and workflow input
 * ("300ms", "30s", "5m", "1h30m", "2d"), kept as milliseconds everywhere else
 * so that workflow code never parses strings twice.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_RE = /^(?:(\d{1,9})(ms|s|m|h|d))+$/;
const PART_RE = /(\d{1,9})(ms|s|m|h|d)/g;

export class DurationError extends Error {}

/** Parses "5m" or "1h30m" (or a number of milliseconds) into milliseconds. */
export function parseDuration(input: unknown, what = 'duration'): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0 || !Number.isInteger(input)) {
      throw new DurationError(`${what} must be a whole, non-negative number of milliseconds, got ${String(input)}`);
    }
    return input;
  }
  if (typeof input !== 'string' || input.length > 40 || !DURATION_RE.test(input)) {
    throw new DurationError(`${what} must look like "30s", "5m" or "1h30m", got ${JSON.stringify(input)}`);
  }
  let total = 0;
  for (const m of input.matchAll(PART_RE)) total += Number(m[1]) * UNIT_MS[m[2]];
  return total;
}

/** Formats milliseconds the way people read them: "5m", "1h30m", "2.5s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Number((ms / 1000).toFixed(1))}s`;
  const parts: string[] = [];
  let rest = Math.round(ms / 1000);
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return parts.join('');
}
