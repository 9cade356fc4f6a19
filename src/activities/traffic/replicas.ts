/**
 * The replicas traffic provider, for clusters without a mesh: the weight is
 * approximated by the ready pods behind the Service (stable and canary pods
 * both match its selector), as Argo Rollouts' basic canary does. Replica
 * arithmetic lives in domain/traffic.ts.
 */
import type * as k8s from '@kubernetes/client-node';
import type { WeightVerification } from '../contracts';
import { invalidInput } from '../failures';
import { rolloutStatus } from '../../domain/rollout';
import {
  basicCanaryReplicas,
  canaryDeploymentName,
  recordedStableReplicas,
  weightsFromReplicas,
} from '../../domain/traffic';
import type { TrafficContext, TrafficProvider } from './provider';

/** Canary weights as replica counts of the stable and canary Deployments behind one Service. */
export class ReplicasProvider implements TrafficProvider {
  constructor(private readonly ctx: TrafficContext) {}

  type(): string {
    return 'replicas';
  }

  // No start(): a ready canary pod behind the Service would take traffic at once, so the canary starts with none.

  private async read(): Promise<{ stable: k8s.V1Deployment; canary?: k8s.V1Deployment; total: number }> {
    const { deployments, namespace, service } = this.ctx;
    const [stable, canary] = await Promise.all([
      deployments.kube.readDeployment(namespace, service),
      deployments.kube.findDeployment(namespace, canaryDeploymentName(service)),
    ]);
    return { stable, canary, total: recordedStableReplicas(canary, stable) };
  }

  async setWeight(weight: number, opts?: { urgent?: boolean }): Promise<void> {
    const { deployments, namespace, service, stepTimeoutMs } = this.ctx;
    const canaryName = canaryDeploymentName(service);
    const { canary, total } = await this.read();
    const want = basicCanaryReplicas(total, weight);
    if (!canary) {
      if (want.canary > 0) throw invalidInput(`no canary Deployment ${canaryName}: start the canary first`);
      await deployments.scale(namespace, service, want.stable);
      return;
    }
    if (opts?.urgent) {
      // Abort: stable back to full size and the canary out of the Service at once.
      await deployments.scale(namespace, service, want.stable);
      await deployments.scale(namespace, canaryName, want.canary);
      return;
    }
    // Never below capacity: the side that grows is scaled and awaited before the other shrinks.
    if (want.canary >= (canary.spec?.replicas ?? 0)) {
      await deployments.scale(namespace, canaryName, want.canary);
      await deployments.wait(namespace, [canaryName], stepTimeoutMs, true);
      await deployments.scale(namespace, service, want.stable);
    } else {
      await deployments.scale(namespace, service, want.stable);
      await deployments.wait(namespace, [service], stepTimeoutMs, true);
      await deployments.scale(namespace, canaryName, want.canary);
    }
  }

  async verifyWeight(weight: number): Promise<WeightVerification> {
    const { stable, canary, total } = await this.read();
    const want = basicCanaryReplicas(total, weight);
    const specStable = stable.spec?.replicas ?? 0;
    const specCanary = canary?.spec?.replicas ?? 0;
    const verified = specStable === want.stable && specCanary === want.canary;
    // Exactly the wanted pods, all available: a scale-down counts only once the extra pods have left the Service.
    const exact = (d: k8s.V1Deployment, n: number) =>
      rolloutStatus(d).done && (d.status?.replicas ?? 0) === n && (d.status?.availableReplicas ?? 0) === n;
    const settled = verified && exact(stable, want.stable) && (!canary || exact(canary, want.canary));
    const readyStable = stable.status?.availableReplicas ?? 0;
    const readyCanary = canary?.status?.availableReplicas ?? 0;
    return {
      verified,
      settled,
      observed: weightsFromReplicas(readyStable, readyCanary),
      detail: `replicas stable ${readyStable}/${specStable} (want ${want.stable}), canary ${readyCanary}/${specCanary} (want ${want.canary}) of ${total}`,
    };
  }
}
