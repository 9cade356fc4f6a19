/**
 * Shared plumbing of the sandbox: where its data lives, its ports, and the
 * daemons it starts (pid files, logs, readiness waits). Everything listens on
 * 127.0.0.1; `down` stops only what `up` started, by pid.
 */
import { spawn, execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { repoRoot } from '../../src/repo-root';

export const ROOT = repoRoot();
export const DIR = path.resolve(process.env.SANDBOX_DIR ?? path.join(ROOT, '.sandbox'));
export const LOGS = path.join(DIR, 'logs');
export const PIDS = path.join(DIR, 'pids');

/**
 * Ports an earlier `up` recorded in $SANDBOX_DIR/env: a command given only
 * SANDBOX_DIR (reset, fault, down, a test's helper) reaches that instance's
 * services, never the default ports of another instance.
 */
function recordedPorts(): Record<string, string> {
  try {
    const text = readFileSync(path.join(DIR, 'env'), 'utf8');
    return Object.fromEntries(
      text
        .split('\n')
        .map((l) => /^(SANDBOX_[A-Z0-9_]+_PORT)=(\d+)$/.exec(l.trim()))
        .filter((m): m is RegExpExecArray => !!m)
        .map((m) => [m[1], m[2]]),
    );
  } catch {
    return {};
  }
}
const RECORDED = recordedPorts();

function port(name: string, fallback: number): number {
  const v = process.env[`SANDBOX_${name}_PORT`] || RECORDED[`SANDBOX_${name}_PORT`];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new Error(`SANDBOX_${name}_PORT must be a port number, got ${JSON.stringify(v)}`);
  return n;
}

/** Ports, each overridable with SANDBOX_<NAME>_PORT. */
export const PORTS = {
  ETCD: port('ETCD', 12379),
  ETCD_PEER: port('ETCD_PEER', 12380),
  APISERVER: port('APISERVER', 16443),
  CONTROLLER_MANAGER: port('CONTROLLER_MANAGER', 10257),
  SCHEDULER: port('SCHEDULER', 10259),
  REGISTRY: port('REGISTRY', 5000),
  POSTGRES: port('POSTGRES', 15432),
  S3: port('S3', 9000),
  PROMETHEUS: port('PROMETHEUS', 9090),
  REDIS: port('REDIS', 16379),
  /** The mail server (smtp.ts): plain SMTP, and implicit TLS with a login. */
  SMTP: port('SMTP', 2525),
  SMTPS: port('SMTPS', 2465),
  DEMO: port('DEMO', 8080),
  /** The demo platform's preview (the new colour of a blue-green release, before the switch). */
  DEMO_PREVIEW: port('DEMO_PREVIEW', 8081),
  /** kwok's kubelet server: the apiserver reaches it for pods/log. */
  KWOK: port('KWOK', 10247),
  // The metrics backends besides Prometheus (influxdb.ts, graphite.ts), fed by the demo server.
  INFLUXDB: port('INFLUXDB', 8086),
  /** InfluxDB's RPC service (backup/restore): bound to loopback, never used. */
  INFLUXDB_RPC: port('INFLUXDB_RPC', 8088),
  CARBON: port('CARBON', 2003),
  CARBON_PICKLE: port('CARBON_PICKLE', 2004),
  /** Carbon's cache query port: graphite-web reads the points not yet written to disk there. */
  CARBON_QUERY: port('CARBON_QUERY', 7002),
  /** graphite-web (its render API) under gunicorn. */
  GRAPHITE: port('GRAPHITE', 8280),
  // The Temporal cluster (temporal.ts, started with `up --temporal cluster`): each service's gRPC,
  // membership and metrics ports, the frontend's HTTP API, and the Web UI.
  TEMPORAL_FRONTEND: port('TEMPORAL_FRONTEND', 17233),
  TEMPORAL_HISTORY: port('TEMPORAL_HISTORY', 17234),
  TEMPORAL_MATCHING: port('TEMPORAL_MATCHING', 17235),
  TEMPORAL_WORKER: port('TEMPORAL_WORKER', 17239),
  TEMPORAL_FRONTEND_MEMBERSHIP: port('TEMPORAL_FRONTEND_MEMBERSHIP', 16933),
  TEMPORAL_HISTORY_MEMBERSHIP: port('TEMPORAL_HISTORY_MEMBERSHIP', 16934),
  TEMPORAL_MATCHING_MEMBERSHIP: port('TEMPORAL_MATCHING_MEMBERSHIP', 16935),
  TEMPORAL_WORKER_MEMBERSHIP: port('TEMPORAL_WORKER_MEMBERSHIP', 16939),
  TEMPORAL_FRONTEND_METRICS: port('TEMPORAL_FRONTEND_METRICS', 17000),
  TEMPORAL_HISTORY_METRICS: port('TEMPORAL_HISTORY_METRICS', 17001),
  TEMPORAL_MATCHING_METRICS: port('TEMPORAL_MATCHING_METRICS', 17002),
  TEMPORAL_WORKER_METRICS: port('TEMPORAL_WORKER_METRICS', 17003),
  TEMPORAL_HTTP: port('TEMPORAL_HTTP', 17243),
  TEMPORAL_UI: port('TEMPORAL_UI', 18233),
  // The staging environment's own (environments.ts): its control plane, Redis, metrics backends and demo server.
  STAGING_ETCD: port('STAGING_ETCD', 12479),
  STAGING_ETCD_PEER: port('STAGING_ETCD_PEER', 12480),
  STAGING_APISERVER: port('STAGING_APISERVER', 16444),
  STAGING_CONTROLLER_MANAGER: port('STAGING_CONTROLLER_MANAGER', 10357),
  STAGING_SCHEDULER: port('STAGING_SCHEDULER', 10359),
  STAGING_KWOK: port('STAGING_KWOK', 10347),
  STAGING_REDIS: port('STAGING_REDIS', 16380),
  STAGING_PROMETHEUS: port('STAGING_PROMETHEUS', 9190),
  STAGING_DEMO: port('STAGING_DEMO', 8180),
  STAGING_DEMO_PREVIEW: port('STAGING_DEMO_PREVIEW', 8181),
  STAGING_INFLUXDB: port('STAGING_INFLUXDB', 8186),
  STAGING_INFLUXDB_RPC: port('STAGING_INFLUXDB_RPC', 8188),
  STAGING_CARBON: port('STAGING_CARBON', 2103),
  STAGING_CARBON_PICKLE: port('STAGING_CARBON_PICKLE', 2104),
  STAGING_CARBON_QUERY: port('STAGING_CARBON_QUERY', 7102),
  STAGING_GRAPHITE: port('STAGING_GRAPHITE', 8380),
  // Production's second cluster, production-b (environments.ts): a control plane only, the next ports up.
  PRODUCTION_B_ETCD: port('PRODUCTION_B_ETCD', 12579),
  PRODUCTION_B_ETCD_PEER: port('PRODUCTION_B_ETCD_PEER', 12580),
  PRODUCTION_B_APISERVER: port('PRODUCTION_B_APISERVER', 16445),
  PRODUCTION_B_CONTROLLER_MANAGER: port('PRODUCTION_B_CONTROLLER_MANAGER', 10457),
  PRODUCTION_B_SCHEDULER: port('PRODUCTION_B_SCHEDULER', 10459),
  PRODUCTION_B_KWOK: port('PRODUCTION_B_KWOK', 10447),
};

/** The demo platform's services: one Deployment, one container of the same name each. */
export const PLATFORM_SERVICES = [
  'auth-service',
  'chat-service',
  'billing-service',
  'analytics-service',
  'api-gateway',
  'frontend',
];

export const HOST = '127.0.0.1';

export function ensureDir(...parts: string[]): string {
  const d = path.join(DIR, ...parts);
  mkdirSync(d, { recursive: true });
  return d;
}

export function pidFile(name: string): string {
  return path.join(PIDS, `${name}.pid`);
}

/** When the process started (clock ticks after boot, /proc/<pid>/stat field 22): with the pid, it names one process. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function writePid(name: string, pid: number): void {
  writeFileSync(pidFile(name), `${pid} ${startTime(pid) ?? ''}\n`);
}

/**
 * The pid of a daemon we started, if that very process still exists. The
 * file holds the pid and its start time: after a reboot (or on a busy
 * machine) the same pid may belong to another program, which is then neither
 * taken for our daemon nor ever signalled.
 */
export function readPid(name: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(pidFile(name), 'utf8').trim();
  } catch {
    return undefined;
  }
  const [pidText, started] = text.split(/\s+/);
  const n = Number(pidText);
  if (!Number.isInteger(n) || n <= 0) return undefined;
  if (started && startTime(n) !== started) return undefined;
  return n;
}

