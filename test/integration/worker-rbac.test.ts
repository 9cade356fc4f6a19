/**
 * The worker's Role limits what it may change by name: applied to a namespace
 * of this run's own on the sandbox apiserver, its ServiceAccount may change a
 * Deployment and a Service the Role names and create a canary copy, but not
 * patch, replace or delete a Deployment it does not name, nor switch an
 * unnamed Service, nor list Secrets or ConfigMaps; the canary Service and
 * Ingress are made and deleted by name, the HTTPRoute only re-weighted. Config snapshots get,
 * create and delete ConfigMaps and Secrets by name, and nothing else.
 */
import * as k8s from '@kubernetes/client-node';
import { sandboxVar } from '../helpers/sandbox';
import { workerIdentity } from '../helpers/worker-rbac';

jest.setTimeout(120_000);

const NS = `rbac-${process.pid}`;
const NAMED = 'api-gateway';
const UNNAMED = `not-in-the-role-${process.pid}`;

let admin: k8s.KubeConfig;
let worker: k8s.KubeConfig;

const deployment = (name: string): k8s.V1Deployment => ({
  metadata: { name, labels: { app: name } },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: { containers: [{ name: 'web', image: 'registry.example/web:1.0.0' }] },
    },
  },
});

const imagePatch = (image: string) => [{ op: 'replace', path: '/spec/template/spec/containers/0/image', value: image }];
const JSON_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);

beforeAll(async () => {
  admin = new k8s.KubeConfig();
  admin.loadFromFile(sandboxVar('KUBECONFIG'));
  worker = await workerIdentity(admin, NS);
  const apps = admin.makeApiClient(k8s.AppsV1Api);
  const core = admin.makeApiClient(k8s.CoreV1Api);
  for (const name of [NAMED, UNNAMED]) {
    await apps.createNamespacedDeployment({ namespace: NS, body: deployment(name) });
    await core.createNamespacedService({
      namespace: NS,
      body: { metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80 }] } },
    });
  }
});

afterAll(async () => {
  await admin
    ?.makeApiClient(k8s.CoreV1Api)
    .deleteNamespace({ name: NS })
    .catch(() => undefined);
});

test('a Deployment the Role names may be patched, replaced and its canary copy created and deleted', async () => {
  const apps = worker.makeApiClient(k8s.AppsV1Api);
  const patched = await apps.patchNamespacedDeployment(
    { name: NAMED, namespace: NS, body: imagePatch('registry.example/web:1.0.1') },
    JSON_PATCH,
  );
  expect(patched.spec?.template.spec?.containers[0].image).toBe('registry.example/web:1.0.1');
  // The controller updates the status meanwhile: a 409 means re-read and try again (as the worker does).
  let replaced: k8s.V1Deployment | undefined;
  for (let i = 0; i < 10 && !replaced; i++) {
    const read = await apps.readNamespacedDeployment({ name: NAMED, namespace: NS });
    replaced = await apps
      .replaceNamespacedDeployment({ name: NAMED, namespace: NS, body: read })
      .catch((err: { code?: number }) => {
        if (err.code === 409) return undefined;
        throw err;
      });
  }
  expect(replaced).toBeDefined();
  await apps.createNamespacedDeployment({ namespace: NS, body: deployment(`${NAMED}-canary`) });
  await apps.deleteNamespacedDeployment({ name: `${NAMED}-canary`, namespace: NS });
  // Reading the namespace stays open: pre-flight and diagnostics read every Deployment.
  const list = await apps.listNamespacedDeployment({ namespace: NS });
  expect(list.items.map((d) => d.metadata?.name)).toContain(UNNAMED);
});

test('a Deployment the Role does not name cannot be patched, replaced or deleted', async () => {
  const apps = worker.makeApiClient(k8s.AppsV1Api);
  await expect(
    apps.patchNamespacedDeployment(
      { name: UNNAMED, namespace: NS, body: imagePatch('attacker.example/miner:latest') },
      JSON_PATCH,
    ),
  ).rejects.toMatchObject({ code: 403 });
  const read = await apps.readNamespacedDeployment({ name: UNNAMED, namespace: NS });
  await expect(apps.replaceNamespacedDeployment({ name: UNNAMED, namespace: NS, body: read })).rejects.toMatchObject({
    code: 403,
  });
  await expect(apps.deleteNamespacedDeployment({ name: UNNAMED, namespace: NS })).rejects.toMatchObject({ code: 403 });
  const after = await admin.makeApiClient(k8s.AppsV1Api).readNamespacedDeployment({ name: UNNAMED, namespace: NS });
  expect(after.spec?.template.spec?.containers[0].image).toBe('registry.example/web:1.0.0');
});

