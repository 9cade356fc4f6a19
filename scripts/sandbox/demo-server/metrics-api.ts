/**
 * GET /api/metrics: a track's figures as JSON (figures.ts), the endpoint the
 * web metrics provider is tested against, as a team's own metrics service
 * or Datadog's query API would be; and POST /__sandbox/weights, the
 * sandbox-only way to send the canary track traffic for a while without
 * running a deployment.
 */
import type { IncomingMessage } from 'node:http';
import type { Validation } from './faults';
import type { TrackFigures } from './figures';
import { HttpError, sameSecret } from './http';
import { trackOfSubset, type TrackWeights } from './types';
import { isRecord } from './util';

const WINDOW_RE = /^(\d{1,6})(s|m|h)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000 } as const;
/** A pin ends by itself: a test that dies never leaves the canary track with traffic. */
const MAX_PIN_SECONDS = 600;

export type WeightsCommand = { kind: 'clear' } | { kind: 'pin'; weights: TrackWeights; seconds: number };

/** Checks a POST /__sandbox/weights body: `{canary: 0..100, seconds?: 1..600}` or `{clear: true}`. */
export function validateWeightsRequest(body: unknown): Validation<WeightsCommand> {
  if (!isRecord(body)) return { ok: false, error: 'body must be a JSON object' };
  if (body.clear === true && Object.keys(body).length === 1) return { ok: true, value: { kind: 'clear' } };
  const unknown = Object.keys(body).filter((k) => k !== 'canary' && k !== 'seconds');
  if (unknown.length)
    return { ok: false, error: `unknown field(s): ${unknown.join(', ')} (give canary and seconds, or clear)` };
  const canary = body.canary;
  if (typeof canary !== 'number' || !Number.isInteger(canary) || canary < 0 || canary > 100)
    return { ok: false, error: `canary must be a whole percentage 0..100, got ${JSON.stringify(canary) ?? 'nothing'}` };
  const seconds = body.seconds ?? 60;
  if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 1 || seconds > MAX_PIN_SECONDS)
    return { ok: false, error: `seconds must be a whole number 1..${MAX_PIN_SECONDS}, got ${JSON.stringify(seconds)}` };
  return { ok: true, value: { kind: 'pin', weights: { stable: 100 - canary, canary }, seconds } };
}

/** Refuses a request without the configured key (401), comparing in constant time. */
export function requireApiKey(req: IncomingMessage, key: string | undefined): void {
  if (key === undefined) return;
  const given = req.headers['x-api-key'];
  if (typeof given !== 'string' || !sameSecret(given, key))
    throw new HttpError(401, 'a valid X-Api-Key header is required');
}

/**
 * The figures `?track=canary&window=30s[&namespace=...][&version=...]` asks
 * for. A namespace or service this server does not serve has no data: the
 * figures are null, as a metrics service answers for a series it never saw.
 */
export function figuresAnswer(
  url: URL,
  figures: TrackFigures,
  served: { namespace: string; service: string },
  now: number,
): Record<string, unknown> {
  const q = url.searchParams;
  const track = trackOfSubset(q.get('track'));
  if (!track) throw new HttpError(400, `track must be stable or canary, got ${JSON.stringify(q.get('track'))}`);
  const windowText = q.get('window') ?? '1m';
  const w = WINDOW_RE.exec(windowText);
  if (!w) throw new HttpError(400, `window must look like 30s, 5m or 1h, got ${JSON.stringify(windowText)}`);
  const windowMs = Number(w[1]) * UNIT_MS[w[2] as keyof typeof UNIT_MS];
  const namespace = q.get('namespace') ?? served.namespace;
  const service = q.get('service') ?? served.service;
  const version = q.get('version') ?? undefined;
  const ours = namespace === served.namespace && service === served.service;
  const got = ours
    ? figures.window(track, windowMs, now, version)
    : { track, requests: 0, errors: 0, errorRate: null, p95LatencyMs: null, history: [] };
  return {
    namespace,
    service,
    version: version ?? null,
    window: windowText,
    ...got,
    history: got.history.map((h) => ({ ...h, at: new Date(h.at).toISOString() })),
  };
}
