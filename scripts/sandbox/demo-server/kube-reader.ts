/** Reads the live cluster objects that decide how traffic is split. */
import type { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { TrafficSource } from './config';
import {
  resolveTrafficState,
  selectedColour,
  type ClusterObjects,
  type DeploymentLike,
  type ServiceLike,
} from './traffic-state';
import { isRecord } from './util';

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
  return {
    apps: config.makeApiClient(k8s.AppsV1Api),
    core: config.makeApiClient(k8s.CoreV1Api),
    custom: config.makeApiClient(k8s.CustomObjectsApi),
  };
}

async function readClusterObjects(clients: KubeClients, namespace: string, service: string): Promise<ClusterObjects> {
  const deployment = (name: string) =>
    orNull<DeploymentLike>(clients.apps.readNamespacedDeployment({ name, namespace }));
  const virtualServiceRequest: Promise<unknown> = clients.custom.getNamespacedCustomObject({
    group: 'networking.istio.io',
    version: 'v1beta1',
    namespace,
    plural: 'virtualservices',
    name: service,
  });
  const httpRouteRequest: Promise<unknown> = clients.custom.getNamespacedCustomObject({
    group: 'gateway.networking.k8s.io',
    version: 'v1',
    namespace,
    plural: 'httproutes',
    name: service,
  });
  const canaryIngressRequest: Promise<unknown> = clients.custom.getNamespacedCustomObject({
    group: 'networking.k8s.io',
    version: 'v1',
    namespace,
    plural: 'ingresses',
    name: `${service}-canary`,
  });
  const [virtualService, httpRoute, canaryIngress, serviceObject, stableDeployment, canaryDeployment] =
    await Promise.all([
      orNull(virtualServiceRequest),
      orNull(httpRouteRequest),
      orNull(canaryIngressRequest),
      orNull<ServiceLike>(clients.core.readNamespacedService({ name: service, namespace })),
      deployment(service),
      deployment(`${service}-canary`),
    ]);
  const colour = selectedColour(serviceObject);
  const colourDeployment = colour ? await deployment(`${service}-${colour}`) : null;
  return {
    virtualService,
    httpRoute,
    canaryIngress,
    serviceName: service,
    service: serviceObject,
    stableDeployment,
    canaryDeployment,
    colourDeployment,
  };
}

/** A TrafficSource over the live cluster; the kubeconfig is (re)loaded until it works, as the cluster may start later. */
export function kubeTrafficSource(kubeconfig: string, namespace: string, service: string): TrafficSource {
  let clients: KubeClients | null = null;
  return async () => {
    clients ??= await loadKubeClients(kubeconfig);
    const objects = await withTimeout(
      readClusterObjects(clients, namespace, service),
      KUBE_TIMEOUT_MS,
      'reading Kubernetes',
    );
    return resolveTrafficState(objects);
  };
}
