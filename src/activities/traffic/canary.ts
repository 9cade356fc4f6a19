/**
 * Canary traffic (runbook "Canary Deployment Strategy"), strategy apart from
 * providers (design §3.5): the workflow decides the weight; the provider that
 * factory.ts picks from the plan's traffic settings applies and verifies it.
 * Nothing here knows which provider it holds.
 *
 * The canary is the Deployment `<service>-canary` beside the stable one; see
 * domain/traffic.ts for its labels and why the stable Deployment does not
 * adopt its pods. Abort is built to be fast: one read and one write move the
 * traffic back to stable before anything else happens.
 */
import type * as k8s from '@kubernetes/client-node';
import type { CanaryTarget, WeightResult, WeightVerification } from '../contracts';
import { fail, invalidInput as invalid } from '../failures';
import { Deployments, type KubernetesDeps } from '../kubernetes/deployments';
import { sleep } from '../runtime';
import { PodTemplateError } from '../../domain/kube-objects';
import { WORKFLOW_ANNOTATION } from '../../domain/rollout';
import { TRAFFIC_PROVIDER_OPTIONS, type StepRoute } from '../../domain/plan';
import { canaryDeploymentFrom, canaryDeploymentName, isWeight, recordedStableReplicas } from '../../domain/traffic';
import { trafficProvider } from './factory';
import type { TrafficContext, TrafficProvider, TrafficProviderFactory } from './provider';

/** The Kubernetes deps plus the traffic settings the canary activities use. */
export interface TrafficDeps extends Omit<KubernetesDeps, 'config'> {
  config: KubernetesDeps['config'] & { traffic?: { stepTimeout?: number } };
  /** Providers beside (or instead of) the built-in ones, by name: how a test registers its own through the seam. */
  providers?: Record<string, TrafficProviderFactory>;
}

/**
 * The step's route options, checked as config checks them (they come through the workflow's input): a header
 * name and value, a mirror percent, and only options the target's provider can apply. undefined: none.
 */
function checkRoute(route: StepRoute | undefined, t: CanaryTarget): StepRoute | undefined {
  if (route === undefined || route === null) return undefined;
  if (typeof route !== 'object') throw invalid('route must be an object with header and/or mirror');
  const can = TRAFFIC_PROVIDER_OPTIONS[t.traffic.provider] ?? [];
  for (const key of Object.keys(route)) {
    if (key !== 'header' && key !== 'mirror') throw invalid(`route has an unknown option "${key}"`);
    if (!can.includes(key)) throw invalid(`the ${t.traffic.provider} traffic provider cannot apply the ${key} option`);
  }
  const h = route.header;
  if (
    h !== undefined &&
    !(
      typeof h?.name === 'string' &&
      /^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}$/.test(h.name) &&
      typeof h.value === 'string' &&
      /^[\x20-\x7e]{1,4096}$/.test(h.value)
    )
  )
    throw invalid('route.header must be {name, value}: an HTTP header name and a printable value');
  if (route.mirror !== undefined && !(Number.isInteger(route.mirror) && route.mirror >= 1 && route.mirror <= 100))
    throw invalid(`route.mirror must be an integer percent from 1 to 100, got ${JSON.stringify(route.mirror)}`);
  return Object.keys(route).length ? route : undefined;
}

function checkTarget(t: CanaryTarget): void {
  const name = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
  if (!t || typeof t !== 'object') throw invalid('a canary target is required');
  if (!name.test(t.namespace ?? '')) throw invalid(`namespace must be a DNS label, got ${JSON.stringify(t.namespace)}`);
  if (!name.test(t.service ?? '')) throw invalid(`service must be a DNS label, got ${JSON.stringify(t.service)}`);
  if (!t.traffic) throw invalid('the canary target has no traffic settings');
}

