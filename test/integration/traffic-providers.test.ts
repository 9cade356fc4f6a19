/**
 * The gateway-api and nginx traffic providers against the sandbox's real
 * kube-apiserver (the Gateway API standard-channel CRDs installed, the
 * HTTPRoute's CEL rules enforced), acting as the worker's least-privilege
 * ServiceAccount: deploy/kubernetes/worker-rbac.yaml applied to a namespace
 * of this run's own, with an api-gateway Deployment, Service, HTTPRoute and
 * Ingress made by the admin there. Weights 5 → 25 → 50 → 100 with header and
 * mirror steps, promotion and abort, the canary Service and Ingress made and
 * removed, a route that cannot be steered refused, a concurrent edit
 * retried and kept. The namespace is deleted afterwards.
 */
import * as k8s from '@kubernetes/client-node';
import { makeKubeClients, type KubeClients, type KubernetesConfig } from '../../src/activities/clients/kube';
import type { CanaryTarget } from '../../src/activities/contracts';
import { trafficActivities } from '../../src/activities/traffic';
import { STABLE_ONLY_ANNOTATION } from '../../src/domain/canary-service';
import { ErrorType } from '../../src/domain/errors';
import type { StepRoute, TrafficProviderName } from '../../src/domain/plan';
import { rolloutStatus } from '../../src/domain/rollout';
import { sandboxVar } from '../helpers/sandbox';
import { waitFor } from '../helpers/wait';
import { workerIdentity } from '../helpers/worker-rbac';

jest.setTimeout(180_000);

const NS = `it-traffic-providers-${process.pid}`;
const SERVICE = 'api-gateway';
const CANARY = 'api-gateway-canary';
const ROUTES = { group: 'gateway.networking.k8s.io', version: 'v1', namespace: NS, plural: 'httproutes' };
const HEADER = { name: 'x-canary', value: 'always' };
const image = (version: string) => `${sandboxVar('REGISTRY')}/ai-saas-${SERVICE}:${version}`;

const kubernetesConfig: KubernetesConfig = {
  kubeconfig: '',
  rolloutTimeout: 60_000,
  deleteOldColourAfter: 3_600_000,
  pollInterval: 200,
  requestTimeout: 10_000,
  diagnosticLogLines: 5,
  shared: false,
};

let admin: k8s.KubeConfig;
let worker: k8s.KubeConfig;
let apps: k8s.AppsV1Api;
let core: k8s.CoreV1Api;
let net: k8s.NetworkingV1Api;
let custom: k8s.CustomObjectsApi;
let discovery: k8s.DiscoveryV1Api;

const originalRoute = () => ({
  apiVersion: 'gateway.networking.k8s.io/v1',
  kind: 'HTTPRoute',
  metadata: { name: SERVICE },
  spec: {
    parentRefs: [{ name: 'ai-saas-gateway' }],
    rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: SERVICE, port: 80 }] }],
  },
});

function target(provider: TrafficProviderName, version: string): CanaryTarget {
  return {
    workflowId: `${NS}-${provider}-${version}`,
    namespace: NS,
    version,
    service: SERVICE,
    container: 'web',
    image: image(version),
    traffic: { provider, service: SERVICE, stableSubset: 'stable', canarySubset: 'canary' },
  };
}

function activities(clients?: KubeClients) {
  return trafficActivities({
    ...(clients ? { clients } : { kubeConfig: worker }),
    config: { kubernetes: kubernetesConfig, traffic: { stepTimeout: 30_000 } },
    heartbeat: () => undefined,
  });
}

interface RouteObject {
  metadata: { resourceVersion?: string };
  spec: { hostnames?: string[]; rules: Record<string, unknown>[] };
}
const readRoute = async () => (await custom.getNamespacedCustomObject({ ...ROUTES, name: SERVICE })) as RouteObject;
const findService = (name: string) => core.readNamespacedService({ name, namespace: NS }).catch(() => undefined);
const findIngress = (name: string) => net.readNamespacedIngress({ name, namespace: NS }).catch(() => undefined);
const canaryReplicas = async () =>
  (await apps.readNamespacedDeployment({ name: CANARY, namespace: NS }).catch(() => undefined))?.spec?.replicas;

