/**
 * Rollout logic without I/O: `kubectl rollout status` and `kubectl rollout
 * undo` semantics, the image patch, the blue-green colour scheme and the
 * failure diagnostics, over structural types that the client library's
 * objects satisfy. activities/kubernetes.ts reads the cluster, calls these and
 * applies the result (design §3.6).
 */

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
export const CHANGE_CAUSE_ANNOTATION = 'kubernetes.io/change-cause';
/** Read by the sandbox's demo server to label metrics by version; kept on the Deployment and its pod template. */
export const VERSION_ANNOTATION = 'deploy-pipelines.dev/version';
export const WORKFLOW_ANNOTATION = 'deploy-pipelines.dev/workflow-id';
/** JSON {container: image} of the images this change replaced, so a re-run after a crash still knows them. */
export const PREVIOUS_IMAGES_ANNOTATION = 'deploy-pipelines.dev/previous-images';
export const PREVIOUS_VERSION_ANNOTATION = 'deploy-pipelines.dev/previous-version';
/** Blue-green: replicas an old colour had before it was scaled down, and when. */
export const SCALED_DOWN_REPLICAS_ANNOTATION = 'deploy-pipelines.dev/scaled-down-replicas';
export const SCALED_DOWN_AT_ANNOTATION = 'deploy-pipelines.dev/scaled-down-at';
export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';
/** The reason of the Progressing condition once progressDeadlineSeconds has passed. */
export const PROGRESS_DEADLINE_EXCEEDED = 'ProgressDeadlineExceeded';

// ---------------------------------------------------------------------------
// Structural types (V1Deployment, V1ReplicaSet and V1Pod are assignable)
// ---------------------------------------------------------------------------

export type Labels = Record<string, string>;

export interface OwnerReferenceLike {
  uid: string;
  kind: string;
  name: string;
  controller?: boolean;
}

export interface ObjectMetaLike {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Labels;
  annotations?: Labels;
  ownerReferences?: OwnerReferenceLike[];
  creationTimestamp?: Date | string;
}

export interface ContainerLike {
  name: string;
  image?: string;
}

export interface PodTemplateLike {
  metadata?: { labels?: Labels; annotations?: Labels };
  spec?: { containers: ContainerLike[] };
}

export interface ConditionLike {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface DeploymentLike {
  metadata?: ObjectMetaLike;
  spec?: {
    replicas?: number;
    paused?: boolean;
    selector: { matchLabels?: Labels };
    template: PodTemplateLike;
  };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    readyReplicas?: number;
    availableReplicas?: number;
    conditions?: ConditionLike[];
  };
}

export interface ReplicaSetLike {
  metadata?: ObjectMetaLike;
  spec?: { replicas?: number; template?: PodTemplateLike };
  status?: { replicas?: number; readyReplicas?: number };
}

export interface ContainerStatusLike {
  name: string;
  ready: boolean;
  restartCount: number;
  image?: string;
  state?: { waiting?: { reason?: string; message?: string }; terminated?: { reason?: string; message?: string; exitCode?: number } };
  lastState?: { terminated?: { reason?: string; exitCode?: number } };
}

