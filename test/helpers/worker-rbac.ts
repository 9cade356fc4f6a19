/**
 * The worker's ServiceAccount and Role (deploy/kubernetes/worker-rbac.yaml)
 * applied as they are to a namespace of a test's own on the sandbox
 * apiserver, with a short-lived token for that ServiceAccount: the test then
 * acts as the worker would, under exactly the file's rules.
 */
import * as k8s from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './tools';

export const WORKER_RBAC_FILE = path.join(REPO_ROOT, 'deploy', 'kubernetes', 'worker-rbac.yaml');

/** The file's objects, placed in `namespace` (the RoleBinding's subject too). */
export function workerRbacObjects(namespace: string): k8s.KubernetesObject[] {
  const objects = (k8s.loadAllYaml(readFileSync(WORKER_RBAC_FILE, 'utf8')) as (k8s.KubernetesObject | null)[]).filter(
    (o): o is k8s.KubernetesObject => !!o?.kind,
  );
  for (const o of objects) {
    o.metadata = { ...o.metadata, namespace };
    const binding = o as k8s.V1RoleBinding;
    if (o.kind === 'RoleBinding') binding.subjects = binding.subjects?.map((s) => ({ ...s, namespace }));
  }
  return objects;
}

/** Creates `namespace`, applies the file there and returns a kubeconfig acting as its ServiceAccount. */
export async function workerIdentity(admin: k8s.KubeConfig, namespace: string): Promise<k8s.KubeConfig> {
  const core = admin.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const objects = workerRbacObjects(namespace);
  const client = k8s.KubernetesObjectApi.makeApiClient(admin);
  for (const o of objects) await client.create(o);
  const sa = objects.find((o) => o.kind === 'ServiceAccount')!.metadata!.name!;
  const token = await core.createNamespacedServiceAccountToken({
    name: sa,
    namespace,
    body: { spec: { audiences: [], expirationSeconds: 600 } },
  });
  const cluster = admin.getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: sa, token: token.status!.token }],
    contexts: [{ name: sa, cluster: cluster.name, user: sa, namespace }],
    currentContext: sa,
  });
  return kc;
}