/** Backend weights of the route's rule to stable, by Service name. */
async function routeWeights(): Promise<Record<string, number | undefined>> {
  const rules = (await readRoute()).spec.rules as { backendRefs: { name: string; weight?: number }[] }[];
  const rule = rules.find((r) => r.backendRefs.some((b) => b.name === SERVICE))!;
  return Object.fromEntries(rule.backendRefs.map((b) => [b.name, b.weight]));
}

beforeAll(async () => {
  admin = new k8s.KubeConfig();
  admin.loadFromFile(sandboxVar('KUBECONFIG'));
  apps = admin.makeApiClient(k8s.AppsV1Api);
  core = admin.makeApiClient(k8s.CoreV1Api);
  discovery = admin.makeApiClient(k8s.DiscoveryV1Api);
  net = admin.makeApiClient(k8s.NetworkingV1Api);
  custom = admin.makeApiClient(k8s.CustomObjectsApi);
  worker = await workerIdentity(admin, NS);
  const labels = { app: SERVICE };
  await apps.createNamespacedDeployment({
    namespace: NS,
    body: {
      metadata: { name: SERVICE, labels },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels: { ...labels, track: 'stable' } },
          spec: { containers: [{ name: 'web', image: image('1.0.0') }] },
        },
      },
    },
  });
  await core.createNamespacedService({
    namespace: NS,
    body: {
      metadata: { name: SERVICE, labels },
      spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    },
  });
  await custom.createNamespacedCustomObject({ ...ROUTES, body: originalRoute() });
  await net.createNamespacedIngress({
    namespace: NS,
    body: {
      metadata: { name: SERVICE },
      spec: {
        ingressClassName: 'nginx',
        rules: [
          {
            host: 'api.example',
            http: {
              paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: SERVICE, port: { number: 80 } } } }],
            },
          },
        ],
      },
    },
  });
  await waitFor(
    async () => rolloutStatus(await apps.readNamespacedDeployment({ name: SERVICE, namespace: NS })).done,
    60_000,
  );
}, 120_000);

afterAll(async () => {
  await core?.deleteNamespace({ name: NS }).catch(() => undefined);
}, 60_000);

const STEPS: [number, StepRoute | undefined][] = [
  [5, undefined],
  [25, { header: HEADER }],
  [50, { mirror: 10 }],
  [100, undefined],
];

/** The pods behind a Service's endpoints (EndpointSlices kept by the controller manager), by name. */
async function endpointPods(service: string): Promise<string[]> {
  return waitFor(async () => {
    const slices = await discovery.listNamespacedEndpointSlice({
      namespace: NS,
      labelSelector: `kubernetes.io/service-name=${service}`,
    });
    const pods = slices.items.flatMap((x) => (x.endpoints ?? []).map((e) => e.targetRef?.name ?? ''));
    return pods.length ? pods : undefined;
  }, 30_000);
}

