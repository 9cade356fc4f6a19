/**
 * Canary traffic without I/O (design §3.5): how a weight becomes replica
 * counts (no mesh) or VirtualService route weights (Istio), and how the canary
 * Deployment is made from the stable one. activities/traffic/ applies it.
 *
 * Label scheme. The stable Deployment's selector is `app=<service>` and
 * immutable; its pods carry `track: stable`. The canary Deployment
 * `<service>-canary` has selector `app=<service>,track=canary` and its pods
 * carry `app: <service>, track: canary`. Canary pods therefore stay members of
 * the Service `<service>` (selector `app=<service>`), which both providers
 * need: Istio's DestinationRule subsets `stable`/`canary` pick endpoints of
 * the Service by the `track` label, and without a mesh kube-proxy spreads the
 * Service's traffic over all its ready pods, so replica counts set the split.
 * The stable Deployment does not adopt canary pods although its selector
 * matches them: controllers only adopt orphans (the canary ReplicaSet and its
 * pods carry a controller ownerReference to the canary Deployment), and the
 * stable ReplicaSets select on their own pod-template-hash.
 */
import { COLOUR_LABEL } from './blue-green';
import { POD_TEMPLATE_HASH_LABEL, PodTemplateError, type DeploymentLike, type Labels } from './kube-objects';
import { CHANGE_CAUSE_ANNOTATION, changeCause, VERSION_ANNOTATION, WORKFLOW_ANNOTATION } from './rollout';

export const TRACK_LABEL = 'track';
/** The traffic provider that steers the canary (traffic.provider): which object holds its weight, for whoever reads it. */
export const TRAFFIC_PROVIDER_ANNOTATION = 'deploy-pipelines.dev/traffic-provider';
/** Replicas of the stable Deployment before the canary started: what promote and abort restore. */
export const STABLE_REPLICAS_ANNOTATION = 'deploy-pipelines.dev/stable-replicas';

export function canaryDeploymentName(service: string): string {
  return `${service}-canary`;
}

export interface TrackWeights {
  stable: number;
  canary: number;
}

export function isWeight(w: unknown): w is number {
  return typeof w === 'number' && Number.isInteger(w) && w >= 0 && w <= 100;
}

// ---------------------------------------------------------------------------
// Replica counts
// ---------------------------------------------------------------------------

/**
 * Without a mesh the split follows the ready pods behind the Service. As
 * Argo Rollouts' basic canary (utils/replicaset/canary.go,
 * DesiredReplicaCountsForCanary), both counts round up, so for weights 1..99
 * neither track drops to zero and the total may surge by one.
 */
export function basicCanaryReplicas(total: number, weight: number): { canary: number; stable: number } {
  if (total <= 0) return { canary: 0, stable: 0 };
  const canary = Math.ceil((total * weight) / 100);
  const stable = Math.ceil((total * (100 - weight)) / 100);
  return { canary, stable };
}

/**
 * With a mesh the weight is set on the route, so the stable Deployment keeps
 * all its replicas and the canary only needs capacity for its share (Argo
 * Rollouts scales the canary to the weight the same way); at least one pod
 * while the canary exists, so it can be measured before it takes traffic.
 */
export function meshCanaryReplicas(total: number, weight: number): number {
  return Math.max(1, Math.ceil((Math.max(total, 1) * weight) / 100));
}

/** Traffic shares of two sets of ready pods behind one Service, as percentages summing to 100. */
export function weightsFromReplicas(stableReady: number, canaryReady: number): TrackWeights {
  const total = stableReady + canaryReady;
  if (total <= 0) return { stable: 100, canary: 0 };
  const canary = Math.round((100 * canaryReady) / total);
  return { stable: 100 - canary, canary };
}

// ---------------------------------------------------------------------------
// Istio VirtualService routes
// ---------------------------------------------------------------------------

export interface RouteDestinationLike {
  destination?: { host?: string; subset?: string; [k: string]: unknown };
  weight?: number;
  [k: string]: unknown;
}

