/** What the canary traffic activities act on and what they report. */
import type { TrafficSettings } from '../../domain/plan';
import type { TrackWeights } from '../../domain/traffic';

/** What the canary and blue-green activities act on: one service whose traffic moves. */
export interface CanaryTarget {
  workflowId: string;
  namespace: string;
  version: string;
  /** The Deployment (and Service) that takes traffic, e.g. api-gateway. */
  service: string;
  container: string;
  /** New image reference, digest-pinned when known. */
  image: string;
  traffic: TrafficSettings;
}

export interface WeightResult {
  weight: number;
  /** The weights read back from the API after the change. */
  observed: { stable: number; canary: number };
}

export interface WeightVerification {
  /** The desired state is set: the route weights read back, or the replica counts in the Deployments' specs. */
  verified: boolean;
  /** The pods behind the weight are available too (always true for Istio, whose routes take effect at once). */
  settled: boolean;
  observed: TrackWeights;
  detail: string;
}
