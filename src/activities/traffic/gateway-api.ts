/**
 * The gateway-api traffic provider: the backend weights of a Gateway API
 * HTTPRoute between the stable Service and the canary Service
 * `<service>-canary` (made here when missing, deleted by finish()), read back
 * after every change; header routing and request mirroring as step options.
 * The canary gets capacity for its share before the weight moves to it.
 * Rule arithmetic lives in domain/gateway-route.ts.
 */
import type { WeightVerification } from '../contracts';
import { HTTP_ROUTES, KubeObjects, retryOnConflict } from '../clients/kube';
import { configInvalid } from '../failures';
import { canaryServiceName } from '../../domain/canary-service';
import {
  gatewayRouteIs,
  GatewayRouteError,
  readGatewayRoute,
  routeUsesCanary,
  withGatewayWeights,
  type BackendSelector,
  type GatewayRouteState,
  type HttpRouteRuleLike,
} from '../../domain/gateway-route';
import type { StepRoute, TrafficSettings } from '../../domain/plan';
import { withCanaryCapacity } from './capacity';
import { deleteCanaryService, ensureCanaryService, narrowStableService, widenStableService } from './canary-service';
import type { CanaryStart, TrafficContext, TrafficProvider } from './provider';

interface HttpRouteObject {
  metadata?: { name?: string; resourceVersion?: string };
  spec?: { rules?: HttpRouteRuleLike[]; [k: string]: unknown };
}

/** Canary weights on a Gateway API HTTPRoute (traffic.httpRoute, default: the Service's name). */
export class GatewayApiProvider implements TrafficProvider {
  private readonly routeName: string;
  private readonly selector: BackendSelector;
  private readonly routes: KubeObjects<HttpRouteObject>;

  constructor(
    settings: TrafficSettings,
    private readonly ctx: TrafficContext,
  ) {
    this.routeName = settings.httpRoute ?? ctx.service;
    this.selector = { stable: ctx.service, canary: canaryServiceName(ctx.service) };
    this.routes = new KubeObjects(ctx.deployments.kube, HTTP_ROUTES);
  }

  type(): string {
    return 'gateway-api';
  }

  /**
   * A route that cannot be steered fails now, not at 5%; the canary Service
   * exists, and the stable Service selects the stable pods only, before any
   * canary pod or weight.
   */
  async start(): Promise<CanaryStart> {
    await this.readState();
    // A rule that also sends to another backend fails here, before the canary Service and pods are made.
    const route = await this.routes.read(this.ctx.namespace, this.routeName);
    try {
      withGatewayWeights(route.spec?.rules, this.selector, 1);
    } catch (err) {
      if (err instanceof GatewayRouteError) throw configInvalid(`HTTPRoute ${this.routeName}: ${err.message}`);
      throw err;
    }
    await ensureCanaryService(this.ctx);
    await narrowStableService(this.ctx);
    return { replicas: 1 };
  }

  private async readState(): Promise<GatewayRouteState> {
    const route = await this.routes.read(this.ctx.namespace, this.routeName);
    const state = readGatewayRoute(route.spec?.rules, this.selector);
    if (!state)
      throw configInvalid(`HTTPRoute ${this.routeName} has no rule with a backendRef to Service ${this.ctx.service}`);
    return state;
  }

  private async patchRules(weight: number, route?: StepRoute): Promise<void> {
    const { deployments, namespace } = this.ctx;
    await retryOnConflict(
      `set weights on HTTPRoute ${this.routeName}`,
      async () => {
        const current = await this.routes.read(namespace, this.routeName);
        const rules = current.spec?.rules;
        const now = readGatewayRoute(rules, this.selector);
        if (now && gatewayRouteIs(now, weight, route) && (weight > 0 || !routeUsesCanary(rules, this.selector))) return;
        let next: HttpRouteRuleLike[];
        try {
          next = withGatewayWeights(rules, this.selector, weight, route);
        } catch (err) {
          if (err instanceof GatewayRouteError) throw configInvalid(`HTTPRoute ${this.routeName}: ${err.message}`);
          throw err;
        }
        // A merge patch replaces the rules whole; the resourceVersion makes a concurrent edit a conflict, not a loss.
        await this.routes.patch(namespace, this.routeName, {
          metadata: { resourceVersion: current.metadata?.resourceVersion },
          spec: { rules: next },
        });
      },
      deployments.signal(),
    );
  }

  async setWeight(weight: number, opts?: { urgent?: boolean; route?: StepRoute }): Promise<void> {
    // A weight (or a header or mirror) needs the canary Service; the way back to stable does not.
    if (weight > 0 || opts?.route) await ensureCanaryService(this.ctx);
    return withCanaryCapacity(this.ctx, weight, opts?.urgent === true, () => this.patchRules(weight, opts?.route));
  }

  async verifyWeight(weight: number, route?: StepRoute): Promise<WeightVerification> {
    const w = await this.readState();
    const verified = gatewayRouteIs(w, weight, route);
    const options = [
      w.header ? `header ${w.header.name}: ${w.header.value}` : '',
      w.mirror ? `mirror ${w.mirror}%` : '',
    ]
      .filter(Boolean)
      .join(', ');
    return {
      verified,
      settled: verified,
      observed: { stable: w.stable, canary: w.canary },
      detail: `HTTPRoute ${this.routeName}: stable ${w.stable} / canary ${w.canary}${options ? ` (${options})` : ''}${w.consistent ? '' : ` (its ${w.rules} rules disagree)`}`,
    };
  }

  /** The rules back to the stable backend alone, then the canary Service goes (a route still using it would fail its requests). */
  async finish(): Promise<void> {
    await this.patchRules(0);
    await widenStableService(this.ctx);
    await deleteCanaryService(this.ctx);
  }
}
