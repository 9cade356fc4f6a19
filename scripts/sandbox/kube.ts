/**
 * A real Kubernetes control plane with fake nodes, one per cluster
 * (environments.ts: each environment's own, and production's second region,
 * production-b): etcd, kube-apiserver (RBAC, service-account tokens),
 * kube-controller-manager, kube-scheduler and kwok (kwok.ts), each cluster
 * with its own ports, data, PKI (pki.ts) and kubeconfigs. Deployments get
 * ReplicaSets and Pods that turn Ready, rollouts progress and revisions
 * count, with nothing running in the pods.
 */
import * as k8s from '@kubernetes/client-node';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { HOST, ROOT, running, sleep, startDaemon, stopDaemon, tool, waitReady, type Component } from './common';
import { PRODUCTION, type SandboxCluster } from './environments';
import { gatewayApiCrds } from './gateway-api';
import { ensureNodes, kwokArgs, NODES, nodesReady } from './kwok';
import { ensurePki } from './pki';
import { rolloutsStalled } from './rollout-fault';

export const NAMESPACE = 'ai-saas';
export const WORKER_SA = 'deploy-worker';
/** Its daemons, in start order. */
const DAEMONS = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'];

function kubeDir(cluster: SandboxCluster): string {
  return cluster.dir('kube');
}
export function adminKubeconfigPath(cluster: SandboxCluster = PRODUCTION.cluster): string {
  return path.join(kubeDir(cluster), 'admin.kubeconfig');
}
export function workerKubeconfigPath(cluster: SandboxCluster = PRODUCTION.cluster): string {
  return path.join(kubeDir(cluster), 'worker.kubeconfig');
}
function apiserverUrl(cluster: SandboxCluster): string {
  return `https://${HOST}:${cluster.ports.apiserver}`;
}

let found: { dir: string; etcd: string; kwok: string } | undefined;
/** Found (or built) once, for every cluster. */
function binaries(): { dir: string; etcd: string; kwok: string } {
  if (found) return found;
  const dir = tool('kube.sh');
  const etcd = existsSync(path.join(dir, 'etcd')) ? path.join(dir, 'etcd') : tool('etcd.sh');
  const kwok = tool('go-tool.sh', 'kwok', 'sigs.k8s.io/kwok/cmd/kwok@v0.8.0');
  found = { dir, etcd, kwok };
  return found;
}

function kubeconfigYaml(cluster: SandboxCluster, user: string, token: string, ca: string, namespace?: string): string {
  const caData = readFileSync(ca).toString('base64');
  const name = cluster.contextName;
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${name}`,
    '  cluster:',
    `    server: ${apiserverUrl(cluster)}`,
    `    certificate-authority-data: ${caData}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    `- name: ${name}`,
    '  context:',
    `    cluster: ${name}`,
    `    user: ${user}`,
    ...(namespace ? [`    namespace: ${namespace}`] : []),
    `current-context: ${name}`,
    '',
  ].join('\n');
}

export function adminClient(cluster: SandboxCluster = PRODUCTION.cluster): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(adminKubeconfigPath(cluster));
  return kc;
}

async function apiReady(cluster: SandboxCluster): Promise<boolean> {
  const r = await fetchWithToken(`${apiserverUrl(cluster)}/readyz`, adminClient(cluster));
  return r === 'ok';
}

