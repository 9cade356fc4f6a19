/**
 * Stand-in for the public endpoints of the demo platform "ai-saas", whose
 * Kubernetes pods are fake and serve nothing. It answers the smoke-test
 * endpoints and produces Prometheus metrics for steady synthetic traffic,
 * split between the "stable" and "canary" tracks by the LIVE traffic weights
 * in Kubernetes, so canary analysis has something real to judge. Tests inject
 * faults per track through the /__sandbox control API.
 *
 *   npx tsx scripts/sandbox/demo-server.ts
 *
 * Env: DEMO_PORT (8080), DEMO_HOST (127.0.0.1, loopback only), KUBECONFIG,
 * DEMO_NAMESPACE (ai-saas), DEMO_SERVICE (api-gateway), SMOKE_EMAIL,
 * SMOKE_PASSWORD, DEMO_RPS (50), DEMO_STATE_FILE.
 */
import type { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

// ---------------------------------------------------------------------------
// Domain types
// ---------------------------------------------------------------------------

export type Track = 'stable' | 'canary';
export const TRACKS: readonly Track[] = ['stable', 'canary'];

/** Percentages of traffic per track; they always sum to 100. */
export interface TrackWeights {
  stable: number;
  canary: number;
}

export interface TrackVersions {
  stable: string;
  /** null when there is no canary Deployment: the canary track then gets no traffic. */
  canary: string | null;
}

export interface TrafficState {
  weights: TrackWeights;
  versions: TrackVersions;
}

export interface TrackFault {
  /** Probability (0..1) that a synthetic request on the track answers 500. */
  errorRate: number;
  /** Added to every synthetic request's latency on the track. */
  latencyMs: number;
}

export interface HealthFault {
  fail: boolean;
  reason?: string;
}

export interface FaultState {
  tracks: Partial<Record<Track, TrackFault>>;
  health: HealthFault;
}

export const VERSION_ANNOTATION = 'deploy-pipelines.dev/version';
export const UNKNOWN_VERSION = 'unknown';
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** What the server reports when Kubernetes is absent or has never answered. */
export const DEFAULT_TRAFFIC: TrafficState = {
  weights: { stable: 100, canary: 0 },
  versions: { stable: UNKNOWN_VERSION, canary: UNKNOWN_VERSION },
};

export function emptyFaultState(): FaultState {
  return { tracks: {}, health: { fail: false } };
}

// ---------------------------------------------------------------------------
// Kubernetes objects -> traffic state (pure)
// ---------------------------------------------------------------------------

/** The parts of a Deployment we read; V1Deployment is assignable to it. */
export interface DeploymentLike {
  metadata?: { annotations?: Record<string, string> };
  spec?: { template?: { spec?: { containers?: { image?: string }[] } } };
  status?: { readyReplicas?: number };
}

/** The parts of a Service we read; V1Service is assignable to it. */
export interface ServiceLike {
  spec?: { selector?: Record<string, string> };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function trackOfSubset(subset: unknown): Track | null {
  return subset === 'stable' || subset === 'canary' ? subset : null;
}

/**
 * Weights from an Istio VirtualService's first HTTP route, or null when the
 * object has no usable route (the caller then falls back to replica counts).
 * Istio requires the weights to sum to 100; we normalise anyway so a
 * half-edited object never yields a distribution that does not add up.
 */
export function weightsFromVirtualService(vs: unknown): TrackWeights | null {
  if (!isRecord(vs) || !isRecord(vs.spec) || !Array.isArray(vs.spec.http)) return null;
  const firstHttp: unknown = vs.spec.http[0];
  if (!isRecord(firstHttp) || !Array.isArray(firstHttp.route) || firstHttp.route.length === 0) return null;
  const routes: unknown[] = firstHttp.route;

  const sums: TrackWeights = { stable: 0, canary: 0 };
  for (const route of routes) {
    if (!isRecord(route)) continue;
    const destination = isRecord(route.destination) ? route.destination : {};
    // A lone route without a subset sends everything to the Service, i.e. the stable pods.
    const track = trackOfSubset(destination.subset) ?? (routes.length === 1 ? 'stable' : null);
    if (!track) continue;
    const weight = typeof route.weight === 'number' && Number.isFinite(route.weight) && route.weight > 0 ? route.weight : 0;
    // Istio treats a single route without weight as taking all traffic.
    sums[track] += routes.length === 1 && route.weight === undefined ? 100 : weight;
  }
  return normaliseWeights(sums.stable, sums.canary);
}

/** Scales two non-negative shares to percentages summing to 100; nothing identifiable means all stable. */
export function normaliseWeights(stable: number, canary: number): TrackWeights {
  const total = stable + canary;
  if (!(total > 0)) return { stable: 100, canary: 0 };
  const canaryPct = Math.round((100 * canary) / total);
  return { stable: 100 - canaryPct, canary: canaryPct };
}

/** Fallback when there is no VirtualService: kube-proxy spreads traffic over ready pods. */
export function weightsFromReplicas(stableReady: number, canaryReady: number): TrackWeights {
  return normaliseWeights(Math.max(0, stableReady), Math.max(0, canaryReady));
}

export function readyReplicas(deployment: DeploymentLike | null): number {
  return deployment?.status?.readyReplicas ?? 0;
}

/**
 * The tag of an image reference. Only the last path segment can carry a tag,
 * since a registry host may have a port ("registry:5000/name:1.0.1").
 * A digest-only reference has no human version, hence "unknown".
 */
export function tagOfImage(image: string): string {
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  const [nameAndTag, digest] = lastSegment.split('@', 2);
  const colon = nameAndTag.indexOf(':');
  if (colon >= 0 && colon < nameAndTag.length - 1) return nameAndTag.slice(colon + 1);
  return digest === undefined ? 'latest' : UNKNOWN_VERSION;
}

/** The version a Deployment runs: our pipeline's annotation, else its first container's image tag. */
export function versionFromDeployment(deployment: DeploymentLike): string {
  const annotated = deployment.metadata?.annotations?.[VERSION_ANNOTATION];
  if (annotated) return annotated;
  const image = deployment.spec?.template?.spec?.containers?.[0]?.image;
  return image ? tagOfImage(image) : UNKNOWN_VERSION;
}

/** The colour a blue-green Service selects (selector `version: green`), if any. */
export function selectedColour(service: ServiceLike | null): string | null {
  const colour = service?.spec?.selector?.version;
  return colour ? colour : null;
}

/** Everything read from the cluster in one poll; null means "not found". */
export interface ClusterObjects {
  virtualService: unknown;
  service: ServiceLike | null;
  stableDeployment: DeploymentLike | null;
  canaryDeployment: DeploymentLike | null;
  /** `${service}-${colour}` when the Service selects a colour. */
  colourDeployment: DeploymentLike | null;
}

/** Combines the cluster objects into the weights and versions the traffic follows. */
export function resolveTrafficState(objects: ClusterObjects): TrafficState {
  // In blue-green the Service selector decides which Deployment serves "stable".
  const stableDeployment = objects.colourDeployment ?? objects.stableDeployment;
  const canaryVersion = objects.canaryDeployment ? versionFromDeployment(objects.canaryDeployment) : null;
  const weights =
    weightsFromVirtualService(objects.virtualService) ??
    weightsFromReplicas(readyReplicas(stableDeployment), readyReplicas(objects.canaryDeployment));
  return {
    // Without a canary Deployment there are no canary pods to route to, whatever the VirtualService says.
    weights: canaryVersion === null ? { stable: 100, canary: 0 } : weights,
    versions: {
      stable: stableDeployment ? versionFromDeployment(stableDeployment) : UNKNOWN_VERSION,
      canary: canaryVersion,
    },
  };
}

// ---------------------------------------------------------------------------
// Control API validation (pure)
// ---------------------------------------------------------------------------

export type Validation<T> = { ok: true; value: T } | { ok: false; error: string };

export type FaultCommand = { kind: 'clear' } | { kind: 'set'; track: Track; fault: TrackFault };

const FAULT_FIELDS = new Set(['track', 'errorRate', 'latencyMs']);

/** Checks a POST /__sandbox/fault body; errors name the field and what it must be. */
export function validateFaultRequest(body: unknown): Validation<FaultCommand> {
  if (!isRecord(body)) return { ok: false, error: 'body must be a JSON object' };
  if ('clear' in body) {
    if (body.clear !== true) return { ok: false, error: 'clear must be true' };
    if (Object.keys(body).length !== 1) return { ok: false, error: 'clear cannot be combined with other fields' };
    return { ok: true, value: { kind: 'clear' } };
  }
  // Unknown keys are refused so a typo such as "error_rate" does not silently inject nothing.
  const unknown = Object.keys(body).filter((key) => !FAULT_FIELDS.has(key));
  if (unknown.length > 0) return { ok: false, error: `unknown field(s): ${unknown.join(', ')}` };
  const track = trackOfSubset(body.track);
  if (!track) return { ok: false, error: `track must be "stable" or "canary", got ${JSON.stringify(body.track) ?? 'nothing'}` };
  if (body.errorRate === undefined && body.latencyMs === undefined) {
    return { ok: false, error: 'give errorRate (0..1) and/or latencyMs (>= 0)' };
  }
  const errorRate = body.errorRate ?? 0;
  if (typeof errorRate !== 'number' || !Number.isFinite(errorRate) || errorRate < 0 || errorRate > 1) {
    return { ok: false, error: `errorRate must be a number between 0 and 1, got ${JSON.stringify(errorRate)}` };
  }
  const latencyMs = body.latencyMs ?? 0;
  if (typeof latencyMs !== 'number' || !Number.isFinite(latencyMs) || latencyMs < 0) {
    return { ok: false, error: `latencyMs must be a number >= 0, got ${JSON.stringify(latencyMs)}` };
  }
  return { ok: true, value: { kind: 'set', track, fault: { errorRate, latencyMs } } };
}

/** Checks a POST /__sandbox/health body. */
export function validateHealthRequest(body: unknown): Validation<HealthFault> {
  if (!isRecord(body)) return { ok: false, error: 'body must be a JSON object' };
  if (typeof body.fail !== 'boolean') return { ok: false, error: 'fail must be true or false' };
  if (!body.fail) return { ok: true, value: { fail: false } };
  if (body.reason !== undefined && typeof body.reason !== 'string') return { ok: false, error: 'reason must be a string' };
  return { ok: true, value: { fail: true, reason: body.reason || 'fault injected' } };
}

/** Applies a validated fault command without mutating the input. */
export function applyFaultCommand(state: FaultState, command: FaultCommand): FaultState {
  if (command.kind === 'clear') return { ...state, tracks: {} };
  return { ...state, tracks: { ...state.tracks, [command.track]: command.fault } };
}

/** Reads a persisted fault state; anything malformed is dropped rather than trusted. */
export function parseFaultState(raw: unknown): FaultState {
  const state = emptyFaultState();
  if (!isRecord(raw)) return state;
  const tracks = isRecord(raw.tracks) ? raw.tracks : {};
  for (const track of TRACKS) {
    const fault = tracks[track];
    if (!isRecord(fault)) continue;
    const checked = validateFaultRequest({ track, errorRate: fault.errorRate, latencyMs: fault.latencyMs });
    if (checked.ok && checked.value.kind === 'set') state.tracks[track] = checked.value.fault;
  }
  const health = validateHealthRequest(raw.health);
  if (health.ok) state.health = health.value;
  return state;
}

// ---------------------------------------------------------------------------
// Synthetic traffic (pure given a random source)
// ---------------------------------------------------------------------------

export type Random = () => number;

export interface SimulatedRequest {
  track: Track;
  code: number;
  latencySeconds: number;
}

/** Picks a track by weight; a track with weight 0 is never picked. */
export function pickTrack(weights: TrackWeights, random: Random): Track | null {
  const total = weights.stable + weights.canary;
  if (!(total > 0)) return null;
  if (weights.canary <= 0) return 'stable';
  if (weights.stable <= 0) return 'canary';
  return random() * total < weights.stable ? 'stable' : 'canary';
}

/** One request's outcome: 20-120 ms of base latency plus the fault, 500 with the fault's probability. */
export function simulateRequest(track: Track, fault: TrackFault | undefined, random: Random): SimulatedRequest {
  const baseMs = 20 + random() * 100;
  const latencyMs = baseMs + (fault?.latencyMs ?? 0);
  const failed = fault !== undefined && fault.errorRate > 0 && random() < fault.errorRate;
  return { track, code: failed ? 500 : 200, latencySeconds: latencyMs / 1000 };
}

export function generateTraffic(count: number, weights: TrackWeights, faults: FaultState, random: Random): SimulatedRequest[] {
  const requests: SimulatedRequest[] = [];
  for (let i = 0; i < count; i++) {
    const track = pickTrack(weights, random);
    if (track) requests.push(simulateRequest(track, faults.tracks[track], random));
  }
  return requests;
}

// ---------------------------------------------------------------------------
// Metrics store and exposition (render is pure)
// ---------------------------------------------------------------------------

export interface SeriesLabels {
  service: string;
  track: Track;
  version: string;
}

export interface RequestCounter {
  labels: SeriesLabels & { code: string };
  value: number;
}

export interface DurationHistogram {
  labels: SeriesLabels;
  /** Cumulative counts, one per DURATION_BUCKETS entry (the +Inf bucket is `count`). */
  buckets: number[];
  sum: number;
  count: number;
}

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

  record(labels: SeriesLabels, code: number, latencySeconds: number): void {
    const seriesKey = `${labels.service}\u0000${labels.track}\u0000${labels.version}`;
    const counterKey = `${seriesKey}\u0000${code}`;
    const counter = this.requests.get(counterKey) ?? { labels: { ...labels, code: String(code) }, value: 0 };
    counter.value += 1;
    this.requests.set(counterKey, counter);

    const histogram = this.durations.get(seriesKey) ?? { labels: { ...labels }, buckets: DURATION_BUCKETS.map(() => 0), sum: 0, count: 0 };
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
      durations: [...this.durations.values()].map((h) => ({ labels: { ...h.labels }, buckets: [...h.buckets], sum: h.sum, count: h.count })),
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

/** Prometheus text exposition format 0.0.4, written by hand. */
export function renderMetrics(snapshot: MetricsSnapshot): string {
  const lines: string[] = [];

  lines.push('# HELP http_requests_total Synthetic HTTP requests served, by track and status code.');
  lines.push('# TYPE http_requests_total counter');
  const requests = [...snapshot.requests].sort((a, b) => seriesOrder(a.labels, b.labels) || a.labels.code.localeCompare(b.labels.code));
  for (const { labels, value } of requests) {
    const { service, track, version, code } = labels;
    lines.push(`http_requests_total${formatLabels({ service, track, version, code })} ${formatNumber(value)}`);
  }

  lines.push('# HELP http_request_duration_seconds Synthetic HTTP request latency.');
  lines.push('# TYPE http_request_duration_seconds histogram');
  const durations = [...snapshot.durations].sort((a, b) => seriesOrder(a.labels, b.labels));
  for (const histogram of durations) {
    const { service, track, version } = histogram.labels;
    const base = { service, track, version };
    DURATION_BUCKETS.forEach((le, i) => {
      lines.push(`http_request_duration_seconds_bucket${formatLabels({ ...base, le: formatNumber(le) })} ${formatNumber(histogram.buckets[i])}`);
    });
    lines.push(`http_request_duration_seconds_bucket${formatLabels({ ...base, le: '+Inf' })} ${formatNumber(histogram.count)}`);
    lines.push(`http_request_duration_seconds_sum${formatLabels(base)} ${formatNumber(histogram.sum)}`);
    lines.push(`http_request_duration_seconds_count${formatLabels(base)} ${formatNumber(histogram.count)}`);
  }

  lines.push('# HELP demo_traffic_weight Traffic weight (percent) in use per track.');
  lines.push('# TYPE demo_traffic_weight gauge');
  for (const track of TRACKS) lines.push(`demo_traffic_weight${formatLabels({ track })} ${formatNumber(snapshot.weights[track])}`);

  lines.push('# HELP demo_fault_error_rate Injected error probability per track.');
  lines.push('# TYPE demo_fault_error_rate gauge');
  for (const track of TRACKS) lines.push(`demo_fault_error_rate${formatLabels({ track })} ${formatNumber(snapshot.faultErrorRates[track])}`);

  return `${lines.join('\n')}\n`;
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

export interface Credentials {
  email: string;
  password: string;
}

/** Reads the current traffic state from somewhere (Kubernetes in production use). */
export type TrafficSource = () => Promise<TrafficState>;

export interface DemoServerOptions {
  /** 0 picks a free port. Default 8080. */
  port?: number;
  /** Must be a loopback address. Default 127.0.0.1. */
  host?: string;
  namespace?: string;
  service?: string;
  /** Admin kubeconfig; without it (and without trafficSource) the defaults are used. */
  kubeconfig?: string;
  /** Overrides the Kubernetes reader, e.g. in tests. */
  trafficSource?: TrafficSource;
  /** Accepted by sign-in; when absent every sign-in is refused. */
  credentials?: Credentials;
  /** Synthetic requests per second. Default 50. */
  rps?: number;
  stateFile?: string;
  log?: (line: string) => void;
  random?: Random;
}

export interface DemoServerHandle {
  port: number;
  close(): Promise<void>;
  /** Pins the weights (ignoring Kubernetes) until called with null; for tests. */
  setWeightsOverride(weights: TrackWeights | null): void;
}

const LOOPBACK_HOSTS = new Set(['localhost', '::1']);

/** The server exposes a fault-injection API with no auth, so it must never listen beyond this machine. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127(\.\d{1,3}){3}$/.test(host);
}

function parseNumberEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, valid: (n: number) => boolean, expected: string): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!valid(value)) throw new Error(`${name} must be ${expected}, got ${JSON.stringify(raw)}`);
  return value;
}

/** Options from the documented environment variables; throws on values we cannot honour. */
export function optionsFromEnv(env: NodeJS.ProcessEnv): DemoServerOptions {
  const host = env.DEMO_HOST || '127.0.0.1';
  if (!isLoopbackHost(host)) throw new Error(`DEMO_HOST must be a loopback address, got ${JSON.stringify(host)}`);
  const email = env.SMOKE_EMAIL;
  const password = env.SMOKE_PASSWORD;
  return {
    port: parseNumberEnv(env, 'DEMO_PORT', 8080, (n) => Number.isInteger(n) && n >= 0 && n <= 65535, 'a port number'),
    host,
    namespace: env.DEMO_NAMESPACE || 'ai-saas',
    service: env.DEMO_SERVICE || 'api-gateway',
    kubeconfig: env.KUBECONFIG || undefined,
    credentials: email && password ? { email, password } : undefined,
    rps: parseNumberEnv(env, 'DEMO_RPS', 50, (n) => Number.isFinite(n) && n >= 0 && n <= 100_000, 'a number between 0 and 100000'),
    stateFile: env.DEMO_STATE_FILE || undefined,
  };
}

// ---------------------------------------------------------------------------
// Kubernetes reader
// ---------------------------------------------------------------------------

interface KubeClients {
  apps: AppsV1Api;
  core: CoreV1Api;
  custom: CustomObjectsApi;
}

const KUBE_TIMEOUT_MS = 5000;

function isNotFound(err: unknown): boolean {
  return isRecord(err) && err.code === 404;
}

/** Resolves to null on 404 so "absent" is a state, not an error. */
async function orNull<T>(request: Promise<T>): Promise<T | null> {
  try {
    return await request;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Loads the client library lazily: it is ESM-only, which plain `require` in
 * jest cannot load, and it is only needed when a kubeconfig is given.
 */
async function loadKubeClients(kubeconfig: string): Promise<KubeClients> {
  const k8s = await import('@kubernetes/client-node');
  const config = new k8s.KubeConfig();
  config.loadFromFile(kubeconfig);
  return { apps: config.makeApiClient(k8s.AppsV1Api), core: config.makeApiClient(k8s.CoreV1Api), custom: config.makeApiClient(k8s.CustomObjectsApi) };
}

async function readClusterObjects(clients: KubeClients, namespace: string, service: string): Promise<ClusterObjects> {
  const deployment = (name: string) => orNull<DeploymentLike>(clients.apps.readNamespacedDeployment({ name, namespace }));
  const virtualServiceRequest: Promise<unknown> = clients.custom.getNamespacedCustomObject({
    group: 'networking.istio.io',
    version: 'v1beta1',
    namespace,
    plural: 'virtualservices',
    name: service,
  });
  const [virtualService, serviceObject, stableDeployment, canaryDeployment] = await Promise.all([
    orNull(virtualServiceRequest),
    orNull<ServiceLike>(clients.core.readNamespacedService({ name: service, namespace })),
    deployment(service),
    deployment(`${service}-canary`),
  ]);
  const colour = selectedColour(serviceObject);
  const colourDeployment = colour ? await deployment(`${service}-${colour}`) : null;
  return { virtualService, service: serviceObject, stableDeployment, canaryDeployment, colourDeployment };
}

/** A TrafficSource over the live cluster; the kubeconfig is (re)loaded until it works, as the cluster may start later. */
export function kubeTrafficSource(kubeconfig: string, namespace: string, service: string): TrafficSource {
  let clients: KubeClients | null = null;
  return async () => {
    clients ??= await loadKubeClients(kubeconfig);
    const objects = await withTimeout(readClusterObjects(clients, namespace, service), KUBE_TIMEOUT_MS, 'reading Kubernetes');
    return resolveTrafficState(objects);
  };
}

function describeError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  // ApiException messages embed the whole response body; the first line says enough.
  const firstLine = message.split('\n')[0];
  return firstLine.length > 300 ? `${firstLine.slice(0, 300)}...` : firstLine;
}

function describeTraffic(state: TrafficState): string {
  const { weights, versions } = state;
  return `stable=${weights.stable} (${versions.stable}) canary=${weights.canary} (${versions.canary ?? 'none'})`;
}

/** Polls a TrafficSource, keeping the last known state on errors and logging each distinct error once. */
class TrafficPoller {
  private current: TrafficState = DEFAULT_TRAFFIC;
  private lastError: string | null = null;
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly source: TrafficSource,
    private readonly log: (line: string) => void,
  ) {}

  get state(): TrafficState {
    return this.current;
  }

  get error(): string | null {
    return this.lastError;
  }

  /** Overlapping polls are coalesced so a slow API server does not pile up requests. */
  poll(): Promise<void> {
    this.inFlight ??= this.pollOnce().finally(() => {
      this.inFlight = null;
    });
    return this.inFlight;
  }

  private async pollOnce(): Promise<void> {
    try {
      const next = await this.source();
      if (this.lastError !== null) this.log('demo: kubernetes reachable again');
      this.lastError = null;
      if (describeTraffic(next) !== describeTraffic(this.current)) this.log(`demo: traffic ${describeTraffic(next)}`);
      this.current = next;
    } catch (err) {
      const message = describeError(err);
      if (message !== this.lastError) this.log(`demo: kubernetes: ${message} (keeping last known state)`);
      this.lastError = message;
    }
  }
}

// ---------------------------------------------------------------------------
// Fault state persistence
// ---------------------------------------------------------------------------

function loadFaultState(file: string | undefined, log: (line: string) => void): FaultState {
  if (!file || !existsSync(file)) return emptyFaultState();
  try {
    return parseFaultState(JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    log(`demo: ignoring unreadable state file ${file}: ${describeError(err)}`);
    return emptyFaultState();
  }
}

/** Write-then-rename, so a crash mid-write never leaves a truncated file behind. */
function saveFaultState(file: string | undefined, state: FaultState): void {
  if (!file) return;
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(temporary, file);
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

const MAX_BODY_BYTES = 64 * 1024;
const MAX_TOKENS = 10_000;
const CONVERSATIONS = [
  { id: 1, title: 'Welcome to ai-saas' },
  { id: 2, title: 'Summarise the quarterly report' },
  { id: 3, title: 'Draft the release notes' },
];

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendText(res: ServerResponse, status: number, contentType: string, text: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'request body must be valid JSON');
  }
}

/** Compares digests so the time taken does not reveal how much of a secret matched. */
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function bearerToken(req: IncomingMessage): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return match ? match[1] : null;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** Mutable state of one running server, shared by its routes and timers. */
interface ServerContext {
  service: string;
  namespace: string;
  credentials?: Credentials;
  stateFile?: string;
  tokens: Set<string>;
  faults: FaultState;
  poller: TrafficPoller;
  weightsOverride: TrackWeights | null;
  metrics: TrafficMetrics;
  log: (line: string) => void;
}

/** The state traffic follows now: Kubernetes' weights unless a test pinned them. */
function effectiveTraffic(ctx: ServerContext): TrafficState {
  const polled = ctx.poller.state;
  return ctx.weightsOverride ? { ...polled, weights: ctx.weightsOverride } : polled;
}

function setFaults(ctx: ServerContext, next: FaultState): void {
  ctx.faults = next;
  saveFaultState(ctx.stateFile, next);
}

function buildRoutes(ctx: ServerContext): Map<string, Partial<Record<string, Handler>>> {
  return new Map<string, Partial<Record<string, Handler>>>([
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
          const email = isRecord(body) && typeof body.email === 'string' ? body.email : null;
          const password = isRecord(body) && typeof body.password === 'string' ? body.password : null;
          const { credentials } = ctx;
          if (!credentials || email === null || password === null || !sameSecret(email, credentials.email) || !sameSecret(password, credentials.password)) {
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
          const faultErrorRates = { stable: ctx.faults.tracks.stable?.errorRate ?? 0, canary: ctx.faults.tracks.canary?.errorRate ?? 0 };
          const text = renderMetrics({ ...ctx.metrics.snapshot(), weights: effectiveTraffic(ctx).weights, faultErrorRates });
          sendText(res, 200, 'text/plain; version=0.0.4; charset=utf-8', text);
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
          const checked = validateFaultRequest(await readJsonBody(req));
          if (!checked.ok) throw new HttpError(400, checked.error);
          setFaults(ctx, applyFaultCommand(ctx.faults, checked.value));
          ctx.log(checked.value.kind === 'clear' ? 'demo: faults cleared' : `demo: fault on ${checked.value.track}: ${JSON.stringify(checked.value.fault)}`);
          sendJson(res, 200, { faults: ctx.faults.tracks });
        },
      },
    ],
    [
      '/__sandbox/health',
      {
        POST: async (req, res) => {
          const checked = validateHealthRequest(await readJsonBody(req));
          if (!checked.ok) throw new HttpError(400, checked.error);
          setFaults(ctx, { ...ctx.faults, health: checked.value });
          ctx.log(checked.value.fail ? `demo: health failing: ${checked.value.reason ?? ''}` : 'demo: health restored');
          sendJson(res, 200, { health: ctx.faults.health });
        },
      },
    ],
  ]);
}

function createRequestListener(ctx: ServerContext): (req: IncomingMessage, res: ServerResponse) => void {
  const routes = buildRoutes(ctx);
  const dispatch = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    const methods = routes.get(pathname);
    if (!methods) throw new HttpError(404, `no route for ${pathname}`);
    const handler = methods[req.method ?? 'GET'];
    if (!handler) {
      res.setHeader('allow', Object.keys(methods).join(', '));
      throw new HttpError(405, `${req.method ?? ''} not allowed on ${pathname}`);
    }
    await handler(req, res);
  };
  return (req, res) => {
    void dispatch(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
      } else if (err instanceof HttpError) {
        sendJson(res, err.status, { error: err.message });
      } else {
        ctx.log(`demo: ${req.method ?? ''} ${req.url ?? ''} failed: ${describeError(err)}`);
        sendJson(res, 500, { error: 'internal error' });
      }
    });
  };
}

