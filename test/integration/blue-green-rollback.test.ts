/**
 * Issue 16 item 5 against the sandbox's real kube-apiserver (kwok pods turn
 * Ready in about a second): a manual rollback of a service whose Service
 * selects a blue-green colour. The activities run as the worker's
 * least-privilege ServiceAccount, under deploy/kubernetes/worker-rbac.yaml
 * applied to a namespace of this run's own (so the fixtures, a Deployment and
 * a Service named as a service the Role names, are never the demo
 * platform's); the namespace is deleted afterwards.
 */
import * as k8s from '@kubernetes/client-node';
import type { KubernetesConfig } from '../../src/activities/clients/kube';
import { kubernetesActivities } from '../../src/activities/kubernetes';
import { colourRollback } from '../../src/domain/blue-green';
import { rolloutStatus } from '../../src/domain/rollout';
import { sandboxVar } from '../helpers/sandbox';
import { workerIdentity } from '../helpers/worker-rbac';
import { waitFor } from '../helpers/wait';

jest.setTimeout(180_000);

const NS = `it-bg-rollback-${process.pid}`;
const NAME = 'frontend';
const VERSION_ANNOTATION = 'deploy-pipelines.dev/version';
const image = (version: string) => `${sandboxVar('REGISTRY')}/ai-saas-frontend:${version}`;

const kubernetesConfig: KubernetesConfig = {
  kubeconfig: '',
  rolloutTimeout: 90_000,
  deleteOldColourAfter: 3_600_000,
  pollInterval: 200,
  requestTimeout: 10_000,
  diagnosticLogLines: 5,
  shared: false,
};

let apps: k8s.AppsV1Api;
let core: k8s.CoreV1Api;
let admin: k8s.KubeConfig;
let worker: k8s.KubeConfig;

function activities() {
  return kubernetesActivities({
    kubeConfig: worker,
    config: { kubernetes: kubernetesConfig },
    heartbeat: () => undefined,
  });
}

async function cleanUp(): Promise<void> {
  await core?.deleteNamespace({ name: NS }).catch(() => undefined);
}

/** The images of the pods the Service sends traffic to, read from the API as kube-proxy would select them. */
async function servedImages(): Promise<string[]> {
  const selector = (await core.readNamespacedService({ name: NAME, namespace: NS })).spec?.selector ?? {};
  const pods = await core.listNamespacedPod({
    namespace: NS,
    labelSelector: Object.entries(selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(','),
  });
  return pods.items
    .filter(
      (p) =>
        !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    )
    .map((p) => p.spec?.containers[0].image ?? '')
    .sort();
}

beforeAll(async () => {
  admin = new k8s.KubeConfig();
  admin.loadFromFile(sandboxVar('KUBECONFIG'));
  apps = admin.makeApiClient(k8s.AppsV1Api);
  core = admin.makeApiClient(k8s.CoreV1Api);
  worker = await workerIdentity(admin, NS);
  const labels = { app: NAME };
  await apps.createNamespacedDeployment({
    namespace: NS,
    body: {
      metadata: { name: NAME, labels, annotations: { [VERSION_ANNOTATION]: '1.0.0' } },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels, annotations: { [VERSION_ANNOTATION]: '1.0.0' } },
          spec: { containers: [{ name: 'web', image: image('1.0.0') }] },
        },
      },
    },
  });
  await core.createNamespacedService({
    namespace: NS,
    body: { metadata: { name: NAME }, spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] } },
  });
  await waitFor(
    async () => rolloutStatus(await apps.readNamespacedDeployment({ name: NAME, namespace: NS })).done,
    60_000,
  );
}, 120_000);

afterAll(async () => {
  await cleanUp();
}, 60_000);

test('issue 16 item 5: after a blue-green release, the manual rollback reads green serving 1.0.1, switches the Service back to blue (1.0.0) and reads it back', async () => {
  const acts = activities();
  const target = {
    workflowId: `${NAME}-wf`,
    namespace: NS,
    service: NAME,
    container: 'web',
    image: image('1.0.1'),
    version: '1.0.1',
  };

  // Before any blue-green release the Service selects no colour: the base Deployment serves, as without blue-green.
  const plain = await acts.readBlueGreen(target);
  expect(plain).toEqual({ service: NAME, selector: { app: NAME } });
  expect(colourRollback(plain)).toBeUndefined();

  // A blue-green release of 1.0.1, as the blue-green workflow runs it: green beside blue, switch, blue scaled down.
  await acts.prepareBlueGreen(target);
  await acts.switchBlueGreen({ target, colour: 'green' });
  await acts.scaleDownOldColour({ target, colour: 'blue' });
  expect(await servedImages()).toEqual([image('1.0.1'), image('1.0.1')]);

  // The manual rollback reads where traffic goes...
  const state = await acts.readBlueGreen(target);
  expect(state).toEqual({
    service: NAME,
    selector: { app: NAME, version: 'green' },
    live: {
      colour: 'green',
      deployment: `${NAME}-green`,
      version: '1.0.1',
      replicas: 2,
      readyReplicas: 2,
      images: { web: image('1.0.1') },
    },
    other: {
      colour: 'blue',
      deployment: NAME,
      version: '1.0.0',
      replicas: 0,
      // Scaled to zero a moment ago: its pods may still be terminating.
      readyReplicas: expect.any(Number),
      images: { web: image('1.0.0') },
    },
  });
  // ...decides: the previous version is blue's...
  const decision = colourRollback(state);
  expect(decision).toEqual({ kind: 'switch', from: 'green', to: 'blue', deployment: NAME, version: '1.0.0' });

  // ...switches back (blue scaled up and Ready before the Service points at it, green to zero)...
  expect(await acts.abortBlueGreen({ target, colour: 'blue' })).toEqual({
    colour: 'blue',
    selector: { app: NAME, version: 'blue' },
    scaledDown: `${NAME}-green`,
  });

  // ...and reads it back: the Service selects blue, which runs 1.0.0 on Ready pods.
  const after = await acts.readBlueGreen(target);
  expect(after.live).toEqual({
    colour: 'blue',
    deployment: NAME,
    version: '1.0.0',
    replicas: 2,
    readyReplicas: 2,
    images: { web: image('1.0.0') },
  });
  expect(after.other).toMatchObject({ colour: 'green', deployment: `${NAME}-green`, version: '1.0.1', replicas: 0 });
  expect(
    await waitFor(async () => {
      const images = await servedImages();
      return images.length === 2 && images.every((i) => i === image('1.0.0')) ? images : undefined;
    }, 30_000),
  ).toEqual([image('1.0.0'), image('1.0.0')]);

  // Once green is retired (deleted), there is no other colour: the rollback undoes the Deployment that serves.
  await acts.deleteOldColour({ target, colour: 'green' });
  const retired = await acts.readBlueGreen(target);
  expect(retired.other).toBeUndefined();
  expect(colourRollback(retired)).toEqual({ kind: 'undo', deployment: NAME });
});
