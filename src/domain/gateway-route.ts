/**
 * Canary weights on a Gateway API HTTPRoute (gateway.networking.k8s.io/v1),
 * without I/O: activities/traffic/gateway-api.ts reads the route, asks these
 * functions for its next rules and writes them back.
 *
 * The rules that send to the stable Service are the managed ones: each gets
 * two backendRefs, stable at 100 - weight and the canary Service at weight
 * (Gateway API weights are relative; these two sum to 100). Step options: a
 * header rule (a copy of the first managed rule's matches, each with the
 * header added, sending only to the canary: more header matches take
 * precedence in Gateway API, whatever the order) and a RequestMirror filter
 * with a percent on each managed rule. At weight 0 without options the rules
 * are back to their original form: the stable backendRef alone, without the
 * weight the canary wrote.
 */
import type { StepRoute } from './plan';
import { isWeight, type TrackWeights } from './traffic';

export interface BackendRefLike {
  group?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  port?: number;
  weight?: number;
  [k: string]: unknown;
}

export interface HeaderMatchLike {
  type?: string;
  name?: string;
  value?: string;
}

export interface RouteMatchLike {
  headers?: HeaderMatchLike[];
  [k: string]: unknown;
}

export interface RouteFilterLike {
  type?: string;
  requestMirror?: { backendRef?: BackendRefLike; percent?: number; [k: string]: unknown };
  [k: string]: unknown;
}

export interface HttpRouteRuleLike {
  matches?: RouteMatchLike[];
  filters?: RouteFilterLike[];
  backendRefs?: BackendRefLike[];
  [k: string]: unknown;
}

/** Which Services are the stable and the canary backend. */
export interface BackendSelector {
  stable: string;
  canary: string;
}

export class GatewayRouteError extends Error {
  override name = 'GatewayRouteError';
}

/** A reference to the Service `name` in the route's own namespace (group "" and kind Service are the defaults). */
function refersTo(ref: BackendRefLike | undefined, name: string): boolean {
  return (
    !!ref &&
    ref.name === name &&
    (ref.group ?? '') === '' &&
    (ref.kind ?? 'Service') === 'Service' &&
    ref.namespace === undefined
  );
}

/** A rule the canary added for its header: it sends to the canary Service alone. */
function isHeaderRule(rule: HttpRouteRuleLike, sel: BackendSelector): boolean {
  const refs = rule.backendRefs ?? [];
  return refs.length > 0 && refs.every((r) => refersTo(r, sel.canary));
}

function isManaged(rule: HttpRouteRuleLike, sel: BackendSelector): boolean {
  return (rule.backendRefs ?? []).some((r) => refersTo(r, sel.stable));
}

function isCanaryMirror(f: RouteFilterLike, sel: BackendSelector): boolean {
  return f.type === 'RequestMirror' && refersTo(f.requestMirror?.backendRef, sel.canary);
}

/** What the route does for the canary now: its weight, header rule and mirror percent. */
export interface GatewayRouteState extends TrackWeights {
  /** Every managed rule has the same weights. */
  consistent: boolean;
  rules: number;
  header?: { name: string; value: string };
  mirror?: number;
}

/**
 * The weights of the managed rules (the first rule's when they disagree,
 * with `consistent: false`), the header the canary's rule matches and the
 * mirror percent. null when no rule sends to the stable Service.
 */
export function readGatewayRoute(
  rules: HttpRouteRuleLike[] | undefined,
  sel: BackendSelector,
): GatewayRouteState | null {
  const list = rules ?? [];
  const managed = list.filter((r) => isManaged(r, sel));
  if (!managed.length) return null;
  const weightsOf = (rule: HttpRouteRuleLike): TrackWeights => {
    let stable = 0;
    let canary = 0;
    // Gateway API: a backendRef without weight weighs 1.
    for (const r of rule.backendRefs ?? []) {
      if (refersTo(r, sel.stable)) stable += r.weight ?? 1;
      else if (refersTo(r, sel.canary)) canary += r.weight ?? 1;
    }
    const total = stable + canary;
    const c = total > 0 ? Math.round((100 * canary) / total) : 0;
    return { stable: 100 - c, canary: c };
  };
  const all = managed.map(weightsOf);
  const consistent = all.every((w) => w.stable === all[0].stable && w.canary === all[0].canary);
  const headerRule = list.find((r) => isHeaderRule(r, sel));
  const headerMatch = headerRule?.matches?.[0]?.headers?.at(-1);
  const mirror = (managed[0].filters ?? []).find((f) => isCanaryMirror(f, sel));
  return {
    ...all[0],
    consistent,
    rules: managed.length,
    ...(headerMatch?.name && headerMatch.value !== undefined
      ? { header: { name: headerMatch.name, value: headerMatch.value } }
      : {}),
    ...(mirror ? { mirror: mirror.requestMirror?.percent ?? 100 } : {}),
  };
}

