/**
 * A real Temporal cluster, as a team runs it: the server built from the Go
 * module proxy (scripts/tools/temporal-cluster.sh), its schema created by the
 * server's own SQL tool in PostgreSQL, SQL advanced visibility, and the
 * frontend, history, matching and internal worker services as four processes
 * joined by membership. The sandbox's `temporal` component (temporal.ts) and
 * the reliability harness both build theirs from here; the compose file names
 * the same version and dynamic config (test/unit/compose.test.ts).
 */
import { Connection, type TLSConfig } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { SEARCH_ATTRIBUTE_KEYS } from '../../src/search-attributes';
import { DYNAMIC_CONFIG_FILE } from '../temporal-dynamic-config';
import { sh, tool } from './common';

export const TEMPORAL_SERVER_VERSION = '1.31.2';
export const TEMPORAL_UI_VERSION = '2.54.1';
/** The dynamic config every cluster here runs with, and the compose file mounts. */
export { DYNAMIC_CONFIG_FILE } from '../temporal-dynamic-config';
/** The SQL plugin and schema the server uses on PostgreSQL 12 and later. */
export const SQL_PLUGIN = 'postgres12';

/**
 * Start order: the frontend waits for history and matching; the internal
 * worker needs the frontend. On a fresh database the first one must be
 * listening before the others start: each service writes the cluster's
 * metadata record when it finds none, and those that lose that race exit
 * ("Failed to apply cluster metadata").
 */
export const CLUSTER_SERVICES = ['history', 'matching', 'frontend', 'worker'] as const;
export type ClusterService = (typeof CLUSTER_SERVICES)[number];

export interface ClusterPorts {
  grpc: Record<ClusterService, number>;
  membership: Record<ClusterService, number>;
  /** Each service's Prometheus endpoint. */
  metrics: Record<ClusterService, number>;
  /** The frontend's HTTP API. */
  http: number;
}

export interface ClusterDatabase {
  host: string;
  port: number;
  user: string;
  password: string;
  /** The main store; visibility goes to `<name>_visibility`. */
  name: string;
}

/**
 * The frontend's mTLS: clients must present a certificate signed by `caFile`,
 * which also signed the frontend's own. Between history, matching and the
 * frontend (internode) traffic stays plain: it never leaves 127.0.0.1.
 */
export interface ClusterTls {
  certFile: string;
  keyFile: string;
  caFile: string;
  /**
   * The services' own client certificate: the internal worker service, and
   * every service's SDK client (adding search attributes runs a system
   * workflow), call the frontend as any client does.
   */
  clientCertFile: string;
  clientKeyFile: string;
  /** A name in the frontend certificate's SANs: clients dial 127.0.0.1 and check this name. */
  serverName: string;
}

export interface ClusterLayout {
  /** Where the services' config files are written. */
  dir: string;
  ports: ClusterPorts;
  database: ClusterDatabase;
  tls?: ClusterTls;
  /** Shards are fixed for a database's life; 4 is plenty on one machine. */
  historyShards?: number;
}

export function visibilityDatabase(db: ClusterDatabase): string {
  return `${db.name}_visibility`;
}

/** The programs (built and cached on first use). */
export function clusterBinaries(): { dir: string; server: string; sqlTool: string; uiServer: string; schema: string } {
  const dir = tool('temporal-cluster.sh', TEMPORAL_SERVER_VERSION, TEMPORAL_UI_VERSION);
  return {
    dir,
    server: path.join(dir, 'temporal-server'),
    sqlTool: path.join(dir, 'temporal-sql-tool'),
    uiServer: path.join(dir, 'temporal-ui-server'),
    schema: path.join(dir, 'schema', 'postgresql', 'v12'),
  };
}

