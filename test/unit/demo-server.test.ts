import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  DEFAULT_TRAFFIC,
  INJECTED_ERROR_LINE,
  TrafficMetrics,
  applyFaultCommand,
  emptyFaultState,
  escapeLabelValue,
  generateTraffic,
  isLoopbackHost,
  normaliseWeights,
  optionsFromEnv,
  parseFaultState,
  pickTrack,
  renderMetrics,
  resolveTrafficState,
  selectedColour,
  simulateRequest,
  startDemoServer,
  tagOfImage,
  validateFaultRequest,
  validateHealthRequest,
  versionFromDeployment,
  weightsFromReplicas,
  weightsFromVirtualService,
  type DemoServerHandle,
  type DeploymentLike,
  type TrafficState,
} from '../../scripts/sandbox/demo-server';
import { weightsFromCanaryIngress, weightsFromHttpRoute } from '../../scripts/sandbox/demo-server/traffic-state';

const vs = (route: unknown[]) => ({
  apiVersion: 'networking.istio.io/v1beta1',
  kind: 'VirtualService',
  spec: { hosts: ['api-gateway'], http: [{ route }] },
});
const dest = (subset?: string) => ({ host: 'api-gateway', ...(subset ? { subset } : {}) });

function deployment(opts: { image?: string; version?: string; ready?: number } = {}): DeploymentLike {
  return {
    metadata: { annotations: opts.version ? { 'deploy-pipelines.dev/version': opts.version } : {} },
    spec: { template: { spec: { containers: opts.image ? [{ image: opts.image }] : [] } } },
    status: { readyReplicas: opts.ready },
  };
}

