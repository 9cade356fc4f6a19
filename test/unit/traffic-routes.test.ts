/**
 * The gateway-api and nginx providers' pure parts: HTTPRoute rule
 * arithmetic (weights, header rule, mirror, back to the original form),
 * the canary Ingress and its annotations, the canary Service; and the step
 * options in config and plan (objects beside plain weights, refused for a
 * provider that cannot apply them).
 */
import * as path from 'node:path';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import {
  canaryServiceFrom,
  CanaryServiceError,
  STABLE_ONLY_ANNOTATION,
  stableOnlyPatch,
  stableWidenPatch,
} from '../../src/domain/canary-service';
import { ConfigError, parseConfig } from '../../src/domain/config';
import {
  gatewayRouteIs,
  GatewayRouteError,
  readGatewayRoute,
  routeUsesCanary,
  withGatewayWeights,
  type HttpRouteRuleLike,
} from '../../src/domain/gateway-route';
import {
  canaryAnnotations,
  canaryIngressFrom,
  canaryIngressIs,
  IngressError,
  readCanaryIngress,
  type IngressLike,
} from '../../src/domain/nginx-canary';
import { stepRouteAt } from '../../src/domain/plan';
import { buildPlan } from '../../src/domain/planner';
import { REPO_ROOT } from '../helpers/tools';

const SEL = { stable: 'api-gateway', canary: 'api-gateway-canary' };
const ORIGINAL: HttpRouteRuleLike[] = [
  { matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: 'api-gateway', port: 80 }] },
  { matches: [{ path: { type: 'PathPrefix', value: '/static' } }], backendRefs: [{ name: 'frontend', port: 80 }] },
];

