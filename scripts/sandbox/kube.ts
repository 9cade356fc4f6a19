/**
 * A real Kubernetes control plane with fake nodes: etcd, kube-apiserver (RBAC,
 * service-account tokens), kube-controller-manager, kube-scheduler and kwok.
 * Deployments get ReplicaSets and Pods that turn Ready, rollouts progress and
 * revisions count, with nothing running in the pods.
 */
import * as k8s from '@kubernetes/client-node';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  containerLogFile,
  ensureDir,
  HOST,
  PLATFORM_SERVICES,
  PORTS,
  ROOT,
  running,
  sh,
  sleep,
  startDaemon,
  stopDaemon,
  tool,
  waitReady,
  type Component,
} from './common';

const NODES = ['kwok-node-0', 'kwok-node-1', 'kwok-node-2'];
export const NAMESPACE = 'ai-saas';
export const WORKER_SA = 'deploy-worker';

function kubeDir(): string {
  return ensureDir('kube');
}
export function adminKubeconfigPath(): string {
  return path.join(kubeDir(), 'admin.kubeconfig');
}
export function workerKubeconfigPath(): string {
  return path.join(kubeDir(), 'worker.kubeconfig');
}

function binaries(): { dir: string; etcd: string; kwok: string } {
  const dir = tool('kube.sh');
  const etcd = existsSync(path.join(dir, 'etcd')) ? path.join(dir, 'etcd') : tool('etcd.sh');
  const kwok = tool('go-tool.sh', 'kwok', 'sigs.k8s.io/kwok/cmd/kwok@v0.8.0');
  return { dir, etcd, kwok };
}

/** CA, apiserver serving certificate, service-account key pair and the admin token, made once. */
function ensurePki(): {
  ca: string;
  cert: string;
  key: string;
  saKey: string;
  saPub: string;
  tokens: string;
  adminToken: string;
} {
  const d = ensureDir('kube', 'pki');
  const f = (n: string) => path.join(d, n);
  if (!existsSync(f('apiserver.crt'))) {
    sh('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '3650',
      '-subj',
      '/CN=sandbox-ca',
      '-keyout',
      f('ca.key'),
      '-out',
      f('ca.crt'),
    ]);
    writeFileSync(
      f('san.cnf'),
      [
        '[ext]',
        'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc',
        'extendedKeyUsage=serverAuth',
        '',
      ].join('\n'),
    );
    sh('openssl', [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=kube-apiserver',
      '-keyout',
      f('apiserver.key'),
      '-out',
      f('apiserver.csr'),
    ]);
    sh('openssl', [
      'x509',
      '-req',
      '-in',
      f('apiserver.csr'),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-days',
      '3650',
      '-extfile',
      f('san.cnf'),
      '-extensions',
      'ext',
      '-out',
      f('apiserver.crt'),
    ]);
    sh('openssl', ['genrsa', '-out', f('sa.key'), '2048']);
    sh('openssl', ['rsa', '-in', f('sa.key'), '-pubout', '-out', f('sa.pub')]);
    const token = sh('openssl', ['rand', '-hex', '24']).trim();
    writeFileSync(f('tokens.csv'), `${token},sandbox-admin,sandbox-admin,"system:masters"\n`, { mode: 0o600 });
  }
  const adminToken = readFileSync(f('tokens.csv'), 'utf8').split(',')[0];
  return {
    ca: f('ca.crt'),
    cert: f('apiserver.crt'),
    key: f('apiserver.key'),
    saKey: f('sa.key'),
    saPub: f('sa.pub'),
    tokens: f('tokens.csv'),
    adminToken,
  };
}

function kubeconfigYaml(user: string, token: string, ca: string, namespace?: string): string {
  const caData = readFileSync(ca).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: sandbox',
    '  cluster:',
    `    server: https://${HOST}:${PORTS.APISERVER}`,
    `    certificate-authority-data: ${caData}`,
    'users:',
    `- name: ${user}`,
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: sandbox',
    '  context:',
    '    cluster: sandbox',
    `    user: ${user}`,
    ...(namespace ? [`    namespace: ${namespace}`] : []),
    'current-context: sandbox',
    '',
  ].join('\n');
}

export function adminClient(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(adminKubeconfigPath());
  return kc;
}

async function apiReady(): Promise<boolean> {
  const kc = adminClient();
  const r = await fetchWithToken(`https://${HOST}:${PORTS.APISERVER}/readyz`, kc);
  return r === 'ok';
}

/** GET with the admin token over the sandbox CA (no client library needed for health endpoints). */
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