describe('gateway-api', () => {
  test('5 → 25 (header) → 50 (mirror) → 100, then promotion: the route back to its original form, the canary Service gone', async () => {
    const acts = activities();
    const t = target('gateway-api', '1.0.1');
    await acts.startCanary(t);
    const svc = await findService(CANARY);
    expect(svc?.spec?.selector).toEqual({ app: SERVICE, track: 'canary' });
    expect(svc?.spec?.ports?.map((p) => [p.name, p.port, p.targetPort])).toEqual([['http', 80, 8080]]);
    // The route's stable share goes to the stable Service: for the canary's time it selects the stable pods only.
    expect((await findService(SERVICE))?.spec?.selector).toEqual({ app: SERVICE, track: 'stable' });
    const original = (await readRoute()).spec.rules;

    for (const [weight, route] of STEPS) {
      const r = await acts.setCanaryWeight({ target: t, weight, ...(route ? { route } : {}) });
      expect(r.observed).toEqual({ stable: 100 - weight, canary: weight });
      expect(await routeWeights()).toEqual({ [SERVICE]: 100 - weight, [CANARY]: weight });
      const rules = (await readRoute()).spec.rules as {
        matches?: { headers?: unknown[] }[];
        filters?: { type: string; requestMirror?: { percent?: number } }[];
        backendRefs: { name: string }[];
      }[];
      const headerRules = rules.filter((x) => x.backendRefs.every((b) => b.name === CANARY));
      expect(headerRules.map((x) => x.matches?.[0].headers)).toEqual(
        route?.header ? [[{ type: 'Exact', name: 'x-canary', value: 'always' }]] : [],
      );
      const mirrors = rules.flatMap((x) => x.filters ?? []).filter((f) => f.type === 'RequestMirror');
      expect(mirrors.map((f) => f.requestMirror?.percent)).toEqual(route?.mirror ? [10] : []);
      // Capacity first: the canary has pods for its share before the weight is there.
      expect(await canaryReplicas()).toBe(Math.max(1, Math.ceil((2 * weight) / 100)));
    }

    // Canary pods are up (100%): none of them is an endpoint of the stable Service.
    expect(await endpointPods(SERVICE)).not.toContainEqual(expect.stringMatching(new RegExp(`^${CANARY}-`)));
    expect(await endpointPods(CANARY)).toContainEqual(expect.stringMatching(new RegExp(`^${CANARY}-`)));

    await acts.promoteCanary(t);
    expect((await readRoute()).spec.rules).toEqual(original);
    expect(await findService(CANARY)).toBeUndefined();
    expect(await canaryReplicas()).toBeUndefined();
    expect((await findService(SERVICE))?.spec?.selector).toEqual({ app: SERVICE });
    expect((await findService(SERVICE))?.metadata?.annotations?.[STABLE_ONLY_ANNOTATION]).toBeUndefined();
  });

  test('abort at 25% with a header: traffic and the route back to stable at once, the canary at zero, its Service gone', async () => {
    const acts = activities();
    const t = target('gateway-api', '1.0.2');
    const original = (await readRoute()).spec.rules;
    await acts.startCanary(t);
    await acts.setCanaryWeight({ target: t, weight: 25, route: { header: HEADER } });
    expect((await readRoute()).spec.rules).toHaveLength(2);
    await acts.abortCanary(t);
    expect((await readRoute()).spec.rules).toEqual(original);
    expect(await findService(CANARY)).toBeUndefined();
    expect(await canaryReplicas()).toBe(0);
    expect((await findService(SERVICE))?.spec?.selector).toEqual({ app: SERVICE });
    // Idempotent: a retried abort finds nothing to do.
    await acts.abortCanary(t);
    expect((await readRoute()).spec.rules).toEqual(original);
  });

  test('a concurrent edit between read and write is a conflict: re-read, the weight applied, the edit kept', async () => {
    const clients = makeKubeClients(worker);
    const patch = clients.custom.patchNamespacedCustomObject.bind(clients.custom);
    let edits = 0;
    clients.custom.patchNamespacedCustomObject = (async (...args: Parameters<typeof patch>) => {
      if (args[0].plural === 'httproutes' && edits++ === 0) {
        // Another writer changes the route after the provider read it: its resourceVersion is now stale.
        await custom.patchNamespacedCustomObject(
          { ...ROUTES, name: SERVICE, body: { spec: { hostnames: ['edited.example'] } } },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        );
      }
      return patch(...args);
    }) as typeof patch;
    const acts = activities(clients);
    const t = target('gateway-api', '1.0.3');
    await acts.startCanary(t);
    await acts.setCanaryWeight({ target: t, weight: 5 });
    expect(edits).toBeGreaterThanOrEqual(2);
    const route = await readRoute();
    expect(route.spec.hostnames).toEqual(['edited.example']);
    expect(await routeWeights()).toEqual({ [SERVICE]: 95, [CANARY]: 5 });
    await acts.abortCanary(t);
  });

  test('a route with no rule to the service, or whose rule also sends elsewhere, is refused at the start, as ConfigInvalid, and nothing is made', async () => {
    const current = await readRoute();
    await custom.replaceNamespacedCustomObject({
      ...ROUTES,
      name: SERVICE,
      body: {
        ...originalRoute(),
        metadata: { name: SERVICE, resourceVersion: current.metadata.resourceVersion },
        spec: { rules: [{ backendRefs: [{ name: 'frontend', port: 80 }] }] },
      },
    });
    try {
      await expect(activities().startCanary(target('gateway-api', '1.0.4'))).rejects.toMatchObject({
        type: ErrorType.ConfigInvalid,
        message: `HTTPRoute ${SERVICE} has no rule with a backendRef to Service ${SERVICE}`,
      });
      expect(await findService(CANARY)).toBeUndefined();
      // A rule that also sends to another backend: refused before the canary Service or any pod is made.
      const again = await readRoute();
      await custom.replaceNamespacedCustomObject({
        ...ROUTES,
        name: SERVICE,
        body: {
          ...originalRoute(),
          metadata: { name: SERVICE, resourceVersion: again.metadata.resourceVersion },
          spec: {
            rules: [
              {
                backendRefs: [
                  { name: SERVICE, port: 80, weight: 90 },
                  { name: 'frontend', port: 80, weight: 10 },
                ],
              },
            ],
          },
        },
      });
      await expect(activities().startCanary(target('gateway-api', '1.0.4'))).rejects.toMatchObject({
        type: ErrorType.ConfigInvalid,
        message: expect.stringContaining('also sends to frontend'),
      });
      expect(await findService(CANARY)).toBeUndefined();
      // No canary pod either (an earlier test's aborted canary stays at zero).
      expect((await canaryReplicas()) ?? 0).toBe(0);
    } finally {
      const now = await readRoute();
      await custom.replaceNamespacedCustomObject({
        ...ROUTES,
        name: SERVICE,
        body: { ...originalRoute(), metadata: { name: SERVICE, resourceVersion: now.metadata.resourceVersion } },
      });
    }
  });
});

