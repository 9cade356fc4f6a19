/** The two tracks traffic is split between. */
export type Track = 'stable' | 'canary';

/** Every track, in the order metrics and persisted state list them. */
export const TRACKS: readonly Track[] = ['stable', 'canary'];

/** Percentages of traffic per track; they always sum to 100. */
export interface TrackWeights {
  stable: number;
  canary: number;
}

/** The version each track's pods run. */
export interface TrackVersions {
  stable: string;
  /** null when there is no canary Deployment: the canary track then gets no traffic. */
  canary: string | null;
}

/** What synthetic traffic follows: how it is split and which versions serve it. */
export interface TrafficState {
  weights: TrackWeights;
  versions: TrackVersions;
}

/** A fault injected into one track's synthetic requests. */
export interface TrackFault {
  /** Probability (0..1) that a synthetic request on the track answers 500. */
  errorRate: number;
  /** Added to every synthetic request's latency on the track. */
  latencyMs: number;
  /** Multiplies the base latency first (1.3: a version 30% slower); absent: 1. */
  latencyFactor?: number;
}

/** A fault injected into GET /health. */
export interface HealthFault {
  fail: boolean;
  reason?: string;
}

/** All injected faults; persisted so they survive a restart of the server. */
export interface FaultState {
  tracks: Partial<Record<Track, TrackFault>>;
  health: HealthFault;
  /** Containers whose logs get error lines (every second) until cleared. */
  logErrors: string[];
  /** A fault of the preview listener (the new colour before a blue-green switch): every request answers 503. */
  preview: HealthFault;
}

/** The annotation our pipeline sets on a Deployment to name the version it runs. */
export const VERSION_ANNOTATION = 'deploy-pipelines.dev/version';
/** The version reported when none can be told. */
export const UNKNOWN_VERSION = 'unknown';
/** Upper bounds (seconds) of the request-duration histogram buckets. */
/** Fine between 50 and 250 ms, where the demo's requests fall, so a P95 moves with the latency (not only across 0.1 and 0.25). */
export const DURATION_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** What the server reports when Kubernetes is absent or has never answered. */
export const DEFAULT_TRAFFIC: TrafficState = {
  weights: { stable: 100, canary: 0 },
  versions: { stable: UNKNOWN_VERSION, canary: UNKNOWN_VERSION },
};

/** A fresh state with no faults. */
export function emptyFaultState(): FaultState {
  return { tracks: {}, health: { fail: false }, logErrors: [], preview: { fail: false } };
}

/** The track a value names, or null when it names none. */
export function trackOfSubset(subset: unknown): Track | null {
  return subset === 'stable' || subset === 'canary' ? subset : null;
}
