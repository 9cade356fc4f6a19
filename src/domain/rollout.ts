/**
 * Rollout logic without I/O: `kubectl rollout status` and `kubectl rollout
 * undo` semantics, the image patch and the record of what it replaced, over
 * the structural types of domain/kube-objects.ts. activities/kubernetes/
 * reads the cluster, calls these and applies the result (design §3.6).
 */
import {
  POD_TEMPLATE_HASH_LABEL,
  type DeploymentLike,
  type Labels,
  type ObjectMetaLike,
  type PodTemplateLike,
  type ReplicaSetLike,
} from './kube-objects';

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
export const CHANGE_CAUSE_ANNOTATION = 'kubernetes.io/change-cause';
/** Read by the sandbox's demo server to label metrics by version; kept on the Deployment and its pod template. */
export const VERSION_ANNOTATION = 'deploy-pipelines.dev/version';
export const WORKFLOW_ANNOTATION = 'deploy-pipelines.dev/workflow-id';
/** JSON {container: image} of the images this change replaced, so a re-run after a crash still knows them. */
export const PREVIOUS_IMAGES_ANNOTATION = 'deploy-pipelines.dev/previous-images';
export const PREVIOUS_VERSION_ANNOTATION = 'deploy-pipelines.dev/previous-version';
/** The reason of the Progressing condition once progressDeadlineSeconds has passed. */
export const PROGRESS_DEADLINE_EXCEEDED = 'ProgressDeadlineExceeded';

// ---------------------------------------------------------------------------
// Rollout status (kubectl rollout status)
// ---------------------------------------------------------------------------

export interface RolloutStatus {
  done: boolean;
  /** The progress deadline passed: waiting longer will not help. */
  failed: boolean;
  message: string;
}

/**
 * `kubectl rollout status` for one Deployment (kubectl's
 * DeploymentStatusViewer): the controller must have observed the current
 * generation, then every replica must be updated, old ones gone and the new
 * ones available. A Progressing condition with reason ProgressDeadlineExceeded
 * fails the rollout with the controller's message.
 */
export function rolloutStatus(d: DeploymentLike): RolloutStatus {
  const name = d.metadata?.name ?? '(unnamed)';
  const generation = d.metadata?.generation ?? 0;
  const s = d.status ?? {};
  if (generation > (s.observedGeneration ?? 0)) {
    return { done: false, failed: false, message: `waiting for deployment "${name}" spec update to be observed` };
  }
  const progressing = s.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === PROGRESS_DEADLINE_EXCEEDED) {
    return {
      done: false,
      failed: true,
      message: `deployment "${name}" exceeded its progress deadline${progressing.message ? `: ${progressing.message}` : ''}`,
    };
  }
  const desired = d.spec?.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0;
  const total = s.replicas ?? 0;
  const available = s.availableReplicas ?? 0;
  if (updated < desired) {
    return {
      done: false,
      failed: false,
      message: `waiting for deployment "${name}" rollout to finish: ${updated} out of ${desired} new replicas have been updated`,
    };
  }
  if (total > updated) {
    return {
      done: false,
      failed: false,
      message: `waiting for deployment "${name}" rollout to finish: ${total - updated} old replicas are pending termination`,
    };
  }
  if (available < updated) {
    return {
      done: false,
      failed: false,
      message: `waiting for deployment "${name}" rollout to finish: ${available} of ${updated} updated replicas are available`,
    };
  }
  return { done: true, failed: false, message: `deployment "${name}" successfully rolled out` };
}

/**
 * The Deployment's status is computed from its ReplicaSets' status, which can
 * lag a scale: scaled to 0 and straight back up, the ReplicaSet may still
 * count the pods it is deleting as available, and the Deployment then looks
 * rolled out with none Ready. So a rollout that rolloutStatus calls done is
 * only settled once the ReplicaSet of the Deployment's revision has observed
 * its own latest scale and has every desired replica available.
 */
