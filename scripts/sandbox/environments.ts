/**
 * The sandbox's two environments, production and staging, really separate:
 * each has its own Kubernetes control plane, database, backup prefix, Redis,
 * demo server and Prometheus. Production keeps the paths, daemon names and
 * variable names it always had; staging's live under $SANDBOX_DIR/staging,
 * its daemons are named staging-<daemon> and its variables end in _STAGING.
 */
import * as path from 'node:path';
import { DIR, ensureDir, PORTS } from './common';

export const ENVIRONMENT_NAMES = ['production', 'staging'] as const;
export type EnvironmentName = (typeof ENVIRONMENT_NAMES)[number];

export interface SandboxEnvironment {
  name: EnvironmentName;
  ports: {
    etcd: number;
    etcdPeer: number;
    apiserver: number;
    controllerManager: number;
    scheduler: number;
    /** kwok's kubelet server (pods/log, its metrics and health). */
    kwok: number;
    redis: number;
    prometheus: number;
    demo: number;
    demoPreview: number;
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

export const PRODUCTION: SandboxEnvironment = {
  name: 'production',
  ports: {
    etcd: PORTS.ETCD,
    etcdPeer: PORTS.ETCD_PEER,
    apiserver: PORTS.APISERVER,
    controllerManager: PORTS.CONTROLLER_MANAGER,
    scheduler: PORTS.SCHEDULER,
    kwok: PORTS.KWOK,
    redis: PORTS.REDIS,
    prometheus: PORTS.PROMETHEUS,
    demo: PORTS.DEMO,
    demoPreview: PORTS.DEMO_PREVIEW,
  },
  database: 'ai_saas_prod',
  backupPrefix: 'postgres/',
  dir: (...parts) => ensureDir(...parts),
  daemon: (name) => name,
  envVar: (name) => name,
  containerLog: (container) => path.join(DIR, 'demo', 'logs', `${container}.log`),
};

export const STAGING: SandboxEnvironment = {
  name: 'staging',
  ports: {
    etcd: PORTS.STAGING_ETCD,
    etcdPeer: PORTS.STAGING_ETCD_PEER,
    apiserver: PORTS.STAGING_APISERVER,
    controllerManager: PORTS.STAGING_CONTROLLER_MANAGER,
    scheduler: PORTS.STAGING_SCHEDULER,
    kwok: PORTS.STAGING_KWOK,
    redis: PORTS.STAGING_REDIS,
    prometheus: PORTS.STAGING_PROMETHEUS,
    demo: PORTS.STAGING_DEMO,
    demoPreview: PORTS.STAGING_DEMO_PREVIEW,
  },
  database: 'ai_saas_staging',
  backupPrefix: 'staging/postgres/',
  dir: (...parts) => ensureDir('staging', ...parts),
  daemon: (name) => `staging-${name}`,
  envVar: (name) => `${name}_STAGING`,
  containerLog: (container) => path.join(DIR, 'staging', 'demo', 'logs', `${container}.log`),
};

/** In start order: production first, as before. */
export const ENVIRONMENTS: readonly SandboxEnvironment[] = [PRODUCTION, STAGING];

export function environment(name: string): SandboxEnvironment {
  const env = ENVIRONMENTS.find((e) => e.name === name);
  if (!env) throw new Error(`unknown environment ${JSON.stringify(name)}: choose from ${ENVIRONMENT_NAMES.join(', ')}`);
  return env;
}