/** GET with the admin token over the cluster's CA (no client library needed for health endpoints). */
async function fetchWithToken(url: string, kc: k8s.KubeConfig, selfSigned = false): Promise<string> {
  const https = await import('node:https');
  const opts: import('node:https').RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  // The controller manager and scheduler serve /healthz with their own self-signed certificate.
  if (selfSigned) opts.rejectUnauthorized = false;
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ...opts, timeout: 3000 }, (res) => {
      let body = '';
      res
        .setEncoding('utf8')
        .on('data', (d: string) => (body += d))
        .on('end', () => resolve(body.trim()));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

async function applyObjects(kc: k8s.KubeConfig, objects: k8s.KubernetesObject[]): Promise<void> {
  const client = k8s.KubernetesObjectApi.makeApiClient(kc);
  for (const obj of objects) {
    await client.patch(obj, undefined, undefined, 'sandbox', true, k8s.PatchStrategy.ServerSideApply);
  }
}

export async function applyYamlFile(kc: k8s.KubeConfig, file: string, namespace?: string): Promise<void> {
  // loadAllYaml keeps fields the client's serializer would drop from plain JSON
  // (x-kubernetes-preserve-unknown-fields in the VirtualService CRD).
  const objects = (k8s.loadAllYaml(readFileSync(file, 'utf8')) as (k8s.KubernetesObject | null)[]).filter(
    (o): o is k8s.KubernetesObject => !!o && !!o.kind,
  );
  for (const o of objects)
    if (
      namespace &&
      o.metadata &&
      !o.metadata.namespace &&
      o.kind !== 'Namespace' &&
      o.kind !== 'CustomResourceDefinition' &&
      o.kind !== 'ClusterRole' &&
      o.kind !== 'ClusterRoleBinding'
    )
      o.metadata.namespace = namespace;
  await applyObjects(kc, objects);
}

/** The worker's least-privilege ServiceAccount, its Role (deploy/kubernetes/worker-rbac.yaml) and a kubeconfig with its token. */
async function ensureWorkerIdentity(cluster: SandboxCluster, kc: k8s.KubeConfig, ca: string): Promise<void> {
  await applyYamlFile(kc, path.join(ROOT, 'deploy', 'kubernetes', 'worker-rbac.yaml'), NAMESPACE);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const secretName = `${WORKER_SA}-token`;
  await applyObjects(kc, [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: secretName,
        namespace: NAMESPACE,
        annotations: { 'kubernetes.io/service-account.name': WORKER_SA },
      },
      type: 'kubernetes.io/service-account-token',
    } as k8s.KubernetesObject,
  ]);
  let token = '';
  for (let i = 0; i < 100 && !token; i++) {
    const s = await core.readNamespacedSecret({ name: secretName, namespace: NAMESPACE });
    token = s.data?.token ? Buffer.from(s.data.token, 'base64').toString('utf8') : '';
    if (!token) await sleep(200);
  }
  if (!token) throw new Error('the token controller did not fill the worker ServiceAccount token');
  writeFileSync(workerKubeconfigPath(cluster), kubeconfigYaml(cluster, WORKER_SA, token, ca, NAMESPACE), {
    mode: 0o600,
  });
}

/**
 * Starts one cluster on its ports and with its data
 * dir, PKI and kubeconfigs (what already runs is left alone), and waits until
 * it serves: nodes Ready, the VirtualService and Gateway API CRDs, namespace ai-saas and the
 * worker's identity in place.
 */