export function replicaSetSettled(d: DeploymentLike, replicaSets: ReplicaSetLike[]): RolloutStatus {
  const name = d.metadata?.name ?? '(unnamed)';
  const desired = d.spec?.replicas ?? 1;
  const revision = revisionOf(d);
  const current = replicaSets.find(
    (rs) =>
      revision !== undefined &&
      revisionOf(rs) === revision &&
      // By uid: a Deployment deleted and made again under the same name leaves ReplicaSets of the old one behind.
      rs.metadata?.ownerReferences?.some(
        (o) => o.kind === 'Deployment' && o.controller === true && o.uid === d.metadata?.uid,
      ),
  );
  // No revision yet, or the ReplicaSet not listed: nothing better to go by than the Deployment's own status.
  if (!current) return rolloutStatus(d);
  const rsName = current.metadata?.name ?? '(unnamed)';
  const s = current.status ?? {};
  if ((current.metadata?.generation ?? 0) > (s.observedGeneration ?? 0))
    return { done: false, failed: false, message: `waiting for replica set "${rsName}" to observe its scale` };
  if ((s.availableReplicas ?? 0) < desired)
    return {
      done: false,
      failed: false,
      message: `waiting for deployment "${name}" rollout to finish: ${s.availableReplicas ?? 0} of ${desired} replicas of "${rsName}" are available`,
    };
  return rolloutStatus(d);
}

/** The Deployment controller's revision number, which `kubectl rollout undo --to-revision` names; undefined before the first rollout. */
export function revisionOf(o: { metadata?: ObjectMetaLike } | undefined): number | undefined {
  const raw = o?.metadata?.annotations?.[REVISION_ANNOTATION];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

/** Images of every container of a pod template, by container name (the "previous version" record). */
export function containerImages(template: PodTemplateLike | undefined): Record<string, string> {
  return Object.fromEntries((template?.spec?.containers ?? []).map((c) => [c.name, c.image ?? '']));
}

/**
 * The version an image reference was built as: its tag. Only the last path
 * segment can carry one (a registry host may have a port), and a digest
 * follows it: `127.0.0.1:5000/ai-saas-api:1.0.1@sha256:…` → `1.0.1`.
 */
export function versionFromImage(image: string): string {
  const last = image.slice(image.lastIndexOf('/') + 1);
  const [nameAndTag, digest] = last.split('@', 2);
  const colon = nameAndTag.indexOf(':');
  if (colon >= 0 && colon < nameAndTag.length - 1) return nameAndTag.slice(colon + 1);
  return digest === undefined ? 'latest' : 'unknown';
}

/** What `kubectl rollout history` shows for a change this product made. */
export function changeCause(action: string, version: string, workflowId: string): string {
  return `deploy-pipelines: ${action} ${version} (workflow ${workflowId})`;
}

// ---------------------------------------------------------------------------
// Image patch
// ---------------------------------------------------------------------------

export interface ImagePatchInput {
  /** container name -> new image */
  images: Record<string, string>;
  version: string;
  workflowId: string;
  action: string;
  /** What the change replaces, kept on the object for a re-run after a crash. */
  previousImages: Record<string, string>;
  previousVersion?: string;
  /** Optimistic concurrency: the patch fails with 409 if the object changed since it was read. */
  resourceVersion?: string;
  replicas?: number;
}

/**
 * The strategic merge patch that sets images (containers merge by name),
 * the version annotation on the Deployment and its pod template, and the
 * change-cause that `kubectl rollout history` shows.
 */
export function imagePatch(p: ImagePatchInput): Record<string, unknown> {
  return {
    metadata: {
      ...(p.resourceVersion ? { resourceVersion: p.resourceVersion } : {}),
      annotations: {
        [VERSION_ANNOTATION]: p.version,
        [WORKFLOW_ANNOTATION]: p.workflowId,
        [CHANGE_CAUSE_ANNOTATION]: changeCause(p.action, p.version, p.workflowId),
        [PREVIOUS_IMAGES_ANNOTATION]: JSON.stringify(p.previousImages),
        [PREVIOUS_VERSION_ANNOTATION]: p.previousVersion ?? null,
      },
    },
    spec: {
      ...(p.replicas !== undefined ? { replicas: p.replicas } : {}),
      template: {
        metadata: { annotations: { [VERSION_ANNOTATION]: p.version } },
        spec: { containers: Object.entries(p.images).map(([name, image]) => ({ name, image })) },
      },
    },
  };
}

export interface PreviousRecord {
  previousImages: Record<string, string>;
  previousVersion?: string;
}

/**
 * What an image change replaces. When this workflow already applied the same
 * change (a retry after a crash), the record kept on the object is the truth,
 * not the images the object runs now.
 */
export function previousRecord(
  d: DeploymentLike,
  workflowId: string,
  version: string,
  images: Record<string, string>,
): PreviousRecord {
  const a = d.metadata?.annotations ?? {};
  const current = containerImages(d.spec?.template);
  const alreadyApplied =
    a[WORKFLOW_ANNOTATION] === workflowId &&
    a[VERSION_ANNOTATION] === version &&
    Object.entries(images).every(([c, img]) => current[c] === img);
  if (alreadyApplied && a[PREVIOUS_IMAGES_ANNOTATION]) {
    try {
      const recorded = JSON.parse(a[PREVIOUS_IMAGES_ANNOTATION]) as unknown;
      if (recorded && typeof recorded === 'object' && Object.values(recorded).every((v) => typeof v === 'string')) {
        return {
          previousImages: { ...current, ...(recorded as Record<string, string>) },
          previousVersion: a[PREVIOUS_VERSION_ANNOTATION],
        };
      }
    } catch {
      // A damaged annotation: fall back to what runs now.
    }
  }
  return { previousImages: current, previousVersion: a[VERSION_ANNOTATION] };
}

// ---------------------------------------------------------------------------
// Undo (kubectl rollout undo)
// ---------------------------------------------------------------------------

/** Annotations of the Deployment that an undo keeps instead of taking them from the ReplicaSet (kubectl's annotationsToSkip). */
const UNDO_KEEP_ANNOTATIONS = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION_ANNOTATION,
  'deployment.kubernetes.io/revision-history',
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'deprecated.deployment.rollback.to',
]);

