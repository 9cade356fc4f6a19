/**
 * The sandbox's Kubernetes through @kubernetes/client-node: a Deployment gets
 * Pods that turn Ready on kwok nodes, and an image change makes revision 2.
 */
import * as k8s from '@kubernetes/client-node';
import { sandboxVar } from '../helpers/sandbox';
import { waitFor } from '../helpers/wait';

const NS = 'sandbox-check';
let kc: k8s.KubeConfig;
let apps: k8s.AppsV1Api;
let core: k8s.CoreV1Api;

beforeAll(async () => {
  kc = new k8s.KubeConfig();
  kc.loadFromFile(sandboxVar('KUBECONFIG'));
  apps = kc.makeApiClient(k8s.AppsV1Api);
  core = kc.makeApiClient(k8s.CoreV1Api);
  await core.deleteNamespace({ name: NS }).catch(() => undefined);
  await waitFor(
    async () =>
      !(await core.readNamespace({ name: NS }).then(
        () => true,
        () => false,
      )),
    60_000,
  );
  await core.createNamespace({ body: { metadata: { name: NS } } });
});

afterAll(async () => {
  await core.deleteNamespace({ name: NS }).catch(() => undefined);
});

test('a Deployment gets Ready pods and an image change makes a second revision', async () => {
  const labels = { app: 'web' };
  await apps.createNamespacedDeployment({
    namespace: NS,
    body: {
      metadata: { name: 'web' },
      spec: {
        replicas: 3,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: '127.0.0.1:5000/web:1.0.0' }] } },
      },
    },
  });
  const ready = await waitFor(async () => {
    const d = await apps.readNamespacedDeployment({ name: 'web', namespace: NS });
    return d.status?.readyReplicas === 3 ? d : undefined;
  }, 60_000);
  expect(ready.metadata?.annotations?.['deployment.kubernetes.io/revision']).toBe('1');
  const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=web' });
  expect(pods.items).toHaveLength(3);
  expect(pods.items.every((p) => p.spec?.nodeName?.startsWith('kwok-node-'))).toBe(true);
  expect(pods.items.every((p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))).toBe(
    true,
  );

  await apps.patchNamespacedDeployment(
    {
      name: 'web',
      namespace: NS,
      body: { spec: { template: { spec: { containers: [{ name: 'web', image: '127.0.0.1:5000/web:1.0.1' }] } } } },
    },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch),
  );
  const rolled = await waitFor(async () => {
    const d = await apps.readNamespacedDeployment({ name: 'web', namespace: NS });
    const s = d.status;
    const done =
      s?.observedGeneration === d.metadata?.generation &&
      s?.updatedReplicas === 3 &&
      s?.availableReplicas === 3 &&
      s?.replicas === 3;
    return done ? d : undefined;
  }, 90_000);
  expect(rolled.metadata?.annotations?.['deployment.kubernetes.io/revision']).toBe('2');
  const rs = await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: 'app=web' });
  expect(rs.items.map((r) => r.metadata?.annotations?.['deployment.kubernetes.io/revision']).sort()).toEqual([
    '1',
    '2',
  ]);
}, 180_000);

test('the worker ServiceAccount is least-privilege: it can read deployments in ai-saas but not list nodes', async () => {
  const wk = new k8s.KubeConfig();
  wk.loadFromFile(sandboxVar('KUBECONFIG_WORKER'));
  const wApps = wk.makeApiClient(k8s.AppsV1Api);
  const wCore = wk.makeApiClient(k8s.CoreV1Api);
  await expect(wApps.listNamespacedDeployment({ namespace: 'ai-saas' })).resolves.toBeDefined();
  await expect(wCore.listNode()).rejects.toMatchObject({ code: 403 });
  await expect(wCore.listNamespacedSecret({ namespace: 'ai-saas' })).rejects.toMatchObject({ code: 403 });
});
