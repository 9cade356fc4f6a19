/**
 * Production spans two clusters, so that a release can roll out region by
 * region: production-b is a control plane of its own (its own CA and
 * credentials; a change in one cluster is not in the other), running the same
 * demo platform at 1.0.0 with the worker's same least-privilege Role, its
 * pods' logs served from production's files; and a real rollout failure can be
 * injected in it alone (`fault --cluster production-b --stall-rollouts`).
 */
import * as k8s from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { sandboxVar } from '../helpers/sandbox';
import { REPO_ROOT } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const NS = 'ai-saas';
const SERVICES = ['auth-service', 'chat-service', 'billing-service', 'analytics-service', 'api-gateway', 'frontend'];
const VERSION_ANNOTATION = 'deploy-pipelines.dev/version';
const MARK = 'sandbox-check.deploy-pipelines.dev/mark';
const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const run = promisify(execFile);
const cli = (...args: string[]) =>
  run(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), [path.join(REPO_ROOT, 'scripts/sandbox/cli.ts'), ...args], {
    cwd: REPO_ROOT,
  });

function kubeconfig(variable: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(sandboxVar(variable));
  return kc;
}
const production = () => kubeconfig('KUBECONFIG');
const productionB = () => kubeconfig('KUBECONFIG_PRODUCTION_B');
const apps = (kc: k8s.KubeConfig) => kc.makeApiClient(k8s.AppsV1Api);
const core = (kc: k8s.KubeConfig) => kc.makeApiClient(k8s.CoreV1Api);

function rolledOut(d: k8s.V1Deployment): boolean {
  const want = d.spec?.replicas ?? 0;
  return (
    d.status?.observedGeneration === d.metadata?.generation &&
    d.status?.updatedReplicas === want &&
    d.status?.availableReplicas === want &&
    (d.status?.replicas ?? 0) === want
  );
}