export type UndoChoice = { ok: true; rs: ReplicaSetLike; revision: number } | { ok: false; error: string };

/**
 * The ReplicaSet to go back to, as kubectl's deploymentRevision: a given
 * revision, or (toRevision 0/undefined) the second newest. `replicaSets` are
 * those the Deployment controls.
 */
export function chooseUndoTarget(
  deploymentName: string,
  replicaSets: ReplicaSetLike[],
  toRevision?: number,
): UndoChoice {
  const withRevision = replicaSets
    .map((rs) => ({ rs, revision: revisionOf(rs) }))
    .filter((x): x is { rs: ReplicaSetLike; revision: number } => x.revision !== undefined);
  if (toRevision) {
    const hit = withRevision.find((x) => x.revision === toRevision);
    return hit
      ? { ok: true, ...hit }
      : { ok: false, error: `unable to find the specified revision ${toRevision} of deployment "${deploymentName}"` };
  }
  const sorted = [...withRevision].sort((a, b) => b.revision - a.revision);
  if (sorted.length < 2) return { ok: false, error: `no rollout history found for deployment "${deploymentName}"` };
  return { ok: true, ...sorted[1] };
}

function withoutHash(t: PodTemplateLike | undefined): unknown {
  const copy = JSON.parse(JSON.stringify(t ?? {})) as PodTemplateLike;
  if (copy.metadata?.labels) delete copy.metadata.labels[POD_TEMPLATE_HASH_LABEL];
  return canonical(copy);
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => x !== undefined && x !== null)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, x]) => [k, canonical(x)]),
    );
  }
  return v;
}

/** kubectl's equalIgnoreHash: the same pod template once the pod-template-hash label is ignored. */
export function templatesEqualIgnoringHash(a: PodTemplateLike | undefined, b: PodTemplateLike | undefined): boolean {
  return JSON.stringify(withoutHash(a)) === JSON.stringify(withoutHash(b));
}

/** The ReplicaSet's template without the hash label, ready to become the Deployment's template again. */
export function templateForUndo(rs: ReplicaSetLike): PodTemplateLike {
  const t = JSON.parse(JSON.stringify(rs.spec?.template ?? {})) as PodTemplateLike;
  if (t.metadata?.labels) delete t.metadata.labels[POD_TEMPLATE_HASH_LABEL];
  return t;
}

/** The Deployment's annotations after an undo: the ReplicaSet's (which copied the Deployment's at that revision), except kubectl's skip list. */
export function undoAnnotations(deployment: Labels | undefined, replicaSet: Labels | undefined): Labels {
  const out: Labels = {};
  for (const [k, v] of Object.entries(deployment ?? {})) if (UNDO_KEEP_ANNOTATIONS.has(k)) out[k] = v;
  for (const [k, v] of Object.entries(replicaSet ?? {})) if (!UNDO_KEEP_ANNOTATIONS.has(k)) out[k] = v;
  return out;
}
