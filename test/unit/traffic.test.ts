import { PodTemplateError, type DeploymentLike } from '../../src/domain/kube-objects';
import {
  basicCanaryReplicas,
  canaryDeploymentFrom,
  canaryDeploymentName,
  meshCanaryReplicas,
  readRouteWeights,
  recordedStableReplicas,
  RouteError,
  STABLE_REPLICAS_ANNOTATION,
  weightsFromReplicas,
  withRouteWeights,
  type HttpRouteLike,
} from '../../src/domain/traffic';

const sel = { host: 'api-gateway', stableSubset: 'stable', canarySubset: 'canary' };

/** The sandbox's VirtualService api-gateway. */
function sandboxRoutes(stable = 100, canary = 0): HttpRouteLike[] {
  return [
    {
      name: 'primary',
      match: [{ uri: { prefix: '/' } }],
      route: [
        { destination: { host: 'api-gateway', subset: 'stable' }, weight: stable },
        { destination: { host: 'api-gateway', subset: 'canary' }, weight: canary },
      ],
    },
  ];
}

describe('replica counts', () => {
  test('basic canary (no mesh) rounds both tracks up, as Argo Rollouts does', () => {
    expect([0, 5, 25, 50, 100].map((w) => basicCanaryReplicas(4, w))).toEqual([
      { canary: 0, stable: 4 },
      { canary: 1, stable: 4 },
      { canary: 1, stable: 3 },
      { canary: 2, stable: 2 },
      { canary: 4, stable: 0 },
    ]);
    expect(basicCanaryReplicas(2, 25)).toEqual({ canary: 1, stable: 2 });
    expect(basicCanaryReplicas(0, 50)).toEqual({ canary: 0, stable: 0 });
  });

  test('with a mesh the canary gets capacity for its share, at least one pod', () => {
    expect([0, 5, 25, 50, 100].map((w) => meshCanaryReplicas(4, w))).toEqual([1, 1, 1, 2, 4]);
  });

  test('weights from ready pods sum to 100', () => {
    expect(weightsFromReplicas(4, 1)).toEqual({ stable: 80, canary: 20 });
    expect(weightsFromReplicas(2, 2)).toEqual({ stable: 50, canary: 50 });
    expect(weightsFromReplicas(0, 0)).toEqual({ stable: 100, canary: 0 });
  });
});

describe('VirtualService routes', () => {
  test('reads the weights of the route to the stable subset', () => {
    expect(readRouteWeights(sandboxRoutes(75, 25), sel)).toEqual({
      stable: 75,
      canary: 25,
      consistent: true,
      routes: 1,
    });
    expect(
      readRouteWeights([{ route: [{ destination: { host: 'api-gateway', subset: 'stable' } }] }], sel),
    ).toMatchObject({ stable: 100, canary: 0 });
    expect(readRouteWeights([{ route: [{ destination: { host: 'other', subset: 'stable' } }] }], sel)).toBeNull();
    expect(readRouteWeights(undefined, sel)).toBeNull();
  });

  test('routes that disagree are reported as inconsistent', () => {
    const two = [...sandboxRoutes(95, 5), ...sandboxRoutes(100, 0)];
    expect(readRouteWeights(two, sel)).toMatchObject({ stable: 95, canary: 5, consistent: false, routes: 2 });
    const fixed = withRouteWeights(two, sel, 25);
    expect(readRouteWeights(fixed, sel)).toMatchObject({ stable: 75, canary: 25, consistent: true });
  });

  test('sets stable 100-w / canary w and keeps every other field', () => {
    const before = sandboxRoutes();
    const after = withRouteWeights(before, sel, 5);
    expect(after).toEqual([
      {
        name: 'primary',
        match: [{ uri: { prefix: '/' } }],
        route: [
          { destination: { host: 'api-gateway', subset: 'stable' }, weight: 95 },
          { destination: { host: 'api-gateway', subset: 'canary' }, weight: 5 },
        ],
      },
    ]);
    expect(before[0].route?.[0].weight).toBe(100); // not mutated
  });

  test('adds the canary destination where missing, and accepts the service FQDN', () => {
    const fqdn = 'api-gateway.ai-saas.svc.cluster.local';
    const after = withRouteWeights(
      [{ route: [{ destination: { host: fqdn, subset: 'stable', port: { number: 80 } } }] }],
      sel,
      25,
    );
    expect(after[0].route).toEqual([
      { destination: { host: fqdn, subset: 'stable', port: { number: 80 } }, weight: 75 },
      { destination: { host: fqdn, subset: 'canary', port: { number: 80 } }, weight: 25 },
    ]);
  });

  test('leaves routes of other services alone, refuses mixed routes and bad weights', () => {
    const other: HttpRouteLike = {
      name: 'admin',
      route: [{ destination: { host: 'admin', subset: 'v1' }, weight: 100 }],
    };
    expect(withRouteWeights([other, ...sandboxRoutes()], sel, 50)[0]).toBe(other);
    expect(() => withRouteWeights([other], sel, 50)).toThrow(RouteError);
    const mixed = [
      {
        route: [
          { destination: { host: 'api-gateway', subset: 'stable' }, weight: 90 },
          { destination: { host: 'legacy' }, weight: 10 },
        ],
      },
    ];
    expect(() => withRouteWeights(mixed, sel, 50)).toThrow(/also sends to legacy/);
    expect(() => withRouteWeights(sandboxRoutes(), sel, 101)).toThrow(RouteError);
    expect(() => withRouteWeights(sandboxRoutes(), sel, 2.5)).toThrow(RouteError);
  });
});