describe("production-b, production's second cluster", () => {
  test('is a control plane of its own: own apiserver and CA, a Deployment changed there is unchanged in production', async () => {
    const [a, b] = [production(), productionB()];
    expect(b.getCurrentCluster()?.server).not.toBe(a.getCurrentCluster()?.server);
    expect(b.getCurrentCluster()?.caData).not.toBe(a.getCurrentCluster()?.caData);
    const [systemA, systemB] = await Promise.all([a, b].map((kc) => core(kc).readNamespace({ name: 'kube-system' })));
    expect(systemB.metadata?.uid).not.toBe(systemA.metadata?.uid);

    const mark = `check-${process.pid}-${Date.now()}`;
    const patch = (value: string | null) =>
      apps(b).patchNamespacedDeployment(
        { name: 'frontend', namespace: NS, body: { metadata: { annotations: { [MARK]: value } } } },
        MERGE_PATCH,
      );
    try {
      const patched = await patch(mark);
      expect(patched.metadata?.annotations?.[MARK]).toBe(mark);
      const other = await apps(a).readNamespacedDeployment({ name: 'frontend', namespace: NS });
      expect(other.metadata?.annotations?.[MARK]).toBeUndefined();
      expect(other.metadata?.uid).not.toBe(patched.metadata?.uid);
    } finally {
      await patch(null);
    }
  });

  test("production's admin token is refused by production-b's apiserver", async () => {
    const b = productionB().getCurrentCluster()!;
    const crossed = new k8s.KubeConfig();
    crossed.loadFromOptions({
      clusters: [{ ...b, name: 'production-b' }],
      users: [{ ...production().getCurrentUser()!, name: 'production-admin' }],
      contexts: [{ name: 'crossed', cluster: 'production-b', user: 'production-admin' }],
      currentContext: 'crossed',
    });
    await expect(apps(crossed).listNamespacedDeployment({ namespace: NS })).rejects.toMatchObject({ code: 401 });
  });

  test('the worker kubeconfig has its least privilege there: may patch auth-service, may not read kube-system secrets', async () => {
    const worker = kubeconfig('KUBECONFIG_WORKER_PRODUCTION_B');
    expect(worker.getContextObject(worker.getCurrentContext())?.namespace).toBe(NS);
    const patch = (value: string | null) =>
      apps(worker).patchNamespacedDeployment(
        { name: 'auth-service', namespace: NS, body: { metadata: { annotations: { [MARK]: value } } } },
        MERGE_PATCH,
      );
    try {
      await expect(patch(`worker-${process.pid}`)).resolves.toBeDefined();
    } finally {
      await patch(null);
    }
    await expect(core(worker).listNamespacedSecret({ namespace: 'kube-system' })).rejects.toMatchObject({ code: 403 });
    await expect(core(worker).listNamespacedSecret({ namespace: NS })).rejects.toMatchObject({ code: 403 });
    await expect(core(worker).listNode()).rejects.toMatchObject({ code: 403 });
  });

  test("runs the demo platform at 1.0.0, Ready, with pod logs from production's container logs", async () => {
    const kc = productionB();
    const list = await apps(kc).listNamespacedDeployment({ namespace: NS });
    for (const name of SERVICES) {
      const d = list.items.find((x) => x.metadata?.name === name);
      expect(d?.metadata?.annotations?.[VERSION_ANNOTATION]).toBe('1.0.0');
      expect(d?.spec?.template.spec?.containers[0].image).toMatch(new RegExp(`/ai-saas-${name}:1\\.0\\.0$`));
      expect(d?.status?.availableReplicas).toBe(d?.spec?.replicas);
    }
    await expect(core(kc).readNamespacedService({ name: 'api-gateway-preview', namespace: NS })).resolves.toBeDefined();
    await expect(
      kc.makeApiClient(k8s.CustomObjectsApi).getNamespacedCustomObject({
        group: 'networking.istio.io',
        version: 'v1beta1',
        namespace: NS,
        plural: 'virtualservices',
        name: 'api-gateway',
      }),
    ).resolves.toBeDefined();
    // pods/log goes through production-b's apiserver to its kwok, which serves production's files.
    const pods = await core(kc).listNamespacedPod({ namespace: NS, labelSelector: 'app=auth-service' });
    const log = await core(kc).readNamespacedPodLog({
      name: pods.items[0].metadata!.name!,
      namespace: NS,
      container: 'auth-service',
    });
    expect(typeof log).toBe('string');
  });

  test('status lists it', async () => {
    const { stdout } = await cli('status');
    expect(stdout).toMatch(/^up\s+kubernetes \(production-b\)\s+https:\/\/127\.0\.0\.1:\d+, 3\/3 nodes Ready$/m);
    expect(stdout).toMatch(/^up\s+demo \(production-b\)\s+platform ready/m);
  }, 60_000);

  test('fault --cluster production-b --stall-rollouts stops a rollout there only; --clear lets it finish', async () => {
    const [a, b] = [production(), productionB()];
    const name = 'auth-service';
    const template = (value: string | null) =>
      apps(b).patchNamespacedDeployment(
        { name, namespace: NS, body: { spec: { template: { metadata: { annotations: { [MARK]: value } } } } } },
        MERGE_PATCH,
      );
    const read = () => apps(b).readNamespacedDeployment({ name, namespace: NS });
    try {
      await cli('fault', '--cluster', 'production-b', '--stall-rollouts');
      expect((await cli('status')).stdout).toMatch(/kubernetes \(production-b\).*rollouts stalled \(fault\)/);
      const before = await apps(a).readNamespacedDeployment({ name, namespace: NS });
      await template(`rollout-${process.pid}-${Date.now()}`);
      // The new ReplicaSet is refused its pods: the controller reports it on the Deployment.
      const stuck = await waitFor(async () => {
        const d = await read();
        const failure = d.status?.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
        return failure ? d : undefined;
      }, 30_000);
      expect(stuck.status?.conditions?.find((c) => c.type === 'ReplicaFailure')?.message).toMatch(/exceeded quota/);
      await new Promise((r) => setTimeout(r, 3000));
      const still = await read();
      expect(still.status?.updatedReplicas ?? 0).toBe(0);
      expect(rolledOut(still)).toBe(false);
      // Production's own cluster is untouched.
      const after = await apps(a).readNamespacedDeployment({ name, namespace: NS });
      expect(after.metadata?.generation).toBe(before.metadata?.generation);
      expect(rolledOut(after)).toBe(true);

      await cli('fault', '--cluster', 'production-b', '--clear');
      await waitFor(async () => rolledOut(await read()), 60_000, 500);
    } finally {
      await cli('fault', '--cluster', 'production-b', '--clear');
      await template(null);
      await waitFor(async () => rolledOut(await read()), 60_000, 500);
    }
    expect((await cli('status')).stdout).not.toMatch(/rollouts stalled/);
  }, 120_000);
});
