/**
 * The sandbox's Temporal cluster (`npm run sandbox -- up --temporal cluster`):
 * the four services of temporal-cluster.ts as daemons, on the sandbox's
 * PostgreSQL in databases of their own (`temporal`, `temporal_visibility`,
 * owned by the role `temporal`, apart from the platform's), namespace
 * `default` with the Deploy* search attributes, and the Temporal UI pointed
 * at it. Not started by a plain `up`: the fast suites use the dev server.
 * Its .sandbox/env lines (TEMPORAL_ADDRESS, TEMPORAL_UI_URL) send the worker,
 * deployctl and the end-to-end suites to it.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  ensureDir,
  HOST,
  PORTS,
  portOpen,
  running,
  sh,
  startDaemon,
  stopDaemon,
  waitReady,
  type Component,
} from './common';
import { psqlAdmin } from './postgres';
import {
  CLUSTER_SERVICES,
  clusterBinaries,
  ensureNamespace,
  prepareDatabases,
  SERVICE_ENV,
  serviceCommand,
  writeClusterConfig,
  writeUiConfig,
  type ClusterLayout,
  type ClusterService,
} from './temporal-cluster';

const ROLE = 'temporal';
const daemon = (s: ClusterService | 'ui') => `temporal-${s}`;
export const TEMPORAL_ADDRESS = `${HOST}:${PORTS.TEMPORAL_FRONTEND}`;
export const TEMPORAL_UI_URL = `http://${HOST}:${PORTS.TEMPORAL_UI}`;

function password(): string {
  const f = path.join(ensureDir('temporal'), 'db.password');
  if (!existsSync(f)) writeFileSync(f, sh('openssl', ['rand', '-hex', '16']).trim(), { mode: 0o600 });
  return readFileSync(f, 'utf8').trim();
}

export function sandboxLayout(): ClusterLayout {
  return {
    dir: ensureDir('temporal', 'config'),
    ports: {
      grpc: {
        frontend: PORTS.TEMPORAL_FRONTEND,
        history: PORTS.TEMPORAL_HISTORY,
        matching: PORTS.TEMPORAL_MATCHING,
        worker: PORTS.TEMPORAL_WORKER,
      },
      membership: {
        frontend: PORTS.TEMPORAL_FRONTEND_MEMBERSHIP,
        history: PORTS.TEMPORAL_HISTORY_MEMBERSHIP,
        matching: PORTS.TEMPORAL_MATCHING_MEMBERSHIP,
        worker: PORTS.TEMPORAL_WORKER_MEMBERSHIP,
      },
      metrics: {
        frontend: PORTS.TEMPORAL_FRONTEND_METRICS,
        history: PORTS.TEMPORAL_HISTORY_METRICS,
        matching: PORTS.TEMPORAL_MATCHING_METRICS,
        worker: PORTS.TEMPORAL_WORKER_METRICS,
      },
      http: PORTS.TEMPORAL_HTTP,
    },
    database: { host: HOST, port: PORTS.POSTGRES, user: ROLE, password: password(), name: 'temporal' },
  };
}

/** The role the cluster connects as: may create its own databases, nothing of the platform's. */
export function ensureTemporalRole(role: string, secret: string): void {
  if (!/^[a-z_][a-z0-9_]*$/.test(role) || !/^[0-9a-f]+$/.test(secret))
    throw new Error('temporal role: a plain name and a hex password only');
  const exists = psqlAdmin('postgres', `SELECT 1 FROM pg_roles WHERE rolname = '${role}';`).trim() === '1';
  psqlAdmin('postgres', `${exists ? 'ALTER' : 'CREATE'} ROLE ${role} LOGIN CREATEDB PASSWORD '${secret}';`);
}

async function namespaceReady(): Promise<boolean> {
  return (await ensureNamespace(TEMPORAL_ADDRESS)) === 'ready';
}

export function temporalComponent(): Component {
  return {
    name: 'temporal',
    optional: true,
    async up() {
      if (CLUSTER_SERVICES.every((s) => running(daemon(s))) && running(daemon('ui')))
        return `already running: frontend ${TEMPORAL_ADDRESS}, UI ${TEMPORAL_UI_URL}`;
      const bin = clusterBinaries();
      const layout = sandboxLayout();
      ensureTemporalRole(ROLE, layout.database.password);
      const t = Date.now();
      prepareDatabases(layout);
      const schemaMs = Date.now() - t;
      const files = writeClusterConfig(layout);
      for (const s of CLUSTER_SERVICES) {
        if (running(daemon(s))) continue;
        const [file, ...args] = serviceCommand(bin.server, files[s], s);
        startDaemon(daemon(s), file, args, { env: SERVICE_ENV });
        // Alone until it listens: on a fresh database it writes the cluster's metadata (see CLUSTER_SERVICES).
        if (s === CLUSTER_SERVICES[0])
          await waitReady(`temporal ${s}`, () => portOpen(layout.ports.grpc[s]), 60_000, daemon(s));
      }
      for (const s of CLUSTER_SERVICES)
        await waitReady(`temporal ${s}`, () => portOpen(layout.ports.grpc[s]), 60_000, daemon(s));
      await waitReady('temporal namespace default', namespaceReady, 90_000, daemon('frontend'));
      if (!running(daemon('ui'))) {
        const args = writeUiConfig(ensureDir('temporal', 'ui'), TEMPORAL_ADDRESS, PORTS.TEMPORAL_UI);
        startDaemon(daemon('ui'), bin.uiServer, args, { env: SERVICE_ENV });
      }
      await waitReady('temporal UI', () => portOpen(PORTS.TEMPORAL_UI), 30_000, daemon('ui'));
      return `frontend ${TEMPORAL_ADDRESS}, UI ${TEMPORAL_UI_URL} (schema checked in ${(schemaMs / 1000).toFixed(1)}s)`;
    },
    async status() {
      const down = [...CLUSTER_SERVICES, 'ui' as const].filter((s) => !running(daemon(s)));
      if (down.length) return { ok: false, detail: `not running: ${down.join(', ')}` };
      const ok = await namespaceReady().catch(() => false);
      return { ok, detail: ok ? `frontend ${TEMPORAL_ADDRESS}, UI ${TEMPORAL_UI_URL}` : 'namespace default not ready' };
    },
    async down() {
      await stopDaemon(daemon('ui'));
      for (const s of [...CLUSTER_SERVICES].reverse()) await stopDaemon(daemon(s), 30_000);
    },
    env(): Record<string, string> {
      if (!running(daemon('frontend'))) return {};
      return { TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE: 'default', TEMPORAL_UI_URL };
    },
  };
}
