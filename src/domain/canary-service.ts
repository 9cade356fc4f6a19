/**
 * The canary's own Service, `<service>-canary`, for routers that send to a
 * Service rather than to a subset of one (Gateway API backendRefs, NGINX
 * Ingress backends): the stable Service's ports, its selector plus
 * `track: canary`, so it selects the canary Deployment's pods only (see
 * domain/traffic.ts for the labels). activities/traffic/ creates it when it
 * is missing and deletes it after promotion or abort.
 */
import { TRACK_LABEL } from './traffic';

/** Marks the objects a canary made, so a clean-up deletes only those. */
export const CANARY_OF_LABEL = 'deploy-pipelines.dev/canary-of';

export function canaryServiceName(service: string): string {
  return `${service}-canary`;
}

export interface ServiceLike {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: {
    selector?: Record<string, string>;
    type?: string;
    ports?: { name?: string; port: number; targetPort?: number | string; protocol?: string; appProtocol?: string }[];
  };
}

export class CanaryServiceError extends Error {
  override name = 'CanaryServiceError';
}

/** The canary Service for `stable`: its ports, its selector narrowed to the canary's pods. */
export function canaryServiceFrom(stable: ServiceLike): ServiceLike {
  const name = stable.metadata?.name ?? '?';
  const selector = stable.spec?.selector;
  if (!selector || !Object.keys(selector).length)
    throw new CanaryServiceError(`Service ${name} has no selector: its canary's pods cannot be told apart`);
  if (!stable.spec?.ports?.length) throw new CanaryServiceError(`Service ${name} has no ports`);
  return {
    metadata: {
      name: canaryServiceName(name),
      // Only our own labels: the stable Service's (a GitOps tool's instance label, say) would let that tool prune it.
      labels: { [TRACK_LABEL]: 'canary', [CANARY_OF_LABEL]: name },
    },
    spec: {
      type: 'ClusterIP',
      selector: { ...selector, [TRACK_LABEL]: 'canary' },
      // Only the port fields: nodePorts and clusterIPs belong to the stable Service.
      ports: stable.spec.ports.map((p) => ({
        ...(p.name ? { name: p.name } : {}),
        port: p.port,
        ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}),
        ...(p.protocol ? { protocol: p.protocol } : {}),
        ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
      })),
    },
  };
}

/** On the stable Service while a canary narrows its selector to the stable pods (so it can be widened back, and only then). */
export const STABLE_ONLY_ANNOTATION = 'deploy-pipelines.dev/stable-only-during-canary';

/**
 * The merge patch that narrows the stable Service to the stable pods for the
 * canary's time, or undefined when it already selects them only. Canary pods
 * carry the stable Service's labels (domain/traffic.ts), which a mesh's
 * subsets and the replicas provider need; a router that sends its stable
 * share to the Service itself would otherwise hand part of it to the canary.
 * The stable pods must carry `track: stable`, or narrowing would leave the
 * Service with no pod at all.
 */
export function stableOnlyPatch(
  stable: ServiceLike,
  stablePodLabels: Record<string, string> | undefined,
): { metadata: { annotations: Record<string, string> }; spec: { selector: Record<string, string> } } | undefined {
  const name = stable.metadata?.name ?? '?';
  if (stable.spec?.selector?.[TRACK_LABEL] === 'stable') return undefined;
  if (stablePodLabels?.[TRACK_LABEL] !== 'stable')
    throw new CanaryServiceError(
      `the pods of Deployment ${name} do not carry the label ${TRACK_LABEL}: stable, which the canary needs: ` +
        `canary pods match Service ${name} too, so its stable share would reach them (add the label to the pod template)`,
    );
  return {
    metadata: { annotations: { [STABLE_ONLY_ANNOTATION]: 'true' } },
    spec: { selector: { [TRACK_LABEL]: 'stable' } },
  };
}

/** The merge patch that widens the stable Service back after the canary, when the canary narrowed it; else undefined. */
export function stableWidenPatch(
  stable: ServiceLike & { metadata?: { annotations?: Record<string, string> } },
): { metadata: { annotations: Record<string, null> }; spec: { selector: Record<string, null> } } | undefined {
  if (stable.metadata?.annotations?.[STABLE_ONLY_ANNOTATION] !== 'true') return undefined;
  return { metadata: { annotations: { [STABLE_ONLY_ANNOTATION]: null } }, spec: { selector: { [TRACK_LABEL]: null } } };
}
