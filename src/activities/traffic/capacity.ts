/**
 * Capacity first, for the providers that route by weight (istio,
 * gateway-api, nginx): the canary Deployment gets the replicas for its share
 * and they are ready before the weight moves to them; after a weight
 * decrease the extra pods go. Replica arithmetic: domain/traffic.ts.
 */
import {
  canaryDeploymentName,
  meshCanaryReplicas,
  recordedStableReplicas,
  STABLE_REPLICAS_ANNOTATION,
} from '../../domain/traffic';
import type { TrafficContext } from './provider';

/** Runs `move` (the route write) with the canary scaled for `weight`; `urgent`: move at once, scale nothing. */
export async function withCanaryCapacity(
  ctx: TrafficContext,
  weight: number,
  urgent: boolean,
  move: () => Promise<void>,
): Promise<void> {
  if (urgent) return move();
  const { deployments, namespace, service, stepTimeoutMs } = ctx;
  const canaryName = canaryDeploymentName(service);
  const canary = await deployments.kube.readDeployment(namespace, canaryName);
  const stable = canary.metadata?.annotations?.[STABLE_REPLICAS_ANNOTATION]
    ? undefined
    : await deployments.kube.readDeployment(namespace, service);
  const want = meshCanaryReplicas(recordedStableReplicas(canary, stable), weight);
  const have = canary.spec?.replicas ?? 0;
  if (want > have) {
    // Capacity first: the weight moves only to pods that are ready for it.
    await deployments.scale(namespace, canaryName, want);
    await deployments.wait(namespace, [canaryName], stepTimeoutMs, true);
  }
  await move();
  if (want < have) await deployments.scale(namespace, canaryName, want);
}
