/**
 * Every client the activities use, built once from config and environment
 * (design §2): the adapters receive them and never build their own, so a
 * kubeconfig is loaded once, there is one S3 client with one credential rule,
 * one Docker engine connection and one registry client per worker. Tests and
 * benchmarks build ActivityDeps themselves to swap a client or register a
 * provider through the seams (docs/architecture.md).
 */
import type { WorkflowClient } from '@temporalio/client';
import type { S3Client } from '@aws-sdk/client-s3';
import type { KubeConfig } from '@kubernetes/client-node';
import type { DeployConfig } from '../domain/config';
import { clustersOf, environmentConfig } from '../domain/environment-config';
import type { MetricsProviderFactory } from './analysis/provider';
import { loadKubeConfig, makeKubeClients, type KubeClients } from './clients/kube';
import { ioClients, s3ClientsFor, type IoClients } from './io';
import type { MigratorFactory } from './database/migrators/migrator';
import { redactorFor, type Redactor } from './redactor';
import type { TrafficProviderFactory } from './traffic/provider';

/** Providers beside (or instead of) the built-in ones, by the name the config selects. */
export interface ProviderRegistry {
  traffic?: Record<string, TrafficProviderFactory>;
  metrics?: Record<string, MetricsProviderFactory>;
  migrators?: Record<string, MigratorFactory>;
}

/** The clients of one environment's back ends (its cluster, its bucket), where they differ from the defaults. */
export interface EnvironmentClients {
  kube?: KubeClients;
  s3?: S3Client;
  /** Each of its clusters' clients, by cluster name (environments.<name>.clusters). */
  clusters?: Record<string, { kube?: KubeClients }>;
}

/** The I/O worker's clients (io.ts), and the cluster clients, providers and Temporal client beside them. */
export interface ActivityDeps extends IoClients {
  /** The default environment's cluster and bucket, and every environment's that sets none of its own. */
  kube: KubeClients;
  /** Clients of environments whose cluster or bucket differ (environments.<name>.kubernetes / backup). */
  environments?: Record<string, EnvironmentClients>;
  /** For looking up which deployment holds an environment (optional). */
  temporal?: WorkflowClient;
  providers?: ProviderRegistry;
  /**
   * Every secret the worker holds replaced by *** in command output and
   * failures (redactor.ts); built from config, env and kubeconfig when absent.
   */
  redactor?: Redactor;
}

/**
 * Builds the real clients from config and environment (used by the worker):
 * one per distinct cluster (kubeconfig and context) and per distinct object
 * store, shared by the environments that use the same one.
 */
export function defaultDeps(
  config: DeployConfig,
  env: NodeJS.ProcessEnv = process.env,
  temporal?: WorkflowClient,
): ActivityDeps {
  const s3Of = s3ClientsFor(env);
  const io = ioClients(config, env, s3Of);
  const kubeConfigs = new Map<string, KubeConfig>();
  const kubeClients = new Map<string, KubeClients>();
  const clientsOf = (c: DeployConfig): { kube: KubeClients; s3: S3Client } => {
    const k = c.kubernetes;
    const kubeKey = JSON.stringify([k.kubeconfig ?? '', k.context ?? '']);
    if (!kubeClients.has(kubeKey)) {
      const kc = loadKubeConfig(k.kubeconfig || undefined, k.context);
      kubeConfigs.set(kubeKey, kc);
      kubeClients.set(kubeKey, makeKubeClients(kc));
    }
    return { kube: kubeClients.get(kubeKey)!, s3: s3Of(c) };
  };
  const defaults = clientsOf(config);
  // Built when an environment is first acted on: a missing kubeconfig of one environment stops only its activities.
  const environments: Record<string, EnvironmentClients> = {};
  for (const name of Object.keys(config.environments)) {
    let built: { kube: KubeClients; s3: S3Client } | undefined;
    const get = () => (built ??= clientsOf(environmentConfig(config, name)));
    const clusters: Record<string, { kube?: KubeClients }> = {};
    const loaders: (() => unknown)[] = [get];
    for (const cluster of clustersOf(config, name)) {
      let kube: KubeClients | undefined;
      const getKube = () => (kube ??= clientsOf(environmentConfig(config, name, cluster)).kube);
      clusters[cluster] = {
        get kube() {
          return getKube();
        },
      };
      loaders.push(getKube);
    }
    environments[name] = {
      get kube() {
        return get().kube;
      },
      get s3() {
        return get().s3;
      },
      clusters,
    };
    // The worker's redactor must know each cluster's credentials: load what can be loaded now.
    for (const load of loaders) {
      try {
        load();
      } catch {
        // Reported by the first activity that needs this cluster.
      }
    }
  }
  return {
    config,
    env,
    git: io.git,
    source: io.source,
    docker: io.docker,
    registry: io.registry,
    ...(io.registryAuth ? { registryAuth: io.registryAuth } : {}),
    ...defaults,
    environments,
    ...(temporal ? { temporal } : {}),
    redactor: redactorFor(config, env, [...kubeConfigs.values()]),
  };
}