export interface HttpRouteLike {
  name?: string;
  route?: RouteDestinationLike[];
  [k: string]: unknown;
}

export interface RouteSelector {
  /** The Service the routes send to: `api-gateway` or `api-gateway.<ns>.svc.cluster.local`. */
  host: string;
  stableSubset: string;
  canarySubset: string;
}

export class RouteError extends Error {
  override name = 'RouteError';
}

function hostMatches(host: string | undefined, service: string): boolean {
  return host === service || (!!host && host.startsWith(`${service}.`));
}

function trackOf(d: RouteDestinationLike, sel: RouteSelector): 'stable' | 'canary' | null {
  if (!hostMatches(d.destination?.host, sel.host)) return null;
  if (d.destination?.subset === sel.stableSubset) return 'stable';
  if (d.destination?.subset === sel.canarySubset) return 'canary';
  return null;
}

/** HTTP routes that send to the stable subset of the service: the ones whose weights the canary moves. */
function managedRoutes(http: HttpRouteLike[], sel: RouteSelector): number[] {
  return http.flatMap((h, i) => ((h.route ?? []).some((d) => trackOf(d, sel) === 'stable') ? [i] : []));
}

/**
 * The weights of the managed routes. Every managed route must agree;
 * otherwise (a half-applied edit) the answer is the first route's, with
 * `consistent: false`. null when no route sends to the stable subset.
 */
export function readRouteWeights(
  http: HttpRouteLike[] | undefined,
  sel: RouteSelector,
): (TrackWeights & { consistent: boolean; routes: number }) | null {
  const list = http ?? [];
  const idx = managedRoutes(list, sel);
  if (!idx.length) return null;
  const weightsOf = (h: HttpRouteLike): TrackWeights => {
    const w = { stable: 0, canary: 0 };
    const routes = h.route ?? [];
    for (const d of routes) {
      const t = trackOf(d, sel);
      // Istio: a lone destination without weight takes everything.
      if (t) w[t] += d.weight ?? (routes.length === 1 ? 100 : 0);
    }
    return w;
  };
  const all = idx.map((i) => weightsOf(list[i]));
  const consistent = all.every((w) => w.stable === all[0].stable && w.canary === all[0].canary);
  return { ...all[0], consistent, routes: idx.length };
}

/**
 * The HTTP routes with the canary at `weight`: in every route that sends to
 * the stable subset, stable gets 100 - weight and canary weight; a canary
 * destination is added (a copy of the stable one) where missing. Other
 * fields are kept as they are. Throws RouteError when nothing routes to the
 * stable subset, or when such a route also sends elsewhere (the weights
 * would no longer add up to 100).
 */
export function withRouteWeights(
  http: HttpRouteLike[] | undefined,
  sel: RouteSelector,
  weight: number,
): HttpRouteLike[] {
  if (!isWeight(weight)) throw new RouteError(`weight must be an integer from 0 to 100, got ${String(weight)}`);
  const list = http ?? [];
  const idx = new Set(managedRoutes(list, sel));
  if (!idx.size) throw new RouteError(`no HTTP route sends to host ${sel.host} subset ${sel.stableSubset}`);
  return list.map((h, i) => {
    if (!idx.has(i)) return h;
    const routes = h.route ?? [];
    const foreign = routes.filter((d) => trackOf(d, sel) === null);
    if (foreign.length) {
      throw new RouteError(
        `HTTP route ${h.name ?? `#${i}`} also sends to ${foreign.map((d) => `${d.destination?.host ?? '?'}/${d.destination?.subset ?? '-'}`).join(', ')}: cannot shift weights between ${sel.stableSubset} and ${sel.canarySubset} alone`,
      );
    }
    const stable = routes.find((d) => trackOf(d, sel) === 'stable') as RouteDestinationLike;
    const canary = routes.find((d) => trackOf(d, sel) === 'canary') ?? {
      destination: { ...stable.destination, subset: sel.canarySubset },
    };
    // Exactly one destination per track, stable first: duplicates would split a track's weight.
    return {
      ...h,
      route: [
        { ...stable, weight: 100 - weight },
        { ...canary, weight },
      ],
    };
  });
}

