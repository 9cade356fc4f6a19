/**
 * Kubernetes activities (runbook "Update Kubernetes Deployment", "Blue-Green
 * Deployment Strategy", "Rollback Procedures", "Troubleshooting") over
 * @kubernetes/client-node, as the worker's least-privilege ServiceAccount
 * (deploy/kubernetes/worker-rbac.yaml lists every verb used here).
 *
 * Decisions live in domain/rollout.ts; this file reads the cluster, applies
 * them and maps apiserver answers to the failure types of domain/errors.ts:
 * 404 → KubernetesNotFound and 403 → KubernetesForbidden (both permanent),
 * 409 → re-read and retry inside the activity, anything else transient →
 * KubernetesUnavailable, retried by Temporal. Every write is idempotent, so a
 * retry after a crash converges to the same state.
 */
import * as k8s from '@kubernetes/client-node';
import { currentActivity, heartbeat, sleep, throwIfCancelled } from './runtime';
import { AlreadyExistsError, ConflictError, Kube, loadKubeConfig, makeKubeClients, retryOnConflict, type KubeClients, type KubernetesConfig } from './clients/kube';
import { invalidInput as invalid } from './failures';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../domain/errors';
import {
  chooseUndoTarget,
  colourDeployment,
  colourDeploymentName,
  COLOUR_LABEL,
  containerImages,
  controlledBy,
  describeDiagnostics,
  diagnosePod,
  imagePatch,
  isColour,
  isPodReady,
  labelSelector,
  otherColour,
  PodTemplateError,
  podRestarts,
  previousRecord,
  revisionOf,
  rolloutStatus,
  SCALED_DOWN_AT_ANNOTATION,
  SCALED_DOWN_REPLICAS_ANNOTATION,
  selectedColour,
  templateForUndo,
  templatesEqualIgnoringHash,
  undoAnnotations,
  VERSION_ANNOTATION,
  versionFromImage,
  WORKFLOW_ANNOTATION,
  type Colour,
  type EventLine,
  type RolloutDiagnostics,
} from '../domain/rollout';
import type { BlueGreenPrepared, BlueGreenTarget, ClusterState, DeleteColourResult, DeploymentRecord, PatchImagesRequest, PatchImagesResult, PodState, ReadStateRequest, RollbackImagesRequest, RollbackImagesResult, RolloutOutcome, ScaleDownResult, SwitchResult, UndoRolloutRequest, UndoRolloutResult, WaitForRolloutRequest, WaitForRolloutResult } from './contracts';

// ---------------------------------------------------------------------------
// Deps, activity context
// ---------------------------------------------------------------------------

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
}

export interface ActivityHooks {
  heartbeat(details: unknown): void;
  signal?: AbortSignal;
}

/** Heartbeat and cancellation of the activity being run, from deps or from the Temporal activity context (when there is one). */
export function activityHooks(deps: Pick<KubernetesDeps, 'heartbeat' | 'cancellationSignal'>): ActivityHooks {
  const ctx = currentActivity(); // undefined outside an activity (a script, a plain unit test)
  return {
    heartbeat: deps.heartbeat ?? heartbeat,
    signal: deps.cancellationSignal?.() ?? ctx?.cancellationSignal,
  };
}

// ---------------------------------------------------------------------------
// Waiting for rollouts, diagnostics
// ---------------------------------------------------------------------------

export interface WaitOptions {
  timeoutMs: number;
  pollMs: number;
  logLines: number;
  /** A wait inside a traffic step gives up as TrafficNotApplied (retried), not as a failed rollout. */
  retryableTimeout?: boolean;
}


function failureMessage(headline: string, diag: RolloutDiagnostics | undefined, diagError?: string): string {
  const tail = diag ? describeDiagnostics(diag) : diagError ? `diagnostics unavailable: ${diagError}` : '';
  return tail ? `${headline}; ${tail}` : headline;
}

/** Events of the object and the newest ReplicaSet and pods: `kubectl describe`, in short. */
async function eventsFor(kube: Kube, namespace: string, names: string[]): Promise<EventLine[]> {
  const lists = await Promise.all(names.map((n) => kube.listEvents(namespace, `involvedObject.name=${n}`).catch(() => [] as k8s.CoreV1Event[])));
  const time = (e: k8s.CoreV1Event): number => new Date((e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp ?? 0)).getTime();
  return lists
    .flat()
    .sort((a, b) => time(a) - time(b))
    .slice(-10)
    .map((e) => ({
      at: new Date(time(e)).toISOString(),
      type: e.type ?? 'Normal',
      reason: e.reason ?? '',
      object: `${(e.involvedObject.kind ?? '').toLowerCase()}/${e.involvedObject.name ?? ''}`,
      message: (e.message ?? '').trim(),
      ...(e.count ? { count: e.count } : {}),
    }));
}

