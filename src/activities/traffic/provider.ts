/**
 * The traffic provider seam (design §3.5, after Argo Rollouts'
 * rollout/trafficrouting/trafficroutingutil.go): the workflow decides the
 * canary's weight, a TrafficProvider applies and verifies it. The canary
 * activities (canary.ts) never know which provider they hold; each provider
 * lives in its own file and factory.ts maps the configured name to it.
 */
import type { WeightVerification } from '../contracts';
import type { Deployments } from '../kubernetes/deployments';
import type { StepRoute, TrafficSettings } from '../../domain/plan';

/** What a provider acts on: one Service in one namespace, through the shared Deployment operations. */
export interface TrafficContext {
  /** Client, activity runtime and guarded writes (the canary's replicas, waits). */
  deployments: Deployments;
  namespace: string;
  /** The Service (and its stable Deployment) that takes the traffic. */
  service: string;
  /** How long one weight change may wait for its pods before it fails as TrafficNotApplied (retried). */
  stepTimeoutMs: number;
}

/** How the canary starts under this provider. */
export interface CanaryStart {
  /**
   * Canary pods to start with, before any weight moves. A mesh routes by
   * weight, so a pod can be ready (and measured) at weight 0; without one, a
   * ready canary pod behind the Service takes traffic at once.
   */
  replicas: number;
}

/** One traffic router (Argo Rollouts: TrafficRoutingReconciler's Type, SetWeight, VerifyWeight). */
export interface TrafficProvider {
  /** The provider's name, as configured (traffic.provider). */
  type(): string;
  /**
   * Moves the canary to `weight` percent. `urgent` (abort, promote): move
   * traffic at once, waiting for nothing.
   */
  setWeight(weight: number, opts?: { urgent?: boolean; route?: StepRoute }): Promise<void>;
  /**
   * Reads the weight back: set (`verified`), and its pods available
   * (`settled`). A provider that applies step options checks `route` too
   * (none: no header route, no mirror).
   */
  verifyWeight(weight: number, route?: StepRoute): Promise<WeightVerification>;
  /**
   * After promotion or abort, with traffic back on stable: removes what the
   * provider made for the canary (its Service, its Ingress) and leaves the
   * route in its original form. Idempotent. Without it: nothing to remove.
   */
  finish?(): Promise<void>;
  /**
   * Before the canary Deployment is made: fail now if this provider cannot
   * steer the service (rather than at the first weight), and say how the
   * canary starts. Without it: nothing to check, no canary pods.
   */
  start?(): Promise<CanaryStart>;
}

/** Makes the provider for one canary target: one entry per name in factory.ts, or injected through TrafficDeps.providers. */
export type TrafficProviderFactory = (settings: TrafficSettings, ctx: TrafficContext) => TrafficProvider;
