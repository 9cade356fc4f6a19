/**
 * The Deployment operations that the rollout, blue-green and canary
 * activities share: one client built from the deps, the activity runtime
 * (heartbeat, cancellation) they report to, and the guarded writes and waits
 * they are made of. Every write reads the object, decides, and writes with the
 * read resourceVersion inside retryOnConflict, so a concurrent edit is re-read
 * rather than overwritten and a retry after a crash converges to the same
 * state (a write that is already there is skipped).
 */
import type * as k8s from '@kubernetes/client-node';
import type { DeploymentRecord, ReferenceRename, RolloutOutcome } from '../contracts';
import {
  AlreadyExistsError,
  ConflictError,
  Kube,
  loadKubeConfig,
  makeKubeClients,
  retryOnConflict,
  type KubeClients,
  type KubernetesConfig,
} from '../clients/kube';
import { invalidInput } from '../failures';
import { cancellationSignal, runtimeWith, type ActivityRuntime } from '../runtime';
import { labelSelector } from '../../domain/kube-objects';
import {
  containerImages,
  imagePatch,
  previousRecord,
  revisionOf,
  templatesEqualIgnoringHash,
  VERSION_ANNOTATION,
  WORKFLOW_ANNOTATION,
} from '../../domain/rollout';
import { referencePatch, referencesRecord } from '../../domain/reference-patch';
import { waitForRollouts } from './wait';

/** What the Kubernetes and traffic activities are built from; tests and benchmarks pass their own clients, heartbeat or cancellation. */
export interface KubernetesDeps {
  /** Loaded kubeconfig (loadKubeConfig(config.kubernetes.kubeconfig)); ignored when `clients` is given. */
  kubeConfig?: k8s.KubeConfig;
  /** Ready clients; tests wrap them, e.g. to make a concurrent edit happen between a read and a write. */
  clients?: KubeClients;
  config: { kubernetes: KubernetesConfig };
  /** Where progress goes; default: the current activity's heartbeat (a no-op outside an activity). */
  heartbeat?: (details: unknown) => void;
  /** Cancellation; default: the current activity's cancellation signal. */
  cancellationSignal?: () => AbortSignal | undefined;
  /** The release repository checked out at a commit (clients/git.ts ReleaseSource): where snapshotted ConfigMaps come from. */
  sourceAt?: (commit: string) => Promise<string>;
}

/** One image change of one Deployment: what patchImages applies and records. */
export interface ImageChange {
  workflowId: string;
  namespace: string;
  deployment: string;
  /** container -> image */
  images: Record<string, string>;
  version: string;
  /** For the change-cause: `deploy`, `rollback to`, `promote canary`, ... */
  action: string;
  replicas?: number;
  /** Pod template labels set in the same write (blue-green: the colour). */
  templateLabels?: Record<string, string>;
  /** Deployment annotations set (or, when null, removed) in the same write. */
  annotations?: Record<string, string | null>;
  /**
   * ConfigMap/Secret references renamed in the same write (config snapshots),
   * so the new images and their configuration make one revision.
   */
  references?: ReferenceRename[];
}

