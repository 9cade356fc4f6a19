/**
 * Kubernetes objects -> traffic state. Pure: the reads themselves are in
 * kube-reader.ts.
 */
import { trackOfSubset, UNKNOWN_VERSION, VERSION_ANNOTATION, type TrackWeights, type TrafficState } from './types';
import { isRecord } from './util';

/** The parts of a Deployment we read; V1Deployment is assignable to it. */
export interface DeploymentLike {
  metadata?: { annotations?: Record<string, string> };
  spec?: { template?: { spec?: { containers?: { image?: string }[] } } };
  status?: { readyReplicas?: number };
}

/** The parts of a Service we read; V1Service is assignable to it. */
export interface ServiceLike {
  spec?: { selector?: Record<string, string> };
}

/**
 * Weights from an Istio VirtualService's first HTTP route, or null when the
 * object has no usable route (the caller then falls back to replica counts).
 * Istio requires the weights to sum to 100; we normalise anyway so a
 * half-edited object never yields a distribution that does not add up.
 */
export function weightsFromVirtualService(vs: unknown): TrackWeights | null {
  if (!isRecord(vs) || !isRecord(vs.spec) || !Array.isArray(vs.spec.http)) return null;
  const firstHttp: unknown = vs.spec.http[0];
  if (!isRecord(firstHttp) || !Array.isArray(firstHttp.route) || firstHttp.route.length === 0) return null;
  const routes: unknown[] = firstHttp.route;

  const sums: TrackWeights = { stable: 0, canary: 0 };
  for (const route of routes) {
    if (!isRecord(route)) continue;
    const destination = isRecord(route.destination) ? route.destination : {};
    // A lone route without a subset sends everything to the Service, i.e. the stable pods.
    const track = trackOfSubset(destination.subset) ?? (routes.length === 1 ? 'stable' : null);
    if (!track) continue;
    const weight =
      typeof route.weight === 'number' && Number.isFinite(route.weight) && route.weight > 0 ? route.weight : 0;
    // Istio treats a single route without weight as taking all traffic.
    sums[track] += routes.length === 1 && route.weight === undefined ? 100 : weight;
  }
  return normaliseWeights(sums.stable, sums.canary);
}

/**
 * Weights from a canary Ingress (NGINX Ingress canary annotations): its
 * `canary-weight` percent goes to the canary. null when the object is not a
 * canary Ingress with a usable weight.
 */
export function weightsFromCanaryIngress(ingress: unknown): TrackWeights | null {
  if (!isRecord(ingress) || !isRecord(ingress.metadata) || !isRecord(ingress.metadata.annotations)) return null;
  const a = ingress.metadata.annotations;
  if (a[`${NGINX}canary`] !== 'true') return null;
  const raw = a[`${NGINX}canary-weight`];
  if (typeof raw !== 'string' || !/^\d+$/.test(raw) || Number(raw) > 100) return null;
  return normaliseWeights(100 - Number(raw), Number(raw));
}
const NGINX = 'nginx.ingress.kubernetes.io/';

/**
 * Weights from a Gateway API HTTPRoute's first rule that sends to `service`:
 * its backendRefs' weights to `service` (stable) and `<service>-canary`
 * (canary), relative as Gateway API weights are (a backendRef without weight
 * weighs 1). null when no rule sends to `service`.
 */
export function weightsFromHttpRoute(route: unknown, service: string): TrackWeights | null {
  if (!isRecord(route) || !isRecord(route.spec) || !Array.isArray(route.spec.rules)) return null;
  const refsOf = (rule: unknown): Record<string, unknown>[] =>
    isRecord(rule) && Array.isArray(rule.backendRefs) ? rule.backendRefs.filter(isRecord) : [];
  const rule = route.spec.rules.find((r) => refsOf(r).some((b) => b.name === service));
  if (!rule) return null;
  const sums: TrackWeights = { stable: 0, canary: 0 };
  for (const ref of refsOf(rule)) {
    const track = ref.name === service ? 'stable' : ref.name === `${service}-canary` ? 'canary' : null;
    if (!track) continue;
    const w = ref.weight === undefined ? 1 : typeof ref.weight === 'number' && ref.weight > 0 ? ref.weight : 0;
    sums[track] += w;
  }
  return normaliseWeights(sums.stable, sums.canary);
}

/** Whether the route sends to the canary Service at all (any rule, any backendRef): the gateway-api provider is at work. */
export function httpRouteHasCanary(route: unknown, service: string): boolean {
  if (!isRecord(route) || !isRecord(route.spec) || !Array.isArray(route.spec.rules)) return false;
  return route.spec.rules.some(
    (r) =>
      isRecord(r) &&
      Array.isArray(r.backendRefs) &&
      r.backendRefs.some((b) => isRecord(b) && b.name === `${service}-canary`),
  );
}

/** Scales two non-negative shares to percentages summing to 100; nothing identifiable means all stable. */
export function normaliseWeights(stable: number, canary: number): TrackWeights {
  const total = stable + canary;
  if (!(total > 0)) return { stable: 100, canary: 0 };
  const canaryPct = Math.round((100 * canary) / total);
  return { stable: 100 - canaryPct, canary: canaryPct };
}

