/**
 * Canary traffic (runbook "Canary Deployment Strategy"), strategy apart from
 * providers (design §3.5, after Argo Rollouts' trafficrouting): the workflow
 * decides the weight; one TrafficProvider interface applies and verifies it;
 * one factory picks the provider from the plan's traffic settings.
 *
 *  - istio:    the VirtualService's stable/canary route weights, read back
 *              after every change; the canary gets capacity for its share
 *              before the weight moves to it.
 *  - replicas: no mesh: the weight is approximated by the ready pods behind
 *              the Service (stable and canary pods both match its selector),
 *              as Argo Rollouts' basic canary does.
 *
 * The canary is the Deployment `<service>-canary` beside the stable one; see
 * domain/traffic.ts for its labels and why the stable Deployment does not
 * adopt its pods. Abort is built to be fast: one read and one write move the
 * traffic back to stable before anything else happens.
 */
import type * as k8s from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../domain/errors';
import type { TrafficSettings } from '../domain/plan';
import { PodTemplateError, rolloutStatus, WORKFLOW_ANNOTATION } from '../domain/rollout';
import {
  basicCanaryReplicas,
  canaryDeploymentFrom,
  canaryDeploymentName,
  isWeight,
  meshCanaryReplicas,
  readRouteWeights,
  recordedStableReplicas,
  RouteError,
  STABLE_REPLICAS_ANNOTATION,
  weightsFromReplicas,
  withRouteWeights,
  type HttpRouteLike,
  type RouteSelector,
} from '../domain/traffic';
import type { CanaryTarget, WeightResult } from './contracts';
import { retryOnConflict } from './clients/kube';
import { KubeRuntime, upsertDeployment, type ActivityHooks, type KubernetesDeps } from './kubernetes';
import { sleep } from './runtime';
import type { WeightVerification } from './contracts';

export type TrafficProviderType = TrafficSettings['provider'];

/** One traffic router (Argo Rollouts: TrafficRoutingReconciler's Type, SetWeight, VerifyWeight). */
export interface TrafficProvider {
  type(): TrafficProviderType;
  /** `urgent` (abort): move traffic at once, waiting for nothing. */
  setWeight(weight: number, opts?: { urgent?: boolean }): Promise<void>;
  verifyWeight(weight: number): Promise<WeightVerification>;
}

export interface TrafficContext {
  rt: KubeRuntime;
  hooks: ActivityHooks;
  namespace: string;
  /** The Service (and its stable Deployment) that takes the traffic. */
  service: string;
  stepTimeoutMs: number;
}

function configInvalid(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: ErrorType.ConfigInvalid, nonRetryable: true, message });
}

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: ErrorType.InvalidInput, nonRetryable: true, message });
}

class IstioProvider implements TrafficProvider {
  private readonly vsName: string;
  private readonly selector: RouteSelector;

  constructor(
    settings: TrafficSettings,
    private readonly ctx: TrafficContext,
  ) {
    this.vsName = settings.virtualService ?? ctx.service;
    this.selector = { host: ctx.service, stableSubset: settings.stableSubset, canarySubset: settings.canarySubset };
  }

  type(): TrafficProviderType {
    return 'istio';
  }

  /** The routes' weights now, or a ConfigInvalid failure when no route sends to the stable subset. */
  async readWeights(): Promise<ReturnType<typeof readRouteWeights> & object> {
    const vs = await this.ctx.rt.kube.readVirtualService(this.ctx.namespace, this.vsName);
    const w = readRouteWeights(vs.spec?.http, this.selector);
    if (!w) throw configInvalid(`VirtualService ${this.vsName} has no HTTP route to host ${this.selector.host} subset ${this.selector.stableSubset}`);
    return w;
  }