/**
 * What the runbook's "Troubleshooting" looks at when a rollout is stuck: the
 * Deployment's conditions, its pods that are not Ready (reasons, restarts and
 * the last log lines; kwok's pods and pods without a node have no logs, which
 * is said instead), and the events of the Deployment, its newest ReplicaSet
 * and those pods.
 */
export async function gatherDiagnostics(kube: Kube, namespace: string, deployment: string, logLines: number): Promise<RolloutDiagnostics> {
  const d = await kube.findDeployment(namespace, deployment);
  if (!d) return { namespace, deployment, status: 'deployment not found', conditions: [], notReadyPods: [], events: [] };
  const selector = labelSelector(d.spec?.selector.matchLabels);
  const [replicaSets, pods] = await Promise.all([kube.listReplicaSets(namespace, selector), kube.listPods(namespace, selector)]);
  const owned = controlledBy(replicaSets, new Set([d.metadata?.uid ?? '']));
  const newest = [...owned].sort((a, b) => (revisionOf(b) ?? 0) - (revisionOf(a) ?? 0))[0];
  const ownPods = controlledBy(pods, new Set(owned.map((rs) => rs.metadata?.uid ?? '')));
  const notReady = ownPods.filter((p) => !isPodReady(p) && !p.metadata?.deletionTimestamp).slice(0, 5);
  const diagnosed = notReady.map(diagnosePod);
  await Promise.all(
    diagnosed.slice(0, 3).map(async (p, i) => {
      if (logLines <= 0) return;
      const pod = notReady[i];
      const container = pod.status?.containerStatuses?.find((c) => !c.ready)?.name ?? pod.spec?.containers[0]?.name;
      try {
        const text = await kube.podLog(namespace, p.name, container, logLines);
        const lines = String(text ?? '').split('\n').filter((l) => l.trim() !== '');
        if (lines.length) p.logTail = lines.slice(-logLines);
        else p.logsUnavailable = 'the log is empty';
      } catch (err) {
        p.logsUnavailable = err instanceof Error ? err.message : String(err);
      }
    }),
  );
  const events = await eventsFor(kube, namespace, [deployment, ...(newest?.metadata?.name ? [newest.metadata.name] : []), ...notReady.map((p) => p.metadata?.name ?? '')]);
  return {
    namespace,
    deployment,
    status: rolloutStatus(d).message,
    conditions: (d.status?.conditions ?? []).map((c) => `${c.type}=${c.status}${c.reason ? ` ${c.reason}` : ''}${c.message ? `: ${c.message}` : ''}`),
    notReadyPods: diagnosed,
    events,
  };
}

async function rolloutFailure(kube: Kube, namespace: string, deployment: string, headline: string, logLines: number, retryable = false): Promise<ApplicationFailure> {
  let diag: RolloutDiagnostics | undefined;
  let diagError: string | undefined;
  try {
    diag = await gatherDiagnostics(kube, namespace, deployment, logLines);
  } catch (err) {
    diagError = err instanceof Error ? err.message : String(err);
  }
  return ApplicationFailure.create({
    type: retryable ? ErrorType.TrafficNotApplied : ErrorType.RolloutFailed,
    nonRetryable: !retryable,
    message: failureMessage(headline, diag, diagError),
    details: [diag ?? { namespace, deployment, diagnosticsUnavailable: diagError }],
  });
}

/**
 * `kubectl rollout status` for several Deployments at once: polls each until
 * it is rolled out, heartbeating the progress, and fails with diagnostics on
 * ProgressDeadlineExceeded or when the timeout passes. A blip of the
 * apiserver does not end the wait; a permanent error does.
 */