test('config snapshots: ConfigMaps and Secrets by name only (get, create, delete), never listed, never changed', async () => {
  const core = worker.makeApiClient(k8s.CoreV1Api);
  const cm = await core.createNamespacedConfigMap({
    namespace: NS,
    body: { metadata: { name: 'snap-0123456789' }, immutable: true, data: { a: '1' } },
  });
  expect(cm.metadata?.name).toBe('snap-0123456789');
  await expect(core.readNamespacedConfigMap({ name: 'snap-0123456789', namespace: NS })).resolves.toBeDefined();
  const secret = await core.createNamespacedSecret({
    namespace: NS,
    body: { metadata: { name: 'snap-0123456789' }, immutable: true, data: { a: 'MQ==' } },
  });
  expect(secret.metadata?.name).toBe('snap-0123456789');
  await expect(core.readNamespacedSecret({ name: 'snap-0123456789', namespace: NS })).resolves.toBeDefined();
  await expect(core.listNamespacedSecret({ namespace: NS })).rejects.toMatchObject({ code: 403 });
  await expect(core.listNamespacedConfigMap({ namespace: NS })).rejects.toMatchObject({ code: 403 });
  const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  await expect(
    core.patchNamespacedSecret(
      { name: 'snap-0123456789', namespace: NS, body: { metadata: { labels: { a: 'b' } } } },
      merge,
    ),
  ).rejects.toMatchObject({ code: 403 });
  await expect(
    core.replaceNamespacedConfigMap({ name: 'snap-0123456789', namespace: NS, body: cm }),
  ).rejects.toMatchObject({ code: 403 });
  await core.deleteNamespacedConfigMap({ name: 'snap-0123456789', namespace: NS });
  await core.deleteNamespacedSecret({ name: 'snap-0123456789', namespace: NS });
  // Nothing cluster-wide: another namespace's objects stay out of reach.
  await expect(core.readNamespacedConfigMap({ name: 'kube-root-ca.crt', namespace: 'default' })).rejects.toMatchObject({
    code: 403,
  });
});

test('only the named Services may be switched; Secrets are never listed', async () => {
  const core = worker.makeApiClient(k8s.CoreV1Api);
  const selector = [{ op: 'replace', path: '/spec/selector', value: { app: NAMED, version: 'green' } }];
  await expect(
    core.patchNamespacedService({ name: NAMED, namespace: NS, body: selector }, JSON_PATCH),
  ).resolves.toBeDefined();
  await expect(
    core.patchNamespacedService({ name: UNNAMED, namespace: NS, body: selector }, JSON_PATCH),
  ).rejects.toMatchObject({ code: 403 });
  await expect(core.listNamespacedSecret({ namespace: NS })).rejects.toMatchObject({ code: 403 });
});

test('the canary Service and Ingress may be made and deleted by their names only; the HTTPRoute only re-weighted', async () => {
  const core = worker.makeApiClient(k8s.CoreV1Api);
  const net = worker.makeApiClient(k8s.NetworkingV1Api);
  const custom = worker.makeApiClient(k8s.CustomObjectsApi);
  const adminNet = admin.makeApiClient(k8s.NetworkingV1Api);
  const adminCustom = admin.makeApiClient(k8s.CustomObjectsApi);
  const route = { group: 'gateway.networking.k8s.io', version: 'v1', namespace: NS, plural: 'httproutes' };
  const ingress = (name: string, backend: string): k8s.V1Ingress => ({
    metadata: { name },
    spec: {
      rules: [
        {
          http: {
            paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: backend, port: { number: 80 } } } }],
          },
        },
      ],
    },
  });
  const MERGE = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  await adminNet.createNamespacedIngress({ namespace: NS, body: ingress(NAMED, NAMED) });
  for (const name of [NAMED, UNNAMED])
    await adminCustom.createNamespacedCustomObject({
      ...route,
      body: {
        apiVersion: 'gateway.networking.k8s.io/v1',
        kind: 'HTTPRoute',
        metadata: { name },
        spec: { rules: [{ backendRefs: [{ name, port: 80 }] }] },
      },
    });
  const canary = `${NAMED}-canary`;
  // The canary Service: created (create cannot be named), deleted by its name; the stable Service is never deleted.
  await core.createNamespacedService({
    namespace: NS,
    body: { metadata: { name: canary }, spec: { selector: { app: NAMED, track: 'canary' }, ports: [{ port: 80 }] } },
  });
  await expect(core.deleteNamespacedService({ name: NAMED, namespace: NS })).rejects.toMatchObject({ code: 403 });
  await expect(core.deleteNamespacedService({ name: canary, namespace: NS })).resolves.toBeDefined();
  // The canary Ingress: made, annotated and deleted; the stable Ingress only read.
  await expect(net.readNamespacedIngress({ name: NAMED, namespace: NS })).resolves.toBeDefined();
  await net.createNamespacedIngress({ namespace: NS, body: ingress(canary, canary) });
  const weight = { metadata: { annotations: { 'nginx.ingress.kubernetes.io/canary-weight': '5' } } };
  await expect(net.patchNamespacedIngress({ name: canary, namespace: NS, body: weight }, MERGE)).resolves.toBeDefined();
  await expect(net.patchNamespacedIngress({ name: NAMED, namespace: NS, body: weight }, MERGE)).rejects.toMatchObject({
    code: 403,
  });
  await expect(net.deleteNamespacedIngress({ name: NAMED, namespace: NS })).rejects.toMatchObject({ code: 403 });
  await expect(net.deleteNamespacedIngress({ name: canary, namespace: NS })).resolves.toBeDefined();
  await expect(net.listNamespacedIngress({ namespace: NS })).rejects.toMatchObject({ code: 403 });
  // The traffic service's HTTPRoute: read and patched; another route not even read; none deleted.
  const spec = { spec: { rules: [{ backendRefs: [{ name: NAMED, port: 80, weight: 95 }] }] } };
  await expect(custom.patchNamespacedCustomObject({ ...route, name: NAMED, body: spec }, MERGE)).resolves.toBeDefined();
  await expect(custom.getNamespacedCustomObject({ ...route, name: UNNAMED })).rejects.toMatchObject({ code: 403 });
  await expect(custom.deleteNamespacedCustomObject({ ...route, name: NAMED })).rejects.toMatchObject({ code: 403 });
});