export function isAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    // A zombie or a reused pid of another program is not ours: check the command line is still there.
    return existsSync(`/proc/${pid}/cmdline`) && readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[2] !== 'Z';
  } catch {
    return false;
  }
}

export function running(name: string): boolean {
  return isAlive(readPid(name));
}

export interface DaemonOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  uid?: number;
  gid?: number;
}

/** Starts a long-running program in its own session, output to .sandbox/logs/<name>.log, pid in .sandbox/pids. */
export function startDaemon(name: string, file: string, args: string[], opts: DaemonOptions = {}): number {
  mkdirSync(LOGS, { recursive: true });
  mkdirSync(PIDS, { recursive: true });
  const log = openSync(path.join(LOGS, `${name}.log`), 'a');
  const child = spawn(file, args, {
    cwd: opts.cwd ?? DIR,
    env: opts.env ?? process.env,
    detached: true,
    stdio: ['ignore', log, log],
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
  });
  closeSync(log);
  if (!child.pid) throw new Error(`${name}: could not start ${file}`);
  child.unref();
  writePid(name, child.pid);
  return child.pid;
}

export async function stopDaemon(name: string, timeoutMs = 15_000): Promise<boolean> {
  const pid = readPid(name);
  if (!isAlive(pid)) {
    rmSync(pidFile(name), { force: true });
    return false;
  }
  process.kill(pid!, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) process.kill(pid!, 'SIGKILL');
  while (isAlive(pid)) await sleep(50);
  rmSync(pidFile(name), { force: true });
  return true;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function logTail(name: string, lines = 15): string {
  try {
    return readFileSync(path.join(LOGS, `${name}.log`), 'utf8')
      .trimEnd()
      .split('\n')
      .slice(-lines)
      .join('\n');
  } catch {
    return '(no log)';
  }
}

/** Waits for `probe` to succeed; on timeout the error names the component and shows its log. */
export async function waitReady(
  name: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  daemon?: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      last = (err as Error).message;
    }
    if (daemon && !running(daemon)) {
      throw new Error(
        `${name} exited during start-up; last lines of ${path.relative(ROOT, path.join(LOGS, `${daemon}.log`))}:\n${logTail(daemon)}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${name} not ready after ${timeoutMs / 1000}s${last ? ` (${last})` : ''}${daemon ? `; last lines of its log:\n${logTail(daemon)}` : ''}`,
      );
    }
    await sleep(250);
  }
}