describe('HTTPRoute rules', () => {
  test('weights go to the rules that send to stable, sum to 100 and read back', () => {
    for (const w of [5, 25, 50, 100]) {
      const rules = withGatewayWeights(ORIGINAL, SEL, w);
      expect(rules[0].backendRefs).toEqual([
        { name: 'api-gateway', port: 80, weight: 100 - w },
        { name: 'api-gateway-canary', port: 80, weight: w },
      ]);
      expect(rules[1]).toEqual(ORIGINAL[1]);
      const state = readGatewayRoute(rules, SEL)!;
      expect(state).toMatchObject({ stable: 100 - w, canary: w, consistent: true });
      expect(gatewayRouteIs(state, w)).toBe(true);
    }
  });

  test('weight 0 without options is the original route: stable alone, no weight, no canary left', () => {
    const at25 = withGatewayWeights(ORIGINAL, SEL, 25, { header: { name: 'x-canary', value: 'always' }, mirror: 10 });
    const back = withGatewayWeights(at25, SEL, 0);
    expect(back).toEqual(ORIGINAL);
    expect(routeUsesCanary(back, SEL)).toBe(false);
    expect(readGatewayRoute(back, SEL)).toMatchObject({ stable: 100, canary: 0 });
  });

  test('a header step adds one rule to the canary alone, with the header on every match; the next step removes it', () => {
    const header = { name: 'x-canary', value: 'always' };
    const rules = withGatewayWeights(ORIGINAL, SEL, 25, { header });
    expect(rules).toHaveLength(3);
    expect(rules[0]).toEqual({
      matches: [
        { path: { type: 'PathPrefix', value: '/' }, headers: [{ type: 'Exact', name: 'x-canary', value: 'always' }] },
      ],
      backendRefs: [{ name: 'api-gateway-canary', port: 80 }],
    });
    const state = readGatewayRoute(rules, SEL)!;
    expect(state.header).toEqual(header);
    expect(gatewayRouteIs(state, 25, { header })).toBe(true);
    expect(gatewayRouteIs(state, 25)).toBe(false);
    const next = withGatewayWeights(rules, SEL, 50);
    expect(next).toHaveLength(2);
    expect(readGatewayRoute(next, SEL)!.header).toBeUndefined();
  });

  test('a mirror step puts one RequestMirror filter with its percent on the managed rules', () => {
    const rules = withGatewayWeights(ORIGINAL, SEL, 50, { mirror: 10 });
    expect(rules[0].filters).toEqual([
      { type: 'RequestMirror', requestMirror: { backendRef: { name: 'api-gateway-canary', port: 80 }, percent: 10 } },
    ]);
    expect(readGatewayRoute(rules, SEL)!.mirror).toBe(10);
    // Applied twice, still one filter; the next step without mirror drops it.
    expect(withGatewayWeights(rules, SEL, 50, { mirror: 10 })[0].filters).toHaveLength(1);
    expect(withGatewayWeights(rules, SEL, 100)[0].filters).toBeUndefined();
  });

  test('weights are relative: defaulted weights of 1 and rules that disagree are read as they are', () => {
    expect(
      readGatewayRoute([{ backendRefs: [{ name: 'api-gateway' }, { name: 'api-gateway-canary' }] }], SEL),
    ).toMatchObject({ stable: 50, canary: 50 });
    const two = [withGatewayWeights(ORIGINAL, SEL, 5)[0], withGatewayWeights(ORIGINAL, SEL, 25)[0]];
    expect(readGatewayRoute(two, SEL)).toMatchObject({ canary: 5, consistent: false, rules: 2 });
  });

  test('a route that cannot be steered is refused: nothing to stable, or stable shared with another backend', () => {
    expect(readGatewayRoute([ORIGINAL[1]], SEL)).toBeNull();
    expect(() => withGatewayWeights([ORIGINAL[1]], SEL, 5)).toThrow(
      new GatewayRouteError('no rule sends to Service api-gateway'),
    );
    const shared = [
      {
        backendRefs: [
          { name: 'api-gateway', port: 80 },
          { name: 'legacy', port: 80 },
        ],
      },
    ];
    expect(() => withGatewayWeights(shared, SEL, 5)).toThrow(/also sends to legacy/);
    // A reference to another namespace's Service of the same name is not the stable backend.
    expect(readGatewayRoute([{ backendRefs: [{ name: 'api-gateway', namespace: 'other' }] }], SEL)).toBeNull();
  });
});