describe('nginx', () => {
  const annotations = async () => (await findIngress(`${SERVICE}-canary`))?.metadata?.annotations;

  test('5 → 25 (header) → 50 → 100, then promotion: the canary Ingress and Service made, weighted, and removed', async () => {
    const acts = activities();
    const t = target('nginx', '1.0.5');
    await acts.startCanary(t);
    for (const [weight, route] of STEPS.filter(([, r]) => !r?.mirror)) {
      const r = await acts.setCanaryWeight({ target: t, weight, ...(route ? { route } : {}) });
      expect(r.observed).toEqual({ stable: 100 - weight, canary: weight });
      const a = await annotations();
      expect(a?.['nginx.ingress.kubernetes.io/canary']).toBe('true');
      expect(a?.['nginx.ingress.kubernetes.io/canary-weight']).toBe(String(weight));
      expect(a?.['nginx.ingress.kubernetes.io/canary-by-header']).toBe(route?.header ? 'x-canary' : undefined);
      expect(a?.['nginx.ingress.kubernetes.io/canary-by-header-value']).toBe(route?.header ? 'always' : undefined);
    }
    const ingress = await findIngress(`${SERVICE}-canary`);
    expect(ingress?.spec?.ingressClassName).toBe('nginx');
    expect(ingress?.spec?.rules?.[0].http?.paths[0].backend.service?.name).toBe(CANARY);
    expect((await findService(CANARY))?.spec?.selector).toEqual({ app: SERVICE, track: 'canary' });

    await acts.promoteCanary(t);
    expect(await findIngress(`${SERVICE}-canary`)).toBeUndefined();
    expect(await findService(CANARY)).toBeUndefined();
    // The stable Ingress is as it was.
    expect((await findIngress(SERVICE))?.spec?.rules?.[0].http?.paths[0].backend.service?.name).toBe(SERVICE);
  });

  test('abort at 25%: the weight to 0 first, then the canary Ingress and Service removed, the canary at zero', async () => {
    const acts = activities();
    const t = target('nginx', '1.0.6');
    await acts.startCanary(t);
    await acts.setCanaryWeight({ target: t, weight: 25 });
    expect((await annotations())?.['nginx.ingress.kubernetes.io/canary-weight']).toBe('25');
    expect((await findService(SERVICE))?.spec?.selector).toEqual({ app: SERVICE, track: 'stable' });
    await acts.abortCanary(t);
    expect(await findIngress(`${SERVICE}-canary`)).toBeUndefined();
    expect(await findService(CANARY)).toBeUndefined();
    expect(await canaryReplicas()).toBe(0);
    expect((await findService(SERVICE))?.spec?.selector).toEqual({ app: SERVICE });
  });

  test('an Ingress named like the canary one but not made by a canary is refused, and left as it is', async () => {
    await net.createNamespacedIngress({
      namespace: NS,
      body: {
        metadata: { name: `${SERVICE}-canary` },
        spec: { ingressClassName: 'nginx', defaultBackend: { service: { name: SERVICE, port: { number: 80 } } } },
      },
    });
    try {
      const acts = activities();
      const t = target('nginx', '1.0.9');
      await expect(acts.startCanary(t)).rejects.toMatchObject({
        type: ErrorType.ConfigInvalid,
        message: expect.stringContaining(`Ingress ${SERVICE}-canary exists and was not made by a canary of ${SERVICE}`),
      });
      await acts.abortCanary(t);
      expect((await findIngress(`${SERVICE}-canary`))?.spec?.defaultBackend?.service?.name).toBe(SERVICE);
      expect((await findService(SERVICE))?.spec?.selector).toEqual({ app: SERVICE });
    } finally {
      await net.deleteNamespacedIngress({ name: `${SERVICE}-canary`, namespace: NS }).catch(() => undefined);
    }
  });

  test('an option the provider cannot apply is refused before anything moves', async () => {
    const t = target('nginx', '1.0.7');
    await expect(activities().setCanaryWeight({ target: t, weight: 5, route: { mirror: 10 } })).rejects.toMatchObject({
      type: ErrorType.InvalidInput,
      message: 'the nginx traffic provider cannot apply the mirror option',
    });
    expect(await findIngress(`${SERVICE}-canary`)).toBeUndefined();
  });

  test('an Ingress with no path to the service is refused at the start, as ConfigInvalid', async () => {
    const t = { ...target('nginx', '1.0.8'), traffic: { ...target('nginx', '1.0.8').traffic, ingress: 'other' } };
    await net.createNamespacedIngress({
      namespace: NS,
      body: {
        metadata: { name: 'other' },
        spec: { defaultBackend: { service: { name: 'frontend', port: { number: 80 } } } },
      },
    });
    // The Role reads only the Ingresses it names: the worker may not even read this one.
    await expect(activities().startCanary(t)).rejects.toMatchObject({ type: ErrorType.KubernetesForbidden });
    const asAdmin = trafficActivities({
      kubeConfig: admin,
      config: { kubernetes: kubernetesConfig, traffic: { stepTimeout: 30_000 } },
      heartbeat: () => undefined,
    });
    await expect(asAdmin.startCanary(t)).rejects.toMatchObject({
      type: ErrorType.ConfigInvalid,
      message: `Ingress other has no path that sends to Service ${SERVICE}`,
    });
  });
});