function datastore(db: ClusterDatabase, name: string, maxConns: number) {
  return {
    sql: {
      pluginName: SQL_PLUGIN,
      databaseName: name,
      connectAddr: `${db.host}:${db.port}`,
      connectProtocol: 'tcp',
      user: db.user,
      password: db.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  };
}

/**
 * The server's `global.tls` (common/config/config.go RootTLS): the frontend
 * serves with its certificate and requires a client certificate signed by
 * the CA; `systemWorker` is what every service's own client to the frontend
 * presents (when it is set, the server takes no client settings from
 * `frontend.client`). `internode` is left out: plain on loopback.
 */
function tlsConfig(tls: ClusterTls): Record<string, unknown> {
  return {
    frontend: {
      server: {
        certFile: tls.certFile,
        keyFile: tls.keyFile,
        requireClientAuth: true,
        clientCaFiles: [tls.caFile],
      },
    },
    systemWorker: {
      certFile: tls.clientCertFile,
      keyFile: tls.clientKeyFile,
      client: { serverName: tls.serverName, rootCaFiles: [tls.caFile] },
    },
  };
}

/** The SDK's TLS settings for a client that connects as the cluster's own services do. */
export function clusterClientTls(tls: ClusterTls): TLSConfig {
  return {
    serverNameOverride: tls.serverName,
    serverRootCACertificate: readFileSync(tls.caFile),
    clientCertPair: { crt: readFileSync(tls.clientCertFile), key: readFileSync(tls.clientKeyFile) },
  };
}

/** One service's configuration (pure): the stores, membership on loopback, its own metrics port. */
export function serviceConfig(layout: ClusterLayout, service: ClusterService): Record<string, unknown> {
  const { ports, database: db, tls } = layout;
  const rpc = (s: ClusterService) => ({
    rpc: {
      grpcPort: ports.grpc[s],
      membershipPort: ports.membership[s],
      bindOnIP: '127.0.0.1',
      ...(s === 'frontend' ? { httpPort: ports.http } : {}),
    },
  });
  const frontendAddress = `127.0.0.1:${ports.grpc.frontend}`;
  return {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'default',
      visibilityStore: 'visibility',
      numHistoryShards: layout.historyShards ?? 4,
      datastores: {
        default: datastore(db, db.name, 20),
        visibility: datastore(db, visibilityDatabase(db), 5),
      },
    },
    global: {
      membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' },
      metrics: {
        prometheus: {
          framework: 'tally',
          timerType: 'histogram',
          listenAddress: `127.0.0.1:${ports.metrics[service]}`,
        },
      },
      ...(tls ? { tls: tlsConfig(tls) } : {}),
    },
    services: Object.fromEntries(CLUSTER_SERVICES.map((s) => [s, rpc(s)])),
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: { enabled: true, initialFailoverVersion: 1, rpcName: 'frontend', rpcAddress: frontendAddress },
      },
    },
    // The internal worker service reaches the frontend here.
    publicClient: { hostPort: frontendAddress },
    dcRedirectionPolicy: { policy: 'noop' },
    dynamicConfigClient: { filepath: DYNAMIC_CONFIG_FILE, pollInterval: '10s' },
  };
}

/** Writes one config file per service; returns their paths. */
export function writeClusterConfig(layout: ClusterLayout): Record<ClusterService, string> {
  // The server stores each membership port in a SMALLINT (cluster_membership.rpc_port) and exits on a larger one.
  const high = CLUSTER_SERVICES.filter((s) => layout.ports.membership[s] > 32_767);
  if (high.length) throw new Error(`membership ports must be below 32768 (${high.join(', ')})`);
  mkdirSync(layout.dir, { recursive: true });
  const files = {} as Record<ClusterService, string>;
  for (const s of CLUSTER_SERVICES) {
    const file = path.join(layout.dir, `${s}.yaml`);
    // The file holds the database password: owner only.
    writeFileSync(file, `# written by scripts/sandbox/temporal-cluster.ts\n${stringify(serviceConfig(layout, s))}`, {
      mode: 0o600,
    });
    files[s] = file;
  }
  return files;
}

/** The command line that runs one service. */
export function serviceCommand(server: string, configFile: string, service: ClusterService): string[] {
  return [server, '--config-file', configFile, '--allow-no-auth', 'start', '--service', service];
}

/** The environment the cluster's programs get: the config files hold the rest. */
export const SERVICE_ENV: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };

