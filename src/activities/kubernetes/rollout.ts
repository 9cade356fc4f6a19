/**
 * The rolling-update activities (runbook "Update Kubernetes Deployment",
 * "Rollback Procedures"): read the namespace, set new images, wait for the
 * rollout, go back to the recorded images or to a revision (`kubectl rollout
 * undo`). Decisions live in domain/rollout.ts; the writes are the guarded,
 * idempotent ones of deployments.ts.
 */
import type * as k8s from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type {
  ClusterState,
  DeploymentRecord,
  DeploymentState,
  PatchImagesRequest,
  PatchImagesResult,
  PodState,
  ReadStateRequest,
  ReferenceRename,
  RollbackImagesRequest,
  RollbackImagesResult,
  UndoRolloutRequest,
  UndoRolloutResult,
  WaitForRolloutRequest,
  WaitForRolloutResult,
} from '../contracts';
import { retryOnConflict } from '../clients/kube';
import { fail, invalidInput as invalid, messageOf } from '../failures';
import { controlledBy, isPodReady, labelSelector, podRestarts } from '../../domain/kube-objects';
import {
  chooseUndoTarget,
  containerImages,
  revisionOf,
  rolloutStatus,
  templateForUndo,
  templatesEqualIgnoringHash,
  undoAnnotations,
  VERSION_ANNOTATION,
  versionFromImage,
} from '../../domain/rollout';
import { requireName, type Deployments } from './deployments';

/**
 * The values of writes run side by side, or one failure when any failed: a
 * permanent one first, because the workflow must not retry a missing
 * Deployment just because another write met a blip.
 */
function allOrFailure<T>(settled: PromiseSettledResult<T>[]): T[] {
  const failures = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as Error] : []));
  if (failures.length) throw failures.find((e) => e instanceof ApplicationFailure && e.nonRetryable) ?? failures[0];
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/** `err` with the records of the Deployments changed before it among its details (`changedBeforeFailure`). */
function withChangedBeforeFailure(err: unknown, records: DeploymentRecord[]): unknown {
  if (!records.length) return err;
  const f = err instanceof ApplicationFailure ? err : fail.KubernetesUnavailable(messageOf(err));
  return ApplicationFailure.create({
    type: f.type ?? undefined,
    message: f.message,
    nonRetryable: f.nonRetryable ?? undefined,
    details: [...(f.details ?? []), { changedBeforeFailure: records }],
  });
}

/** Renames as the request gives them: object names, and a kind when one is given. */
function checkedRenames(deployment: string, renames: unknown): ReferenceRename[] {
  if (!Array.isArray(renames)) throw invalid(`deployment ${deployment}: references must be a list of {from, to}`);
  return renames.map((r: Partial<ReferenceRename> | null) => {
    if (r?.kind !== undefined && r.kind !== 'ConfigMap' && r.kind !== 'Secret')
      throw invalid(`deployment ${deployment}: a reference's kind must be ConfigMap or Secret`);
    return {
      ...(r?.kind ? { kind: r.kind } : {}),
      from: requireName('reference from', r?.from),
      to: requireName('reference to', r?.to),
    };
  });
}

/** One Deployment as `kubectl get deploy` shows it, with the images that are the record of the running version. */
function deploymentState(d: k8s.V1Deployment): DeploymentState {
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
}