/** Object names as the apiserver accepts them; anything else is a mistake in the request, not worth a retry. */
export function requireName(what: string, v: unknown): string {
  if (typeof v !== 'string' || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(v))
    throw invalidInput(`${what} must be a Kubernetes object name, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * The deps' heartbeat and cancellation where given, the running activity's
 * otherwise. A `cancellationSignal` that answers undefined still falls back
 * to the activity's own signal.
 */
function runtimeOf(deps: Pick<KubernetesDeps, 'heartbeat' | 'cancellationSignal'>): ActivityRuntime {
  const signal = deps.cancellationSignal;
  return runtimeWith({
    ...(deps.heartbeat ? { heartbeat: deps.heartbeat } : {}),
    ...(signal ? { cancellationSignal: () => signal() ?? cancellationSignal() } : {}),
  });
}

/** True when every annotation has the wanted value (null: absent). */
function hasAnnotations(have: Record<string, string>, want: Record<string, string | null> | undefined): boolean {
  return Object.entries(want ?? {}).every(([k, v]) => (v === null ? !(k in have) : have[k] === v));
}

/** The Deployment operations of one set of activities, over one client and one activity runtime. */
export class Deployments {
  readonly kube: Kube;
  readonly runtime: ActivityRuntime;
  readonly settings: KubernetesConfig;

  constructor(deps: KubernetesDeps) {
    const clients =
      deps.clients ??
      makeKubeClients(deps.kubeConfig ?? loadKubeConfig(deps.config.kubernetes.kubeconfig || undefined));
    this.settings = deps.config.kubernetes;
    this.kube = new Kube(clients, this.settings.requestTimeout);
    this.runtime = runtimeOf(deps);
  }

  /** The running activity's cancellation, for the waits and conflict retries. */
  signal(): AbortSignal | undefined {
    return this.runtime.cancellationSignal();
  }

  /**
   * Waits until the Deployments are rolled out (default timeout:
   * kubernetes.rolloutTimeout). `retryableTimeout`: a wait inside a traffic
   * step gives up as TrafficNotApplied, retried, not as a failed rollout.
   */
  wait(
    namespace: string,
    deployments: string[],
    timeoutMs?: number,
    retryableTimeout = false,
  ): Promise<RolloutOutcome[]> {
    const k = this.settings;
    return waitForRollouts(this.kube, this.runtime, namespace, deployments, {
      timeoutMs: timeoutMs ?? k.rolloutTimeout,
      pollMs: k.pollInterval,
      logLines: k.diagnosticLogLines,
      retryableTimeout,
    });
  }

  /**
   * Sets images (and the version annotations) on one Deployment, recording
   * what they replace. Guarded by the read resourceVersion, so a concurrent
   * edit is re-read rather than overwritten, and a no-op when the change is
   * already there.
   */
  async patchImages(p: ImageChange): Promise<DeploymentRecord> {
    return retryOnConflict(
      `patch deployment ${p.deployment}`,
      async () => {
        const d = await this.kube.readDeployment(p.namespace, p.deployment);
        const current = containerImages(d.spec?.template);
        const missing = Object.keys(p.images).filter((c) => !(c in current));
        if (missing.length)
          throw invalidInput(
            `deployment ${p.deployment} has no container ${missing.map((m) => `"${m}"`).join(', ')} (containers: ${Object.keys(current).join(', ') || 'none'})`,
          );
        const prev = previousRecord(d, p.workflowId, p.version, p.images);
        const refs = referencesRecord(d, p.workflowId, p.version, p.images, p.references);
        const a = d.metadata?.annotations ?? {};
        const labels = d.spec?.template.metadata?.labels ?? {};
        const upToDate =
          Object.entries(p.images).every(([c, img]) => current[c] === img) &&
          a[VERSION_ANNOTATION] === p.version &&
          a[WORKFLOW_ANNOTATION] === p.workflowId &&
          d.spec?.template.metadata?.annotations?.[VERSION_ANNOTATION] === p.version &&
          (p.replicas === undefined || d.spec?.replicas === p.replicas) &&
          Object.entries(p.templateLabels ?? {}).every(([k, v]) => labels[k] === v) &&
          hasAnnotations(a, p.annotations) &&
          refs.applied;
        const record = {
          deployment: p.deployment,
          revision: revisionOf(d),
          previousImages: prev.previousImages,
          ...(prev.previousVersion ? { previousVersion: prev.previousVersion } : {}),
          ...(refs.previous ? { previousReferences: refs.previous } : {}),
        };
        if (upToDate) return { ...record, images: current, changed: false };
        const body = imagePatch({
          images: p.images,
          version: p.version,
          workflowId: p.workflowId,
          action: p.action,
          previousImages: prev.previousImages,
          previousVersion: prev.previousVersion,
          resourceVersion: d.metadata?.resourceVersion,
          replicas: p.replicas,
        }) as {
          metadata: { annotations: Record<string, unknown> };
          spec: { template: { metadata: Record<string, unknown> } };
        };
        Object.assign(body.metadata.annotations, p.annotations ?? {});
        if (p.templateLabels) body.spec.template.metadata.labels = p.templateLabels;
        if (p.references) referencePatch(body, d.spec?.template, p.images, p.references, refs.previous ?? []);
        const after = await this.kube.patchDeployment(p.namespace, p.deployment, body);
        this.runtime.heartbeat({ patched: p.deployment });
        return { ...record, images: containerImages(after.spec?.template), changed: true };
      },
      this.signal(),
    );
  }

  /** Scales a Deployment (guarded, idempotent), with optional annotations in the same write. */
  async scale(
    namespace: string,
    name: string,
    replicas: number,
    annotations?: Record<string, string | null>,
  ): Promise<k8s.V1Deployment> {
    return retryOnConflict(
      `scale deployment ${name}`,
      async () => {
        const d = await this.kube.readDeployment(namespace, name);
        if (d.spec?.replicas === replicas && hasAnnotations(d.metadata?.annotations ?? {}, annotations)) return d;
        return this.kube.patchDeployment(namespace, name, {
          metadata: { resourceVersion: d.metadata?.resourceVersion, ...(annotations ? { annotations } : {}) },
          spec: { replicas },
        });
      },
      this.signal(),
    );
  }

  /**
   * Creates a Deployment, or makes an existing one match: pod template,
   * replicas, labels and annotations replaced under its resourceVersion. A
   * different selector (immutable) means delete and create again.
   */
  async upsert(namespace: string, desired: k8s.V1Deployment): Promise<k8s.V1Deployment> {
    const name = desired.metadata?.name ?? '';
    return retryOnConflict(
      `create or update deployment ${name}`,
      async () => {
        const existing = await this.kube.findDeployment(namespace, name);
        if (!existing) {
          try {
            return await this.kube.createDeployment(namespace, desired);
          } catch (err) {
            if (err instanceof AlreadyExistsError) throw new ConflictError(err.message); // created meanwhile: read it and update
            throw err;
          }
        }
        if (labelSelector(existing.spec?.selector.matchLabels) !== labelSelector(desired.spec?.selector.matchLabels)) {
          await this.kube.deleteDeployment(namespace, name);
          throw new ConflictError(`deployment ${name} had another selector: deleted to be created again`);
        }
        const sameTemplate = templatesEqualIgnoringHash(existing.spec?.template, desired.spec?.template);
        const a = existing.metadata?.annotations ?? {};
        const wantA = desired.metadata?.annotations ?? {};
        if (sameTemplate && existing.spec?.replicas === desired.spec?.replicas && hasAnnotations(a, wantA))
          return existing;
        this.runtime.heartbeat({ updating: name });
        return this.kube.replaceDeployment(namespace, {
          ...existing,
          metadata: {
            ...existing.metadata,
            labels: { ...(existing.metadata?.labels ?? {}), ...(desired.metadata?.labels ?? {}) },
            annotations: { ...a, ...wantA },
          },
          spec: {
            ...(existing.spec as k8s.V1DeploymentSpec),
            replicas: desired.spec?.replicas,
            paused: false,
            template: desired.spec?.template as k8s.V1PodTemplateSpec,
          },
        });
      },
      this.signal(),
    );
  }
}
