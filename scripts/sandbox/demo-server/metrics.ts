/** The metrics store and its Prometheus exposition (rendering is pure). */
import { DURATION_BUCKETS, TRACKS, type Track, type TrackWeights } from './types';

/** The labels that identify one request series. */
export interface SeriesLabels {
  service: string;
  track: Track;
  version: string;
}

/** One http_requests_total series. */
export interface RequestCounter {
  labels: SeriesLabels & { code: string };
  value: number;
}

/** One http_request_duration_seconds series. */
export interface DurationHistogram {
  labels: SeriesLabels;
  /** Cumulative counts, one per DURATION_BUCKETS entry (the +Inf bucket is `count`). */
  buckets: number[];
  sum: number;
  count: number;
}

/** Everything one scrape renders. */
export interface MetricsSnapshot {
  requests: RequestCounter[];
  durations: DurationHistogram[];
  weights: TrackWeights;
  faultErrorRates: Record<Track, number>;
}

/** In-memory counters that only ever increase while the process runs. */
export class TrafficMetrics {
  private readonly requests = new Map<string, RequestCounter>();
  private readonly durations = new Map<string, DurationHistogram>();

  /** Counts one request in its counter and histogram series. */
  record(labels: SeriesLabels, code: number, latencySeconds: number): void {
    const seriesKey = `${labels.service}\u0000${labels.track}\u0000${labels.version}`;
    const counterKey = `${seriesKey}\u0000${code}`;
    const counter = this.requests.get(counterKey) ?? { labels: { ...labels, code: String(code) }, value: 0 };
    counter.value += 1;
    this.requests.set(counterKey, counter);

    const histogram = this.durations.get(seriesKey) ?? {
      labels: { ...labels },
      buckets: DURATION_BUCKETS.map(() => 0),
      sum: 0,
      count: 0,
    };
    DURATION_BUCKETS.forEach((le, i) => {
      if (latencySeconds <= le) histogram.buckets[i] += 1;
    });
    histogram.sum += latencySeconds;
    histogram.count += 1;
    this.durations.set(seriesKey, histogram);
  }

  /** Copies, so a render never sees a half-updated series. */
  snapshot(): Pick<MetricsSnapshot, 'requests' | 'durations'> {
    return {
      requests: [...this.requests.values()].map((c) => ({ labels: { ...c.labels }, value: c.value })),
      durations: [...this.durations.values()].map((h) => ({
        labels: { ...h.labels },
        buckets: [...h.buckets],
        sum: h.sum,
        count: h.count,
      })),
    };
  }
}

/** Label values escape backslash, double quote and newline per the exposition format. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatLabels(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  return `{${parts.join(',')}}`;
}

function formatNumber(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return Number.isNaN(value) ? 'NaN' : String(value);
}

function seriesOrder(a: SeriesLabels, b: SeriesLabels): number {
  return a.service.localeCompare(b.service) || a.track.localeCompare(b.track) || a.version.localeCompare(b.version);
}

function sample(name: string, labels: Record<string, string>, value: number): string {
  return `${name}${formatLabels(labels)} ${formatNumber(value)}`;
}

function header(name: string, type: 'counter' | 'histogram' | 'gauge', help: string): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
}

function trackGauge(name: string, help: string, values: Record<Track, number>): string[] {
  return [...header(name, 'gauge', help), ...TRACKS.map((track) => sample(name, { track }, values[track]))];
}

/** Prometheus text exposition format 0.0.4, written by hand. */
export function renderMetrics(snapshot: MetricsSnapshot): string {
  const lines = header('http_requests_total', 'counter', 'Synthetic HTTP requests served, by track and status code.');
  const requests = [...snapshot.requests].sort(
    (a, b) => seriesOrder(a.labels, b.labels) || a.labels.code.localeCompare(b.labels.code),
  );
  for (const { labels, value } of requests) {
    // Rebuilt so extra keys never leak into the output and label order stays fixed.
    const { service, track, version, code } = labels;
    lines.push(sample('http_requests_total', { service, track, version, code }, value));
  }

  lines.push(...header('http_request_duration_seconds', 'histogram', 'Synthetic HTTP request latency.'));
  const durations = [...snapshot.durations].sort((a, b) => seriesOrder(a.labels, b.labels));
  for (const histogram of durations) {
    const { service, track, version } = histogram.labels;
    const base = { service, track, version };
    DURATION_BUCKETS.forEach((le, i) =>
      lines.push(
        sample('http_request_duration_seconds_bucket', { ...base, le: formatNumber(le) }, histogram.buckets[i]),
      ),
    );
    lines.push(sample('http_request_duration_seconds_bucket', { ...base, le: '+Inf' }, histogram.count));
    lines.push(sample('http_request_duration_seconds_sum', base, histogram.sum));
    lines.push(sample('http_request_duration_seconds_count', base, histogram.count));
  }

  lines.push(...trackGauge('demo_traffic_weight', 'Traffic weight (percent) in use per track.', snapshot.weights));
  lines.push(...trackGauge('demo_fault_error_rate', 'Injected error probability per track.', snapshot.faultErrorRates));
  return `${lines.join('\n')}\n`;
}