/** The activities of a rolling update and of a rollback, over one set of Deployment operations. */
export function rolloutActivities(deployments: Deployments) {
  const { kube } = deployments;

  return {
    /**
     * The namespace as `kubectl get deploy,pods,svc` shows it: images per
     * container (the record of the running version), revisions, rollout
     * status, pods that are not Ready and restart counts.
     */
    async readClusterState(req: ReadStateRequest): Promise<ClusterState> {
      const namespace = requireName('namespace', req.namespace);
      const [all, replicaSets, pods, services] = await Promise.all([
        kube.listDeployments(namespace),
        kube.listReplicaSets(namespace),
        kube.listPods(namespace),
        kube.listServices(namespace),
      ]);
      const wanted = req.deployments ? all.filter((d) => req.deployments?.includes(d.metadata?.name ?? '')) : all;
      if (req.deployments) {
        const missing = req.deployments.filter((n) => !all.some((d) => d.metadata?.name === n));
        if (missing.length)
          throw fail.KubernetesNotFound(`deployments not found in namespace ${namespace}: ${missing.join(', ')}`);
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
          ...(p.metadata?.deletionTimestamp ? { terminating: true } : {}),
          restarts: podRestarts(p),
          ...(p.spec?.nodeName ? { node: p.spec.nodeName } : {}),
          images: Object.fromEntries((p.spec?.containers ?? []).map((c) => [c.name, c.image ?? ''])),
        };
      });
      const names = new Set(wanted.map((d) => d.metadata?.name));
      const relevantPods = req.deployments
        ? podStates.filter((p) => p.deployment && names.has(p.deployment))
        : podStates;
      return {
        namespace,
        deployments: wanted.map(deploymentState),
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
      const namespace = requireName('namespace', req.namespace);
      if (!req.updates?.length) throw invalid('patchImages needs at least one update');
      const byDeployment = new Map<string, Record<string, string>>();
      const referencesOf = new Map<string, ReferenceRename[]>();
      for (const u of req.updates) {
        requireName('deployment', u.deployment);
        if (typeof u.image !== 'string' || !u.image) throw invalid(`deployment ${u.deployment}: image is empty`);
        byDeployment.set(u.deployment, { ...(byDeployment.get(u.deployment) ?? {}), [u.container]: u.image });
        if (u.references !== undefined)
          referencesOf.set(u.deployment, [
            ...(referencesOf.get(u.deployment) ?? []),
            ...checkedRenames(u.deployment, u.references),
          ]);
      }
      const settled = await Promise.allSettled(
        [...byDeployment].map(([deployment, images]) =>
          deployments.patchImages({
            workflowId: req.workflowId,
            namespace,
            deployment,
            images,
            version: req.version,
            action: 'deploy',
            ...(referencesOf.has(deployment) ? { references: referencesOf.get(deployment) } : {}),
          }),
        ),
      );
      const records = settled.flatMap((s) => (s.status === 'fulfilled' && s.value.changed ? [s.value] : []));
      try {
        return { records: allOrFailure<DeploymentRecord>(settled) };
      } catch (err) {
        // The Deployments that did change travel with the failure, so the saga undoes them too.
        throw withChangedBeforeFailure(err, records);
      }
    },

    /** `kubectl rollout status` for each Deployment; fails as RolloutFailed (non-retryable) with the reason and diagnostics. */
    async waitForRollout(req: WaitForRolloutRequest): Promise<WaitForRolloutResult> {
      const namespace = requireName('namespace', req.namespace);
      if (!req.deployments?.length) throw invalid('waitForRollout needs at least one deployment');
      req.deployments.forEach((d) => requireName('deployment', d));
      return { deployments: await deployments.wait(namespace, req.deployments, req.timeoutMs) };
    },

    /** Rollback to the recorded previous images (and version annotation), then wait for the rollout. */
    async rollbackImages(req: RollbackImagesRequest): Promise<RollbackImagesResult> {
      const namespace = requireName('namespace', req.namespace);
      if (!req.records?.length) throw invalid('rollbackImages needs at least one record');
      const settled = await Promise.allSettled(
        req.records.map((r) => {
          requireName('deployment', r.deployment);
          const version = r.previousVersion ?? versionFromImage(Object.values(r.previousImages)[0] ?? '');
          return deployments.patchImages({
            workflowId: req.workflowId,
            namespace,
            deployment: r.deployment,
            images: r.previousImages,
            version,
            action: 'rollback to',
            ...(r.previousReferences ? { references: checkedRenames(r.deployment, r.previousReferences) } : {}),
          });
        }),
      );
      allOrFailure(settled);
      return {
        deployments: await deployments.wait(
          namespace,
          req.records.map((r) => r.deployment),
          req.timeoutMs,
        ),
      };
    },

    /**
     * `kubectl rollout undo [--to-revision=N]`: the chosen ReplicaSet's pod
     * template and annotations go back into the Deployment, then the rollout
     * is awaited. The old revision comes back under a new revision number.
     */
    async undoRollout(req: UndoRolloutRequest): Promise<UndoRolloutResult> {
      const namespace = requireName('namespace', req.namespace);
      const name = requireName('deployment', req.deployment);
      if (req.toRevision !== undefined && (!Number.isInteger(req.toRevision) || req.toRevision < 0))
        throw invalid(`toRevision must be a revision number, got ${JSON.stringify(req.toRevision)}`);
      const undone = await retryOnConflict(
        `undo deployment ${name}`,
        async () => {
          const d = await kube.readDeployment(namespace, name);
          if (d.spec?.paused) throw invalid(`deployment ${name} is paused: resume it before rolling back`);
          const owned = controlledBy(
            await kube.listReplicaSets(namespace, labelSelector(d.spec?.selector.matchLabels)),
            new Set([d.metadata?.uid ?? '']),
          );
          const choice = chooseUndoTarget(name, owned, req.toRevision);
          if (!choice.ok) throw invalid(choice.error);
          const fromRevision = revisionOf(d);
          if (templatesEqualIgnoringHash(choice.rs.spec?.template, d.spec?.template)) {
            return { fromRevision, toRevision: choice.revision, skipped: true };
          }
          const body: k8s.V1Deployment = {
            ...d,
            metadata: {
              ...d.metadata,
              annotations: undoAnnotations(d.metadata?.annotations, choice.rs.metadata?.annotations),
            },
            spec: { ...(d.spec as k8s.V1DeploymentSpec), template: templateForUndo(choice.rs) },
          };
          await kube.replaceDeployment(namespace, body);
          return { fromRevision, toRevision: choice.revision, skipped: false };
        },
        deployments.signal(),
      );
      const [outcome] = await deployments.wait(namespace, [name], req.timeoutMs);
      return {
        deployment: name,
        ...(undone.fromRevision !== undefined ? { fromRevision: undone.fromRevision } : {}),
        toRevision: undone.toRevision,
        skipped: undone.skipped,
        images: outcome.images,
        ...(outcome.revision !== undefined ? { revision: outcome.revision } : {}),
      };
    },
  };
}