/** Whether the route is in the state `weight` and `route` ask for. */
export function gatewayRouteIs(state: GatewayRouteState, weight: number, route?: StepRoute): boolean {
  const sameHeader =
    (state.header?.name ?? '') === (route?.header?.name ?? '') &&
    (state.header?.value ?? '') === (route?.header?.value ?? '');
  return (
    state.consistent &&
    state.canary === weight &&
    state.stable === 100 - weight &&
    sameHeader &&
    (state.mirror ?? 0) === (route?.mirror ?? 0)
  );
}

/** Whether any rule still refers to the canary Service (a backendRef, a mirror or the header rule). */
export function routeUsesCanary(rules: HttpRouteRuleLike[] | undefined, sel: BackendSelector): boolean {
  return (rules ?? []).some(
    (r) =>
      (r.backendRefs ?? []).some((b) => refersTo(b, sel.canary)) ||
      (r.filters ?? []).some((f) => isCanaryMirror(f, sel)),
  );
}

function withHeader(matches: RouteMatchLike[] | undefined, header: { name: string; value: string }): RouteMatchLike[] {
  const base = matches?.length ? matches : [{ path: { type: 'PathPrefix', value: '/' } }];
  return base.map((m) => ({
    ...m,
    headers: [
      ...(m.headers ?? []).filter((h) => h.name?.toLowerCase() !== header.name.toLowerCase()),
      { type: 'Exact', name: header.name, value: header.value },
    ],
  }));
}

/**
 * The route's rules with the canary at `weight` and `route`'s options (none:
 * no header rule, no mirror). Other rules and fields are kept. Throws
 * GatewayRouteError when no rule sends to the stable Service, or when such a
 * rule also sends elsewhere (the weights would not add up to 100).
 */
export function withGatewayWeights(
  rules: HttpRouteRuleLike[] | undefined,
  sel: BackendSelector,
  weight: number,
  route?: StepRoute,
): HttpRouteRuleLike[] {
  if (!isWeight(weight)) throw new GatewayRouteError(`weight must be an integer from 0 to 100, got ${String(weight)}`);
  const list = (rules ?? []).filter((r) => !isHeaderRule(r, sel));
  const managed = list.filter((r) => isManaged(r, sel));
  if (!managed.length) throw new GatewayRouteError(`no rule sends to Service ${sel.stable}`);
  const original = weight === 0 && !route?.header && !route?.mirror;
  let canaryRef: BackendRefLike | undefined;
  const next = list.map((rule, i) => {
    if (!isManaged(rule, sel)) return rule;
    const refs = rule.backendRefs ?? [];
    const foreign = refs.filter((r) => !refersTo(r, sel.stable) && !refersTo(r, sel.canary));
    if (foreign.length)
      throw new GatewayRouteError(
        `rule #${i} also sends to ${foreign.map((r) => r.name ?? '?').join(', ')}: cannot shift weights between ${sel.stable} and ${sel.canary} alone`,
      );
    const stable = refs.find((r) => refersTo(r, sel.stable)) as BackendRefLike;
    const canary = { ...stable, name: sel.canary };
    canaryRef ??= { name: sel.canary, ...(stable.port !== undefined ? { port: stable.port } : {}) };
    const filters = (rule.filters ?? []).filter((f) => !isCanaryMirror(f, sel));
    if (route?.mirror)
      filters.push({ type: 'RequestMirror', requestMirror: { backendRef: canaryRef, percent: route.mirror } });
    const { filters: _old, ...rest } = rule;
    const { weight: _w, ...stableAlone } = stable;
    // One backendRef per track, stable first: duplicates would split a track's weight.
    return {
      ...rest,
      ...(filters.length ? { filters } : {}),
      backendRefs: original
        ? [stableAlone]
        : [
            { ...stable, weight: 100 - weight },
            { ...canary, weight },
          ],
    };
  });
  if (!route?.header || !canaryRef) return next;
  const first = next.find((r) => isManaged(r, sel)) as HttpRouteRuleLike;
  return [{ matches: withHeader(first.matches, route.header), backendRefs: [canaryRef] }, ...next];
}