  private async patchRoutes(weight: number): Promise<void> {
    const { rt, namespace, hooks } = this.ctx;
    await retryOnConflict(
      `set weights on VirtualService ${this.vsName}`,
      async () => {
        const vs = await rt.kube.readVirtualService(namespace, this.vsName);
        const http = vs.spec?.http;
        const now = readRouteWeights(http, this.selector);
        if (now?.consistent && now.canary === weight && now.stable === 100 - weight) return;
        let next: HttpRouteLike[];
        try {
          next = withRouteWeights(http, this.selector, weight);
        } catch (err) {
          if (err instanceof RouteError) throw configInvalid(`VirtualService ${this.vsName}: ${err.message}`);
          throw err;
        }
        // A merge patch replaces the http list whole; the resourceVersion makes a concurrent edit a conflict, not a loss.
        await rt.kube.patchVirtualService(namespace, this.vsName, { metadata: { resourceVersion: vs.metadata?.resourceVersion }, spec: { http: next } });
      },
      hooks.signal,
    );
  }

  async setWeight(weight: number, opts?: { urgent?: boolean }): Promise<void> {
    if (opts?.urgent) return this.patchRoutes(weight);
    const { rt, namespace, hooks, service } = this.ctx;
    const canaryName = canaryDeploymentName(service);
    const canary = await rt.kube.readDeployment(namespace, canaryName);
    const stable = canary.metadata?.annotations?.[STABLE_REPLICAS_ANNOTATION] ? undefined : await rt.kube.readDeployment(namespace, service);
    const want = meshCanaryReplicas(recordedStableReplicas(canary, stable), weight);
    const have = canary.spec?.replicas ?? 0;
    if (want > have) {
      // Capacity first: the weight moves only to pods that are ready for it.
      await rt.scale(hooks, namespace, canaryName, want);
      await rt.wait(hooks, namespace, [canaryName], this.ctx.stepTimeoutMs, true);
    }
    await this.patchRoutes(weight);
    if (want < have) await rt.scale(hooks, namespace, canaryName, want);
  }

  async verifyWeight(weight: number): Promise<WeightVerification> {
    const w = await this.readWeights();
    const verified = w.consistent && w.canary === weight && w.stable === 100 - weight;
    return {
      verified,
      settled: verified,
      observed: { stable: w.stable, canary: w.canary },
      detail: `VirtualService ${this.vsName}: stable ${w.stable} / canary ${w.canary}${w.consistent ? '' : ` (its ${w.routes} routes disagree)`}`,
    };
  }
}

class ReplicasProvider implements TrafficProvider {
  constructor(private readonly ctx: TrafficContext) {}

  type(): TrafficProviderType {
    return 'replicas';
  }

  private async read(): Promise<{ stable: k8s.V1Deployment; canary?: k8s.V1Deployment; total: number }> {
    const { rt, namespace, service } = this.ctx;
    const [stable, canary] = await Promise.all([rt.kube.readDeployment(namespace, service), rt.kube.findDeployment(namespace, canaryDeploymentName(service))]);
    return { stable, canary, total: recordedStableReplicas(canary, stable) };
  }

  async setWeight(weight: number, opts?: { urgent?: boolean }): Promise<void> {
    const { rt, namespace, hooks, service, stepTimeoutMs } = this.ctx;
    const canaryName = canaryDeploymentName(service);
    const { canary, total } = await this.read();
    const want = basicCanaryReplicas(total, weight);
    if (!canary) {
      if (want.canary > 0) throw invalid(`no canary Deployment ${canaryName}: start the canary first`);
      await rt.scale(hooks, namespace, service, want.stable);
      return;
    }
    if (opts?.urgent) {
      // Abort: stable back to full size and the canary out of the Service at once.
      await rt.scale(hooks, namespace, service, want.stable);
      await rt.scale(hooks, namespace, canaryName, want.canary);
      return;
    }
    // Never below capacity: the side that grows is scaled and awaited before the other shrinks.
    if (want.canary >= (canary.spec?.replicas ?? 0)) {
      await rt.scale(hooks, namespace, canaryName, want.canary);
      await rt.wait(hooks, namespace, [canaryName], stepTimeoutMs, true);
      await rt.scale(hooks, namespace, service, want.stable);
    } else {
      await rt.scale(hooks, namespace, service, want.stable);
      await rt.wait(hooks, namespace, [service], stepTimeoutMs, true);
      await rt.scale(hooks, namespace, canaryName, want.canary);
    }
  }