describe('the canary Deployment', () => {
  const stable: DeploymentLike = {
    metadata: {
      name: 'api-gateway',
      namespace: 'ai-saas',
      labels: { app: 'api-gateway', 'app.kubernetes.io/part-of': 'ai-saas' },
    },
    spec: {
      replicas: 4,
      selector: { matchLabels: { app: 'api-gateway' } },
      template: {
        metadata: {
          labels: { app: 'api-gateway', track: 'stable', 'pod-template-hash': 'abc' },
          annotations: { 'deploy-pipelines.dev/version': '1.0.0' },
        },
        spec: { containers: [{ name: 'api-gateway', image: 'r/ai-saas-api-gateway:1.0.0' }] },
      },
    },
  };
  const spec = {
    name: canaryDeploymentName('api-gateway'),
    container: 'api-gateway',
    image: 'r/ai-saas-api-gateway:1.0.1',
    version: '1.0.1',
    workflowId: 'wf',
    replicas: 1,
    stableReplicas: 4,
  };

  test('selector app+track=canary never matches stable pods; pods stay in the Service (app) with track=canary', () => {
    const c = canaryDeploymentFrom(stable, spec);
    expect(c.metadata?.name).toBe('api-gateway-canary');
    expect(c.spec?.selector.matchLabels).toEqual({ app: 'api-gateway', track: 'canary' });
    expect(c.spec?.template.metadata?.labels).toEqual({ app: 'api-gateway', track: 'canary' });
    expect(c.metadata?.labels).toEqual({ app: 'api-gateway', 'app.kubernetes.io/part-of': 'ai-saas', track: 'canary' });
    expect(c.spec?.template.spec?.containers[0].image).toBe('r/ai-saas-api-gateway:1.0.1');
    expect(c.spec?.template.metadata?.annotations?.['deploy-pipelines.dev/version']).toBe('1.0.1');
    expect(c.metadata?.annotations?.[STABLE_REPLICAS_ANNOTATION]).toBe('4');
    expect(c.spec?.replicas).toBe(1);
    expect(stable.spec?.template.metadata?.labels?.track).toBe('stable'); // not mutated
  });

  test('a blue-green colour on the stable pods is kept, so a pinned Service still selects the canary', () => {
    const blue = structuredClone(stable);
    blue.spec!.template.metadata!.labels!.version = 'blue';
    expect(canaryDeploymentFrom(blue, spec).spec?.template.metadata?.labels).toEqual({
      app: 'api-gateway',
      track: 'canary',
      version: 'blue',
    });
  });

  test('an unknown container is a PodTemplateError', () => {
    expect(() => canaryDeploymentFrom(stable, { ...spec, container: 'nope' })).toThrow(PodTemplateError);
  });

  test('the stable size recorded on the canary wins over what stable has now', () => {
    const c = canaryDeploymentFrom(stable, spec);
    expect(recordedStableReplicas(c, { ...stable, spec: { ...stable.spec!, replicas: 2 } })).toBe(4);
    expect(recordedStableReplicas(undefined, stable)).toBe(4);
  });
});