/** The canary activities, over one client and the provider each target's traffic settings name. */
export function trafficActivities(deps: TrafficDeps) {
  const deployments = new Deployments(deps);
  const { kube, runtime } = deployments;
  const stepTimeoutMs = deps.config.traffic?.stepTimeout ?? 15_000;

  const providerFor = (t: CanaryTarget): TrafficProvider => {
    checkTarget(t);
    const ctx: TrafficContext = { deployments, namespace: t.namespace, service: t.service, stepTimeoutMs };
    return trafficProvider(t.traffic, ctx, deps.providers);
  };

  /** Polls verifyWeight until the weight is set (and, unless `specOnly`, its pods are available). */
  const verify = async (
    provider: TrafficProvider,
    weight: number,
    specOnly: boolean,
    route?: StepRoute,
  ): Promise<WeightVerification> => {
    const signal = deployments.signal();
    const deadline = Date.now() + stepTimeoutMs;
    for (;;) {
      const v = await provider.verifyWeight(weight, route);
      if (v.verified && (specOnly || v.settled)) return v;
      if (Date.now() >= deadline)
        throw fail.TrafficNotApplied(
          `traffic did not reach canary ${weight}% within ${Math.round(stepTimeoutMs / 1000)}s: ${v.detail}`,
          v,
        );
      runtime.heartbeat({ weight, verifying: v.detail });
      await sleep(Math.min(deps.config.kubernetes.pollInterval, 250), signal);
    }
  };

  return {
    /**
     * Runbook "Deploy new version (canary) alongside current (stable)" and
     * "Wait for canary pods ready": the canary Deployment, made from the
     * stable one with the new image, rolled out; no traffic moves.
     */
    async startCanary(target: CanaryTarget): Promise<{ deployment: string }> {
      const provider = providerFor(target);
      const canaryName = canaryDeploymentName(target.service);
      const stable = await kube.readDeployment(target.namespace, target.service);
      const start = (await provider.start?.()) ?? { replicas: 0 };
      const existing = await kube.findDeployment(target.namespace, canaryName);
      // The stable size is recorded once per release, so promote and abort restore it even after the replicas provider shrank stable.
      const ours = existing?.metadata?.annotations?.[WORKFLOW_ANNOTATION] === target.workflowId;
      const stableReplicas = ours ? recordedStableReplicas(existing, stable) : (stable.spec?.replicas ?? 1);
      const replicas = ours ? Math.max(existing?.spec?.replicas ?? 0, start.replicas) : start.replicas;
      let desired: k8s.V1Deployment;
      try {
        desired = canaryDeploymentFrom(stable, {
          name: canaryName,
          container: target.container,
          image: target.image,
          version: target.version,
          workflowId: target.workflowId,
          replicas,
          stableReplicas,
          trafficProvider: provider.type(),
        }) as k8s.V1Deployment;
      } catch (err) {
        if (err instanceof PodTemplateError) throw invalid(err.message);
        throw err;
      }
      await deployments.upsert(target.namespace, desired);
      await deployments.wait(target.namespace, [canaryName]);
      return { deployment: canaryName };
    },

    /** Moves the canary to `weight` percent and reads it back; TrafficNotApplied (retried) when it does not take. */
    async setCanaryWeight(req: { target: CanaryTarget; weight: number; route?: StepRoute }): Promise<WeightResult> {
      if (!isWeight(req?.weight))
        throw invalid(`weight must be an integer from 0 to 100, got ${JSON.stringify(req?.weight)}`);
      const provider = providerFor(req.target);
      const route = checkRoute(req.route, req.target);
      await provider.setWeight(req.weight, route ? { route } : undefined);
      const v = await verify(provider, req.weight, false, route);
      return { weight: req.weight, observed: v.observed };
    },

    /**
     * Full promotion: stable gets the new image (and its full size back) and
     * finishes its rollout, traffic returns to the stable route at 100%, and
     * the canary Deployment is removed. Re-running it after any step is safe.
     */
    async promoteCanary(target: CanaryTarget): Promise<void> {
      const provider = providerFor(target);
      const canaryName = canaryDeploymentName(target.service);
      const [stable, canary] = await Promise.all([
        kube.readDeployment(target.namespace, target.service),
        kube.findDeployment(target.namespace, canaryName),
      ]);
      const replicas = recordedStableReplicas(canary, stable);
      await deployments.patchImages({
        workflowId: target.workflowId,
        namespace: target.namespace,
        deployment: target.service,
        images: { [target.container]: target.image },
        version: target.version,
        action: 'promote canary',
        replicas,
      });
      await deployments.wait(target.namespace, [target.service]);
      await provider.setWeight(0, { urgent: true });
      await verify(provider, 0, true);
      await provider.finish?.();
      await kube.deleteDeployment(target.namespace, canaryName);
    },

    /**
     * Abort: traffic to stable 100% first (one read and one write of the
     * VirtualService, or stable's replicas back), then the canary scaled to
     * zero; it stays, at 0 replicas, for inspection. Idempotent.
     */
    async abortCanary(target: CanaryTarget): Promise<void> {
      const provider = providerFor(target);
      let trafficError: Error | undefined;
      try {
        await provider.setWeight(0, { urgent: true });
      } catch (err) {
        trafficError = err instanceof Error ? err : new Error(String(err)); // the canary still goes to zero below: no canary pods, no canary traffic
      }
      const canaryName = canaryDeploymentName(target.service);
      if (await kube.findDeployment(target.namespace, canaryName))
        await deployments.scale(target.namespace, canaryName, 0);
      if (trafficError) throw trafficError;
      await verify(provider, 0, true);
      await provider.finish?.();
    },
  };
}
