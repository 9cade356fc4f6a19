/**
 * The istio traffic provider: the VirtualService's stable/canary route
 * weights, read back after every change; the canary gets capacity for its
 * share before the weight moves to it. Route arithmetic lives in
 * domain/traffic.ts.
 */
import type { WeightVerification } from '../contracts';
import { retryOnConflict } from '../clients/kube';
import { configInvalid } from '../failures';
import type { TrafficSettings } from '../../domain/plan';
import {
  readRouteWeights,
  RouteError,
  withRouteWeights,
  type HttpRouteLike,
  type RouteSelector,
} from '../../domain/traffic';
import { withCanaryCapacity } from './capacity';
import type { CanaryStart, TrafficContext, TrafficProvider } from './provider';

type RouteWeights = NonNullable<ReturnType<typeof readRouteWeights>>;

/** Canary weights on an Istio VirtualService (traffic.virtualService, default: the Service's name). */
export class IstioProvider implements TrafficProvider {
  private readonly vsName: string;
  private readonly selector: RouteSelector;

  constructor(
    settings: TrafficSettings,
    private readonly ctx: TrafficContext,
  ) {
    this.vsName = settings.virtualService ?? ctx.service;
    this.selector = { host: ctx.service, stableSubset: settings.stableSubset, canarySubset: settings.canarySubset };
  }

  type(): string {
    return 'istio';
  }

  /** A VirtualService that cannot be steered fails now, not at 5%; one canary pod is measured before it takes traffic. */
  async start(): Promise<CanaryStart> {
    await this.readWeights();
    return { replicas: 1 };
  }

  /** The routes' weights now, or a ConfigInvalid failure when no route sends to the stable subset. */
  private async readWeights(): Promise<RouteWeights> {
    const { deployments, namespace } = this.ctx;
    const vs = await deployments.kube.readVirtualService(namespace, this.vsName);
    const w = readRouteWeights(vs.spec?.http, this.selector);
    if (!w)
      throw configInvalid(
        `VirtualService ${this.vsName} has no HTTP route to host ${this.selector.host} subset ${this.selector.stableSubset}`,
      );
    return w;
  }

  private async patchRoutes(weight: number): Promise<void> {
    const { deployments, namespace } = this.ctx;
    const kube = deployments.kube;
    await retryOnConflict(
      `set weights on VirtualService ${this.vsName}`,
      async () => {
        const vs = await kube.readVirtualService(namespace, this.vsName);
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
        await kube.patchVirtualService(namespace, this.vsName, {
          metadata: { resourceVersion: vs.metadata?.resourceVersion },
          spec: { http: next },
        });
      },
      deployments.signal(),
    );
  }

  async setWeight(weight: number, opts?: { urgent?: boolean }): Promise<void> {
    return withCanaryCapacity(this.ctx, weight, opts?.urgent === true, () => this.patchRoutes(weight));
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
