/**
 * The Kubernetes client: the kubeconfig loaded once, the typed API clients,
 * and every apiserver call the adapters make behind one request timeout and
 * one error mapping: 404 → KubernetesNotFound and 403 → KubernetesForbidden
 * (both permanent), 400/422 → InvalidInput, 409 → ConflictError or
 * AlreadyExistsError for the caller to re-read, anything else →
 * KubernetesUnavailable, retried by Temporal.
 */
import * as k8s from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type { DeployConfig } from '../../domain/config';
import { ErrorType } from '../../domain/errors';
import { fail, isFailure } from '../failures';
import { sleep } from '../runtime';

export type KubernetesConfig = DeployConfig['kubernetes'];

export interface KubeClients {
  apps: k8s.AppsV1Api;
  core: k8s.CoreV1Api;
  custom: k8s.CustomObjectsApi;
}

/** The worker's kubeconfig: the file the config names, else the standard rules (KUBECONFIG, in-cluster). */
export function loadKubeConfig(file?: string, context?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (context) {
    if (!kc.getContextObject(context)) {
      throw new Error(
        `kubeconfig ${file ?? '(default)'} has no context "${context}": contexts are ${kc.contexts.map((c) => c.name).join(', ') || 'none'}`,
      );
    }
    kc.setCurrentContext(context);
  }
  return kc;
}

export function makeKubeClients(kc: k8s.KubeConfig): KubeClients {
  return {
    apps: kc.makeApiClient(k8s.AppsV1Api),
    core: kc.makeApiClient(k8s.CoreV1Api),
    custom: kc.makeApiClient(k8s.CustomObjectsApi),
  };
}

// ---------------------------------------------------------------------------

export interface KubeOp {
  verb: 'get' | 'list' | 'create' | 'update' | 'patch' | 'delete';
  resource: string;
  namespace: string;
  name?: string;
}

/** 409 Conflict: the object changed since it was read; the caller re-reads and tries again. */
export class ConflictError extends Error {
  override name = 'ConflictError';
}

/** 409 AlreadyExists on create. */
export class AlreadyExistsError extends Error {
  override name = 'AlreadyExistsError';
}

function apiCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * What an ApiException's body says: the apiserver's Status (parsed, or its
 * JSON text) gives `message` and `reason`; a body that is text but not JSON
 * comes back as `text`.
 */
function statusOf(body: unknown): { message?: string; reason?: string; text?: string } {
  let status: unknown = body;
  if (typeof body === 'string') {
    try {
      status = JSON.parse(body);
    } catch {
      return { text: body };
    }
  }
  if (status && typeof status === 'object' && typeof (status as { message?: unknown }).message === 'string') {
    const s = status as { message: string; reason?: string };
    return { message: s.message, reason: s.reason };
  }
  return {};
}

/** The apiserver's Status message (ApiException embeds the whole response; the message says enough). */
function apiMessage(err: unknown): { message: string; reason?: string } {
  const { message, reason } = statusOf((err as { body?: unknown } | null)?.body);
  if (message !== undefined) return { message, reason };
  const raw = err instanceof Error ? err.message : String(err);
  return { message: raw.split('\n')[0].slice(0, 300) };
}

/**
 * One line for a failed call whose error is shown rather than mapped (the
 * verification checks' pod reads and logs): the Status message, else the body
 * text, else the error's first line, clipped, with the HTTP code in front.
 */
export function describeKubeError(err: unknown): string {
  const e = err as { code?: unknown; body?: unknown; message?: unknown };
  const status = statusOf(e.body);
  const message =
    status.message ?? status.text ?? (typeof e.message === 'string' ? e.message.split('\n')[0] : String(err));
  const clipped = message.length > 300 ? `${message.slice(0, 300)}...` : message;
  return typeof e.code === 'number' ? `HTTP ${e.code}: ${clipped}` : clipped;
}

function describeOp(op: KubeOp): string {
  return `${op.verb} ${op.resource}${op.name ? ` "${op.name}"` : ''} in namespace ${op.namespace}`;
}