export async function startCluster(cluster: SandboxCluster): Promise<string> {
  const { ports } = cluster;
  const d = (daemon: string) => cluster.daemon(daemon);
  const admin = adminKubeconfigPath(cluster);
  const bins = binaries();
  const pki = ensurePki(cluster.dir('kube', 'pki'), cluster.contextName);
  writeFileSync(admin, kubeconfigYaml(cluster, 'sandbox-admin', pki.adminToken, pki.ca), { mode: 0o600 });
  const etcdUrl = `http://${HOST}:${ports.etcd}`;
  const peerUrl = `http://${HOST}:${ports.etcdPeer}`;
  if (!running(d('etcd'))) {
    startDaemon(d('etcd'), bins.etcd, [
      ...['--name', cluster.contextName, '--data-dir', cluster.dir('kube', 'etcd')],
      ...['--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl],
      ...['--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl],
      ...['--initial-cluster', `${cluster.contextName}=${peerUrl}`],
      ...['--listen-metrics-urls', ''],
      ...['--quota-backend-bytes', String(4 * 1024 ** 3), '--log-level', 'warn'],
    ]);
  }
  await waitReady(d('etcd'), async () => (await fetch(`${etcdUrl}/health`)).ok, 30_000, d('etcd'));
  if (!running(d('kube-apiserver'))) {
    startDaemon(d('kube-apiserver'), path.join(bins.dir, 'kube-apiserver'), [
      `--etcd-servers=${etcdUrl}`,
      `--bind-address=${HOST}`,
      `--advertise-address=${HOST}`,
      `--secure-port=${ports.apiserver}`,
      `--tls-cert-file=${pki.cert}`,
      `--tls-private-key-file=${pki.key}`,
      `--client-ca-file=${pki.ca}`,
      `--token-auth-file=${pki.tokens}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--allow-privileged=true',
      '--enable-priority-and-fairness=false',
      '--profiling=false',
      '--endpoint-reconciler-type=none',
      // pods/log goes to the node's kubelet (kwok's server): by the node's IP, its hostname resolves nowhere.
      '--kubelet-preferred-address-types=InternalIP',
      '--v=0',
    ]);
  }
  await waitReady(d('kube-apiserver'), () => apiReady(cluster), 90_000, d('kube-apiserver'));
  const kc = adminClient(cluster);
  const clientArgs = [
    `--kubeconfig=${admin}`,
    `--authentication-kubeconfig=${admin}`,
    `--authorization-kubeconfig=${admin}`,
  ];
  // The controller manager and the scheduler serve /healthz on the cluster's ports (--secure-port):
  // their defaults, 10257 and 10259, would collide between the clusters.
  if (!running(d('kube-controller-manager'))) {
    startDaemon(d('kube-controller-manager'), path.join(bins.dir, 'kube-controller-manager'), [
      ...clientArgs,
      `--bind-address=${HOST}`,
      `--secure-port=${ports.controllerManager}`,
      `--service-account-private-key-file=${pki.saKey}`,
      `--root-ca-file=${pki.ca}`,
      '--leader-elect=false',
      '--controllers=*,-nodeipam,-ttl,-bootstrapsigner,-tokencleaner,-cloud-node-lifecycle,-route,-service,-persistentvolume-binder,-attachdetach,-persistentvolume-expander,-ephemeral-volume,-pv-protection,-pvc-protection',
      // kwok's leases can lag on a loaded machine; a node marked NotReady would leave its pods unready for good.
      '--node-monitor-grace-period=1h',
      '--concurrent-deployment-syncs=10',
      '--concurrent-replicaset-syncs=10',
      '--v=0',
    ]);
  }
  if (!running(d('kube-scheduler'))) {
    startDaemon(d('kube-scheduler'), path.join(bins.dir, 'kube-scheduler'), [
      ...clientArgs,
      `--bind-address=${HOST}`,
      `--secure-port=${ports.scheduler}`,
      '--leader-elect=false',
      '--v=0',
    ]);
  }
  for (const [daemon, port] of [
    ['kube-controller-manager', ports.controllerManager],
    ['kube-scheduler', ports.scheduler],
  ] as const)
    await waitReady(
      d(daemon),
      async () => (await fetchWithToken(`https://${HOST}:${port}/healthz`, kc, true)) === 'ok',
      60_000,
      d(daemon),
    );
  if (!running(d('kwok')))
    startDaemon(d('kwok'), bins.kwok, kwokArgs(cluster, kubeDir(cluster), admin, pki, NAMESPACE));
  await ensureNodes(kc, ports.kwok);
  await waitReady(`${d('kwok')} nodes`, async () => (await nodesReady(kc)) >= NODES.length, 60_000, d('kwok'));
  await applyYamlFile(kc, path.join(ROOT, 'deploy', 'kubernetes', 'istio-virtualservice-crd.yaml'));
  await waitReady(
    'VirtualService CRD',
    async () => {
      const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
      const crd = await ext.readCustomResourceDefinition({ name: 'virtualservices.networking.istio.io' });
      return !!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    },
    30_000,
  );
  // Gateway API (standard channel): the gateway-api traffic provider's HTTPRoutes.
  await applyObjects(kc, gatewayApiCrds());
  await waitReady(
    'Gateway API CRDs',
    async () => {
      const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
      const crd = await ext.readCustomResourceDefinition({ name: 'httproutes.gateway.networking.k8s.io' });
      return !!crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True');
    },
    30_000,
  );
  await applyObjects(kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } }]);
  await ensureWorkerIdentity(cluster, kc, pki.ca);
  return `${apiserverUrl(cluster)}, ${NODES.length} kwok nodes Ready`;
}

async function clusterStatus(cluster: SandboxCluster): Promise<{ ok: boolean; detail: string }> {
  const down = DAEMONS.filter((p) => !running(cluster.daemon(p)));
  if (down.length) return { ok: false, detail: `not running: ${down.map(cluster.daemon).join(', ')}` };
  try {
    if (!(await apiReady(cluster))) return { ok: false, detail: 'apiserver not ready' };
    const kc = adminClient(cluster);
    const ready = await nodesReady(kc);
    // A fault left on is said, so that a stuck rollout there is not a mystery (fault --clear removes it).
    const fault = (await rolloutsStalled(kc, NAMESPACE)) ? ', rollouts stalled (fault)' : '';
    return {
      ok: ready >= NODES.length,
      detail: `${apiserverUrl(cluster)}, ${ready}/${NODES.length} nodes Ready${fault}`,
    };
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  }
}

/** A cluster's component: named by its environment for the environments' own, by itself for production-b. */
export function kubeComponent(cluster: SandboxCluster): Component {
  return {
    name: 'kubernetes',
    environment: cluster.name,
    up: () => startCluster(cluster),
    status: () => clusterStatus(cluster),
    async down() {
      for (const p of [...DAEMONS].reverse()) await stopDaemon(cluster.daemon(p));
    },
    env() {
      return {
        [cluster.envVar('KUBECONFIG')]: adminKubeconfigPath(cluster),
        [cluster.envVar('KUBECONFIG_WORKER')]: workerKubeconfigPath(cluster),
        [cluster.envVar('KUBE_NAMESPACE')]: NAMESPACE,
      };
    },
  };
}
