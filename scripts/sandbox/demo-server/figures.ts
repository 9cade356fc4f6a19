/**
 * Per-track figures of the synthetic traffic, interval by interval (every
 * 2 s): requests, errors, error rate and P95 latency, per track and version.
 * The same figures Prometheus computes from /metrics, here for the backends
 * that are written to (InfluxDB, Carbon: feeds.ts) and for the JSON endpoint
 * the web metrics provider reads (GET /api/metrics). Pure but for the clock
 * the caller passes in.
 */
import type { Track } from './types';

/** The figures of one track and version over one interval (or over a window). */
export interface IntervalFigures {
  /** End of the interval, ms since the epoch. */
  at: number;
  track: Track;
  version: string;
  requests: number;
  errors: number;
  /** errors / requests; null without requests. */
  errorRate: number | null;
  /** null without requests. */
  p95LatencyMs: number | null;
}

/** The 95th percentile (nearest rank) of `values`, or null when there are none. */
export function p95(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.95 * sorted.length) - 1)];
}

interface Bucket {
  track: Track;
  version: string;
  latenciesMs: number[];
  errors: number;
}

/** One closed interval as kept in the history: its figures and its latencies (for a window's P95). */
interface Closed extends IntervalFigures {
  latenciesMs: number[];
}

export class TrackFigures {
  private open = new Map<string, Bucket>();
  private history: Closed[] = [];

  /** @param keepMs how long closed intervals are kept for windows and history (default 5 minutes). */
  constructor(private readonly keepMs = 5 * 60_000) {}

  record(track: Track, version: string, code: number, latencySeconds: number): void {
    const key = `${track}\u0000${version}`;
    const bucket = this.open.get(key) ?? { track, version, latenciesMs: [], errors: 0 };
    bucket.latenciesMs.push(latencySeconds * 1000);
    if (code >= 500) bucket.errors += 1;
    this.open.set(key, bucket);
  }

  /** Closes the current interval at `now`: its figures, one per track and version that served requests. */
  flush(now: number): IntervalFigures[] {
    const closed = [...this.open.values()].map((b): Closed => ({
      at: now,
      track: b.track,
      version: b.version,
      requests: b.latenciesMs.length,
      errors: b.errors,
      errorRate: b.errors / b.latenciesMs.length,
      p95LatencyMs: p95(b.latenciesMs),
      latenciesMs: b.latenciesMs,
    }));
    this.open = new Map();
    this.history.push(...closed);
    this.history = this.history.filter((c) => c.at > now - this.keepMs);
    return closed.map(({ latenciesMs: _omitted, ...figures }) => figures);
  }

  /**
   * A track's figures over the last `windowMs` (optionally of one version):
   * totals, P95 of every request in the window, and each interval's figures,
   * oldest first (several versions of an interval are combined).
   */
  window(
    track: Track,
    windowMs: number,
    now: number,
    version?: string,
  ): Omit<IntervalFigures, 'version' | 'at'> & { history: Omit<IntervalFigures, 'track' | 'version'>[] } {
    const picked = this.history.filter(
      (c) => c.track === track && c.at > now - windowMs && (version === undefined || c.version === version),
    );
    const byAt = new Map<number, Closed[]>();
    for (const c of picked) byAt.set(c.at, [...(byAt.get(c.at) ?? []), c]);
    const combine = (list: Closed[]) => {
      const latencies = list.flatMap((c) => c.latenciesMs);
      const errors = list.reduce((n, c) => n + c.errors, 0);
      return {
        requests: latencies.length,
        errors,
        errorRate: latencies.length ? errors / latencies.length : null,
        p95LatencyMs: p95(latencies),
      };
    };
    return {
      track,
      ...combine(picked),
      history: [...byAt.entries()].sort(([a], [b]) => a - b).map(([at, list]) => ({ at, ...combine(list) })),
    };
  }
}
