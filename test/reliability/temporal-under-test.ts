/**
 * The Temporal the reliability harness kills: its own dev server (one
 * process on a SQLite file), or, when the sandbox runs a Temporal cluster
 * (`npm run sandbox -- up --temporal cluster`, or RELIABILITY_TEMPORAL=cluster),
 * its own four-service cluster on fresh databases in the sandbox's
 * PostgreSQL (scripts/sandbox/temporal-cluster.ts). A restart kills -9 the
 * dev server, or the history service and then the matching service, each
 * alone, and starts it again.
 */
import { Connection } from '@temporalio/client';
import * as path from 'node:path';
import { devServerDynamicConfigArgs } from '../../scripts/temporal-dynamic-config';
import { SEARCH_ATTRIBUTE_NAMES } from '../../src/search-attributes';
import {
  CLUSTER_SERVICES,
  clusterBinaries,
  ensureNamespace,
  prepareDatabases,
  SERVICE_ENV,
  serviceCommand,
  visibilityDatabase,
  writeClusterConfig,
  type ClusterLayout,
  type ClusterService,
} from '../../scripts/sandbox/temporal-cluster';
import { toolPath } from '../helpers/tools';
import { freePort } from '../helpers/ports';
import { portOpen } from '../../scripts/sandbox/common';
import { freeClusterPorts } from '../../scripts/sandbox/temporal-processes';
import { Proc, sleep } from './processes';

export interface Restart {
  /** "dev server", or the cluster service killed. */
  service: string;
  downMs: number;
}

export interface TemporalUnderTest {
  kind: 'dev' | 'cluster';
  address: string;
  /** For the report: what runs and what a restart kills. */
  description: string;
  alive: boolean;
  start(): Promise<void>;
  /** kill -9 and start again, waiting until it answers; one entry per process restarted. */
  restart(log: (line: string) => void): Promise<Restart[]>;
  stop(): Promise<void>;
  killNow(): void;
}

export function temporalKind(sandboxEnv: Record<string, string>): 'dev' | 'cluster' {
  const v = process.env.RELIABILITY_TEMPORAL;
  if (v !== undefined && v !== '' && v !== 'dev' && v !== 'cluster')
    throw new Error(`RELIABILITY_TEMPORAL must be dev or cluster, got ${JSON.stringify(v)}`);
  return (v as 'dev' | 'cluster' | undefined) || (sandboxEnv.TEMPORAL_ADDRESS ? 'cluster' : 'dev');
}

/** The frontend answers and the namespace (with the Deploy* attributes) is there. */
async function answers(address: string): Promise<boolean> {
  const conn = await Connection.connect({ address, connectTimeout: 1000 });
  try {
    await conn.workflowService.getSystemInfo({});
    await conn.workflowService.describeNamespace({ namespace: 'default' });
    return true;
  } finally {
    await conn.close();
  }
}

export async function devServer(work: string): Promise<TemporalUnderTest> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const args = ['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--headless'];
  args.push('--db-filename', path.join(work, 'dev.db'), '--log-level', 'error');
  for (const name of SEARCH_ATTRIBUTE_NAMES) args.push('--search-attribute', `${name}=Keyword`);
  args.push(...devServerDynamicConfigArgs());
  const proc = new Proc('temporal dev server', toolPath('cli'), args, process.env, path.join(work, 'temporal.log'));
  const ready = () => answers(address);
  return {
    kind: 'dev',
    address,
    description: 'the Temporal dev server, killed -9 and restarted on the same SQLite file',
    get alive() {
      return proc.alive;
    },
    start: () => proc.start(ready),
    async restart() {
      const t = Date.now();
      await proc.kill9();
      await sleep(2000);
      await proc.start(ready);
      return [{ service: 'dev server', downMs: Date.now() - t }];
    },
    stop: () => proc.stop(),
    killNow: () => proc.killNow(),
  };
}

/** The services a restart kills, each alone, in this order. */
export const RESTARTED_SERVICES: ClusterService[] = ['history', 'matching'];

/**
 * A cluster of its own on databases `temporal_reliability(_visibility)`,
 * dropped and made again at each harness start so no earlier run's
 * workflows are in it. `admin` runs SQL as the sandbox's superuser.
 */
export async function cluster(
  work: string,
  database: ClusterLayout['database'],
  admin: (sql: string) => void,
): Promise<TemporalUnderTest> {
  const layout: ClusterLayout = {
    dir: path.join(work, 'temporal-config'),
    ports: await freeClusterPorts(),
    database,
  };
  const address = `127.0.0.1:${layout.ports.grpc.frontend}`;
  const bin = clusterBinaries();
  const files = writeClusterConfig(layout);
  const procs = Object.fromEntries(
    CLUSTER_SERVICES.map((s) => {
      const [file, ...args] = serviceCommand(bin.server, files[s], s);
      return [s, new Proc(`temporal ${s}`, file, args, SERVICE_ENV, path.join(work, `temporal-${s}.log`))];
    }),
  ) as Record<ClusterService, Proc>;
  const listening = (port: number) => () => portOpen(port);
  /** The frontend answers and namespace default (with the Deploy* attributes) is there. */
  const serving = async (): Promise<void> => {
    const deadline = Date.now() + 120_000;
    for (;;) {
      if ((await ensureNamespace(address).catch(() => 'not-ready')) === 'ready') return;
      if (Date.now() > deadline) throw new Error(`the cluster at ${address} did not serve namespace default in 120s`);
      await sleep(500);
    }
  };
  return {
    kind: 'cluster',
    address,
    description: `a Temporal ${CLUSTER_SERVICES.join(', ')} cluster (one process each) on PostgreSQL; a restart kills -9 ${RESTARTED_SERVICES.join(', then ')}, each alone, and starts it again`,
    get alive() {
      return CLUSTER_SERVICES.every((s) => procs[s].alive);
    },
    async start() {
      if (!CLUSTER_SERVICES.some((s) => procs[s].alive)) {
        for (const name of [database.name, visibilityDatabase(database)])
          admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE);`);
        prepareDatabases(layout);
      }
      for (const s of CLUSTER_SERVICES) if (!procs[s].alive) await procs[s].start(listening(layout.ports.grpc[s]));
      await serving();
    },
    async restart(log) {
      const out: Restart[] = [];
      for (const s of RESTARTED_SERVICES) {
        const t = Date.now();
        await procs[s].kill9();
        log(`  temporal ${s} killed -9`);
        await sleep(2000);
        await procs[s].start(listening(layout.ports.grpc[s]));
        await serving();
        out.push({ service: s, downMs: Date.now() - t });
      }
      return out;
    },
    async stop() {
      for (const s of [...CLUSTER_SERVICES].reverse()) await procs[s].stop().catch(() => procs[s].killNow());
    },
    killNow() {
      for (const s of CLUSTER_SERVICES) procs[s].killNow();
    },
  };
}
