/**
 * The sandbox's two environments, production and staging, really separate:
 * each has its own Kubernetes control plane, database, backup prefix, Redis,
 * demo server, Prometheus, InfluxDB and Graphite. Production keeps the paths, daemon names and
 * variable names it always had; staging's live under $SANDBOX_DIR/staging,
 * its daemons are named staging-<daemon> and its variables end in _STAGING.
 *
 * Production spans two clusters, as a release rolled out region by region
 * does: its own (the one its demo server follows) and production-b, another
 * region of the same environment with no database, Redis, Prometheus or demo
 * server of its own, under $SANDBOX_DIR/production-b, daemons named
 * production-b-<daemon>, variables ending in _PRODUCTION_B.
 */
import * as path from 'node:path';
import { DIR, ensureDir, PORTS } from './common';

export const ENVIRONMENT_NAMES = ['production', 'staging'] as const;
export type EnvironmentName = (typeof ENVIRONMENT_NAMES)[number];

/** One Kubernetes control plane (kube.ts): its own ports, data, PKI and kubeconfigs. */
export interface SandboxCluster {
  /** production and staging for the environments' own clusters, production-b for production's second. */
  name: string;
  /** The environment it belongs to. */
  environment: EnvironmentName;
  /** Its cluster and context name in its kubeconfigs, and its CA's name. */
  contextName: string;
  ports: {
    etcd: number;
    etcdPeer: number;
    apiserver: number;
    controllerManager: number;
    scheduler: number;
    /** kwok's kubelet server (pods/log, its metrics and health). */
    kwok: number;
  };
  /** Makes and returns a folder of its own under $SANDBOX_DIR. */
  dir(...parts: string[]): string;
  /** The pid and log name of one of its daemons. */
  daemon(name: string): string;
  /** The name of one of its variables in $SANDBOX_DIR/env. */
  envVar(name: string): string;
  /**
   * The log file kwok serves as a platform container's log, for every pod
   * running that container (kwok.ts): its environment's (SandboxEnvironment.containerLog).
   */
  containerLog(container: string): string;
}

export interface SandboxEnvironment {
  name: EnvironmentName;
  /** Its own cluster, where its demo server follows traffic; production has a second (PRODUCTION_B). */
  cluster: SandboxCluster;
  ports: {
    redis: number;
    prometheus: number;
    demo: number;
    demoPreview: number;
    influxdb: number;
    influxdbRpc: number;
    carbon: number;
    carbonPickle: number;
    carbonQuery: number;
    graphite: number;
  };
  /** Its database on the shared PostgreSQL server. */
  database: string;
  /** Where its backups go in the shared bucket. */
  backupPrefix: string;
  /** Makes and returns a folder of its own under $SANDBOX_DIR. */
  dir(...parts: string[]): string;
  /** The pid and log name of one of its daemons. */
  daemon(name: string): string;
  /** The name of one of its variables in $SANDBOX_DIR/env. */
  envVar(name: string): string;
  /**
   * The log file of a platform container, in the CRI format kubelets write
   * (`<RFC3339Nano> stdout F <line>`): the environment's kwok serves it as the
   * container's log, for every pod running that container (kwok.ts); its demo
   * server writes it.
   */
  containerLog(container: string): string;
}

const productionLog = (container: string) => path.join(DIR, 'demo', 'logs', `${container}.log`);
const stagingLog = (container: string) => path.join(DIR, 'staging', 'demo', 'logs', `${container}.log`);

export const PRODUCTION: SandboxEnvironment = {
  name: 'production',
  cluster: {
    name: 'production',
    environment: 'production',
    contextName: 'sandbox',
    ports: {
      etcd: PORTS.ETCD,
      etcdPeer: PORTS.ETCD_PEER,
      apiserver: PORTS.APISERVER,
      controllerManager: PORTS.CONTROLLER_MANAGER,
      scheduler: PORTS.SCHEDULER,
      kwok: PORTS.KWOK,
    },
    dir: (...parts) => ensureDir(...parts),
    daemon: (name) => name,
    envVar: (name) => name,
    containerLog: productionLog,
  },
  ports: {
    redis: PORTS.REDIS,
    prometheus: PORTS.PROMETHEUS,
    demo: PORTS.DEMO,
    demoPreview: PORTS.DEMO_PREVIEW,
    influxdb: PORTS.INFLUXDB,
    influxdbRpc: PORTS.INFLUXDB_RPC,
    carbon: PORTS.CARBON,
    carbonPickle: PORTS.CARBON_PICKLE,
    carbonQuery: PORTS.CARBON_QUERY,
    graphite: PORTS.GRAPHITE,
  },
  database: 'ai_saas_prod',
  backupPrefix: 'postgres/',
  dir: (...parts) => ensureDir(...parts),
  daemon: (name) => name,
  envVar: (name) => name,
  containerLog: productionLog,
};