describe('NGINX canary Ingress', () => {
  const stable: IngressLike = {
    metadata: { name: 'api-gateway', annotations: { 'kubernetes.io/ingress.class': 'x' } },
    spec: {
      ingressClassName: 'nginx',
      rules: [
        {
          host: 'api.example',
          http: {
            paths: [
              { path: '/', pathType: 'Prefix', backend: { service: { name: 'api-gateway', port: { number: 80 } } } },
              { path: '/static', pathType: 'Prefix', backend: { service: { name: 'frontend', port: { number: 80 } } } },
            ],
          },
        },
      ],
    },
  };

  test('copies the paths to the service, sent to the canary Service, with the canary annotations', () => {
    const header = { name: 'x-canary', value: 'always' };
    const canary = canaryIngressFrom(stable, 'api-gateway', 'api-gateway-canary', 25, { header });
    expect(canary).toEqual({
      metadata: {
        name: 'api-gateway-canary',
        labels: { 'deploy-pipelines.dev/canary-of': 'api-gateway' },
        annotations: {
          'nginx.ingress.kubernetes.io/canary': 'true',
          'nginx.ingress.kubernetes.io/canary-weight': '25',
          'nginx.ingress.kubernetes.io/canary-by-header': 'x-canary',
          'nginx.ingress.kubernetes.io/canary-by-header-value': 'always',
        },
      },
      spec: {
        ingressClassName: 'nginx',
        rules: [
          {
            host: 'api.example',
            http: {
              paths: [
                {
                  path: '/',
                  pathType: 'Prefix',
                  backend: { service: { name: 'api-gateway-canary', port: { number: 80 } } },
                },
              ],
            },
          },
        ],
      },
    });
    expect(readCanaryIngress(canary)).toEqual({ weight: 25, header });
    expect(canaryIngressIs(canary, 25, { header })).toBe(true);
    expect(canaryIngressIs(canary, 25)).toBe(false);
  });

  test('a step without header removes the header annotations (null in a merge patch)', () => {
    expect(canaryAnnotations(50)).toEqual({
      'nginx.ingress.kubernetes.io/canary': 'true',
      'nginx.ingress.kubernetes.io/canary-weight': '50',
      'nginx.ingress.kubernetes.io/canary-by-header': null,
      'nginx.ingress.kubernetes.io/canary-by-header-value': null,
    });
    expect(() => canaryAnnotations(101)).toThrow(IngressError);
  });

  test('no canary Ingress, or one with a bad weight, reads as 0', () => {
    expect(readCanaryIngress(undefined)).toEqual({ weight: 0 });
    expect(
      readCanaryIngress({
        metadata: {
          annotations: {
            'nginx.ingress.kubernetes.io/canary': 'true',
            'nginx.ingress.kubernetes.io/canary-weight': '5.5',
          },
        },
      }),
    ).toEqual({ weight: 0 });
  });

  test('an Ingress that cannot be steered is refused', () => {
    const other: IngressLike = { metadata: { name: 'web' }, spec: { rules: [stable.spec!.rules![0]] } };
    expect(() => canaryIngressFrom(other, 'chat-service', 'chat-service-canary', 5)).toThrow(
      'Ingress web has no path that sends to Service chat-service',
    );
    const canary = canaryIngressFrom(stable, 'api-gateway', 'api-gateway-canary', 5);
    expect(() => canaryIngressFrom(canary, 'api-gateway-canary', 'x', 5)).toThrow(/is itself a canary Ingress/);
  });
});

test('the canary Service: the stable ports, its selector narrowed to track=canary', () => {
  const svc = canaryServiceFrom({
    metadata: { name: 'api-gateway', labels: { app: 'api-gateway' } },
    spec: {
      type: 'NodePort',
      selector: { app: 'api-gateway' },
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    },
  });
  expect(svc).toEqual({
    metadata: {
      name: 'api-gateway-canary',
      labels: { track: 'canary', 'deploy-pipelines.dev/canary-of': 'api-gateway' },
    },
    spec: {
      type: 'ClusterIP',
      selector: { app: 'api-gateway', track: 'canary' },
      ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }],
    },
  });
  expect(() => canaryServiceFrom({ metadata: { name: 'ext' }, spec: { ports: [{ port: 80 }] } })).toThrow(
    CanaryServiceError,
  );
});

