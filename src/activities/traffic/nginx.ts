/**
 * The nginx traffic provider (NGINX Ingress canary): a second Ingress
 * `<ingress>-canary`, a copy of the stable Ingress's paths to the traffic
 * Service sent to the canary Service `<service>-canary`, whose canary
 * annotations ingress-nginx reads (weight, and a header for header steps).
 * Both are made here when missing and deleted by finish(); the weight is read
 * back from the annotation. The canary gets capacity for its share before
 * the weight moves to it. Annotation arithmetic: domain/nginx-canary.ts.
 */
import type { WeightVerification } from '../contracts';
import { AlreadyExistsError, ConflictError, INGRESSES, KubeObjects, retryOnConflict } from '../clients/kube';
import { configInvalid } from '../failures';
import { CANARY_OF_LABEL, canaryServiceName } from '../../domain/canary-service';
import {
  canaryAnnotations,
  canaryIngressFrom,
  canaryIngressIs,
  canaryIngressName,
  IngressError,
  readCanaryIngress,
  type IngressLike,
} from '../../domain/nginx-canary';
import type { StepRoute, TrafficSettings } from '../../domain/plan';
import { withCanaryCapacity } from './capacity';
import { deleteCanaryService, ensureCanaryService, narrowStableService, widenStableService } from './canary-service';
import type { CanaryStart, TrafficContext, TrafficProvider } from './provider';

/** Canary weights as the annotations of a canary Ingress beside the stable one (traffic.ingress, default: the Service's name). */
export class NginxProvider implements TrafficProvider {
  private readonly stableName: string;
  private readonly canaryName: string;
  private readonly ingresses: KubeObjects<IngressLike>;

  constructor(
    settings: TrafficSettings,
    private readonly ctx: TrafficContext,
  ) {
    this.stableName = settings.ingress ?? ctx.service;
    this.canaryName = canaryIngressName(this.stableName);
    this.ingresses = new KubeObjects(ctx.deployments.kube, INGRESSES);
  }

  type(): string {
    return 'nginx';
  }

  /** An Ingress that cannot be steered fails now, not at 5%; the stable Service selects the stable pods only from here on. */
  async start(): Promise<CanaryStart> {
    await this.desired(0);
    this.refuseForeign(await this.ingresses.find(this.ctx.namespace, this.canaryName));
    await ensureCanaryService(this.ctx);
    await narrowStableService(this.ctx);
    return { replicas: 1 };
  }

  /** The canary Ingress this state asks for, from the stable one; ConfigInvalid when the stable one cannot be copied. */
  private async desired(weight: number, route?: StepRoute): Promise<IngressLike> {
    const stable = await this.ingresses.read(this.ctx.namespace, this.stableName);
    try {
      return canaryIngressFrom(stable, this.ctx.service, canaryServiceName(this.ctx.service), weight, route);
    } catch (err) {
      if (err instanceof IngressError) throw configInvalid(err.message);
      throw err;
    }
  }

  private async apply(weight: number, route?: StepRoute): Promise<void> {
    const { deployments, namespace } = this.ctx;
    await retryOnConflict(
      `set the weight of Ingress ${this.canaryName}`,
      async () => {
        const current = await this.ingresses.find(namespace, this.canaryName);
        if (!current) {
          // Back to stable needs no canary Ingress; a weight makes one.
          if (weight === 0 && !route) return;
          try {
            await this.ingresses.create(namespace, await this.desired(weight, route));
            return;
          } catch (err) {
            if (err instanceof AlreadyExistsError) throw new ConflictError(err.message); // made meanwhile: read it again
            throw err;
          }
        }
        if (!this.owns(current)) {
          // Back to stable: none of ours to change. Anything else would take over someone's Ingress.
          if (weight === 0 && !route) return;
          this.refuseForeign(current);
        }
        if (canaryIngressIs(current, weight, route)) return;
        // Annotations only, under the read resourceVersion: a concurrent edit is a conflict, not a loss.
        await this.ingresses.patch(namespace, this.canaryName, {
          metadata: {
            resourceVersion: current.metadata?.resourceVersion,
            annotations: canaryAnnotations(weight, route),
          },
        });
      },
      deployments.signal(),
    );
  }

  /** Whether the canary Ingress is one a canary of this service made (labelled so). */
  private owns(ingress: IngressLike): boolean {
    return ingress.metadata?.labels?.[CANARY_OF_LABEL] === this.ctx.service;
  }

  /** ConfigInvalid for an Ingress of the canary's name that a canary did not make. */
  private refuseForeign(ingress: IngressLike | undefined): void {
    if (ingress && !this.owns(ingress))
      throw configInvalid(
        `Ingress ${this.canaryName} exists and was not made by a canary of ${this.ctx.service}: rename or delete it`,
      );
  }

  async setWeight(weight: number, opts?: { urgent?: boolean; route?: StepRoute }): Promise<void> {
    if (weight > 0 || opts?.route) await ensureCanaryService(this.ctx);
    return withCanaryCapacity(this.ctx, weight, opts?.urgent === true, () => this.apply(weight, opts?.route));
  }

  async verifyWeight(weight: number, route?: StepRoute): Promise<WeightVerification> {
    const canary = await this.ingresses.find(this.ctx.namespace, this.canaryName);
    const now = readCanaryIngress(canary);
    const verified = canaryIngressIs(canary, weight, route);
    const header = now.header ? ` (header ${now.header.name}: ${now.header.value})` : '';
    return {
      verified,
      settled: verified,
      observed: { stable: 100 - now.weight, canary: now.weight },
      detail: canary
        ? `Ingress ${this.canaryName}: canary-weight ${now.weight}${header}`
        : `no canary Ingress ${this.canaryName}: all traffic on ${this.stableName}`,
    };
  }

  /** The canary Ingress goes first (it sends to the canary Service), then the canary Service. */
  async finish(): Promise<void> {
    const current = await this.ingresses.find(this.ctx.namespace, this.canaryName);
    // Never an Ingress of that name someone else owns.
    if (current && this.owns(current)) await this.ingresses.delete(this.ctx.namespace, this.canaryName);
    await widenStableService(this.ctx);
    await deleteCanaryService(this.ctx);
  }
}