// ---------------------------------------------------------------------------
// The canary Deployment
// ---------------------------------------------------------------------------

export interface CanarySpec {
  name: string;
  container: string;
  image: string;
  version: string;
  workflowId: string;
  replicas: number;
  /** The stable Deployment's replicas before the canary (recorded once, see STABLE_REPLICAS_ANNOTATION). */
  stableReplicas: number;
  /** The traffic provider's name, recorded on the canary (none: not recorded). */
  trafficProvider?: string;
}

/** The canary's pod labels: the stable pods' labels (app, a blue-green colour if any) with track=canary. */
export function canaryPodLabels(stableTemplateLabels: Labels | undefined): Labels {
  const labels = { ...(stableTemplateLabels ?? {}) };
  delete labels[POD_TEMPLATE_HASH_LABEL];
  return { ...labels, [TRACK_LABEL]: 'canary' };
}

/** Selector of the canary Deployment: the stable selector plus track=canary, so it never matches stable pods. */
export function canarySelector(stableSelector: Labels | undefined): Labels {
  return { ...(stableSelector ?? {}), [TRACK_LABEL]: 'canary' };
}

/** The canary Deployment beside the stable one: the stable pod template with the new image and canary labels. */
export function canaryDeploymentFrom(stable: DeploymentLike, spec: CanarySpec): DeploymentLike {
  const template = structuredClone(stable.spec?.template ?? {});
  const containers = template.spec?.containers ?? [];
  if (!containers.some((c) => c.name === spec.container)) {
    throw new PodTemplateError(
      `deployment ${stable.metadata?.name ?? '?'} has no container "${spec.container}" (containers: ${containers.map((c) => c.name).join(', ') || 'none'})`,
    );
  }
  const selector = canarySelector(stable.spec?.selector.matchLabels);
  const metaLabels: Labels = { ...(stable.metadata?.labels ?? {}), [TRACK_LABEL]: 'canary' };
  // A blue-green colour on the stable Deployment's own labels is not the canary's colour: the pods carry it, the object does not.
  delete metaLabels[COLOUR_LABEL];
  return {
    metadata: {
      name: spec.name,
      namespace: stable.metadata?.namespace,
      labels: metaLabels,
      annotations: {
        [VERSION_ANNOTATION]: spec.version,
        [WORKFLOW_ANNOTATION]: spec.workflowId,
        [CHANGE_CAUSE_ANNOTATION]: changeCause('canary', spec.version, spec.workflowId),
        [STABLE_REPLICAS_ANNOTATION]: String(spec.stableReplicas),
        ...(spec.trafficProvider ? { [TRAFFIC_PROVIDER_ANNOTATION]: spec.trafficProvider } : {}),
      },
    },
    spec: {
      ...(stable.spec ?? { selector: {}, template: {} }),
      replicas: spec.replicas,
      paused: false,
      selector: { matchLabels: selector },
      template: {
        ...template,
        metadata: {
          ...template.metadata,
          labels: canaryPodLabels(template.metadata?.labels),
          annotations: { ...(template.metadata?.annotations ?? {}), [VERSION_ANNOTATION]: spec.version },
        },
        spec: {
          ...template.spec,
          containers: containers.map((c) => (c.name === spec.container ? { ...c, image: spec.image } : c)),
        },
      },
    },
  };
}

/** The stable replica count recorded on the canary, falling back to what stable has now. */
export function recordedStableReplicas(canary: DeploymentLike | undefined, stable: DeploymentLike | undefined): number {
  const raw = canary?.metadata?.annotations?.[STABLE_REPLICAS_ANNOTATION];
  const n = raw === undefined ? NaN : Number(raw);
  if (Number.isInteger(n) && n >= 0) return n;
  return stable?.spec?.replicas ?? 1;
}
