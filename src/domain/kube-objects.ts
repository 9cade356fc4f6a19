/**
 * What a Kubernetes object looks like to domain code: structural types that
 * the client library's V1Deployment, V1ReplicaSet and V1Pod satisfy, so the
 * rollout, blue-green, canary and diagnostics logic stays pure and testable
 * with plain literals, plus the few facts every one of them reads (owners,
 * selectors, pod readiness).
 */

export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';

/** Labels, annotations and selectors alike. */
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
  status?: { replicas?: number; readyReplicas?: number; availableReplicas?: number; observedGeneration?: number };
}

export interface ContainerStatusLike {
  name: string;
  ready: boolean;
  restartCount: number;
  image?: string;
  state?: {
    waiting?: { reason?: string; message?: string };
    terminated?: { reason?: string; message?: string; exitCode?: number };
  };
  lastState?: { terminated?: { reason?: string; exitCode?: number } };
}

export interface PodLike {
  metadata?: ObjectMetaLike;
  spec?: { nodeName?: string; containers: ContainerLike[] };
  status?: { phase?: string; conditions?: ConditionLike[]; containerStatuses?: ContainerStatusLike[] };
}

/** A pod template that cannot take the change (no such container): a mistake in the plan, not a blip. */
export class PodTemplateError extends Error {
  override name = 'PodTemplateError';
}

/** Objects whose controller is the given owner (ReplicaSets of a Deployment, Pods of a ReplicaSet). */
export function controlledBy<T extends { metadata?: ObjectMetaLike }>(items: T[], ownerUids: Set<string>): T[] {
  return items.filter((i) => i.metadata?.ownerReferences?.some((o) => o.controller && ownerUids.has(o.uid)));
}

/** The `a=1,b=2` form of matchLabels that list calls take. */
export function labelSelector(labels: Labels | undefined): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** Ready as the Service sees it: the pod's Ready condition, not its phase. */
export function isPodReady(p: PodLike): boolean {
  return !!p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Restarts of all its containers: a crash loop shows here before the pod fails. */
export function podRestarts(p: PodLike): number {
  return (p.status?.containerStatuses ?? []).reduce((n, c) => n + (c.restartCount ?? 0), 0);
}
