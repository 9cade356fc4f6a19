/** Starting and stopping one demo server: listening, polling and the traffic clock. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { assertLoopbackHost, DEFAULTS, type DemoServerHandle, type DemoServerOptions } from './config';
import { loadFaultState } from './faults';
import { createRequestListener } from './http';
import { kubeTrafficSource } from './kube-reader';
import { metricsFeed } from './feeds';
import { TrackFigures } from './figures';
import { TrafficMetrics } from './metrics';
import { buildPreviewRoutes, buildRoutes, effectiveTraffic, type ServerContext } from './routes';
import { ContainerLogs, INJECTED_ERROR_LINE, trafficLogLines } from './container-logs';
import { generateTraffic, type Random, type SimulatedRequest } from './synthetic-traffic';
import { TrafficPoller } from './traffic-poller';
import { normaliseWeights } from './traffic-state';
import { DEFAULT_TRAFFIC, UNKNOWN_VERSION } from './types';

const TRAFFIC_TICK_MS = 100;
/** How often the per-track figures are closed and written to InfluxDB and Carbon (their 2 s resolution). */
const FIGURES_INTERVAL_MS = 2000;
const POLL_INTERVAL_MS = 1000;
/** How long traffic waits for the first Kubernetes answer, so early samples carry real versions. */
const FIRST_POLL_GRACE_MS = 2000;

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function urlHost(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Emits DEMO_RPS/10 requests per tick, carrying fractions so low rates still
 * average out; with a log folder, each second's requests and the injected log
 * errors go to the containers' logs.
 */
function startTrafficTimer(ctx: ServerContext, rps: number, random: Random, logs?: ContainerLogs): NodeJS.Timeout[] {
  let carry = 0;
  let second: SimulatedRequest[] = [];
  const timer = setInterval(() => {
    carry += (rps * TRAFFIC_TICK_MS) / 1000;
    const count = Math.floor(carry);
    carry -= count;
    const traffic = effectiveTraffic(ctx);
    for (const request of generateTraffic(count, traffic.weights, ctx.faults, random)) {
      const version = traffic.versions[request.track] ?? UNKNOWN_VERSION;
      ctx.metrics.record({ service: ctx.service, track: request.track, version }, request.code, request.latencySeconds);
      ctx.figures.record(request.track, version, request.code, request.latencySeconds);
      if (logs) second.push(request);
    }
  }, TRAFFIC_TICK_MS);
  timer.unref();
  if (!logs) return [timer];
  const logTimer = setInterval(() => {
    const served = second;
    second = [];
    try {
      logs.write(ctx.service, trafficLogLines(served, effectiveTraffic(ctx)));
      for (const c of ctx.faults.logErrors) logs.write(c, [INJECTED_ERROR_LINE]);
    } catch (err) {
      ctx.log(`demo: cannot write container logs: ${(err as Error).message}`);
    }
  }, 1000);
  logTimer.unref();
  return [timer, logTimer];
}

/**
 * Starts the demo server: it listens at once, follows Kubernetes when given a
 * kubeconfig or trafficSource, and produces synthetic traffic until closed.
 */
export async function startDemoServer(opts: DemoServerOptions = {}): Promise<DemoServerHandle> {
  const host = opts.host ?? DEFAULTS.host;
  assertLoopbackHost(host, 'host');
  const namespace = opts.namespace ?? DEFAULTS.namespace;
  const service = opts.service ?? DEFAULTS.service;
  const rps = opts.rps ?? DEFAULTS.rps;
  const log = opts.log ?? ((line: string) => console.log(line));
  const random = opts.random ?? Math.random;
  const source =
    opts.trafficSource ?? (opts.kubeconfig ? kubeTrafficSource(opts.kubeconfig, namespace, service) : null);

  const ctx: ServerContext = {
    service,
    namespace,
    credentials: opts.credentials,
    stateFile: opts.stateFile,
    tokens: new Set(),
    faults: loadFaultState(opts.stateFile, log),
    // Without a source the poller is never polled and keeps DEFAULT_TRAFFIC.
    poller: new TrafficPoller(source ?? (() => Promise.resolve(DEFAULT_TRAFFIC)), log),
    weightsOverride: null,
    weightsOverrideUntil: null,
    metrics: new TrafficMetrics(),
    figures: new TrackFigures(),
    ...(opts.metricsApiKey ? { metricsApiKey: opts.metricsApiKey } : {}),
    log,
  };

  const logs = opts.logDir ? new ContainerLogs(opts.logDir) : undefined;
  for (const c of opts.containers ?? []) logs?.write(c, [`INFO ${c} listening on :8080`]);
  const server = createServer(createRequestListener(buildRoutes(ctx), log));
  const port = await listen(server, opts.port ?? DEFAULTS.port, host);
  log(`demo: listening on http://${urlHost(host)}:${port} (namespace ${namespace}, service ${service})`);
  if (!source) log('demo: no KUBECONFIG: serving stable 100 / canary 0, version unknown');
  if (!opts.credentials) log('demo: SMOKE_EMAIL/SMOKE_PASSWORD not set: every sign-in is refused');
  const previewServer =
    opts.previewPort === undefined ? undefined : createServer(createRequestListener(buildPreviewRoutes(ctx), log));
  const previewPort = previewServer ? await listen(previewServer, opts.previewPort!, host) : undefined;
  if (previewPort !== undefined) log(`demo: preview (the new colour) on http://${urlHost(host)}:${previewPort}`);

  const timers: NodeJS.Timeout[] = [];
  let closed = false;
  const feed = metricsFeed(opts.feeds ?? {}, { namespace, service }, log);
  const figuresTimer = setInterval(() => void feed(ctx.figures.flush(Date.now())), FIGURES_INTERVAL_MS);
  figuresTimer.unref();
  timers.push(figuresTimer);
  if (source) {
    const firstPoll = ctx.poller.poll();
    const pollTimer = setInterval(() => void ctx.poller.poll(), POLL_INTERVAL_MS);
    pollTimer.unref();
    timers.push(pollTimer);
    let graceTimer: NodeJS.Timeout | undefined;
    const grace = new Promise<void>((resolve) => {
      graceTimer = setTimeout(resolve, FIRST_POLL_GRACE_MS);
      graceTimer.unref();
    });
    void Promise.race([firstPoll, grace]).then(() => {
      clearTimeout(graceTimer);
      if (!closed) timers.push(...startTrafficTimer(ctx, rps, random, logs));
    });
  } else {
    timers.push(...startTrafficTimer(ctx, rps, random, logs));
  }

  const closeServer = (s: Server) =>
    new Promise<void>((resolve, reject) => {
      s.close((err) => (err ? reject(err) : resolve()));
      // Keep-alive clients would otherwise hold close() open.
      s.closeAllConnections();
    });

  return {
    port,
    ...(previewPort !== undefined ? { previewPort } : {}),
    setWeightsOverride(weights) {
      ctx.weightsOverride = weights ? normaliseWeights(weights.stable, weights.canary) : null;
      ctx.weightsOverrideUntil = null;
    },
    async close() {
      closed = true;
      timers.forEach((timer) => clearInterval(timer));
      await Promise.all([closeServer(server), ...(previewServer ? [closeServer(previewServer)] : [])]);
    },
  };
}