export async function waitForRollouts(kube: Kube, hooks: ActivityHooks, namespace: string, deployments: string[], opts: WaitOptions): Promise<RolloutOutcome[]> {
  const deadline = Date.now() + opts.timeoutMs;
  const done = new Map<string, RolloutOutcome>();
  const pending = new Map<string, string>(deployments.map((d) => [d, 'not read yet']));
  let blips = 0;
  for (;;) {
    throwIfCancelled(hooks.signal);
    try {
      const read = await Promise.all([...pending.keys()].map((name) => kube.readDeployment(namespace, name)));
      blips = 0;
      for (const d of read) {
        const name = d.metadata?.name ?? '';
        const s = rolloutStatus(d);
        if (s.failed) throw await rolloutFailure(kube, namespace, name, `rollout of ${name} failed: ${s.message}`, opts.logLines);
        if (s.done) {
          pending.delete(name);
          done.set(name, { deployment: name, revision: revisionOf(d), images: containerImages(d.spec?.template), readyReplicas: d.status?.readyReplicas ?? 0, message: s.message });
        } else {
          pending.set(name, s.message);
        }
      }
    } catch (err) {
      const transient = err instanceof ApplicationFailure && err.type === ErrorType.KubernetesUnavailable;
      if (!transient || ++blips > 5) throw err;
    }
    if (!pending.size) return deployments.map((d) => done.get(d) as RolloutOutcome);
    hooks.heartbeat({ waiting: Object.fromEntries(pending), done: [...done.keys()] });
    if (Date.now() >= deadline) {
      const [first, message] = [...pending.entries()][0];
      throw await rolloutFailure(kube, namespace, first, `rollout of ${[...pending.keys()].join(', ')} did not finish within ${Math.round(opts.timeoutMs / 1000)}s: ${message}`, opts.logLines, opts.retryableTimeout);
    }
    await sleep(Math.min(opts.pollMs, Math.max(0, deadline - Date.now())), hooks.signal);
  }
}

// ---------------------------------------------------------------------------
// Activities
// ---------------------------------------------------------------------------

function requireName(what: string, v: unknown): string {
  if (typeof v !== 'string' || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(v)) throw invalid(`${what} must be a Kubernetes object name, got ${JSON.stringify(v)}`);
  return v;
}

/** Everything the Kubernetes and traffic activities share: clients, settings, waits, image patches. */
export class KubeRuntime {
  readonly kube: Kube;

  constructor(readonly deps: KubernetesDeps) {
    const clients = deps.clients ?? (deps.kubeConfig ? makeKubeClients(deps.kubeConfig) : makeKubeClients(loadKubeConfig(deps.config.kubernetes.kubeconfig || undefined)));
    this.kube = new Kube(clients, deps.config.kubernetes.requestTimeout);
  }

  hooks(): ActivityHooks {
    return activityHooks(this.deps);
  }

  waitOptions(timeoutMs?: number): WaitOptions {
    const k = this.deps.config.kubernetes;
    return { timeoutMs: timeoutMs ?? k.rolloutTimeout, pollMs: k.pollInterval, logLines: k.diagnosticLogLines };
  }

  wait(hooks: ActivityHooks, namespace: string, deployments: string[], timeoutMs?: number, retryableTimeout = false): Promise<RolloutOutcome[]> {
    return waitForRollouts(this.kube, hooks, namespace, deployments, { ...this.waitOptions(timeoutMs), retryableTimeout });
  }

  /**
   * Sets images (and the version annotations) on one Deployment, recording
   * what they replace. Guarded by the read resourceVersion, so a concurrent
   * edit is re-read rather than overwritten, and a no-op when the change is
   * already there.
   */
  async patchImages(
    hooks: ActivityHooks,
    p: { workflowId: string; namespace: string; deployment: string; images: Record<string, string>; version: string; action: string; replicas?: number; templateLabels?: Record<string, string>; annotations?: Record<string, string | null> },
  ): Promise<DeploymentRecord> {
    return retryOnConflict(
      `patch deployment ${p.deployment}`,
      async () => {
        const d = await this.kube.readDeployment(p.namespace, p.deployment);
        const current = containerImages(d.spec?.template);
        const missing = Object.keys(p.images).filter((c) => !(c in current));
        if (missing.length) throw invalid(`deployment ${p.deployment} has no container ${missing.map((m) => `"${m}"`).join(', ')} (containers: ${Object.keys(current).join(', ') || 'none'})`);
        const prev = previousRecord(d, p.workflowId, p.version, p.images);
        const a = d.metadata?.annotations ?? {};
        const labels = d.spec?.template.metadata?.labels ?? {};
        const upToDate =
          Object.entries(p.images).every(([c, img]) => current[c] === img) &&
          a[VERSION_ANNOTATION] === p.version &&
          a[WORKFLOW_ANNOTATION] === p.workflowId &&
          d.spec?.template.metadata?.annotations?.[VERSION_ANNOTATION] === p.version &&
          (p.replicas === undefined || d.spec?.replicas === p.replicas) &&
          Object.entries(p.templateLabels ?? {}).every(([k, v]) => labels[k] === v) &&
          Object.entries(p.annotations ?? {}).every(([k, v]) => (v === null ? !(k in a) : a[k] === v));
        const record = { deployment: p.deployment, revision: revisionOf(d), previousImages: prev.previousImages, ...(prev.previousVersion ? { previousVersion: prev.previousVersion } : {}) };
        if (upToDate) return { ...record, images: current, changed: false };
        const body = imagePatch({ images: p.images, version: p.version, workflowId: p.workflowId, action: p.action, previousImages: prev.previousImages, previousVersion: prev.previousVersion, resourceVersion: d.metadata?.resourceVersion, replicas: p.replicas }) as {
          metadata: { annotations: Record<string, unknown> };
          spec: { template: { metadata: Record<string, unknown> } };
        };
        Object.assign(body.metadata.annotations, p.annotations ?? {});
        if (p.templateLabels) body.spec.template.metadata.labels = p.templateLabels;
        const after = await this.kube.patchDeployment(p.namespace, p.deployment, body);
        hooks.heartbeat({ patched: p.deployment });
        return { ...record, images: containerImages(after.spec?.template), changed: true };
      },
      hooks.signal,
    );
  }