// ---------------------------------------------------------------------------
// Server lifecycle
// ---------------------------------------------------------------------------

const TRAFFIC_TICK_MS = 100;
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

/** Emits DEMO_RPS/10 requests per tick, carrying fractions so low rates still average out. */
function startTrafficTimer(ctx: ServerContext, rps: number, random: Random): NodeJS.Timeout {
  let carry = 0;
  const timer = setInterval(() => {
    carry += (rps * TRAFFIC_TICK_MS) / 1000;
    const count = Math.floor(carry);
    carry -= count;
    const traffic = effectiveTraffic(ctx);
    for (const request of generateTraffic(count, traffic.weights, ctx.faults, random)) {
      const version = traffic.versions[request.track] ?? UNKNOWN_VERSION;
      ctx.metrics.record({ service: ctx.service, track: request.track, version }, request.code, request.latencySeconds);
    }
  }, TRAFFIC_TICK_MS);
  timer.unref();
  return timer;
}

export async function startDemoServer(opts: DemoServerOptions = {}): Promise<DemoServerHandle> {
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopbackHost(host)) throw new Error(`host must be a loopback address, got ${JSON.stringify(host)}`);
  const namespace = opts.namespace ?? 'ai-saas';
  const service = opts.service ?? 'api-gateway';
  const rps = opts.rps ?? 50;
  const log = opts.log ?? ((line: string) => console.log(line));
  const random = opts.random ?? Math.random;
  const source = opts.trafficSource ?? (opts.kubeconfig ? kubeTrafficSource(opts.kubeconfig, namespace, service) : null);

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
    metrics: new TrafficMetrics(),
    log,
  };

  const server = createServer(createRequestListener(ctx));
  const port = await listen(server, opts.port ?? 8080, host);
  log(`demo: listening on http://${urlHost(host)}:${port} (namespace ${namespace}, service ${service})`);
  if (!source) log('demo: no KUBECONFIG: serving stable 100 / canary 0, version unknown');
  if (!opts.credentials) log('demo: SMOKE_EMAIL/SMOKE_PASSWORD not set: every sign-in is refused');

  const timers: NodeJS.Timeout[] = [];
  let closed = false;
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
      if (!closed) timers.push(startTrafficTimer(ctx, rps, random));
    });
  } else {
    timers.push(startTrafficTimer(ctx, rps, random));
  }

  return {
    port,
    setWeightsOverride(weights) {
      ctx.weightsOverride = weights ? normaliseWeights(weights.stable, weights.canary) : null;
    },
    close() {
      closed = true;
      timers.forEach((timer) => clearInterval(timer));
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive clients would otherwise hold close() open.
        server.closeAllConnections();
      });
    },
  };
}

async function main(): Promise<void> {
  const handle = await startDemoServer(optionsFromEnv(process.env));
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    console.log(`demo: ${signal}, shutting down`);
    handle.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`demo: shutdown failed: ${describeError(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`demo: ${describeError(err)}`);
    process.exit(1);
  });
}