  async verifyWeight(weight: number): Promise<WeightVerification> {
    const { stable, canary, total } = await this.read();
    const want = basicCanaryReplicas(total, weight);
    const specStable = stable.spec?.replicas ?? 0;
    const specCanary = canary?.spec?.replicas ?? 0;
    const verified = specStable === want.stable && specCanary === want.canary;
    // Exactly the wanted pods, all available: a scale-down counts only once the extra pods have left the Service.
    const exact = (d: k8s.V1Deployment, n: number) => rolloutStatus(d).done && (d.status?.replicas ?? 0) === n && (d.status?.availableReplicas ?? 0) === n;
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

/** The one place that maps the configured provider to its implementation (Argo Rollouts: NewTrafficRoutingReconciler). */
export function trafficProvider(settings: TrafficSettings, ctx: TrafficContext): TrafficProvider {
  switch (settings.provider) {
    case 'istio':
      return new IstioProvider(settings, ctx);
    case 'replicas':
      return new ReplicasProvider(ctx);
    default:
      throw configInvalid(`unknown traffic provider ${JSON.stringify(settings.provider)}: use istio or replicas`);
  }
}

export interface TrafficDeps extends Omit<KubernetesDeps, 'config'> {
  config: KubernetesDeps['config'] & { traffic?: { stepTimeout?: number } };
}

function checkTarget(t: CanaryTarget): void {
  const name = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
  if (!t || typeof t !== 'object') throw invalid('a canary target is required');
  if (!name.test(t.namespace ?? '')) throw invalid(`namespace must be a DNS label, got ${JSON.stringify(t.namespace)}`);
  if (!name.test(t.service ?? '')) throw invalid(`service must be a DNS label, got ${JSON.stringify(t.service)}`);
  if (!t.traffic) throw invalid('the canary target has no traffic settings');
}

export function trafficActivities(deps: TrafficDeps) {
  const rt = new KubeRuntime(deps);
  const stepTimeoutMs = deps.config.traffic?.stepTimeout ?? 15_000;

  const context = (t: CanaryTarget): { provider: TrafficProvider; ctx: TrafficContext } => {
    checkTarget(t);
    const ctx: TrafficContext = { rt, hooks: rt.hooks(), namespace: t.namespace, service: t.service, stepTimeoutMs };
    return { provider: trafficProvider(t.traffic, ctx), ctx };
  };

  /** Polls verifyWeight until the weight is set (and, unless `specOnly`, its pods are available). */
  const verify = async (provider: TrafficProvider, ctx: TrafficContext, weight: number, specOnly: boolean): Promise<WeightVerification> => {
    const deadline = Date.now() + stepTimeoutMs;
    for (;;) {
      const v = await provider.verifyWeight(weight);
      if (v.verified && (specOnly || v.settled)) return v;
      if (Date.now() >= deadline) {
        throw ApplicationFailure.create({ type: ErrorType.TrafficNotApplied, message: `traffic did not reach canary ${weight}% within ${Math.round(stepTimeoutMs / 1000)}s: ${v.detail}`, details: [v] });
      }
      ctx.hooks.heartbeat({ weight, verifying: v.detail });
      await sleep(Math.min(deps.config.kubernetes.pollInterval, 250), ctx.hooks.signal);
    }
  };

  return {
    /**
     * Runbook "Deploy new version (canary) alongside current (stable)" and
     * "Wait for canary pods ready": the canary Deployment, made from the
     * stable one with the new image, rolled out; no traffic moves.
     */
    async startCanary(target: CanaryTarget): Promise<{ deployment: string }> {
      const { provider, ctx } = context(target);
      const canaryName = canaryDeploymentName(target.service);
      const stable = await rt.kube.readDeployment(target.namespace, target.service);
      if (provider instanceof IstioProvider) await provider.readWeights(); // a VirtualService that cannot be steered fails now, not at 5%
      const existing = await rt.kube.findDeployment(target.namespace, canaryName);
      // The stable size is recorded once per release, so promote and abort restore it even after the replicas provider shrank stable.
      const ours = existing?.metadata?.annotations?.[WORKFLOW_ANNOTATION] === target.workflowId;
      const stableReplicas = ours ? recordedStableReplicas(existing, stable) : (stable.spec?.replicas ?? 1);
      const initial = provider.type() === 'istio' ? 1 : 0;
      const replicas = ours ? Math.max(existing?.spec?.replicas ?? 0, initial) : initial;
      let desired: k8s.V1Deployment;
      try {
        desired = canaryDeploymentFrom(stable, { name: canaryName, container: target.container, image: target.image, version: target.version, workflowId: target.workflowId, replicas, stableReplicas }) as k8s.V1Deployment;
      } catch (err) {
        if (err instanceof PodTemplateError) throw invalid(err.message);
        throw err;
      }
      await upsertDeployment(rt.kube, ctx.hooks, target.namespace, desired);
      await rt.wait(ctx.hooks, target.namespace, [canaryName]);
      return { deployment: canaryName };
    },

    /** Moves the canary to `weight` percent and reads it back; TrafficNotApplied (retried) when it does not take. */
    async setCanaryWeight(req: { target: CanaryTarget; weight: number }): Promise<WeightResult> {
      if (!isWeight(req?.weight)) throw invalid(`weight must be an integer from 0 to 100, got ${JSON.stringify(req?.weight)}`);
      const { provider, ctx } = context(req.target);
      await provider.setWeight(req.weight);
      const v = await verify(provider, ctx, req.weight, false);
      return { weight: req.weight, observed: v.observed };
    },

    /**
     * Full promotion: stable gets the new image (and its full size back) and
     * finishes its rollout, traffic returns to the stable route at 100%, and
     * the canary Deployment is removed. Re-running it after any step is safe.
     */
    async promoteCanary(target: CanaryTarget): Promise<void> {
      const { provider, ctx } = context(target);
      const canaryName = canaryDeploymentName(target.service);
      const [stable, canary] = await Promise.all([rt.kube.readDeployment(target.namespace, target.service), rt.kube.findDeployment(target.namespace, canaryName)]);
      const replicas = recordedStableReplicas(canary, stable);
      await rt.patchImages(ctx.hooks, { workflowId: target.workflowId, namespace: target.namespace, deployment: target.service, images: { [target.container]: target.image }, version: target.version, action: 'promote canary', replicas });
      await rt.wait(ctx.hooks, target.namespace, [target.service]);
      await provider.setWeight(0, { urgent: true });
      await verify(provider, ctx, 0, true);
      await rt.kube.deleteDeployment(target.namespace, canaryName);
    },

    /**
     * Abort: traffic to stable 100% first (one read and one write of the
     * VirtualService, or stable's replicas back), then the canary scaled to
     * zero; it stays, at 0 replicas, for inspection. Idempotent.
     */
    async abortCanary(target: CanaryTarget): Promise<void> {
      const { provider, ctx } = context(target);
      let trafficError: Error | undefined;
      try {
        await provider.setWeight(0, { urgent: true });
      } catch (err) {
        trafficError = err instanceof Error ? err : new Error(String(err)); // the canary still goes to zero below: no canary pods, no canary traffic
      }
      const canaryName = canaryDeploymentName(target.service);
      if (await rt.kube.findDeployment(target.namespace, canaryName)) await rt.scale(ctx.hooks, target.namespace, canaryName, 0);
      if (trafficError) throw trafficError;
      await verify(provider, ctx, 0, true);
    },
  };
}