/** Fallback when there is no VirtualService: kube-proxy spreads traffic over ready pods. */
export function weightsFromReplicas(stableReady: number, canaryReady: number): TrackWeights {
  return normaliseWeights(Math.max(0, stableReady), Math.max(0, canaryReady));
}

/** Ready pods of a Deployment; an absent one has none. */
export function readyReplicas(deployment: DeploymentLike | null): number {
  return deployment?.status?.readyReplicas ?? 0;
}

/**
 * The tag of an image reference. Only the last path segment can carry a tag,
 * since a registry host may have a port ("registry:5000/name:1.0.1").
 * A digest-only reference has no human version, hence "unknown".
 */
export function tagOfImage(image: string): string {
  const lastSegment = image.slice(image.lastIndexOf('/') + 1);
  const [nameAndTag, digest] = lastSegment.split('@', 2);
  const colon = nameAndTag.indexOf(':');
  if (colon >= 0 && colon < nameAndTag.length - 1) return nameAndTag.slice(colon + 1);
  return digest === undefined ? 'latest' : UNKNOWN_VERSION;
}

/** The version a Deployment runs: our pipeline's annotation, else its first container's image tag. */
export function versionFromDeployment(deployment: DeploymentLike): string {
  const annotated = deployment.metadata?.annotations?.[VERSION_ANNOTATION];
  if (annotated) return annotated;
  const image = deployment.spec?.template?.spec?.containers?.[0]?.image;
  return image ? tagOfImage(image) : UNKNOWN_VERSION;
}

/** The colour a blue-green Service selects (selector `version: green`), if any. */
export function selectedColour(service: ServiceLike | null): string | null {
  const colour = service?.spec?.selector?.version;
  return colour ? colour : null;
}

/** Which traffic provider steers the canary, as its Deployment records it (none: the objects decide). */
export const TRAFFIC_PROVIDER_ANNOTATION = 'deploy-pipelines.dev/traffic-provider';

/** Everything read from the cluster in one poll; null means "not found". */
export interface ClusterObjects {
  virtualService: unknown;
  /** The Gateway API HTTPRoute named after the service. */
  httpRoute?: unknown;
  /** The canary Ingress `<service>-canary` (NGINX Ingress canary). */
  canaryIngress?: unknown;
  /** The service's name, which the HTTPRoute's stable backendRef names. */
  serviceName?: string;
  service: ServiceLike | null;
  stableDeployment: DeploymentLike | null;
  canaryDeployment: DeploymentLike | null;
  /** `${service}-${colour}` when the Service selects a colour. */
  colourDeployment: DeploymentLike | null;
}

/** Combines the cluster objects into the weights and versions the traffic follows. */
export function resolveTrafficState(objects: ClusterObjects): TrafficState {
  // In blue-green the Service selector decides which Deployment serves "stable".
  const stableDeployment = objects.colourDeployment ?? objects.stableDeployment;
  const canaryVersion = objects.canaryDeployment ? versionFromDeployment(objects.canaryDeployment) : null;
  const weights = routedWeights(objects, stableDeployment);
  return {
    // Without a canary Deployment there are no canary pods to route to, whatever the VirtualService says.
    weights: canaryVersion === null ? { stable: 100, canary: 0 } : weights,
    versions: {
      stable: stableDeployment ? versionFromDeployment(stableDeployment) : UNKNOWN_VERSION,
      canary: canaryVersion,
    },
  };
}

/**
 * The weights of whichever object the canary's traffic provider writes: the
 * one its Deployment names (TRAFFIC_PROVIDER_ANNOTATION); without it, the
 * canary Ingress when one exists, the HTTPRoute when it sends to the canary
 * Service, else the VirtualService, else the ready replicas.
 */
export function routedWeights(objects: ClusterObjects, stableDeployment: DeploymentLike | null): TrackWeights {
  const service = objects.serviceName ?? '';
  const replicas = () => weightsFromReplicas(readyReplicas(stableDeployment), readyReplicas(objects.canaryDeployment));
  const ingress = () => weightsFromCanaryIngress(objects.canaryIngress);
  const route = () => weightsFromHttpRoute(objects.httpRoute, service);
  const vs = () => weightsFromVirtualService(objects.virtualService);
  const stableOnly: TrackWeights = { stable: 100, canary: 0 };
  switch (objects.canaryDeployment?.metadata?.annotations?.[TRAFFIC_PROVIDER_ANNOTATION]) {
    case 'replicas':
      return replicas();
    case 'nginx':
      return ingress() ?? stableOnly;
    case 'gateway-api':
      return route() ?? stableOnly;
    case 'istio':
      return vs() ?? stableOnly;
  }
  if (objects.canaryIngress) return ingress() ?? stableOnly;
  if (httpRouteHasCanary(objects.httpRoute, service)) return route() ?? stableOnly;
  return vs() ?? replicas();
}