describe('step options in config and plan', () => {
  const raw = () => parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8'));
  const STEPS = [5, { weight: 25, header: { name: 'x-canary', value: 'always' } }, { weight: 50, mirror: 10 }, 100];

  test('objects beside numbers: the plan keeps number steps and carries the options beside them', () => {
    const r = raw();
    r.traffic.provider = 'gateway-api';
    r.rollout.canary.steps = STEPS;
    const config = parseConfig(r, 'deploy.config.yaml', {});
    const plan = buildPlan(config, { version: '1.0.1' }, { workflowId: 'w', commit: 'c', tags: [] });
    expect(plan.canary.steps).toEqual([5, 25, 50, 100]);
    expect(plan.canary.stepRoutes).toEqual([{}, { header: { name: 'x-canary', value: 'always' } }, { mirror: 10 }, {}]);
    expect(stepRouteAt(plan.canary, 5)).toBeUndefined();
    expect(stepRouteAt(plan.canary, 50)).toEqual({ mirror: 10 });
    // Plain steps: no stepRoutes in the plan at all, as before.
    const plain = buildPlan(
      parseConfig(raw(), 'deploy.config.yaml', {}),
      { version: '1.0.1' },
      {
        workflowId: 'w',
        commit: 'c',
        tags: [],
      },
    );
    expect(plain.canary).not.toHaveProperty('stepRoutes');
  });

  test.each([
    [
      'nginx',
      /rollout\.canary\.steps\.2: the nginx traffic provider cannot do request mirroring \(mirror\); providers that can: gateway-api/,
    ],
    [
      'istio',
      /rollout\.canary\.steps\.1: the istio traffic provider cannot do header-based routing \(header\); providers that can: gateway-api, nginx/,
    ],
    ['replicas', /the replicas traffic provider cannot do header-based routing/],
  ])('%s refuses an option it cannot apply, at load, naming the provider', (provider, message) => {
    const r = raw();
    r.traffic.provider = provider;
    r.rollout.canary.steps = STEPS;
    expect(() => parseConfig(r, 'deploy.config.yaml', {})).toThrow(ConfigError);
    expect(() => parseConfig(r, 'deploy.config.yaml', {})).toThrow(message);
  });

  test('nginx takes a header step; a bad header or mirror is refused', () => {
    const r = raw();
    r.traffic.provider = 'nginx';
    r.rollout.canary.steps = STEPS.slice(0, 2).concat([100]);
    expect(parseConfig(r, 'x.yaml', {}).rollout.canary.steps).toHaveLength(3);
    r.rollout.canary.steps = [{ weight: 25, header: { name: 'x canary', value: 'a' } }, 100];
    expect(() => parseConfig(r, 'x.yaml', {})).toThrow(/an HTTP header name/);
    r.traffic.provider = 'gateway-api';
    r.rollout.canary.steps = [{ weight: 25, mirror: 0 }, 100];
    expect(() => parseConfig(r, 'x.yaml', {})).toThrow(/rollout\.canary\.steps/);
    r.rollout.canary.steps = [{ weight: 50 }, { weight: 25 }, 100];
    expect(() => parseConfig(r, 'x.yaml', {})).toThrow(/steps must increase strictly/);
  });
});

describe('the stable Service narrowed to the stable pods for the canary', () => {
  const stable = {
    metadata: { name: 'api-gateway' },
    spec: { selector: { app: 'api-gateway' }, ports: [{ port: 80 }] },
  };

  test('narrowed by track: stable, marked so only the canary widens it back', () => {
    const patch = stableOnlyPatch(stable, { app: 'api-gateway', track: 'stable' });
    expect(patch).toEqual({
      metadata: { annotations: { [STABLE_ONLY_ANNOTATION]: 'true' } },
      spec: { selector: { track: 'stable' } },
    });
    const narrowed = {
      metadata: { name: 'api-gateway', annotations: { [STABLE_ONLY_ANNOTATION]: 'true' } },
      spec: { ...stable.spec, selector: { app: 'api-gateway', track: 'stable' } },
    };
    // A retried start finds it narrowed already; the end widens it back.
    expect(stableOnlyPatch(narrowed, { app: 'api-gateway', track: 'stable' })).toBeUndefined();
    expect(stableWidenPatch(narrowed)).toEqual({
      metadata: { annotations: { [STABLE_ONLY_ANNOTATION]: null } },
      spec: { selector: { track: null } },
    });
  });

  test('a selector someone else narrowed is left as it is', () => {
    const theirs = { metadata: { name: 'api-gateway' }, spec: { selector: { app: 'api-gateway', track: 'stable' } } };
    expect(stableOnlyPatch(theirs, { track: 'stable' })).toBeUndefined();
    expect(stableWidenPatch(theirs)).toBeUndefined();
  });

  test('stable pods without track: stable are refused: narrowing would leave the Service with no pod', () => {
    expect(() => stableOnlyPatch(stable, { app: 'api-gateway' })).toThrow(
      /pods of Deployment api-gateway do not carry the label track: stable/,
    );
  });
});
