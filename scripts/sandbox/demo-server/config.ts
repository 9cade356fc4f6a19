/** Options of the demo server, and reading them from the environment. */
import type { FeedTargets } from './feeds';
import type { Random } from './synthetic-traffic';
import type { TrackWeights, TrafficState } from './types';

/** The smoke-test account sign-in accepts. */
export interface Credentials {
  email: string;
  password: string;
}

/** Reads the current traffic state from somewhere (Kubernetes in production use). */
export type TrafficSource = () => Promise<TrafficState>;

/** How to run a demo server; every field has a default. */
export interface DemoServerOptions {
  /** 0 picks a free port. Default 8080. */
  port?: number;
  /** The preview listener's port (the new colour before a blue-green switch); none when absent. */
  previewPort?: number;
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
  /** Folder of the containers' log files kwok serves; without it nothing is logged there. */
  logDir?: string;
  /** The platform's containers: each log starts with a line when the server starts. */
  containers?: string[];
  log?: (line: string) => void;
  random?: Random;
  /** InfluxDB and Carbon, written each interval's per-track figures; none: nothing is written. */
  feeds?: FeedTargets;
  /** When set, GET /api/metrics answers only requests carrying it in an X-Api-Key header. */
  metricsApiKey?: string;
}

/** A running demo server. */
export interface DemoServerHandle {
  port: number;
  /** The preview listener's port, when one was asked for. */
  previewPort?: number;
  close(): Promise<void>;
  /** Pins the weights (ignoring Kubernetes) until called with null; for tests. */
  setWeightsOverride(weights: TrackWeights | null): void;
}

/** Shared by the environment and the programmatic API, so both start the same server when told nothing. */
export const DEFAULTS = {
  port: 8080,
  host: '127.0.0.1',
  namespace: 'ai-saas',
  service: 'api-gateway',
  rps: 50,
} as const;

const LOOPBACK_HOSTS = new Set(['localhost', '::1']);

/** The server exposes a fault-injection API with no auth, so it must never listen beyond this machine. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127(\.\d{1,3}){3}$/.test(host);
}

/** Throws unless `host` is a loopback address; `name` is what the error calls it. */
export function assertLoopbackHost(host: string, name: string): void {
  if (!isLoopbackHost(host)) throw new Error(`${name} must be a loopback address, got ${JSON.stringify(host)}`);
}

function parseNumberEnv(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  valid: (n: number) => boolean,
  expected: string,
): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!valid(value)) throw new Error(`${name} must be ${expected}, got ${JSON.stringify(raw)}`);
  return value;
}

/** Options from the documented environment variables; throws on values we cannot honour. */
export function optionsFromEnv(env: NodeJS.ProcessEnv): DemoServerOptions {
  const host = env.DEMO_HOST || DEFAULTS.host;
  assertLoopbackHost(host, 'DEMO_HOST');
  const email = env.SMOKE_EMAIL;
  const password = env.SMOKE_PASSWORD;
  return {
    port: parseNumberEnv(
      env,
      'DEMO_PORT',
      DEFAULTS.port,
      (n) => Number.isInteger(n) && n >= 0 && n <= 65535,
      'a port number',
    ),
    host,
    namespace: env.DEMO_NAMESPACE || DEFAULTS.namespace,
    service: env.DEMO_SERVICE || DEFAULTS.service,
    kubeconfig: env.KUBECONFIG || undefined,
    credentials: email && password ? { email, password } : undefined,
    rps: parseNumberEnv(
      env,
      'DEMO_RPS',
      DEFAULTS.rps,
      (n) => Number.isFinite(n) && n >= 0 && n <= 100_000,
      'a number between 0 and 100000',
    ),
    stateFile: env.DEMO_STATE_FILE || undefined,
    logDir: env.DEMO_LOG_DIR || undefined,
    previewPort: env.DEMO_PREVIEW_PORT ? Number(env.DEMO_PREVIEW_PORT) : undefined,
    containers: (env.DEMO_CONTAINERS ?? '').split(',').filter(Boolean),
    feeds: feedsFromEnv(env),
    metricsApiKey: env.DEMO_METRICS_API_KEY || undefined,
  };
}

/** DEMO_INFLUXDB_URL with DEMO_INFLUXDB_DATABASE (and DEMO_INFLUXDB_USERNAME/PASSWORD), and DEMO_CARBON_ADDRESS (host:port). */
function feedsFromEnv(env: NodeJS.ProcessEnv): FeedTargets {
  const feeds: FeedTargets = {};
  if (env.DEMO_INFLUXDB_URL) {
    if (!/^https?:\/\/\S+$/.test(env.DEMO_INFLUXDB_URL))
      throw new Error(`DEMO_INFLUXDB_URL must be an http(s) URL, got ${JSON.stringify(env.DEMO_INFLUXDB_URL)}`);
    feeds.influxdb = {
      url: env.DEMO_INFLUXDB_URL,
      database: env.DEMO_INFLUXDB_DATABASE || 'ai_saas',
      ...(env.DEMO_INFLUXDB_USERNAME && env.DEMO_INFLUXDB_PASSWORD
        ? { username: env.DEMO_INFLUXDB_USERNAME, password: env.DEMO_INFLUXDB_PASSWORD }
        : {}),
    };
  }
  if (env.DEMO_CARBON_ADDRESS) {
    const m = /^([^\s:]+):(\d{1,5})$/.exec(env.DEMO_CARBON_ADDRESS);
    if (!m || Number(m[2]) > 65535)
      throw new Error(`DEMO_CARBON_ADDRESS must be host:port, got ${JSON.stringify(env.DEMO_CARBON_ADDRESS)}`);
    feeds.carbon = { host: m[1], port: Number(m[2]) };
  }
  return feeds;
}
