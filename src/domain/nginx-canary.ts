/**
 * NGINX Ingress canary, without I/O: the canary Ingress `<ingress>-canary`
 * copies the stable Ingress's rules (the paths that send to the traffic
 * Service) but sends to the canary Service, and ingress-nginx reads its
 * canary annotations: `canary: "true"`, `canary-weight` (percent of the
 * stable Ingress's traffic) and, for a header step, `canary-by-header` with
 * `canary-by-header-value` (requests with that exact value always go to the
 * canary). activities/traffic/nginx.ts applies them.
 */
import { CANARY_OF_LABEL } from './canary-service';
import type { StepRoute } from './plan';
import { isWeight } from './traffic';

const PREFIX = 'nginx.ingress.kubernetes.io/';
export const CANARY_ANNOTATION = `${PREFIX}canary`;
export const CANARY_WEIGHT_ANNOTATION = `${PREFIX}canary-weight`;
export const CANARY_HEADER_ANNOTATION = `${PREFIX}canary-by-header`;
export const CANARY_HEADER_VALUE_ANNOTATION = `${PREFIX}canary-by-header-value`;

export function canaryIngressName(ingress: string): string {
  return `${ingress}-canary`;
}

export interface IngressBackendLike {
  service?: { name?: string; port?: { number?: number; name?: string } };
  [k: string]: unknown;
}

export interface IngressLike {
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
  };
  spec?: {
    ingressClassName?: string;
    defaultBackend?: IngressBackendLike;
    tls?: unknown[];
    rules?: { host?: string; http?: { paths: { path?: string; pathType?: string; backend: IngressBackendLike }[] } }[];
  };
}

export class IngressError extends Error {
  override name = 'IngressError';
}

/**
 * The canary annotations for `weight` and `route`'s header. Annotations of
 * the canary that the state does not use are null: a merge patch removes them.
 */
export function canaryAnnotations(weight: number, route?: StepRoute): Record<string, string | null> {
  if (!isWeight(weight)) throw new IngressError(`weight must be an integer from 0 to 100, got ${String(weight)}`);
  return {
    [CANARY_ANNOTATION]: 'true',
    [CANARY_WEIGHT_ANNOTATION]: String(weight),
    [CANARY_HEADER_ANNOTATION]: route?.header?.name ?? null,
    [CANARY_HEADER_VALUE_ANNOTATION]: route?.header?.value ?? null,
  };
}

/** What the canary Ingress asks ingress-nginx for: its weight (0 when unset or not a canary) and header. */
export function readCanaryIngress(ingress: IngressLike | undefined): {
  weight: number;
  header?: { name: string; value: string };
} {
  const a = ingress?.metadata?.annotations ?? {};
  const raw = a[CANARY_WEIGHT_ANNOTATION];
  const n = raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : 0;
  const weight = a[CANARY_ANNOTATION] === 'true' && isWeight(n) ? n : 0;
  const name = a[CANARY_HEADER_ANNOTATION];
  const value = a[CANARY_HEADER_VALUE_ANNOTATION];
  return { weight, ...(name && value !== undefined ? { header: { name, value } } : {}) };
}

/** Whether the canary Ingress is in the state `weight` and `route` ask for. */
export function canaryIngressIs(ingress: IngressLike | undefined, weight: number, route?: StepRoute): boolean {
  const now = readCanaryIngress(ingress);
  return (
    now.weight === weight &&
    (now.header?.name ?? '') === (route?.header?.name ?? '') &&
    (now.header?.value ?? '') === (route?.header?.value ?? '')
  );
}

/**
 * The canary Ingress for `stable`: its class, TLS and the rules' paths that
 * send to `service`, each sending to `canaryService` on the same port.
 * Throws IngressError when no path sends to `service`, or when `stable` is
 * itself a canary Ingress.
 */
export function canaryIngressFrom(
  stable: IngressLike,
  service: string,
  canaryService: string,
  weight: number,
  route?: StepRoute,
): IngressLike {
  const name = stable.metadata?.name ?? '?';
  if (stable.metadata?.annotations?.[CANARY_ANNOTATION] === 'true')
    throw new IngressError(`Ingress ${name} is itself a canary Ingress`);
  const toCanary = (b: IngressBackendLike): IngressBackendLike => ({
    ...b,
    service: { ...b.service, name: canaryService },
  });
  const rules = (stable.spec?.rules ?? []).flatMap((r) => {
    const paths = (r.http?.paths ?? []).filter((p) => p.backend.service?.name === service);
    return paths.length ? [{ ...r, http: { paths: paths.map((p) => ({ ...p, backend: toCanary(p.backend) })) } }] : [];
  });
  const def = stable.spec?.defaultBackend;
  const defaultBackend = def?.service?.name === service ? toCanary(def) : undefined;
  if (!rules.length && !defaultBackend)
    throw new IngressError(`Ingress ${name} has no path that sends to Service ${service}`);
  const annotations = Object.fromEntries(
    Object.entries(canaryAnnotations(weight, route)).filter((e): e is [string, string] => e[1] !== null),
  );
  return {
    // Only our own label: the stable Ingress's (a GitOps tool's instance label, say) would let that tool prune it.
    metadata: { name: canaryIngressName(name), labels: { [CANARY_OF_LABEL]: service }, annotations },
    spec: {
      ...(stable.spec?.ingressClassName ? { ingressClassName: stable.spec.ingressClassName } : {}),
      ...(stable.spec?.tls ? { tls: stable.spec.tls } : {}),
      ...(defaultBackend ? { defaultBackend } : {}),
      ...(rules.length ? { rules } : {}),
    },
  };
}