/** kwok's stage definitions ship in its module zip; they are read from the module cache. */
function kwokStages(): string {
  const out = path.join(kubeDir(), 'kwok-stages.yaml');
  if (existsSync(out)) return out;
  const info = JSON.parse(sh('go', ['mod', 'download', '-json', 'sigs.k8s.io/kwok@v0.8.0'], { cwd: '/' })) as {
    Dir: string;
  };
  const stage = (p: string) => readFileSync(path.join(info.Dir, 'kustomize', 'stage', p), 'utf8');
  const docs = [
    stage('node/fast/node-initialize.yaml'),
    stage('node/heartbeat-with-lease/node-heartbeat-with-lease.yaml'),
    stage('pod/fast/pod-ready.yaml'),
    stage('pod/fast/pod-complete.yaml'),
    stage('pod/fast/pod-delete.yaml'),
  ];
  writeFileSync(out, docs.map((d) => d.trim()).join('\n---\n') + '\n');
  return out;
}

/**
 * kwok's ClusterLogs: each platform container's log is its file (written by
 * the demo server), so `kubectl logs` and the pods/log API return real lines
 * through kwok's kubelet server.
 */
function kwokLogs(): string {
  const out = path.join(kubeDir(), 'kwok-logs.yaml');
  const doc = {
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'ClusterLogs',
    metadata: { name: 'platform-logs' },
    spec: {
      selector: { matchNamespaces: [NAMESPACE] },
      logs: PLATFORM_SERVICES.map((c) => ({ containers: [c], logsFile: containerLogFile(c), follow: true })),
    },
  };
  // JSON is YAML: kwok reads either.
  writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
  return out;
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

async function ensureNodes(kc: k8s.KubeConfig): Promise<void> {
  const nodes: k8s.V1Node[] = NODES.map((name) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
        'node-role.kubernetes.io/agent': '',
      },
    },
    status: {
      allocatable: { cpu: '32', memory: '256Gi', pods: '110' },
      capacity: { cpu: '32', memory: '256Gi', pods: '110' },
    },
  }));
  await applyObjects(kc, nodes);
  // kwok fills the kubelet port in when it initialises a node; a node made before kwok served logs has 0.
  const core = kc.makeApiClient(k8s.CoreV1Api);
  for (const name of NODES) {
    // kwok's heartbeats update the same status: read again on a conflict.
    for (let attempt = 1; ; attempt++) {
      const node = await core.readNode({ name });
      if (node.status?.daemonEndpoints?.kubeletEndpoint?.Port === PORTS.KWOK) break;
      node.status = { ...node.status, daemonEndpoints: { kubeletEndpoint: { Port: PORTS.KWOK } } };
      try {
        await core.replaceNodeStatus({ name, body: node });
        break;
      } catch (err) {
        if ((err as { code?: number }).code !== 409 || attempt >= 10) throw err;
      }
    }
  }
}

async function nodesReady(kc: k8s.KubeConfig): Promise<number> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const list = await core.listNode();
  return list.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
}

/** The worker's least-privilege ServiceAccount, its Role (deploy/kubernetes/worker-rbac.yaml) and a kubeconfig with its token. */
async function ensureWorkerIdentity(kc: k8s.KubeConfig, ca: string): Promise<void> {
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
  writeFileSync(workerKubeconfigPath(), kubeconfigYaml(WORKER_SA, token, ca, NAMESPACE), { mode: 0o600 });
}