export function portOpen(port: number, host = HOST): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** Runs a tool-acquisition script and returns what it printed (a path). */
export function tool(script: string, ...args: string[]): string {
  return execFileSync('bash', [path.join(ROOT, 'scripts', 'tools', script), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
}

export function which(cmd: string): string | undefined {
  try {
    return execFileSync('bash', ['-c', 'command -v "$1"', 'which', cmd], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export function sh(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; input?: string } = {},
): string {
  return execFileSync(file, args, {
    encoding: 'utf8',
    env: opts.env ?? process.env,
    cwd: opts.cwd,
    input: opts.input,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export interface Component {
  name: string;
  /**
   * The environment it serves (environments.ts), or the cluster for production's second one
   * (production-b); none when both environments share it (one PostgreSQL, one bucket, ...).
   */
  environment?: string;
  /** Started only when named (or, for the Temporal cluster, with `up --temporal cluster`); not running is not a failure. */
  optional?: boolean;
  /** Starts what is not running, waits until ready; returns a one-line detail. */
  up(): Promise<string>;
  /** Whether it is up, with a one-line detail. */
  status(): Promise<{ ok: boolean; detail: string }>;
  down(): Promise<void>;
  /** Returns its data to the v1.0.0 state. */
  reset?(): Promise<void>;
  /** KEY=VALUE pairs for .sandbox/env. */
  env?(): Record<string, string>;
}