export const STAGING: SandboxEnvironment = {
  name: 'staging',
  cluster: {
    name: 'staging',
    environment: 'staging',
    contextName: 'sandbox-staging',
    ports: {
      etcd: PORTS.STAGING_ETCD,
      etcdPeer: PORTS.STAGING_ETCD_PEER,
      apiserver: PORTS.STAGING_APISERVER,
      controllerManager: PORTS.STAGING_CONTROLLER_MANAGER,
      scheduler: PORTS.STAGING_SCHEDULER,
      kwok: PORTS.STAGING_KWOK,
    },
    dir: (...parts) => ensureDir('staging', ...parts),
    daemon: (name) => `staging-${name}`,
    envVar: (name) => `${name}_STAGING`,
    containerLog: stagingLog,
  },
  ports: {
    redis: PORTS.STAGING_REDIS,
    prometheus: PORTS.STAGING_PROMETHEUS,
    demo: PORTS.STAGING_DEMO,
    demoPreview: PORTS.STAGING_DEMO_PREVIEW,
    influxdb: PORTS.STAGING_INFLUXDB,
    influxdbRpc: PORTS.STAGING_INFLUXDB_RPC,
    carbon: PORTS.STAGING_CARBON,
    carbonPickle: PORTS.STAGING_CARBON_PICKLE,
    carbonQuery: PORTS.STAGING_CARBON_QUERY,
    graphite: PORTS.STAGING_GRAPHITE,
  },
  database: 'ai_saas_staging',
  backupPrefix: 'staging/postgres/',
  dir: (...parts) => ensureDir('staging', ...parts),
  daemon: (name) => `staging-${name}`,
  envVar: (name) => `${name}_STAGING`,
  containerLog: stagingLog,
};

/**
 * Production's second region. Its pods' logs are production's container log
 * files, written by production's demo server: the same service in another
 * region logs the same lines, and pod-log checks work there too.
 */
export const PRODUCTION_B: SandboxCluster = {
  name: 'production-b',
  environment: 'production',
  contextName: 'sandbox-production-b',
  ports: {
    etcd: PORTS.PRODUCTION_B_ETCD,
    etcdPeer: PORTS.PRODUCTION_B_ETCD_PEER,
    apiserver: PORTS.PRODUCTION_B_APISERVER,
    controllerManager: PORTS.PRODUCTION_B_CONTROLLER_MANAGER,
    scheduler: PORTS.PRODUCTION_B_SCHEDULER,
    kwok: PORTS.PRODUCTION_B_KWOK,
  },
  dir: (...parts) => ensureDir('production-b', ...parts),
  daemon: (name) => `production-b-${name}`,
  envVar: (name) => `${name}_PRODUCTION_B`,
  containerLog: productionLog,
};

/** In start order: production first, as before. */
export const ENVIRONMENTS: readonly SandboxEnvironment[] = [PRODUCTION, STAGING];

/** Every cluster, in start order: the environments' own first, then production's second region. */
export const CLUSTERS: readonly SandboxCluster[] = [PRODUCTION.cluster, STAGING.cluster, PRODUCTION_B];
export const CLUSTER_NAMES = CLUSTERS.map((c) => c.name);

export function environment(name: string): SandboxEnvironment {
  const env = ENVIRONMENTS.find((e) => e.name === name);
  if (!env) throw new Error(`unknown environment ${JSON.stringify(name)}: choose from ${ENVIRONMENT_NAMES.join(', ')}`);
  return env;
}

export function cluster(name: string): SandboxCluster {
  const c = CLUSTERS.find((x) => x.name === name);
  if (!c) throw new Error(`unknown cluster ${JSON.stringify(name)}: choose from ${CLUSTER_NAMES.join(', ')}`);
  return c;
}

/** An environment's clusters: production's two, staging's one. */
export function clustersOf(env: SandboxEnvironment): SandboxCluster[] {
  return CLUSTERS.filter((c) => c.environment === env.name);
}
