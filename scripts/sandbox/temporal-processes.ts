/**
 * A cluster of temporal-cluster.ts run as children of the calling process,
 * not as the sandbox's daemons: for a test or a harness that needs a cluster
 * of its own for as long as it runs (its own ports, config directory and
 * databases), and stops it by pid when it ends. The databases are the
 * caller's to prepare and drop (prepareDatabases, dropDatabases).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { HOST, portOpen, sleep } from './common';
import {
  CLUSTER_SERVICES,
  clusterBinaries,
  clusterClientTls,
  ensureNamespace,
  SERVICE_ENV,
  serviceCommand,
  writeClusterConfig,
  type ClusterLayout,
  type ClusterPorts,
  type ClusterService,
} from './temporal-cluster';

export interface ClusterProcesses {
  /** The frontend's gRPC address. */
  address: string;
  pids: Record<ClusterService, number>;
  /** Each service's output (stdout and stderr), in the layout's directory. */
  logs: Record<ClusterService, string>;
  /** SIGTERM to every service, SIGKILL to any still running after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Lowest and highest port picked. Each service writes its membership port to
 * cluster_membership.rpc_port, a SMALLINT: a port above 32767 stops it at
 * start-up. The kernel's ephemeral ports (from 32768) are out, so ports are
 * drawn at random below that and checked free.
 */
const PORT_RANGE = [20_000, 32_767] as const;

function listenOn(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, HOST, () => resolve(s));
  });
}

/** Thirteen ports free on 127.0.0.1 (held open together while picked, so they differ). */
export async function freeClusterPorts(): Promise<ClusterPorts> {
  const held: net.Server[] = [];
  const ports: number[] = [];
  try {
    for (let tries = 0; held.length < 13; tries++) {
      if (tries > 1000) throw new Error(`no 13 free ports between ${PORT_RANGE[0]} and ${PORT_RANGE[1]}`);
      const s = await listenOn(PORT_RANGE[0] + Math.floor(Math.random() * (PORT_RANGE[1] - PORT_RANGE[0] + 1)));
      if (!s) continue;
      held.push(s);
      ports.push((s.address() as net.AddressInfo).port);
    }
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  }
  const take = () =>
    Object.fromEntries(CLUSTER_SERVICES.map((s) => [s, ports.shift()!])) as Record<ClusterService, number>;
  return { grpc: take(), membership: take(), metrics: take(), http: ports.shift()! };
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no output)';
  }
}

/**
 * Writes the config, starts the four services and waits until the
 * frontend answers (over mTLS when the layout has it, as the services' own
 * client) with namespace `default` and the Deploy* search attributes ready.
 * A service that exits during start-up fails it with the end of its output,
 * and whatever was started is stopped again.
 */
export async function startClusterProcesses(layout: ClusterLayout, timeoutMs = 120_000): Promise<ClusterProcesses> {
  const bin = clusterBinaries();
  const files = writeClusterConfig(layout);
  const children = new Map<ClusterService, ChildProcess>();
  const exits = new Map<ChildProcess, Promise<unknown>>();
  const logs = Object.fromEntries(CLUSTER_SERVICES.map((s) => [s, path.join(layout.dir, `${s}.log`)])) as Record<
    ClusterService,
    string
  >;
  const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
  // Should the caller die without stopping it, no service outlives it.
  const killAll = () => {
    for (const c of children.values()) if (alive(c)) c.kill('SIGKILL');
  };
  process.once('exit', killAll);

  async function stop(graceMs = 15_000): Promise<void> {
    const running = [...children.values()].filter(alive);
    const exited = running.map((c) => exits.get(c)!);
    for (const c of running) c.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      Promise.all(exited).then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
    ]);
    clearTimeout(timer);
    if (late) {
      for (const c of running) if (alive(c)) c.kill('SIGKILL');
      await Promise.all(exited);
    }
    process.removeListener('exit', killAll);
  }

  const deadline = Date.now() + timeoutMs;
  const waitUntil = async (what: string, probe: () => Promise<boolean>) => {
    let last = '';
    for (;;) {
      for (const [s, c] of children)
        if (!alive(c))
          throw new Error(`temporal ${s} exited during start-up; last lines of ${logs[s]}:\n${tail(logs[s])}`);
      try {
        if (await probe()) return;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() > deadline)
        throw new Error(
          `${what} not ready after ${timeoutMs / 1000}s${last ? ` (${last})` : ''}; logs in ${layout.dir}`,
        );
      await sleep(250);
    }
  };

  try {
    const start = (s: ClusterService) => {
      const [file, ...args] = serviceCommand(bin.server, files[s], s);
      const out = openSync(logs[s], 'a');
      // The services get no more of the environment than they need: the config file holds the rest.
      const child = spawn(file, args, {
        cwd: layout.dir,
        env: SERVICE_ENV,
        stdio: ['ignore', out, out],
      });
      closeSync(out);
      child.once('error', () => undefined); // no pid: reported just below
      if (!child.pid) throw new Error(`temporal ${s}: could not start ${file}`);
      children.set(s, child);
      exits.set(child, new Promise((r) => child.once('exit', r)));
    };
    // The first service alone until it listens: it has written the cluster's metadata record by then.
    const [first, ...rest] = CLUSTER_SERVICES;
    start(first);
    await waitUntil(`temporal ${first}`, () => portOpen(layout.ports.grpc[first]));
    rest.forEach(start);
    for (const s of rest) await waitUntil(`temporal ${s}`, () => portOpen(layout.ports.grpc[s]));
    const address = `${HOST}:${layout.ports.grpc.frontend}`;
    const tls = layout.tls ? clusterClientTls(layout.tls) : undefined;
    await waitUntil('temporal namespace default', async () => (await ensureNamespace(address, tls)) === 'ready');
    return {
      address,
      pids: Object.fromEntries([...children].map(([s, c]) => [s, c.pid!])) as Record<ClusterService, number>,
      logs,
      stop,
    };
  } catch (err) {
    await stop(5000);
    throw err;
  }
}
