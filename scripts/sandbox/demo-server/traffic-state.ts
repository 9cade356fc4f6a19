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

/** Everything read from the cluster in one poll; null means "not found". */
export interface ClusterObjects {
  virtualService: unknown;
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
  const weights =
    weightsFromVirtualService(objects.virtualService) ??
    weightsFromReplicas(readyReplicas(stableDeployment), readyReplicas(objects.canaryDeployment));
  return {
    // Without a canary Deployment there are no canary pods to route to, whatever the VirtualService says.
    weights: canaryVersion === null ? { stable: 100, canary: 0 } : weights,
    versions: {
      stable: stableDeployment ? versionFromDeployment(stableDeployment) : UNKNOWN_VERSION,
      canary: canaryVersion,
    },
  };
}