/** Maps a failed apiserver call to the failure the workflow acts on. */
export function mapKubeError(op: KubeOp, err: unknown): Error {
  if (isFailure(err)) return err;
  const code = apiCode(err);
  const { message, reason } = apiMessage(err);
  const what = describeOp(op);
  if (code === 409)
    return reason === 'AlreadyExists'
      ? new AlreadyExistsError(`${what}: ${message}`)
      : new ConflictError(`${what}: ${message}`);
  if (code === 404) {
    return fail.KubernetesNotFound(`${what}: not found (${message})`, { ...op });
  }
  if (code === 403) {
    return fail.KubernetesForbidden(
      `forbidden: the worker may not ${op.verb} ${op.resource} in namespace ${op.namespace} (${message}); grant it in deploy/kubernetes/worker-rbac.yaml`,
      { ...op },
    );
  }
  if (code === 400 || code === 422) {
    return fail.InvalidInput(`the apiserver refused to ${what}: ${message}`);
  }
  const cause = code ? `HTTP ${code}: ${message}` : message;
  return fail.KubernetesUnavailable(`${what} failed: ${cause}`);
}

/**
 * Runs `attempt` (read, decide, write with the read resourceVersion) until it
 * does not meet a conflict: another writer's edit is re-read, never
 * overwritten. Gives up as KubernetesUnavailable, which Temporal retries.
 */
export async function retryOnConflict<T>(
  what: string,
  attempt: () => Promise<T>,
  signal?: AbortSignal,
  attempts = 8,
): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      if (i >= attempts)
        throw fail.KubernetesUnavailable(`${what}: still conflicting after ${attempts} attempts (${err.message})`);
      await sleep(Math.min(1000, 25 * 2 ** i) * (0.5 + Math.random() / 2), signal);
    }
  }
}

export const MERGE = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
export const STRATEGIC = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);

export const ISTIO_GROUP = 'networking.istio.io';
export const ISTIO_VERSION = 'v1beta1';

/** The apiserver calls the activities make, with one request timeout and one error mapping. */
export class Kube {
  constructor(
    readonly clients: KubeClients,
    private readonly requestTimeoutMs: number,
  ) {}

