/** The demo server's state and the endpoints that read and change it. */
import { randomBytes } from 'node:crypto';
import type { Credentials } from './config';
import {
  applyFaultCommand,
  saveFaultState,
  validateFaultRequest,
  validateHealthRequest,
  validateLogErrorsRequest,
} from './faults';
import {
  bearerToken,
  readJsonBody,
  sameSecret,
  sendJson,
  sendText,
  validOr400,
  type MethodHandlers,
  type Routes,
} from './http';
import type { TrackFigures } from './figures';
import { renderMetrics, type TrafficMetrics } from './metrics';
import { figuresAnswer, requireApiKey, validateWeightsRequest } from './metrics-api';
import type { TrafficPoller } from './traffic-poller';
import type { FaultState, TrackWeights, TrafficState } from './types';
import { isRecord } from './util';

const MAX_TOKENS = 10_000;
const CONVERSATIONS = [
  { id: 1, title: 'Welcome to ai-saas' },
  { id: 2, title: 'Summarise the quarterly report' },
  { id: 3, title: 'Draft the release notes' },
];

/** Mutable state of one running server, shared by its routes and timers. */
export interface ServerContext {
  service: string;
  namespace: string;
  credentials?: Credentials;
  stateFile?: string;
  tokens: Set<string>;
  faults: FaultState;
  poller: TrafficPoller;
  weightsOverride: TrackWeights | null;
  /** When a pin set through POST /__sandbox/weights ends (ms since the epoch); null: no end. */
  weightsOverrideUntil: number | null;
  metrics: TrafficMetrics;
  /** Each 2 s interval's per-track figures (GET /api/metrics, and what feeds.ts writes). */
  figures: TrackFigures;
  metricsApiKey?: string;
  log: (line: string) => void;
}

/** The state traffic follows now: Kubernetes' weights unless a test pinned them. */
export function effectiveTraffic(ctx: ServerContext): TrafficState {
  const polled = ctx.poller.state;
  if (ctx.weightsOverrideUntil !== null && Date.now() >= ctx.weightsOverrideUntil) {
    ctx.weightsOverride = null;
    ctx.weightsOverrideUntil = null;
  }
  return ctx.weightsOverride ? { ...polled, weights: ctx.weightsOverride } : polled;
}

function setFaults(ctx: ServerContext, next: FaultState): void {
  ctx.faults = next;
  saveFaultState(ctx.stateFile, next);
}

function stringField(body: unknown, name: string): string | null {
  const value = isRecord(body) ? body[name] : undefined;
  return typeof value === 'string' ? value : null;
}

/**
 * What the preview listener serves (the new colour before a blue-green
 * switch): the same smoke-test endpoints, or 503 for every request while a
 * preview fault is set; no /metrics and no control API.
 */
export function buildPreviewRoutes(ctx: ServerContext): Routes {
  const routes = new Map(
    [...buildRoutes(ctx)].filter(([p]) => p !== '/metrics' && p !== '/api/metrics' && !p.startsWith('/__sandbox')),
  );
  for (const [p, methods] of routes)
    routes.set(
      p,
      Object.fromEntries(
        Object.entries(methods).map(([method, handler]) => [
          method,
          (req: Parameters<NonNullable<typeof handler>>[0], res: Parameters<NonNullable<typeof handler>>[1]) => {
            const { preview } = ctx.faults;
            if (preview.fail) return sendJson(res, 503, { error: `preview: ${preview.reason ?? 'fault injected'}` });
            return handler!(req, res);
          },
        ]),
      ),
    );
  return routes;
}

