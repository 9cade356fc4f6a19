/** What the canary traffic activities act on and what they report. */
import type { TrafficTarget } from '../../domain/plan';
import type { TrackWeights } from '../../domain/traffic';

/** What the canary activities act on: one service whose traffic moves (built by domain/plan.ts trafficTarget). */
export type CanaryTarget = TrafficTarget;

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