export function kubeComponent(): Component {
  return {
    name: 'kubernetes',
    async up() {
      const bins = binaries();
      const pki = ensurePki();
      writeFileSync(adminKubeconfigPath(), kubeconfigYaml('sandbox-admin', pki.adminToken, pki.ca), { mode: 0o600 });
      const etcdData = ensureDir('kube', 'etcd');
      if (!running('etcd')) {
        startDaemon('etcd', bins.etcd, [
          '--name',
          'sandbox',
          '--data-dir',
          etcdData,
          '--listen-client-urls',
          `http://${HOST}:${PORTS.ETCD}`,
          '--advertise-client-urls',
          `http://${HOST}:${PORTS.ETCD}`,
          '--listen-peer-urls',
          `http://${HOST}:${PORTS.ETCD_PEER}`,
          '--initial-advertise-peer-urls',
          `http://${HOST}:${PORTS.ETCD_PEER}`,
          '--initial-cluster',
          `sandbox=http://${HOST}:${PORTS.ETCD_PEER}`,
          '--listen-metrics-urls',
          '',
          '--quota-backend-bytes',
          String(4 * 1024 ** 3),
          '--log-level',
          'warn',
        ]);
      }
      await waitReady('etcd', async () => (await fetch(`http://${HOST}:${PORTS.ETCD}/health`)).ok, 30_000, 'etcd');
      if (!running('kube-apiserver')) {
        startDaemon('kube-apiserver', path.join(bins.dir, 'kube-apiserver'), [
          `--etcd-servers=http://${HOST}:${PORTS.ETCD}`,
          `--bind-address=${HOST}`,
          `--advertise-address=${HOST}`,
          `--secure-port=${PORTS.APISERVER}`,
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
      await waitReady('kube-apiserver', apiReady, 90_000, 'kube-apiserver');
      const kc = adminClient();
      if (!running('kube-controller-manager')) {
        startDaemon('kube-controller-manager', path.join(bins.dir, 'kube-controller-manager'), [
          `--kubeconfig=${adminKubeconfigPath()}`,
          `--authentication-kubeconfig=${adminKubeconfigPath()}`,
          `--authorization-kubeconfig=${adminKubeconfigPath()}`,
          `--bind-address=${HOST}`,
          `--secure-port=${PORTS.CONTROLLER_MANAGER}`,
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
      if (!running('kube-scheduler')) {
        startDaemon('kube-scheduler', path.join(bins.dir, 'kube-scheduler'), [
          `--kubeconfig=${adminKubeconfigPath()}`,
          `--authentication-kubeconfig=${adminKubeconfigPath()}`,
          `--authorization-kubeconfig=${adminKubeconfigPath()}`,
          `--bind-address=${HOST}`,
          `--secure-port=${PORTS.SCHEDULER}`,
          '--leader-elect=false',
          '--v=0',
        ]);
      }
      await waitReady(
        'kube-controller-manager',
        async () => (await fetchWithToken(`https://${HOST}:${PORTS.CONTROLLER_MANAGER}/healthz`, kc, true)) === 'ok',
        60_000,
        'kube-controller-manager',
      );
      await waitReady(
        'kube-scheduler',
        async () => (await fetchWithToken(`https://${HOST}:${PORTS.SCHEDULER}/healthz`, kc, true)) === 'ok',
        60_000,
        'kube-scheduler',
      );
      if (!running('kwok')) {
        startDaemon('kwok', bins.kwok, [
          `--kubeconfig=${adminKubeconfigPath()}`,
          '--manage-all-nodes=false',
          '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
          `--config=${kwokStages()}`,
          `--config=${kwokLogs()}`,
          // The kubelet endpoint the nodes advertise (the apiserver does not verify its certificate: no
          // --kubelet-certificate-authority), served with the apiserver's certificate for 127.0.0.1.
          `--server-address=${HOST}:${PORTS.KWOK}`,
          `--node-port=${PORTS.KWOK}`,
          `--tls-cert-file=${pki.cert}`,
          `--tls-private-key-file=${pki.key}`,
          '--cidr=10.244.0.0/16',
          `--node-ip=${HOST}`,
          // Leases are the heartbeat the node lifecycle controller watches; without them nodes go Unknown.
          '--node-lease-duration-seconds=40',
        ]);
      }
      await ensureNodes(kc);
      await waitReady('kwok nodes', async () => (await nodesReady(kc)) >= NODES.length, 60_000, 'kwok');
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
      await applyObjects(kc, [{ apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } }]);
      await ensureWorkerIdentity(kc, pki.ca);
      return `https://${HOST}:${PORTS.APISERVER}, ${NODES.length} kwok nodes Ready`;
    },
    async status() {
      const parts = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'];
      const down = parts.filter((p) => !running(p));
      if (down.length) return { ok: false, detail: `not running: ${down.join(', ')}` };
      try {
        const kc = adminClient();
        if (!(await apiReady())) return { ok: false, detail: 'apiserver not ready' };
        const ready = await nodesReady(kc);
        return {
          ok: ready >= NODES.length,
          detail: `https://${HOST}:${PORTS.APISERVER}, ${ready}/${NODES.length} nodes Ready`,
        };
      } catch (err) {
        return { ok: false, detail: (err as Error).message };
      }
    },
    async down() {
      for (const p of ['kwok', 'kube-scheduler', 'kube-controller-manager', 'kube-apiserver', 'etcd'])
        await stopDaemon(p);
    },
    env() {
      return {
        KUBECONFIG: adminKubeconfigPath(),
        KUBECONFIG_WORKER: workerKubeconfigPath(),
        KUBE_NAMESPACE: NAMESPACE,
      };
    },
  };
}