  /** Scales a Deployment (guarded, idempotent), with optional annotations in the same write. */
  async scale(hooks: ActivityHooks, namespace: string, name: string, replicas: number, annotations?: Record<string, string | null>): Promise<k8s.V1Deployment> {
    return retryOnConflict(
      `scale deployment ${name}`,
      async () => {
        const d = await this.kube.readDeployment(namespace, name);
        const a = d.metadata?.annotations ?? {};
        const annotationsOk = Object.entries(annotations ?? {}).every(([k, v]) => (v === null ? !(k in a) : a[k] === v));
        if (d.spec?.replicas === replicas && annotationsOk) return d;
        return this.kube.patchDeployment(namespace, name, { metadata: { resourceVersion: d.metadata?.resourceVersion, ...(annotations ? { annotations } : {}) }, spec: { replicas } });
      },
      hooks.signal,
    );
  }
}

export function kubernetesActivities(deps: KubernetesDeps) {
  const rt = new KubeRuntime(deps);
  const kube = rt.kube;

  /** Sets the colour in the Service selector (keeping its other keys) and reads it back. */
  const selectColour = async (namespace: string, service: string, colour: Colour): Promise<SwitchResult> => {
    const before = await kube.readService(namespace, service);
    if (before.spec?.selector?.[COLOUR_LABEL] !== colour) await kube.patchService(namespace, service, { spec: { selector: { [COLOUR_LABEL]: colour } } });
    const after = await kube.readService(namespace, service);
    const selector = after.spec?.selector ?? {};
    if (selector[COLOUR_LABEL] !== colour) {
      throw ApplicationFailure.create({ type: ErrorType.TrafficNotApplied, message: `service ${service}: selector reads ${JSON.stringify(selector)} after setting ${COLOUR_LABEL}=${colour}` });
    }
    return { colour, selector };
  };

  const colourOf = (t: BlueGreenTarget, colour: unknown): Colour => {
    if (!isColour(colour)) throw invalid(`colour must be "blue" or "green", got ${JSON.stringify(colour)}`);
    requireName('namespace', t.namespace);
    requireName('service', t.service);
    return colour;
  };

  const base = (t: BlueGreenTarget): string => t.deployment ?? t.service;

  return {
    /**
     * The namespace as `kubectl get deploy,pods,svc` shows it: images per
     * container (the record of the running version), revisions, rollout
     * status, pods that are not Ready and restart counts.
     */
    async readClusterState(req: ReadStateRequest): Promise<ClusterState> {
      const namespace = requireName('namespace', req.namespace);
      const [deployments, replicaSets, pods, services] = await Promise.all([kube.listDeployments(namespace), kube.listReplicaSets(namespace), kube.listPods(namespace), kube.listServices(namespace)]);
      const wanted = req.deployments ? deployments.filter((d) => req.deployments?.includes(d.metadata?.name ?? '')) : deployments;
      if (req.deployments) {
        const missing = req.deployments.filter((n) => !deployments.some((d) => d.metadata?.name === n));
        if (missing.length) throw ApplicationFailure.create({ type: ErrorType.KubernetesNotFound, nonRetryable: true, message: `deployments not found in namespace ${namespace}: ${missing.join(', ')}` });
      }
      const rsOwner = new Map<string, string>();
      for (const rs of replicaSets) {
        const owner = rs.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'Deployment');
        if (owner && rs.metadata?.uid) rsOwner.set(rs.metadata.uid, owner.name);
      }
      const podStates: PodState[] = pods.map((p) => {
        const owner = p.metadata?.ownerReferences?.find((o) => o.controller && o.kind === 'ReplicaSet');
        const deployment = owner ? rsOwner.get(owner.uid) : undefined;
        return {
          name: p.metadata?.name ?? '',
          ...(deployment ? { deployment } : {}),
          phase: p.status?.phase ?? 'Unknown',
          ready: isPodReady(p),
          restarts: podRestarts(p),
          ...(p.spec?.nodeName ? { node: p.spec.nodeName } : {}),
          images: Object.fromEntries((p.spec?.containers ?? []).map((c) => [c.name, c.image ?? ''])),
        };
      });
      const names = new Set(wanted.map((d) => d.metadata?.name));
      const relevantPods = req.deployments ? podStates.filter((p) => p.deployment && names.has(p.deployment)) : podStates;
      return {
        namespace,
        deployments: wanted.map((d) => {
          const s = rolloutStatus(d);
          return {
            name: d.metadata?.name ?? '',
            revision: revisionOf(d),
            generation: d.metadata?.generation ?? 0,
            observedGeneration: d.status?.observedGeneration ?? 0,
            replicas: d.spec?.replicas ?? 0,
            readyReplicas: d.status?.readyReplicas ?? 0,
            updatedReplicas: d.status?.updatedReplicas ?? 0,
            availableReplicas: d.status?.availableReplicas ?? 0,
            images: containerImages(d.spec?.template),
            ...(d.metadata?.annotations?.[VERSION_ANNOTATION] ? { version: d.metadata.annotations[VERSION_ANNOTATION] } : {}),
            selector: d.spec?.selector.matchLabels ?? {},
            rolledOut: s.done,
            status: s.message,
          };
        }),
        pods: relevantPods,
        services: services.map((s) => ({ name: s.metadata?.name ?? '', selector: s.spec?.selector ?? {} })),
        notReady: relevantPods.filter((p) => !p.ready).map((p) => p.name),
        restartCount: relevantPods.reduce((n, p) => n + p.restarts, 0),
      };
    },

    /**
     * Runbook "Update Kubernetes Deployment": new images on the plan's
     * Deployments, each recording the images and revision it replaces and
     * annotated with the version, the workflow and a change-cause. Does not
     * wait: waitForRollout does (kubectl apply, then kubectl rollout status).
     */
    async patchImages(req: PatchImagesRequest): Promise<PatchImagesResult> {
      const hooks = rt.hooks();
      const namespace = requireName('namespace', req.namespace);
      if (!req.updates?.length) throw invalid('patchImages needs at least one update');
      const byDeployment = new Map<string, Record<string, string>>();
      for (const u of req.updates) {
        requireName('deployment', u.deployment);
        if (typeof u.image !== 'string' || !u.image) throw invalid(`deployment ${u.deployment}: image is empty`);
        byDeployment.set(u.deployment, { ...(byDeployment.get(u.deployment) ?? {}), [u.container]: u.image });
      }
      const settled = await Promise.allSettled(
        [...byDeployment].map(([deployment, images]) => rt.patchImages(hooks, { workflowId: req.workflowId, namespace, deployment, images, version: req.version, action: 'deploy' })),
      );
      const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
      // A permanent failure decides (the workflow must not retry a missing Deployment).
      if (failures.length) throw failures.find((e) => e instanceof ApplicationFailure && e.nonRetryable) ?? failures[0];
      return { records: settled.map((s) => (s as PromiseFulfilledResult<DeploymentRecord>).value) };
    },

    /** `kubectl rollout status` for each Deployment; fails as RolloutFailed (non-retryable) with the reason and diagnostics. */
    async waitForRollout(req: WaitForRolloutRequest): Promise<WaitForRolloutResult> {
      const namespace = requireName('namespace', req.namespace);
      if (!req.deployments?.length) throw invalid('waitForRollout needs at least one deployment');
      req.deployments.forEach((d) => requireName('deployment', d));
      return { deployments: await rt.wait(rt.hooks(), namespace, req.deployments, req.timeoutMs) };
    },

    /** Rollback to the recorded previous images (and version annotation), then wait for the rollout. */
    async rollbackImages(req: RollbackImagesRequest): Promise<RollbackImagesResult> {
      const hooks = rt.hooks();
      const namespace = requireName('namespace', req.namespace);
      if (!req.records?.length) throw invalid('rollbackImages needs at least one record');
      const settled = await Promise.allSettled(
        req.records.map((r) => {
          requireName('deployment', r.deployment);
          const version = r.previousVersion ?? versionFromImage(Object.values(r.previousImages)[0] ?? '');
          return rt.patchImages(hooks, { workflowId: req.workflowId, namespace, deployment: r.deployment, images: r.previousImages, version, action: 'rollback to' });
        }),
      );
      const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
      if (failures.length) throw failures.find((e) => e instanceof ApplicationFailure && e.nonRetryable) ?? failures[0];
      return { deployments: await rt.wait(hooks, namespace, req.records.map((r) => r.deployment), req.timeoutMs) };
    },

    /**
     * `kubectl rollout undo [--to-revision=N]`: the chosen ReplicaSet's pod
     * template and annotations go back into the Deployment, then the rollout
     * is awaited. The old revision comes back under a new revision number.
     */
    async undoRollout(req: UndoRolloutRequest): Promise<UndoRolloutResult> {
      const hooks = rt.hooks();
      const namespace = requireName('namespace', req.namespace);
      const name = requireName('deployment', req.deployment);
      if (req.toRevision !== undefined && (!Number.isInteger(req.toRevision) || req.toRevision < 0)) throw invalid(`toRevision must be a revision number, got ${JSON.stringify(req.toRevision)}`);
      const undone = await retryOnConflict(
        `undo deployment ${name}`,
        async () => {
          const d = await kube.readDeployment(namespace, name);
          if (d.spec?.paused) throw invalid(`deployment ${name} is paused: resume it before rolling back`);
          const owned = controlledBy(await kube.listReplicaSets(namespace, labelSelector(d.spec?.selector.matchLabels)), new Set([d.metadata?.uid ?? '']));
          const choice = chooseUndoTarget(name, owned, req.toRevision);
          if (!choice.ok) throw invalid(choice.error);
          const fromRevision = revisionOf(d);
          if (templatesEqualIgnoringHash(choice.rs.spec?.template, d.spec?.template)) {
            return { fromRevision, toRevision: choice.revision, skipped: true };
          }
          const body: k8s.V1Deployment = {
            ...d,
            metadata: { ...d.metadata, annotations: undoAnnotations(d.metadata?.annotations, choice.rs.metadata?.annotations) },
            spec: { ...(d.spec as k8s.V1DeploymentSpec), template: templateForUndo(choice.rs) },
          };
          await kube.replaceDeployment(namespace, body);
          return { fromRevision, toRevision: choice.revision, skipped: false };
        },
        hooks.signal,
      );
      const [outcome] = await rt.wait(hooks, namespace, [name], req.timeoutMs);
      return { deployment: name, ...(undone.fromRevision !== undefined ? { fromRevision: undone.fromRevision } : {}), toRevision: undone.toRevision, skipped: undone.skipped, images: outcome.images, ...(outcome.revision !== undefined ? { revision: outcome.revision } : {}) };
    },

    /** Diagnostics of a Deployment on demand (the same as attached to a RolloutFailed). */
    async collectDiagnostics(req: { namespace: string; deployment: string }): Promise<RolloutDiagnostics & { summary: string }> {
      const d = await gatherDiagnostics(kube, requireName('namespace', req.namespace), requireName('deployment', req.deployment), deps.config.kubernetes.diagnosticLogLines);
      return { ...d, summary: describeDiagnostics(d) };
    },

    /**
     * Runbook "Blue-Green": the colour that does not serve traffic gets the
     * new version and is awaited. The first time, the service's own
     * Deployment becomes blue (its pods get `version: blue`: one rollout with
     * the same image) and the Service is pinned to blue before green exists,
     * so green's pods, which also carry `app=<service>`, take no traffic early.
     */
    async prepareBlueGreen(t: BlueGreenTarget): Promise<BlueGreenPrepared> {
      const hooks = rt.hooks();
      const namespace = requireName('namespace', t.namespace);
      requireName('service', t.service);
      const baseName = requireName('deployment', base(t));
      const svc = await kube.readService(namespace, t.service);
      let activeColour = selectedColour(svc.spec?.selector);
      const activeName = colourDeploymentName(baseName, activeColour ?? 'blue');
      let active = await kube.readDeployment(namespace, activeName);
      if (!activeColour) {
        if (active.spec?.template.metadata?.labels?.[COLOUR_LABEL] !== 'blue') {
          await retryOnConflict(
            `label deployment ${activeName} blue`,
            async () => {
              const d = await kube.readDeployment(namespace, activeName);
              if (d.spec?.template.metadata?.labels?.[COLOUR_LABEL] === 'blue') return;
              await kube.patchDeployment(namespace, activeName, { metadata: { resourceVersion: d.metadata?.resourceVersion }, spec: { template: { metadata: { labels: { [COLOUR_LABEL]: 'blue' } } } } });
            },
            hooks.signal,
          );
          await rt.wait(hooks, namespace, [activeName]);
        }
        await selectColour(namespace, t.service, 'blue');
        activeColour = 'blue';
        active = await kube.readDeployment(namespace, activeName);
      }
      const activeImages = containerImages(active.spec?.template);
      if (!(t.container in activeImages)) throw invalid(`deployment ${activeName} has no container "${t.container}" (containers: ${Object.keys(activeImages).join(', ')})`);
      const scaledDown = Number(active.metadata?.annotations?.[SCALED_DOWN_REPLICAS_ANNOTATION]);
      const replicas = active.spec?.replicas || (Number.isInteger(scaledDown) && scaledDown > 0 ? scaledDown : 1);
      const activeState = { colour: activeColour, deployment: activeName, replicas, images: activeImages, ...(active.metadata?.annotations?.[VERSION_ANNOTATION] ? { version: active.metadata.annotations[VERSION_ANNOTATION] } : {}) };
      if (activeImages[t.container] === t.image && active.metadata?.annotations?.[VERSION_ANNOTATION] === t.version) {
        return { active: activeState, target: { colour: activeColour, deployment: activeName }, alreadyActive: true };
      }
      const targetColour = otherColour(activeColour);
      const targetName = colourDeploymentName(baseName, targetColour);
      if (targetName === baseName) {
        // Blue is the base Deployment: new image, back to full size, its selector untouched.
        await rt.patchImages(hooks, {
          workflowId: t.workflowId,
          namespace,
          deployment: targetName,
          images: { [t.container]: t.image },
          version: t.version,
          action: 'blue-green blue',
          replicas,
          templateLabels: { [COLOUR_LABEL]: targetColour },
          annotations: { [SCALED_DOWN_REPLICAS_ANNOTATION]: null, [SCALED_DOWN_AT_ANNOTATION]: null },
        });
      } else {
        let desired: k8s.V1Deployment;
        try {
          desired = colourDeployment(active, { name: targetName, colour: targetColour, container: t.container, image: t.image, version: t.version, workflowId: t.workflowId, replicas }) as k8s.V1Deployment;
        } catch (err) {
          if (err instanceof PodTemplateError) throw invalid(err.message);
          throw err;
        }
        await upsertDeployment(kube, hooks, namespace, desired);
      }
      await rt.wait(hooks, namespace, [targetName]);
      return { active: activeState, target: { colour: targetColour, deployment: targetName }, alreadyActive: false };
    },

    /** Runbook "Switch traffic to green": the Service selector takes the colour, once that colour's Deployment is rolled out. */
    async switchBlueGreen(req: { target: BlueGreenTarget; colour: Colour }): Promise<SwitchResult> {
      const colour = colourOf(req.target, req.colour);
      const name = colourDeploymentName(base(req.target), colour);
      const d = await kube.readDeployment(req.target.namespace, name);
      const s = rolloutStatus(d);
      if (!s.done || (d.spec?.replicas ?? 0) === 0) {
        throw ApplicationFailure.create({ type: ErrorType.TrafficNotApplied, message: `not switching ${req.target.service} to ${colour}: ${(d.spec?.replicas ?? 0) === 0 ? `deployment ${name} has 0 replicas` : s.message}` });
      }
      return selectColour(req.target.namespace, req.target.service, colour);
    },

    /** After the monitoring window: the old colour goes to 0 replicas (remembering how many it had) and is deleted later. */
    async scaleDownOldColour(req: { target: BlueGreenTarget; colour: Colour }): Promise<ScaleDownResult> {
      const hooks = rt.hooks();
      const colour = colourOf(req.target, req.colour);
      const namespace = req.target.namespace;
      const name = colourDeploymentName(base(req.target), colour);
      const svc = await kube.readService(namespace, req.target.service);
      if (selectedColour(svc.spec?.selector) === colour) throw invalid(`service ${req.target.service} still sends traffic to ${colour}: switch before scaling it down`);
      const deleteAfterMs = deps.config.kubernetes.deleteOldColourAfter;
      const d = await kube.findDeployment(namespace, name);
      if (!d) return { deployment: name, previousReplicas: 0, deleteAfterMs };
      const previous = d.spec?.replicas ?? 0;
      if (previous === 0) return { deployment: name, previousReplicas: Number(d.metadata?.annotations?.[SCALED_DOWN_REPLICAS_ANNOTATION] ?? 0) || 0, deleteAfterMs };
      await rt.scale(hooks, namespace, name, 0, { [SCALED_DOWN_REPLICAS_ANNOTATION]: String(previous), [SCALED_DOWN_AT_ANNOTATION]: new Date().toISOString() });
      return { deployment: name, previousReplicas: previous, deleteAfterMs };
    },

    /**
     * Deletes the old colour once the workflow has waited deleteAfterMs. The
     * base Deployment (blue) is never deleted: it stays at 0 replicas as the
     * next release's blue. A colour the Service selects is never deleted.
     */
    async deleteOldColour(req: { target: BlueGreenTarget; colour: Colour }): Promise<DeleteColourResult> {
      const colour = colourOf(req.target, req.colour);
      const name = colourDeploymentName(base(req.target), colour);
      const svc = await kube.readService(req.target.namespace, req.target.service);
      if (selectedColour(svc.spec?.selector) === colour) return { deployment: name, deleted: false, reason: `service ${req.target.service} selects ${colour}` };
      if (name === base(req.target)) return { deployment: name, deleted: false, reason: 'the base Deployment is kept at 0 replicas as the next blue' };
      const deleted = await kube.deleteDeployment(req.target.namespace, name);
      return { deployment: name, deleted, ...(deleted ? {} : { reason: 'already deleted' }) };
    },

    /**
     * Abort: traffic back to `colour` (scaled back up and awaited first if it
     * was scaled down), then the other colour scaled to 0. Idempotent.
     */
    async abortBlueGreen(req: { target: BlueGreenTarget; colour: Colour }): Promise<SwitchResult & { scaledDown?: string }> {
      const hooks = rt.hooks();
      const colour = colourOf(req.target, req.colour);
      const namespace = req.target.namespace;
      const backName = colourDeploymentName(base(req.target), colour);
      const back = await kube.readDeployment(namespace, backName);
      if ((back.spec?.replicas ?? 0) === 0) {
        const recorded = Number(back.metadata?.annotations?.[SCALED_DOWN_REPLICAS_ANNOTATION]);
        await rt.scale(hooks, namespace, backName, Number.isInteger(recorded) && recorded > 0 ? recorded : 1, { [SCALED_DOWN_REPLICAS_ANNOTATION]: null, [SCALED_DOWN_AT_ANNOTATION]: null });
      }
      await rt.wait(hooks, namespace, [backName]);
      const switched = await selectColour(namespace, req.target.service, colour);
      const otherName = colourDeploymentName(base(req.target), otherColour(colour));
      const other = await kube.findDeployment(namespace, otherName);
      if (other && (other.spec?.replicas ?? 0) > 0) {
        await rt.scale(hooks, namespace, otherName, 0, { [SCALED_DOWN_REPLICAS_ANNOTATION]: String(other.spec?.replicas ?? 0), [SCALED_DOWN_AT_ANNOTATION]: new Date().toISOString() });
      }
      return { ...switched, ...(other ? { scaledDown: otherName } : {}) };
    },
  };
}

