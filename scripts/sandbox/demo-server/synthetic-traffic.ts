/** Synthetic requests: pure given a random source, so tests can script the dice. */
import type { FaultState, Track, TrackFault, TrackWeights } from './types';

/** A source of numbers in [0, 1), like Math.random. */
export type Random = () => number;

/** The outcome of one synthetic request. */
export interface SimulatedRequest {
  track: Track;
  code: number;
  latencySeconds: number;
}

/** Picks a track by weight; a track with weight 0 is never picked. */
export function pickTrack(weights: TrackWeights, random: Random): Track | null {
  const total = weights.stable + weights.canary;
  if (!(total > 0)) return null;
  if (weights.canary <= 0) return 'stable';
  if (weights.stable <= 0) return 'canary';
  return random() * total < weights.stable ? 'stable' : 'canary';
}

/** One request's outcome: 20-120 ms of base latency times the fault's factor plus its added latency, 500 with the fault's probability. */
export function simulateRequest(track: Track, fault: TrackFault | undefined, random: Random): SimulatedRequest {
  const baseMs = 20 + random() * 100;
  const latencyMs = baseMs * (fault?.latencyFactor ?? 1) + (fault?.latencyMs ?? 0);
  const failed = fault !== undefined && fault.errorRate > 0 && random() < fault.errorRate;
  return { track, code: failed ? 500 : 200, latencySeconds: latencyMs / 1000 };
}

/** `count` requests spread over the tracks by weight, each subject to its track's fault. */
export function generateTraffic(
  count: number,
  weights: TrackWeights,
  faults: FaultState,
  random: Random,
): SimulatedRequest[] {
  const requests: SimulatedRequest[] = [];
  for (let i = 0; i < count; i++) {
    const track = pickTrack(weights, random);
    if (track) requests.push(simulateRequest(track, faults.tracks[track], random));
  }
  return requests;
}
