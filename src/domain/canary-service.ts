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
      labels: { ...(stable.metadata?.labels ?? {}), [TRACK_LABEL]: 'canary', [CANARY_OF_LABEL]: name },
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
