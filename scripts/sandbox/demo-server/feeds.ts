/**
 * Writes each interval's per-track figures (figures.ts) to the metrics
 * backends the sandbox runs besides Prometheus: InfluxDB 1.x (line protocol
 * over HTTP /write) and Carbon (the plaintext protocol), so that the influxdb
 * and graphite metrics providers read real numbers. A backend that is down
 * loses those points and is reported once until it answers again: the
 * traffic never waits for it.
 */
import * as net from 'node:net';
import { graphiteSegment } from '../../../src/domain/graphite';
import type { IntervalFigures } from './figures';
import { describeError } from './util';

/** Where the figures go; either may be absent. */
export interface FeedTargets {
  influxdb?: { url: string; database: string; username?: string; password?: string };
  /** Carbon's plaintext receiver. */
  carbon?: { host: string; port: number };
}

/** The series the figures are written under: the InfluxDB measurement, the first Graphite path segments. */
export interface SeriesIdentity {
  namespace: string;
  service: string;
}

export const INFLUX_MEASUREMENT = 'requests';

/** A line-protocol tag value: comma, equals sign and space escaped. */
export function escapeTagValue(value: string): string {
  return value.replace(/[,= ]/g, (c) => `\\${c}`) || 'unknown';
}

function fields(f: IntervalFigures): [string, number, boolean][] {
  return [
    ['requests', f.requests, true],
    ['errors', f.errors, true],
    ...(f.errorRate === null ? [] : ([['error_rate', f.errorRate, false]] as [string, number, boolean][])),
    ...(f.p95LatencyMs === null ? [] : ([['p95_latency_ms', f.p95LatencyMs, false]] as [string, number, boolean][])),
  ];
}

/** One line of InfluxDB line protocol per track and version, timestamps in ms. */
export function influxLines(id: SeriesIdentity, figures: readonly IntervalFigures[]): string[] {
  return figures.map((f) => {
    const tags = { namespace: id.namespace, service: id.service, track: f.track, version: f.version };
    const tagText = Object.entries(tags)
      .map(([k, v]) => `${k}=${escapeTagValue(v)}`)
      .join(',');
    const fieldText = fields(f)
      .map(([k, v, integer]) => `${k}=${integer ? `${v}i` : String(v)}`)
      .join(',');
    return `${INFLUX_MEASUREMENT},${tagText} ${fieldText} ${f.at}`;
  });
}

/** The Graphite path of a figure: <namespace>.<service>.<track>.<version>.<figure>, each an inert segment. */
export function graphitePath(
  id: SeriesIdentity,
  f: Pick<IntervalFigures, 'track' | 'version'>,
  figure: string,
): string {
  return [id.namespace, id.service, f.track, f.version, figure].map(graphiteSegment).join('.');
}

/** Carbon plaintext lines, `<path> <value> <epoch seconds>`. */
export function carbonLines(id: SeriesIdentity, figures: readonly IntervalFigures[]): string[] {
  return figures.flatMap((f) => fields(f).map(([k, v]) => `${graphitePath(id, f, k)} ${v} ${Math.floor(f.at / 1000)}`));
}

function sendToCarbon(target: { host: string; port: number }, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: target.host, port: target.port });
    socket.setTimeout(2000, () => socket.destroy(new Error('Carbon did not accept the lines within 2 s')));
    socket.once('error', reject);
    socket.once('close', () => resolve());
    socket.end(text);
  });
}

async function sendToInflux(target: NonNullable<FeedTargets['influxdb']>, text: string): Promise<void> {
  const params = new URLSearchParams({ db: target.database, precision: 'ms' });
  const auth =
    target.username && target.password
      ? { authorization: `Basic ${Buffer.from(`${target.username}:${target.password}`).toString('base64')}` }
      : undefined;
  const r = await fetch(`${target.url.replace(/\/+$/, '')}/write?${params.toString()}`, {
    method: 'POST',
    body: text,
    headers: auth,
    signal: AbortSignal.timeout(2000),
  });
  if (!r.ok) throw new Error(`HTTP ${r.status} ${(await r.text()).slice(0, 200)}`);
}

/** Sends each interval's figures to the targets; logs a backend's failure once, and its recovery. */
export function metricsFeed(targets: FeedTargets, id: SeriesIdentity, log: (line: string) => void) {
  const failing = new Set<string>();
  const attempt = async (name: string, send: () => Promise<void>) => {
    try {
      await send();
      if (failing.delete(name)) log(`demo: writing figures to ${name} again`);
    } catch (err) {
      if (!failing.has(name)) log(`demo: cannot write figures to ${name}: ${describeError(err)}`);
      failing.add(name);
    }
  };
  return async (figures: readonly IntervalFigures[]): Promise<void> => {
    if (figures.length === 0) return;
    const { influxdb, carbon } = targets;
    await Promise.all([
      influxdb ? attempt('InfluxDB', () => sendToInflux(influxdb, influxLines(id, figures).join('\n'))) : undefined,
      carbon ? attempt('Carbon', () => sendToCarbon(carbon, `${carbonLines(id, figures).join('\n')}\n`)) : undefined,
    ]);
  };
}