/** A deterministic "random" source cycling through the given values. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length];
}

describe('weightsFromVirtualService', () => {
  test('reads a 95/5 split by subset', () => {
    expect(
      weightsFromVirtualService(
        vs([
          { destination: dest('stable'), weight: 95 },
          { destination: dest('canary'), weight: 5 },
        ]),
      ),
    ).toEqual({ stable: 95, canary: 5 });
  });

  test('order of routes does not matter', () => {
    expect(
      weightsFromVirtualService(
        vs([
          { destination: dest('canary'), weight: 20 },
          { destination: dest('stable'), weight: 80 },
        ]),
      ),
    ).toEqual({ stable: 80, canary: 20 });
  });

  test('a missing weight counts as 0', () => {
    expect(
      weightsFromVirtualService(vs([{ destination: dest('stable'), weight: 100 }, { destination: dest('canary') }])),
    ).toEqual({ stable: 100, canary: 0 });
    expect(
      weightsFromVirtualService(vs([{ destination: dest('stable') }, { destination: dest('canary'), weight: 100 }])),
    ).toEqual({ stable: 0, canary: 100 });
  });

  test('a single route without weight takes everything', () => {
    expect(weightsFromVirtualService(vs([{ destination: dest('stable') }]))).toEqual({ stable: 100, canary: 0 });
    expect(weightsFromVirtualService(vs([{ destination: dest('canary') }]))).toEqual({ stable: 0, canary: 100 });
    expect(weightsFromVirtualService(vs([{ destination: dest() }]))).toEqual({ stable: 100, canary: 0 });
  });

  test('weights that do not sum to 100 are normalised; all zero means stable', () => {
    expect(
      weightsFromVirtualService(
        vs([
          { destination: dest('stable'), weight: 3 },
          { destination: dest('canary'), weight: 1 },
        ]),
      ),
    ).toEqual({ stable: 75, canary: 25 });
    expect(
      weightsFromVirtualService(
        vs([
          { destination: dest('stable'), weight: 0 },
          { destination: dest('canary'), weight: 0 },
        ]),
      ),
    ).toEqual({ stable: 100, canary: 0 });
  });

  test('returns null when there is no usable route', () => {
    expect(weightsFromVirtualService(null)).toBeNull();
    expect(weightsFromVirtualService({ spec: {} })).toBeNull();
    expect(weightsFromVirtualService({ spec: { http: [] } })).toBeNull();
    expect(weightsFromVirtualService(vs([]))).toBeNull();
  });
});

describe('weights helpers', () => {
  test('replica weights round to whole percentages', () => {
    expect(weightsFromReplicas(3, 1)).toEqual({ stable: 75, canary: 25 });
    expect(weightsFromReplicas(2, 1)).toEqual({ stable: 67, canary: 33 });
    expect(weightsFromReplicas(0, 0)).toEqual({ stable: 100, canary: 0 });
    expect(weightsFromReplicas(0, 2)).toEqual({ stable: 0, canary: 100 });
  });

  test('normaliseWeights always sums to 100', () => {
    for (const [s, c] of [
      [1, 2],
      [33, 33],
      [7, 0],
      [0.5, 0.25],
    ]) {
      const w = normaliseWeights(s, c);
      expect(w.stable + w.canary).toBe(100);
    }
  });
});

describe('versions', () => {
  test.each([
    ['registry/name:1.0.1', '1.0.1'],
    ['localhost:5000/ai-saas-api-gateway:2.3.4', '2.3.4'],
    ['name', 'latest'],
    ['localhost:5000/name', 'latest'],
    ['name@sha256:abcdef', 'unknown'],
    ['registry:5000/name@sha256:abcdef', 'unknown'],
    ['name:1.2.3@sha256:abcdef', '1.2.3'],
  ])('tag of %s is %s', (image, tag) => {
    expect(tagOfImage(image)).toBe(tag);
  });

  test('the annotation wins over the image tag', () => {
    expect(versionFromDeployment(deployment({ image: 'r/api:1.0.0', version: '1.0.1' }))).toBe('1.0.1');
    expect(versionFromDeployment(deployment({ image: 'r/api:1.0.0' }))).toBe('1.0.0');
    expect(versionFromDeployment(deployment({ image: 'r/api@sha256:0123' }))).toBe('unknown');
    expect(versionFromDeployment(deployment())).toBe('unknown');
  });

  test('selectedColour reads the blue-green selector', () => {
    expect(selectedColour({ spec: { selector: { app: 'api-gateway', version: 'green' } } })).toBe('green');
    expect(selectedColour({ spec: { selector: { app: 'api-gateway' } } })).toBeNull();
    expect(selectedColour(null)).toBeNull();
  });
});

describe('resolveTrafficState', () => {
  const none = {
    virtualService: null,
    service: null,
    stableDeployment: null,
    canaryDeployment: null,
    colourDeployment: null,
  };

  test('VirtualService weights with both Deployments', () => {
    const state = resolveTrafficState({
      ...none,
      virtualService: vs([
        { destination: dest('stable'), weight: 95 },
        { destination: dest('canary'), weight: 5 },
      ]),
      stableDeployment: deployment({ image: 'r/api:1.0.0', ready: 3 }),
      canaryDeployment: deployment({ image: 'r/api:1.0.1', ready: 1 }),
    });
    expect(state).toEqual({ weights: { stable: 95, canary: 5 }, versions: { stable: '1.0.0', canary: '1.0.1' } });
  });

  test('without a canary Deployment the canary gets nothing, whatever the VirtualService says', () => {
    const state = resolveTrafficState({
      ...none,
      virtualService: vs([
        { destination: dest('stable'), weight: 50 },
        { destination: dest('canary'), weight: 50 },
      ]),
      stableDeployment: deployment({ version: '1.0.0' }),
    });
    expect(state).toEqual({ weights: { stable: 100, canary: 0 }, versions: { stable: '1.0.0', canary: null } });
  });

  test('falls back to ready replicas without a VirtualService', () => {
    const state = resolveTrafficState({
      ...none,
      stableDeployment: deployment({ version: '1.0.0', ready: 3 }),
      canaryDeployment: deployment({ version: '1.0.1', ready: 1 }),
    });
    expect(state.weights).toEqual({ stable: 75, canary: 25 });
  });

  test('a blue-green selector switches the stable version', () => {
    const state = resolveTrafficState({
      ...none,
      service: { spec: { selector: { version: 'green' } } },
      stableDeployment: deployment({ version: '1.0.0', ready: 2 }),
      colourDeployment: deployment({ version: '1.1.0', ready: 2 }),
    });
    expect(state.versions.stable).toBe('1.1.0');
    expect(state.weights).toEqual({ stable: 100, canary: 0 });
  });

  test('nothing found at all', () => {
    expect(resolveTrafficState(none)).toEqual({
      weights: { stable: 100, canary: 0 },
      versions: { stable: 'unknown', canary: null },
    });
  });
});

describe("the object the canary's traffic provider writes", () => {
  const none = {
    virtualService: vs([
      { destination: dest('stable'), weight: 100 },
      { destination: dest('canary'), weight: 0 },
    ]),
    service: null,
    serviceName: 'api-gateway',
    stableDeployment: deployment({ version: '1.0.0', ready: 4 }),
    colourDeployment: null,
  };
  const canary = (provider?: string) => ({
    ...deployment({ version: '1.0.1', ready: 1 }),
    metadata: {
      annotations: {
        'deploy-pipelines.dev/version': '1.0.1',
        ...(provider ? { 'deploy-pipelines.dev/traffic-provider': provider } : {}),
      },
    },
  });
  const route = (stable: number, canaryWeight?: number) => ({
    spec: {
      rules: [
        {
          backendRefs: [
            { name: 'api-gateway', port: 80, weight: stable },
            ...(canaryWeight === undefined ? [] : [{ name: 'api-gateway-canary', port: 80, weight: canaryWeight }]),
          ],
        },
      ],
    },
  });
  const ingress = (weight: string) => ({
    metadata: {
      annotations: {
        'nginx.ingress.kubernetes.io/canary': 'true',
        'nginx.ingress.kubernetes.io/canary-weight': weight,
      },
    },
  });

  test('HTTPRoute backend weights, relative, a missing weight counting 1; no rule to the service: none', () => {
    expect(weightsFromHttpRoute(route(75, 25), 'api-gateway')).toEqual({ stable: 75, canary: 25 });
    expect(
      weightsFromHttpRoute({ spec: { rules: [{ backendRefs: [{ name: 'api-gateway' }] }] } }, 'api-gateway'),
    ).toEqual({ stable: 100, canary: 0 });
    expect(weightsFromHttpRoute({ spec: { rules: [{ backendRefs: [{ name: 'web' }] }] } }, 'api-gateway')).toBeNull();
    expect(weightsFromHttpRoute(null, 'api-gateway')).toBeNull();
  });

  test('a canary Ingress weight annotation; not a canary or not a percent: none', () => {
    expect(weightsFromCanaryIngress(ingress('30'))).toEqual({ stable: 70, canary: 30 });
    expect(weightsFromCanaryIngress(ingress('150'))).toBeNull();
    expect(weightsFromCanaryIngress({ metadata: { annotations: {} } })).toBeNull();
  });

  test('without a recorded provider: the canary Ingress, else an HTTPRoute with a canary backend, else the VirtualService', () => {
    const base = { ...none, canaryDeployment: canary(), httpRoute: route(1) };
    expect(resolveTrafficState(base).weights).toEqual({ stable: 100, canary: 0 });
    expect(resolveTrafficState({ ...base, httpRoute: route(50, 50) }).weights).toEqual({ stable: 50, canary: 50 });
    expect(resolveTrafficState({ ...base, httpRoute: route(50, 50), canaryIngress: ingress('5') }).weights).toEqual({
      stable: 95,
      canary: 5,
    });
  });

  test('the provider the canary records picks its object, replicas included while a VirtualService exists', () => {
    expect(resolveTrafficState({ ...none, canaryDeployment: canary('replicas') }).weights).toEqual({
      stable: 80,
      canary: 20,
    });
    expect(resolveTrafficState({ ...none, canaryDeployment: canary('istio') }).weights).toEqual({
      stable: 100,
      canary: 0,
    });
    expect(
      resolveTrafficState({ ...none, canaryDeployment: canary('gateway-api'), httpRoute: route(95, 5) }).weights,
    ).toEqual({ stable: 95, canary: 5 });
    // nginx before its canary Ingress exists: all on stable.
    expect(resolveTrafficState({ ...none, canaryDeployment: canary('nginx') }).weights).toEqual({
      stable: 100,
      canary: 0,
    });
  });
});

describe('validateFaultRequest', () => {
  test('accepts a canary fault', () => {
    expect(validateFaultRequest({ track: 'canary', errorRate: 0.5, latencyMs: 200 })).toEqual({
      ok: true,
      value: { kind: 'set', track: 'canary', fault: { errorRate: 0.5, latencyMs: 200 } },
    });
  });

  test('missing errorRate or latencyMs defaults to 0', () => {
    expect(validateFaultRequest({ track: 'stable', latencyMs: 300 })).toEqual({
      ok: true,
      value: { kind: 'set', track: 'stable', fault: { errorRate: 0, latencyMs: 300 } },
    });
    expect(validateFaultRequest({ track: 'stable', errorRate: 1 })).toEqual({
      ok: true,
      value: { kind: 'set', track: 'stable', fault: { errorRate: 1, latencyMs: 0 } },
    });
  });

  test('accepts clear', () => {
    expect(validateFaultRequest({ clear: true })).toEqual({ ok: true, value: { kind: 'clear' } });
  });

  test.each([
    [{ track: 'canary', errorRate: 2 }, /errorRate must be a number between 0 and 1, got 2/],
    [{ track: 'canary', errorRate: -0.1 }, /errorRate/],
    [{ track: 'canary', errorRate: '0.5' }, /errorRate/],
    [{ track: 'blue', errorRate: 0.5 }, /track must be "stable" or "canary", got "blue"/],
    [{ errorRate: 0.5 }, /track must be/],
    [{ track: 'canary', latencyMs: -1 }, /latencyMs must be a number >= 0/],
    [{ track: 'canary', latencyFactor: 0 }, /latencyFactor must be a number from 0.1 to 100, got 0/],
    [{ track: 'canary', latencyFactor: '1.3' }, /latencyFactor/],
    [{ track: 'canary' }, /give errorRate/],
    [{ track: 'canary', error_rate: 0.5 }, /unknown field\(s\): error_rate/],
    [{ clear: false }, /clear must be true/],
    [{ clear: true, track: 'canary' }, /cannot be combined/],
    [[1, 2], /JSON object/],
    [null, /JSON object/],
  ])('rejects %j', (body, message) => {
    const result = validateFaultRequest(body);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(message);
  });
});

describe('health and fault state', () => {
  test('validateHealthRequest', () => {
    expect(validateHealthRequest({ fail: true, reason: 'db down' })).toEqual({
      ok: true,
      value: { fail: true, reason: 'db down' },
    });
    expect(validateHealthRequest({ fail: true })).toEqual({
      ok: true,
      value: { fail: true, reason: 'fault injected' },
    });
    expect(validateHealthRequest({ fail: false, reason: 'ignored' })).toEqual({ ok: true, value: { fail: false } });
    expect(validateHealthRequest({ fail: 'yes' }).ok).toBe(false);
    expect(validateHealthRequest({ fail: true, reason: 5 }).ok).toBe(false);
  });

  test('applyFaultCommand sets and clears without mutating', () => {
    const before = emptyFaultState();
    const after = applyFaultCommand(before, { kind: 'set', track: 'canary', fault: { errorRate: 0.2, latencyMs: 0 } });
    expect(before.tracks).toEqual({});
    expect(after.tracks.canary).toEqual({ errorRate: 0.2, latencyMs: 0 });
    expect(applyFaultCommand(after, { kind: 'clear' }).tracks).toEqual({});
  });

  test('parseFaultState keeps valid entries and drops the rest', () => {
    const parsed = parseFaultState({
      tracks: { canary: { errorRate: 0.3, latencyMs: 10 }, stable: { errorRate: 7 }, blue: { errorRate: 1 } },
      health: { fail: true, reason: 'x' },
      logErrors: ['auth-service'],
      preview: { fail: true, reason: 'y' },
    });
    expect(parsed).toEqual({
      tracks: { canary: { errorRate: 0.3, latencyMs: 10 } },
      health: { fail: true, reason: 'x' },
      logErrors: ['auth-service'],
      preview: { fail: true, reason: 'y' },
    });
    expect(parseFaultState({ logErrors: ['../etc/passwd'] }).logErrors).toEqual([]);
    expect(parseFaultState('garbage')).toEqual(emptyFaultState());
  });
});

describe('synthetic traffic', () => {
  test('pickTrack follows the weights and never picks a zero-weight track', () => {
    expect(pickTrack({ stable: 95, canary: 5 }, () => 0.94)).toBe('stable');
    expect(pickTrack({ stable: 95, canary: 5 }, () => 0.96)).toBe('canary');
    expect(pickTrack({ stable: 100, canary: 0 }, () => 0.9999)).toBe('stable');
    expect(pickTrack({ stable: 0, canary: 100 }, () => 0)).toBe('canary');
  });

  test('a latency factor multiplies the base latency before the added latency (1.3: 30% slower)', () => {
    expect(validateFaultRequest({ track: 'canary', latencyFactor: 1.3 })).toEqual({
      ok: true,
      value: { kind: 'set', track: 'canary', fault: { errorRate: 0, latencyMs: 0, latencyFactor: 1.3 } },
    });
    const slow = simulateRequest('canary', { errorRate: 0, latencyMs: 5, latencyFactor: 1.3 }, () => 0.5);
    expect(slow.latencySeconds).toBeCloseTo((70 * 1.3 + 5) / 1000, 6);
    // Kept across restarts like the other fault fields.
    expect(
      parseFaultState({ tracks: { canary: { errorRate: 0, latencyMs: 0, latencyFactor: 1.3 } } }).tracks.canary,
    ).toEqual({ errorRate: 0, latencyMs: 0, latencyFactor: 1.3 });
  });

  test('simulateRequest adds fault latency and fails with the fault probability', () => {
    expect(simulateRequest('stable', undefined, () => 0)).toEqual({ track: 'stable', code: 200, latencySeconds: 0.02 });
    expect(simulateRequest('stable', undefined, () => 0.999999).latencySeconds).toBeCloseTo(0.12, 4);
    expect(simulateRequest('canary', { errorRate: 0.5, latencyMs: 1000 }, sequence(0, 0.4))).toEqual({
      track: 'canary',
      code: 500,
      latencySeconds: 1.02,
    });
    expect(simulateRequest('canary', { errorRate: 0.5, latencyMs: 0 }, sequence(0, 0.6)).code).toBe(200);
  });

  test('generateTraffic splits roughly by weight', () => {
    const requests = generateTraffic(10_000, { stable: 90, canary: 10 }, emptyFaultState(), Math.random);
    const canary = requests.filter((r) => r.track === 'canary').length;
    expect(requests).toHaveLength(10_000);
    expect(canary).toBeGreaterThan(700);
    expect(canary).toBeLessThan(1300);
  });
});

describe('renderMetrics', () => {
  function rendered(): string {
    const metrics = new TrafficMetrics();
    metrics.record({ service: 'api-gateway', track: 'stable', version: '1.0.0' }, 200, 0.03);
    metrics.record({ service: 'api-gateway', track: 'stable', version: '1.0.0' }, 200, 0.2);
    metrics.record({ service: 'api-gateway', track: 'canary', version: '1.0.1' }, 500, 0.07);
    return renderMetrics({
      ...metrics.snapshot(),
      weights: { stable: 95, canary: 5 },
      faultErrorRates: { stable: 0, canary: 0.5 },
    });
  }

  test('counter lines carry service, track, version and code', () => {
    const text = rendered();
    expect(text).toContain('# TYPE http_requests_total counter\n');
    expect(text).toContain('http_requests_total{service="api-gateway",track="stable",version="1.0.0",code="200"} 2\n');
    expect(text).toContain('http_requests_total{service="api-gateway",track="canary",version="1.0.1",code="500"} 1\n');
  });

  test('histogram buckets are cumulative and end in +Inf, _sum and _count', () => {
    const text = rendered();
    const s = 'service="api-gateway",track="stable",version="1.0.0"';
    expect(text).toContain('# TYPE http_request_duration_seconds histogram\n');
    expect(text).toContain(`http_request_duration_seconds_bucket{${s},le="0.025"} 0\n`);
    expect(text).toContain(`http_request_duration_seconds_bucket{${s},le="0.05"} 1\n`);
    expect(text).toContain(`http_request_duration_seconds_bucket{${s},le="0.1"} 1\n`);
    expect(text).toContain(`http_request_duration_seconds_bucket{${s},le="0.25"} 2\n`);
    expect(text).toContain(`http_request_duration_seconds_bucket{${s},le="10"} 2\n`);
    expect(text).toContain(`http_request_duration_seconds_bucket{${s},le="+Inf"} 2\n`);
    expect(text).toMatch(new RegExp(`http_request_duration_seconds_sum\\{${s}\\} 0\\.23\\d*\\n`));
    expect(text).toContain(`http_request_duration_seconds_count{${s}} 2\n`);
    const les = [...text.matchAll(new RegExp(`_bucket\\{${s},le="([^"]+)"\\}`, 'g'))].map((m) => m[1]);
    expect(les).toEqual([
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.075',
      '0.1',
      '0.125',
      '0.15',
      '0.2',
      '0.25',
      '0.5',
      '1',
      '2.5',
      '5',
      '10',
      '+Inf',
    ]);
  });

  test('gauges for weights and fault error rates', () => {
    const text = rendered();
    expect(text).toContain('demo_traffic_weight{track="stable"} 95\n');
    expect(text).toContain('demo_traffic_weight{track="canary"} 5\n');
    expect(text).toContain('demo_fault_error_rate{track="stable"} 0\n');
    expect(text).toContain('demo_fault_error_rate{track="canary"} 0.5\n');
  });

  test('every non-comment line is "name{labels} value"', () => {
    for (const line of rendered().trimEnd().split('\n')) {
      if (line.startsWith('#')) continue;
      expect(line).toMatch(/^[a-z_]+\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\} [0-9.e+-]+$/);
    }
  });

  test('label values are escaped', () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
  });
});

describe('configuration', () => {
  test('defaults', () => {
    expect(optionsFromEnv({})).toEqual({
      port: 8080,
      host: '127.0.0.1',
      namespace: 'ai-saas',
      service: 'api-gateway',
      kubeconfig: undefined,
      credentials: undefined,
      rps: 50,
      stateFile: undefined,
      logDir: undefined,
      containers: [],
      previewPort: undefined,
      feeds: {},
      metricsApiKey: undefined,
    });
  });

  test('reads the environment', () => {
    const o = optionsFromEnv({
      DEMO_PORT: '9090',
      DEMO_RPS: '5',
      SMOKE_EMAIL: 'a@b.c',
      SMOKE_PASSWORD: 'pw',
      KUBECONFIG: '/k',
      DEMO_SERVICE: 'svc',
      DEMO_NAMESPACE: 'ns',
    });
    expect(o).toMatchObject({
      port: 9090,
      rps: 5,
      credentials: { email: 'a@b.c', password: 'pw' },
      kubeconfig: '/k',
      service: 'svc',
      namespace: 'ns',
    });
  });

  test('refuses bad values and non-loopback hosts', () => {
    expect(() => optionsFromEnv({ DEMO_PORT: 'http' })).toThrow(/DEMO_PORT must be a port number/);
    expect(() => optionsFromEnv({ DEMO_RPS: '-1' })).toThrow(/DEMO_RPS/);
    expect(() => optionsFromEnv({ DEMO_HOST: '0.0.0.0' })).toThrow(/loopback/);
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('::1')).toBe(true);
    expect(isLoopbackHost('192.168.1.2')).toBe(false);
  });
});

describe('demo server over HTTP', () => {
  const credentials = { email: 'smoke@example.com', password: 's3cret' };
  let server: DemoServerHandle;
  let base: string;
  let dir: string;
  const lines: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'demo-server-'));
    server = await startDemoServer({
      port: 0,
      credentials,
      rps: 200,
      stateFile: path.join(dir, 'state.json'),
      logDir: path.join(dir, 'logs'),
      containers: ['api-gateway', 'auth-service', 'frontend'],
      previewPort: 0,
      log: (l) => lines.push(l),
    });
    base = `http://127.0.0.1:${server.port}`;
  });

  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (p: string, body: unknown) =>
    fetch(`${base}${p}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

  test("writes the traffic service's container log in CRI format, and error lines into the logs a fault names", async () => {
    await sleep(1200);
    const gateway = readFileSync(path.join(dir, 'logs', 'api-gateway.log'), 'utf8')
      .trim()
      .split('\n');
    expect(gateway.at(-1)).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z stdout F INFO POST \/v1\/chat\/completions: \d+ requests served \(stable, unknown\)$/,
    );
    const bad = await post('/__sandbox/log-errors', { containers: ['auth-service', 'Not A Name'] });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({ error: 'not container names: ["Not A Name"]' });
    expect((await post('/__sandbox/log-errors', { containers: ['auth-service'] })).status).toBe(200);
    await sleep(1200);
    const auth = readFileSync(path.join(dir, 'logs', 'auth-service.log'), 'utf8');
    expect(auth).toContain(`stdout F ${INJECTED_ERROR_LINE}\n`);
    // Cleared with the other faults: no more lines.
    expect((await post('/__sandbox/fault', { clear: true })).status).toBe(200);
    await sleep(1100);
    const size = readFileSync(path.join(dir, 'logs', 'auth-service.log'), 'utf8').length;
    await sleep(1100);
    expect(readFileSync(path.join(dir, 'logs', 'auth-service.log'), 'utf8').length).toBe(size);
  });

  test('the preview listener serves the smoke endpoints, 503 while a preview fault is set; no control API there', async () => {
    const preview = `http://127.0.0.1:${server.previewPort}`;
    expect(server.previewPort).toBeGreaterThan(0);
    expect((await fetch(`${preview}/health`)).status).toBe(200);
    expect((await fetch(`${preview}/metrics`)).status).toBe(404);
    expect((await fetch(`${preview}/__sandbox/fault`, { method: 'POST', body: '{"clear":true}' })).status).toBe(404);
    expect((await post('/__sandbox/preview', { fail: true, reason: 'green is broken' })).status).toBe(200);
    const signin = await fetch(`${preview}/api/auth/signin`, { method: 'POST', body: JSON.stringify(credentials) });
    expect(signin.status).toBe(503);
    expect(await signin.json()).toEqual({ error: 'preview: green is broken' });
    expect((await fetch(`${base}/health`)).status).toBe(200); // the live listener is untouched
    expect((await post('/__sandbox/fault', { clear: true })).status).toBe(200);
    expect((await fetch(`${preview}/health`)).status).toBe(200);
  });

  test('logs the listening line', () => {
    expect(lines[0]).toBe(
      `demo: listening on http://127.0.0.1:${server.port} (namespace ai-saas, service api-gateway)`,
    );
  });

  test('health, then failing health, then restored', async () => {
    let res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });

    expect((await post('/__sandbox/health', { fail: true, reason: 'db down' })).status).toBe(200);
    res = await fetch(`${base}/health`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ status: 'degraded', reason: 'db down' });

    expect((await post('/__sandbox/health', { fail: false })).status).toBe(200);
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  test('sign-in and conversations', async () => {
    expect((await post('/api/auth/signin', { email: credentials.email, password: 'wrong' })).status).toBe(401);
    const res = await post('/api/auth/signin', credentials);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { token: string; user: { email: string } } };
    expect(body.data.user.email).toBe(credentials.email);
    expect(body.data.token.length).toBeGreaterThan(20);

    const ok = await fetch(`${base}/api/chat/conversations`, {
      headers: { authorization: `Bearer ${body.data.token}` },
    });
    expect(ok.status).toBe(200);
    const conversations = (await ok.json()) as { data: { id: number; title: string }[] };
    expect(conversations.data.length).toBeGreaterThan(0);
    expect(conversations.data[0]).toEqual({ id: 1, title: expect.any(String) });

    expect((await fetch(`${base}/api/chat/conversations`)).status).toBe(401);
    expect((await fetch(`${base}/api/chat/conversations`, { headers: { authorization: 'Bearer nope' } })).status).toBe(
      401,
    );
  });

  test('bad control requests get 400 with a message', async () => {
    const badJson = await post('/__sandbox/fault', '{not json');
    expect(badJson.status).toBe(400);
    expect(await badJson.json()).toEqual({ error: 'request body must be valid JSON' });
    const badRate = await post('/__sandbox/fault', { track: 'canary', errorRate: 2 });
    expect(badRate.status).toBe(400);
    expect(((await badRate.json()) as { error: string }).error).toMatch(/errorRate/);
    expect((await post('/__sandbox/fault', { track: 'blue', errorRate: 0.1 })).status).toBe(400);
    expect((await fetch(`${base}/nowhere`)).status).toBe(404);
    expect((await fetch(`${base}/__sandbox/fault`)).status).toBe(405);
  });

  test('a canary fault shows up as 500s for the canary track', async () => {
    const state = (await (await fetch(`${base}/__sandbox/state`)).json()) as TrafficState & { faults: unknown };
    expect(state.weights).toEqual(DEFAULT_TRAFFIC.weights);
    expect(state.versions).toEqual(DEFAULT_TRAFFIC.versions);

    server.setWeightsOverride({ stable: 0, canary: 100 });
    expect((await post('/__sandbox/fault', { track: 'canary', errorRate: 1, latencyMs: 0 })).status).toBe(200);
    expect(JSON.parse(readFileSync(path.join(dir, 'state.json'), 'utf8')).tracks.canary).toEqual({
      errorRate: 1,
      latencyMs: 0,
    });
    await sleep(500);

    const text = await (await fetch(`${base}/metrics`)).text();
    const match =
      /^http_requests_total\{service="api-gateway",track="canary",version="unknown",code="500"\} (\d+)$/m.exec(text);
    expect(match).not.toBeNull();
    expect(Number(match?.[1])).toBeGreaterThan(0);
    expect(text).toContain('demo_traffic_weight{track="canary"} 100\n');
    expect(text).toContain('demo_fault_error_rate{track="canary"} 1\n');

    expect((await post('/__sandbox/fault', { clear: true })).status).toBe(200);
    const after = (await (await fetch(`${base}/__sandbox/state`)).json()) as {
      faults: unknown;
      weightsPinned: boolean;
    };
    expect(after).toMatchObject({ faults: {}, weightsPinned: true });
  });

  test('fault state survives a restart through the state file', async () => {
    const file = path.join(dir, 'restart.json');
    const first = await startDemoServer({ port: 0, stateFile: file, log: () => undefined });
    await fetch(`http://127.0.0.1:${first.port}/__sandbox/health`, {
      method: 'POST',
      body: JSON.stringify({ fail: true, reason: 'kept' }),
    });
    await first.close();
    const second = await startDemoServer({ port: 0, stateFile: file, log: () => undefined });
    try {
      const res = await fetch(`http://127.0.0.1:${second.port}/health`);
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ status: 'degraded', reason: 'kept' });
    } finally {
      await second.close();
    }
  });

  test('a failing traffic source keeps the last known state and logs each error once', async () => {
    const log: string[] = [];
    const answers: (TrafficState | Error)[] = [
      { weights: { stable: 90, canary: 10 }, versions: { stable: '1.0.0', canary: '1.0.1' } },
      new Error('connect ECONNREFUSED'),
      new Error('connect ECONNREFUSED'),
    ];
    let calls = 0;
    const trafficSource = () => {
      const answer = answers[Math.min(calls++, answers.length - 1)];
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    };
    const s = await startDemoServer({ port: 0, trafficSource, log: (l) => log.push(l) });
    try {
      await sleep(2600);
      const state = (await (await fetch(`http://127.0.0.1:${s.port}/__sandbox/state`)).json()) as TrafficState & {
        kubernetesError: string;
      };
      expect(calls).toBeGreaterThanOrEqual(3);
      expect(state.weights).toEqual({ stable: 90, canary: 10 });
      expect(state.versions).toEqual({ stable: '1.0.0', canary: '1.0.1' });
      expect(state.kubernetesError).toBe('connect ECONNREFUSED');
      expect(log.filter((l) => l.includes('ECONNREFUSED'))).toHaveLength(1);
      const metrics = await (await fetch(`http://127.0.0.1:${s.port}/metrics`)).text();
      expect(metrics).toMatch(
        /http_requests_total\{service="api-gateway",track="stable",version="1.0.0",code="200"\} \d+/,
      );
    } finally {
      await s.close();
    }
  });
});