/** The server's SQL tool on one database; the password goes in its environment, never on a command line. */
function sqlTool(tool: string, db: ClusterDatabase, name: string, ...command: string[]): void {
  const connection = ['--plugin', SQL_PLUGIN, '--ep', db.host, '-p', String(db.port), '-u', db.user, '--db', name];
  sh(tool, [...connection, ...command], { env: { ...SERVICE_ENV, SQL_PASSWORD: db.password } });
}

/**
 * Creates both databases when missing and brings their schemas to the
 * server's version, with the server's own tool (idempotent: only missing
 * versions are applied). The role must exist and may create databases.
 */
export function prepareDatabases(layout: ClusterLayout): void {
  const { sqlTool: tool, schema } = clusterBinaries();
  const db = layout.database;
  for (const [name, kind] of [
    [db.name, 'temporal'],
    [visibilityDatabase(db), 'visibility'],
  ] as const) {
    try {
      sqlTool(tool, db, name, 'create-database');
    } catch (err) {
      if (!/already exists/.test(String((err as { stderr?: string }).stderr ?? err))) throw err;
    }
    sqlTool(tool, db, name, 'setup-schema', '-v', '0.0');
    sqlTool(tool, db, name, 'update-schema', '-d', path.join(schema, kind, 'versioned'));
  }
}

/** Drops both databases (the cluster's processes must have stopped: open connections block it). */
export function dropDatabases(layout: ClusterLayout): void {
  const tool = clusterBinaries().sqlTool;
  for (const name of [layout.database.name, visibilityDatabase(layout.database)])
    sqlTool(tool, layout.database, name, 'drop-database', '--force');
}

/** Frontend answering, and namespace `default` with the Deploy* search attributes present (created when missing). */
export async function ensureNamespace(
  address: string,
  tls?: TLSConfig,
  namespace = 'default',
): Promise<'ready' | 'not-ready'> {
  const connection = await Connection.connect({ address, connectTimeout: 2000, ...(tls ? { tls } : {}) });
  try {
    await connection.workflowService.getSystemInfo({});
    try {
      await connection.workflowService.describeNamespace({ namespace });
    } catch (err) {
      if ((err as { code?: number }).code !== 5) throw err; // NOT_FOUND: register it
      await connection.workflowService.registerNamespace({
        namespace,
        workflowExecutionRetentionPeriod: msToTs('30 days'),
      });
      return 'not-ready';
    }
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const missing = SEARCH_ATTRIBUTE_KEYS.filter((k) => !(customAttributes && k.name in customAttributes));
    if (missing.length) {
      await connection.operatorService.addSearchAttributes({
        namespace,
        searchAttributes: Object.fromEntries(missing.map((k) => [k.name, 2 /* INDEXED_VALUE_TYPE_KEYWORD */])),
      });
      return 'not-ready';
    }
    return 'ready';
  } finally {
    await connection.close();
  }
}

/** The UI server's config (pure): the cluster's frontend, writes enabled (people approve from the UI). */
export function uiConfig(frontend: string, port: number): Record<string, unknown> {
  return {
    temporalGrpcAddress: frontend,
    host: '127.0.0.1',
    port,
    publicPath: '',
    enableUi: true,
    defaultNamespace: 'default',
    cors: { allowOrigins: [`http://127.0.0.1:${port}`], cookieInsecure: true },
    disableWriteActions: false,
    startWorkflowDisabled: false,
    workflowSignalDisabled: false,
    notifyOnNewVersion: false,
    // Loopback only: the page would otherwise fetch a news feed from the internet.
    disableNewsFetch: true,
    refreshInterval: '0s',
    auth: { enabled: false },
  };
}

/** Writes <dir>/config/sandbox.yaml for `temporal-ui-server --root <dir> --env sandbox start`. */
export function writeUiConfig(dir: string, frontend: string, port: number): string[] {
  mkdirSync(path.join(dir, 'config'), { recursive: true });
  writeFileSync(path.join(dir, 'config', 'sandbox.yaml'), stringify(uiConfig(frontend, port)));
  return ['--root', dir, '--config', 'config', '--env', 'sandbox', 'start'];
}