  async call<T>(op: KubeOp, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no answer within ${this.requestTimeoutMs} ms`)),
        this.requestTimeoutMs,
      );
    });
    try {
      return await Promise.race([fn(), timeout]);
    } catch (err) {
      throw mapKubeError(op, err);
    } finally {
      clearTimeout(timer);
    }
  }

  readDeployment(namespace: string, name: string): Promise<k8s.V1Deployment> {
    return this.call({ verb: 'get', resource: 'deployments', namespace, name }, () =>
      this.clients.apps.readNamespacedDeployment({ name, namespace }),
    );
  }

  /** undefined when the Deployment does not exist. */
  async findDeployment(namespace: string, name: string): Promise<k8s.V1Deployment | undefined> {
    try {
      return await this.readDeployment(namespace, name);
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === ErrorType.KubernetesNotFound) return undefined;
      throw err;
    }
  }

  async listDeployments(namespace: string, selector?: string): Promise<k8s.V1Deployment[]> {
    const r = await this.call({ verb: 'list', resource: 'deployments', namespace }, () =>
      this.clients.apps.listNamespacedDeployment({ namespace, ...(selector ? { labelSelector: selector } : {}) }),
    );
    return r.items;
  }

  patchDeployment(namespace: string, name: string, body: object, strategy = STRATEGIC): Promise<k8s.V1Deployment> {
    return this.call({ verb: 'patch', resource: 'deployments', namespace, name }, () =>
      this.clients.apps.patchNamespacedDeployment({ name, namespace, body }, strategy),
    );
  }

  replaceDeployment(namespace: string, body: k8s.V1Deployment): Promise<k8s.V1Deployment> {
    const name = body.metadata?.name ?? '';
    return this.call({ verb: 'update', resource: 'deployments', namespace, name }, () =>
      this.clients.apps.replaceNamespacedDeployment({ name, namespace, body }),
    );
  }

  createDeployment(namespace: string, body: k8s.V1Deployment): Promise<k8s.V1Deployment> {
    return this.call({ verb: 'create', resource: 'deployments', namespace, name: body.metadata?.name }, () =>
      this.clients.apps.createNamespacedDeployment({ namespace, body }),
    );
  }

  /** true when deleted now, false when it was already gone. Background propagation: the ReplicaSets and pods go too, never orphaned for another Deployment to adopt. */
  async deleteDeployment(namespace: string, name: string): Promise<boolean> {
    try {
      await this.call({ verb: 'delete', resource: 'deployments', namespace, name }, () =>
        this.clients.apps.deleteNamespacedDeployment({ name, namespace, propagationPolicy: 'Background' }),
      );
      return true;
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === ErrorType.KubernetesNotFound) return false;
      throw err;
    }
  }

  async listReplicaSets(namespace: string, selector?: string): Promise<k8s.V1ReplicaSet[]> {
    const r = await this.call({ verb: 'list', resource: 'replicasets', namespace }, () =>
      this.clients.apps.listNamespacedReplicaSet({ namespace, ...(selector ? { labelSelector: selector } : {}) }),
    );
    return r.items;
  }

  async listPods(namespace: string, selector?: string): Promise<k8s.V1Pod[]> {
    const r = await this.call({ verb: 'list', resource: 'pods', namespace }, () =>
      this.clients.core.listNamespacedPod({ namespace, ...(selector ? { labelSelector: selector } : {}) }),
    );
    return r.items;
  }

  async listEvents(namespace: string, fieldSelector: string): Promise<k8s.CoreV1Event[]> {
    const r = await this.call({ verb: 'list', resource: 'events', namespace }, () =>
      this.clients.core.listNamespacedEvent({ namespace, fieldSelector }),
    );
    return r.items;
  }

  podLog(namespace: string, name: string, container: string | undefined, tailLines: number): Promise<string> {
    return this.call({ verb: 'get', resource: 'pods/log', namespace, name }, () =>
      this.clients.core.readNamespacedPodLog({ name, namespace, ...(container ? { container } : {}), tailLines }),
    );
  }

  readService(namespace: string, name: string): Promise<k8s.V1Service> {
    return this.call({ verb: 'get', resource: 'services', namespace, name }, () =>
      this.clients.core.readNamespacedService({ name, namespace }),
    );
  }

  /** undefined when the Service does not exist. */
  async findService(namespace: string, name: string): Promise<k8s.V1Service | undefined> {
    try {
      return await this.readService(namespace, name);
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === ErrorType.KubernetesNotFound) return undefined;
      throw err;
    }
  }

  async listServices(namespace: string): Promise<k8s.V1Service[]> {
    const r = await this.call({ verb: 'list', resource: 'services', namespace }, () =>
      this.clients.core.listNamespacedService({ namespace }),
    );
    return r.items;
  }

  patchService(namespace: string, name: string, body: object): Promise<k8s.V1Service> {
    return this.call({ verb: 'patch', resource: 'services', namespace, name }, () =>
      this.clients.core.patchNamespacedService({ name, namespace, body }, MERGE),
    );
  }

  createService(namespace: string, body: k8s.V1Service): Promise<k8s.V1Service> {
    return this.call({ verb: 'create', resource: 'services', namespace, name: body.metadata?.name }, () =>
      this.clients.core.createNamespacedService({ namespace, body }),
    );
  }

  /** true when deleted now, false when it was already gone. */
  async deleteService(namespace: string, name: string): Promise<boolean> {
    try {
      await this.call({ verb: 'delete', resource: 'services', namespace, name }, () =>
        this.clients.core.deleteNamespacedService({ name, namespace }),
      );
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }

  // ConfigMaps and Secrets: only by name (config snapshots). The worker never
  // lists Secrets: a list would return every Secret's value in the namespace.

  readConfigMap(namespace: string, name: string): Promise<k8s.V1ConfigMap> {
    return this.call({ verb: 'get', resource: 'configmaps', namespace, name }, () =>
      this.clients.core.readNamespacedConfigMap({ name, namespace }),
    );
  }

  createConfigMap(namespace: string, body: k8s.V1ConfigMap): Promise<k8s.V1ConfigMap> {
    return this.call({ verb: 'create', resource: 'configmaps', namespace, name: body.metadata?.name }, () =>
      this.clients.core.createNamespacedConfigMap({ namespace, body }),
    );
  }

  readSecret(namespace: string, name: string): Promise<k8s.V1Secret> {
    return this.call({ verb: 'get', resource: 'secrets', namespace, name }, () =>
      this.clients.core.readNamespacedSecret({ name, namespace }),
    );
  }

  createSecret(namespace: string, body: k8s.V1Secret): Promise<k8s.V1Secret> {
    return this.call({ verb: 'create', resource: 'secrets', namespace, name: body.metadata?.name }, () =>
      this.clients.core.createNamespacedSecret({ namespace, body }),
    );
  }

  /** true when deleted now, false when it was already gone. */
  async deleteConfigObject(kind: 'ConfigMap' | 'Secret', namespace: string, name: string): Promise<boolean> {
    const resource = kind === 'ConfigMap' ? 'configmaps' : 'secrets';
    try {
      await this.call({ verb: 'delete', resource, namespace, name }, () =>
        kind === 'ConfigMap'
          ? this.clients.core.deleteNamespacedConfigMap({ name, namespace })
          : this.clients.core.deleteNamespacedSecret({ name, namespace }),
      );
      return true;
    } catch (err) {
      if (err instanceof ApplicationFailure && err.type === ErrorType.KubernetesNotFound) return false;
      throw err;
    }
  }

  readVirtualService(namespace: string, name: string): Promise<VirtualServiceObject> {
    return this.call(
      { verb: 'get', resource: 'virtualservices.networking.istio.io', namespace, name },
      async () =>
        (await this.clients.custom.getNamespacedCustomObject({
          group: ISTIO_GROUP,
          version: ISTIO_VERSION,
          namespace,
          plural: 'virtualservices',
          name,
        })) as VirtualServiceObject,
    );
  }

  patchVirtualService(namespace: string, name: string, body: object): Promise<VirtualServiceObject> {
    return this.call(
      { verb: 'patch', resource: 'virtualservices.networking.istio.io', namespace, name },
      async () =>
        (await this.clients.custom.patchNamespacedCustomObject(
          { group: ISTIO_GROUP, version: ISTIO_VERSION, namespace, plural: 'virtualservices', name, body },
          MERGE,
        )) as VirtualServiceObject,
    );
  }
}

/** A namespaced API resource reached through the generic object API (CRDs and built-ins alike). */
export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
}
export const HTTP_ROUTES: ResourceRef = { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes' };
export const INGRESSES: ResourceRef = { group: 'networking.k8s.io', version: 'v1', plural: 'ingresses' };

const resourceName = (r: ResourceRef) => `${r.plural}.${r.group}`;
const isNotFound = (err: unknown) => err instanceof ApplicationFailure && err.type === ErrorType.KubernetesNotFound;

/** Reads, creates, merge-patches and deletes objects of one resource (HTTPRoutes, Ingresses), with Kube's timeout and error mapping. */
export class KubeObjects<T extends object> {
  constructor(
    private readonly kube: Kube,
    private readonly ref: ResourceRef,
  ) {}

  read(namespace: string, name: string): Promise<T> {
    const { group, version, plural } = this.ref;
    return this.kube.call(
      { verb: 'get', resource: resourceName(this.ref), namespace, name },
      async () =>
        (await this.kube.clients.custom.getNamespacedCustomObject({ group, version, namespace, plural, name })) as T,
    );
  }

  /** undefined when it does not exist. */
  async find(namespace: string, name: string): Promise<T | undefined> {
    try {
      return await this.read(namespace, name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  create(namespace: string, body: object & { metadata?: { name?: string } }): Promise<T> {
    const { group, version, plural } = this.ref;
    return this.kube.call(
      { verb: 'create', resource: resourceName(this.ref), namespace, name: body.metadata?.name },
      async () =>
        (await this.kube.clients.custom.createNamespacedCustomObject({
          group,
          version,
          namespace,
          plural,
          body: { apiVersion: group ? `${group}/${version}` : version, kind: KINDS[plural], ...body },
        })) as T,
    );
  }

  patch(namespace: string, name: string, body: object): Promise<T> {
    const { group, version, plural } = this.ref;
    return this.kube.call(
      { verb: 'patch', resource: resourceName(this.ref), namespace, name },
      async () =>
        (await this.kube.clients.custom.patchNamespacedCustomObject(
          { group, version, namespace, plural, name, body },
          MERGE,
        )) as T,
    );
  }

  /** true when deleted now, false when it was already gone. */
  async delete(namespace: string, name: string): Promise<boolean> {
    const { group, version, plural } = this.ref;
    try {
      await this.kube.call({ verb: 'delete', resource: resourceName(this.ref), namespace, name }, () =>
        this.kube.clients.custom.deleteNamespacedCustomObject({ group, version, namespace, plural, name }),
      );
      return true;
    } catch (err) {
      if (isNotFound(err)) return false;
      throw err;
    }
  }
}

const KINDS: Record<string, string> = { httproutes: 'HTTPRoute', ingresses: 'Ingress' };

export interface VirtualServiceObject {
  metadata?: { name?: string; resourceVersion?: string };
  spec?: { http?: Record<string, unknown>[]; [k: string]: unknown };
}