export interface PodLike {
  metadata?: ObjectMetaLike;
  spec?: { nodeName?: string; containers: ContainerLike[] };
  status?: { phase?: string; conditions?: ConditionLike[]; containerStatuses?: ContainerStatusLike[] };
}

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
    return { done: false, failed: true, message: `deployment "${name}" exceeded its progress deadline${progressing.message ? `: ${progressing.message}` : ''}` };
  }
  const desired = d.spec?.replicas ?? 1;
  const updated = s.updatedReplicas ?? 0;
  const total = s.replicas ?? 0;
  const available = s.availableReplicas ?? 0;
  if (updated < desired) {
    return { done: false, failed: false, message: `waiting for deployment "${name}" rollout to finish: ${updated} out of ${desired} new replicas have been updated` };
  }
  if (total > updated) {
    return { done: false, failed: false, message: `waiting for deployment "${name}" rollout to finish: ${total - updated} old replicas are pending termination` };
  }
  if (available < updated) {
    return { done: false, failed: false, message: `waiting for deployment "${name}" rollout to finish: ${available} of ${updated} updated replicas are available` };
  }
  return { done: true, failed: false, message: `deployment "${name}" successfully rolled out` };
}

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
export function previousRecord(d: DeploymentLike, workflowId: string, version: string, images: Record<string, string>): PreviousRecord {
  const a = d.metadata?.annotations ?? {};
  const current = containerImages(d.spec?.template);
  const alreadyApplied = a[WORKFLOW_ANNOTATION] === workflowId && a[VERSION_ANNOTATION] === version && Object.entries(images).every(([c, img]) => current[c] === img);
  if (alreadyApplied && a[PREVIOUS_IMAGES_ANNOTATION]) {
    try {
      const recorded = JSON.parse(a[PREVIOUS_IMAGES_ANNOTATION]) as unknown;
      if (recorded && typeof recorded === 'object' && Object.values(recorded).every((v) => typeof v === 'string')) {
        return { previousImages: { ...current, ...(recorded as Record<string, string>) }, previousVersion: a[PREVIOUS_VERSION_ANNOTATION] };
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
export function chooseUndoTarget(deploymentName: string, replicaSets: ReplicaSetLike[], toRevision?: number): UndoChoice {
  const withRevision = replicaSets.map((rs) => ({ rs, revision: revisionOf(rs) })).filter((x): x is { rs: ReplicaSetLike; revision: number } => x.revision !== undefined);
  if (toRevision) {
    const hit = withRevision.find((x) => x.revision === toRevision);
    return hit ? { ok: true, ...hit } : { ok: false, error: `unable to find the specified revision ${toRevision} of deployment "${deploymentName}"` };
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

/** Objects whose controller is the given owner (ReplicaSets of a Deployment, Pods of a ReplicaSet). */
export function controlledBy<T extends { metadata?: ObjectMetaLike }>(items: T[], ownerUids: Set<string>): T[] {
  return items.filter((i) => i.metadata?.ownerReferences?.some((o) => o.controller && ownerUids.has(o.uid)));
}

export function labelSelector(labels: Labels | undefined): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

// ---------------------------------------------------------------------------
// Blue-green
// ---------------------------------------------------------------------------

export type Colour = 'blue' | 'green';
/** The label (pods and Service selector) that tells the colours apart; the demo server reads it from the Service selector. */
export const COLOUR_LABEL = 'version';

export function otherColour(c: Colour): Colour {
  return c === 'blue' ? 'green' : 'blue';
}

export function isColour(v: unknown): v is Colour {
  return v === 'blue' || v === 'green';
}

/**
 * Blue is the service's own Deployment (the one the platform manifests
 * define, selector `app=<service>`, which is immutable); green is
 * `<base>-green` with selector `app=<service>,version=green`. So the base
 * Deployment is never deleted and the names stay stable across releases;
 * the demo server, looking for `<service>-blue`, falls back to the base.
 */
export function colourDeploymentName(base: string, colour: Colour): string {
  return colour === 'blue' ? base : `${base}-green`;
}

/** The colour a Service selector pins, or undefined before the first blue-green release. */
export function selectedColour(selector: Labels | undefined): Colour | undefined {
  const v = selector?.[COLOUR_LABEL];
  return isColour(v) ? v : undefined;
}

export interface ColourSpec {
  name: string;
  colour: Colour;
  container: string;
  image: string;
  version: string;
  workflowId: string;
  replicas: number;
}

function stripTemplate(t: PodTemplateLike): PodTemplateLike {
  const copy = structuredClone(t);
  if (copy.metadata?.labels) delete copy.metadata.labels[POD_TEMPLATE_HASH_LABEL];
  return copy;
}

/** A pod template that cannot take the change (no such container): a mistake in the plan, not a blip. */
export class PodTemplateError extends Error {
  override name = 'PodTemplateError';
}

function withImage(t: PodTemplateLike, container: string, image: string): PodTemplateLike {
  const containers = t.spec?.containers ?? [];
  if (!containers.some((c) => c.name === container)) throw new PodTemplateError(`the pod template has no container "${container}" (containers: ${containers.map((c) => c.name).join(', ') || 'none'})`);
  return { ...t, spec: { ...t.spec, containers: containers.map((c) => (c.name === container ? { ...c, image } : c)) } };
}

/**
 * The Deployment of the colour about to take traffic, made from the active
 * one: same pod template with the new image, pods and selector labelled with
 * the colour. Throws when the container does not exist.
 */
export function colourDeployment(active: DeploymentLike, spec: ColourSpec): DeploymentLike {
  const template = withImage(stripTemplate(active.spec?.template ?? {}), spec.container, spec.image);
  const selector = { ...(active.spec?.selector.matchLabels ?? {}), [COLOUR_LABEL]: spec.colour };
  const metaLabels = { ...(active.metadata?.labels ?? {}), [COLOUR_LABEL]: spec.colour };
  return {
    metadata: {
      name: spec.name,
      namespace: active.metadata?.namespace,
      labels: metaLabels,
      annotations: {
        [VERSION_ANNOTATION]: spec.version,
        [WORKFLOW_ANNOTATION]: spec.workflowId,
        [CHANGE_CAUSE_ANNOTATION]: changeCause(`blue-green ${spec.colour}`, spec.version, spec.workflowId),
      },
    },
    spec: {
      ...(active.spec ?? { selector: {}, template: {} }),
      replicas: spec.replicas,
      paused: false,
      selector: { matchLabels: selector },
      template: {
        ...template,
        metadata: {
          ...template.metadata,
          labels: { ...(template.metadata?.labels ?? {}), [COLOUR_LABEL]: spec.colour },
          annotations: { ...(template.metadata?.annotations ?? {}), [VERSION_ANNOTATION]: spec.version },
        },
      },
    },
  };
}

// ---------------------------------------------------------------------------
// Diagnostics (runbook "Troubleshooting")
// ---------------------------------------------------------------------------

export interface PodDiagnosis {
  name: string;
  phase: string;
  ready: boolean;
  restarts: number;
  node?: string;
  /** Why it is not Ready: failing conditions and waiting/terminated container states. */
  reasons: string[];
  /** The last log lines, or why there are none. */
  logTail?: string[];
  logsUnavailable?: string;
}

export interface EventLine {
  at?: string;
  type: string;
  reason: string;
  object: string;
  message: string;
  count?: number;
}

export interface RolloutDiagnostics {
  namespace: string;
  deployment: string;
  status: string;
  conditions: string[];
  notReadyPods: PodDiagnosis[];
  events: EventLine[];
}

export function isPodReady(p: PodLike): boolean {
  return !!p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

export function podRestarts(p: PodLike): number {
  return (p.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
}

export function diagnosePod(p: PodLike): PodDiagnosis {
  const reasons: string[] = [];
  for (const c of p.status?.conditions ?? []) {
    if (c.status !== 'True' && (c.reason || c.message)) reasons.push(`${c.type}=${c.status}${c.reason ? ` ${c.reason}` : ''}${c.message ? `: ${c.message}` : ''}`);
  }
  for (const cs of p.status?.containerStatuses ?? []) {
    const w = cs.state?.waiting;
    const t = cs.state?.terminated;
    if (w?.reason) reasons.push(`container ${cs.name} waiting: ${w.reason}${w.message ? `: ${w.message}` : ''}`);
    if (t?.reason) reasons.push(`container ${cs.name} terminated: ${t.reason}${t.exitCode !== undefined ? ` (exit ${t.exitCode})` : ''}`);
    if (cs.restartCount > 0 && cs.lastState?.terminated?.reason) reasons.push(`container ${cs.name} restarted ${cs.restartCount}x, last: ${cs.lastState.terminated.reason}`);
  }
  if (!reasons.length && !isPodReady(p)) reasons.push(`phase ${p.status?.phase ?? 'unknown'}, not Ready`);
  return { name: p.metadata?.name ?? '', phase: p.status?.phase ?? 'Unknown', ready: isPodReady(p), restarts: podRestarts(p), ...(p.spec?.nodeName ? { node: p.spec.nodeName } : {}), reasons };
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 3)}...` : s;
}

/**
 * One paragraph that says why a rollout failed, for the failure message (and
 * so the notification and the summary): the status, the pods that are not
 * Ready with their reasons and log tails, and the newest warning events.
 */
export function describeDiagnostics(d: RolloutDiagnostics, maxChars = 1500): string {
  const parts: string[] = [];
  for (const p of d.notReadyPods.slice(0, 3)) {
    const logs = p.logTail?.length ? `; last log: ${clip(p.logTail[p.logTail.length - 1], 200)}` : p.logsUnavailable ? `; logs unavailable: ${clip(p.logsUnavailable, 160)}` : '';
    parts.push(`pod ${p.name} not Ready (${clip(p.reasons.join('; ') || p.phase, 300)})${logs}`);
  }
  if (d.notReadyPods.length > 3) parts.push(`${d.notReadyPods.length - 3} more pods not Ready`);
  const warnings = d.events.filter((e) => e.type !== 'Normal');
  const events = (warnings.length ? warnings : d.events).slice(-3);
  if (events.length) parts.push(`events: ${events.map((e) => `${e.type} ${e.reason} ${e.object}: ${clip(e.message, 200)}`).join(' | ')}`);
  return clip(parts.join('; '), maxChars);
}