/** The smoke-test endpoints, /metrics, and the /__sandbox control API. */
export function buildRoutes(ctx: ServerContext): Routes {
  return new Map<string, MethodHandlers>([
    [
      '/health',
      {
        GET: (_req, res) => {
          const { health } = ctx.faults;
          if (health.fail) sendJson(res, 503, { status: 'degraded', reason: health.reason ?? 'fault injected' });
          else sendJson(res, 200, { status: 'ok' });
        },
      },
    ],
    [
      '/api/auth/signin',
      {
        POST: async (req, res) => {
          const body = await readJsonBody(req);
          const email = stringField(body, 'email');
          const password = stringField(body, 'password');
          const { credentials } = ctx;
          if (
            !credentials ||
            email === null ||
            password === null ||
            !sameSecret(email, credentials.email) ||
            !sameSecret(password, credentials.password)
          ) {
            sendJson(res, 401, { error: 'invalid credentials' });
            return;
          }
          const token = randomBytes(24).toString('base64url');
          // Smoke tests sign in on every run; forget the oldest tokens rather than grow forever.
          if (ctx.tokens.size >= MAX_TOKENS) ctx.tokens.delete(ctx.tokens.values().next().value as string);
          ctx.tokens.add(token);
          sendJson(res, 200, { data: { token, user: { email } } });
        },
      },
    ],
    [
      '/api/chat/conversations',
      {
        GET: (req, res) => {
          const token = bearerToken(req);
          if (!token || !ctx.tokens.has(token)) sendJson(res, 401, { error: 'unauthorized' });
          else sendJson(res, 200, { data: CONVERSATIONS });
        },
      },
    ],
    [
      '/metrics',
      {
        GET: (_req, res) => {
          const faultErrorRates = {
            stable: ctx.faults.tracks.stable?.errorRate ?? 0,
            canary: ctx.faults.tracks.canary?.errorRate ?? 0,
          };
          const text = renderMetrics({
            ...ctx.metrics.snapshot(),
            weights: effectiveTraffic(ctx).weights,
            faultErrorRates,
          });
          sendText(res, 200, 'text/plain; version=0.0.4; charset=utf-8', text);
        },
      },
    ],
    [
      '/api/metrics',
      {
        GET: (req, res) => {
          requireApiKey(req, ctx.metricsApiKey);
          const url = new URL(req.url ?? '/', 'http://localhost');
          sendJson(res, 200, figuresAnswer(url, ctx.figures, ctx, Date.now()));
        },
      },
    ],
    [
      '/__sandbox/weights',
      {
        POST: async (req, res) => {
          const command = validOr400(validateWeightsRequest(await readJsonBody(req)));
          if (command.kind === 'clear') {
            ctx.weightsOverride = null;
            ctx.weightsOverrideUntil = null;
            ctx.log('demo: weights follow Kubernetes again');
          } else {
            ctx.weightsOverride = command.weights;
            ctx.weightsOverrideUntil = Date.now() + command.seconds * 1000;
            ctx.log(`demo: weights pinned to ${JSON.stringify(command.weights)} for ${command.seconds} s`);
          }
          sendJson(res, 200, { weights: effectiveTraffic(ctx).weights, weightsPinned: ctx.weightsOverride !== null });
        },
      },
    ],
    [
      '/__sandbox/state',
      {
        GET: (_req, res) => {
          const traffic = effectiveTraffic(ctx);
          sendJson(res, 200, {
            namespace: ctx.namespace,
            service: ctx.service,
            weights: traffic.weights,
            weightsPinned: ctx.weightsOverride !== null,
            versions: traffic.versions,
            faults: ctx.faults.tracks,
            health: ctx.faults.health,
            kubernetesError: ctx.poller.error,
          });
        },
      },
    ],
    [
      '/__sandbox/fault',
      {
        POST: async (req, res) => {
          const command = validOr400(validateFaultRequest(await readJsonBody(req)));
          setFaults(ctx, applyFaultCommand(ctx.faults, command));
          ctx.log(
            command.kind === 'clear'
              ? 'demo: faults cleared'
              : `demo: fault on ${command.track}: ${JSON.stringify(command.fault)}`,
          );
          sendJson(res, 200, { faults: ctx.faults.tracks });
        },
      },
    ],
    [
      '/__sandbox/health',
      {
        POST: async (req, res) => {
          const health = validOr400(validateHealthRequest(await readJsonBody(req)));
          setFaults(ctx, { ...ctx.faults, health });
          ctx.log(health.fail ? `demo: health failing: ${health.reason ?? ''}` : 'demo: health restored');
          sendJson(res, 200, { health: ctx.faults.health });
        },
      },
    ],
    [
      '/__sandbox/preview',
      {
        POST: async (req, res) => {
          const preview = validOr400(validateHealthRequest(await readJsonBody(req)));
          setFaults(ctx, { ...ctx.faults, preview });
          ctx.log(preview.fail ? `demo: preview failing: ${preview.reason ?? ''}` : 'demo: preview restored');
          sendJson(res, 200, { preview: ctx.faults.preview });
        },
      },
    ],
    [
      '/__sandbox/log-errors',
      {
        POST: async (req, res) => {
          const logErrors = validOr400(validateLogErrorsRequest(await readJsonBody(req)));
          setFaults(ctx, { ...ctx.faults, logErrors });
          ctx.log(`demo: error lines in the logs of ${logErrors.join(', ') || 'no container'}`);
          sendJson(res, 200, { logErrors });
        },
      },
    ],
  ]);
}