/**
 * Creates a Deployment, or makes an existing one match: pod template,
 * replicas, labels and annotations replaced under its resourceVersion. A
 * different selector (immutable) means delete and create again.
 */
export async function upsertDeployment(kube: Kube, hooks: ActivityHooks, namespace: string, desired: k8s.V1Deployment): Promise<k8s.V1Deployment> {
  const name = desired.metadata?.name ?? '';
  return retryOnConflict(
    `create or update deployment ${name}`,
    async () => {
      const existing = await kube.findDeployment(namespace, name);
      if (!existing) {
        try {
          return await kube.createDeployment(namespace, desired);
        } catch (err) {
          if (err instanceof AlreadyExistsError) throw new ConflictError(err.message); // created meanwhile: read it and update
          throw err;
        }
      }
      if (labelSelector(existing.spec?.selector.matchLabels) !== labelSelector(desired.spec?.selector.matchLabels)) {
        await kube.deleteDeployment(namespace, name);
        throw new ConflictError(`deployment ${name} had another selector: deleted to be created again`);
      }
      const sameTemplate = templatesEqualIgnoringHash(existing.spec?.template, desired.spec?.template);
      const a = existing.metadata?.annotations ?? {};
      const wantA = desired.metadata?.annotations ?? {};
      if (sameTemplate && existing.spec?.replicas === desired.spec?.replicas && Object.entries(wantA).every(([k, v]) => a[k] === v)) return existing;
      hooks.heartbeat({ updating: name });
      return kube.replaceDeployment(namespace, {
        ...existing,
        metadata: { ...existing.metadata, labels: { ...(existing.metadata?.labels ?? {}), ...(desired.metadata?.labels ?? {}) }, annotations: { ...a, ...wantA } },
        spec: { ...(existing.spec as k8s.V1DeploymentSpec), replicas: desired.spec?.replicas, paused: false, template: desired.spec?.template as k8s.V1PodTemplateSpec },
      });
    },
    hooks.signal,
  );
}
