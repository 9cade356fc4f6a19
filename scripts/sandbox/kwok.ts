/**
 * kwok, the fake kubelets of a sandbox cluster: its configuration (the stages
 * that make nodes and pods Ready, the containers' logs), its command line,
 * and the nodes it manages.
 */
import * as k8s from '@kubernetes/client-node';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { HOST, PLATFORM_SERVICES, sh } from './common';
import type { SandboxCluster } from './environments';
import type { ClusterPki } from './pki';

export const NODES = ['kwok-node-0', 'kwok-node-1', 'kwok-node-2'];
const KWOK_MODULE = 'sigs.k8s.io/kwok@v0.8.0';

/** kwok's stage definitions ship in its module zip; they are read from the module cache. */
function kwokStages(dir: string): string {
  const out = path.join(dir, 'kwok-stages.yaml');
  if (existsSync(out)) return out;
  const info = JSON.parse(sh('go', ['mod', 'download', '-json', KWOK_MODULE], { cwd: '/' })) as { Dir: string };
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
 * kwok's ClusterLogs: each platform container's log is its cluster's
 * environment's file (written by that environment's demo server), so `kubectl logs` and the
 * pods/log API return real lines through kwok's kubelet server.
 */
function kwokLogs(dir: string, cluster: SandboxCluster, namespace: string): string {
  const out = path.join(dir, 'kwok-logs.yaml');
  const doc = {
    apiVersion: 'kwok.x-k8s.io/v1alpha1',
    kind: 'ClusterLogs',
    metadata: { name: 'platform-logs' },
    spec: {
      selector: { matchNamespaces: [namespace] },
      logs: PLATFORM_SERVICES.map((c) => ({ containers: [c], logsFile: cluster.containerLog(c), follow: true })),
    },
  };
  // JSON is YAML: kwok reads either.
  writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');
  return out;
}

/**
 * kwok's arguments for one cluster. Its only listener is the kubelet server
 * (pods/log, and its metrics and health on the same port): the cluster's
 * own port, which the nodes advertise.
 */
export function kwokArgs(
  cluster: SandboxCluster,
  dir: string,
  kubeconfig: string,
  pki: ClusterPki,
  namespace: string,
): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    '--manage-all-nodes=false',
    '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
    `--config=${kwokStages(dir)}`,
    `--config=${kwokLogs(dir, cluster, namespace)}`,
    // The kubelet endpoint the nodes advertise (the apiserver does not verify its certificate: no
    // --kubelet-certificate-authority), served with the apiserver's certificate for 127.0.0.1.
    `--server-address=${HOST}:${cluster.ports.kwok}`,
    `--node-port=${cluster.ports.kwok}`,
    `--tls-cert-file=${pki.cert}`,
    `--tls-private-key-file=${pki.key}`,
    '--cidr=10.244.0.0/16',
    `--node-ip=${HOST}`,
    // Leases are the heartbeat the node lifecycle controller watches; without them nodes go Unknown.
    '--node-lease-duration-seconds=40',
  ];
}

/** The fake nodes kwok manages, advertising its kubelet port. */
export async function ensureNodes(kc: k8s.KubeConfig, kubeletPort: number): Promise<void> {
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
  const objects = k8s.KubernetesObjectApi.makeApiClient(kc);
  for (const node of nodes)
    await objects.patch(node, undefined, undefined, 'sandbox', true, k8s.PatchStrategy.ServerSideApply);
  // kwok fills the kubelet port in when it initialises a node; a node made before kwok served logs has 0.
  const core = kc.makeApiClient(k8s.CoreV1Api);
  for (const name of NODES) {
    // kwok's heartbeats update the same status: read again on a conflict.
    for (let attempt = 1; ; attempt++) {
      const node = await core.readNode({ name });
      if (node.status?.daemonEndpoints?.kubeletEndpoint?.Port === kubeletPort) break;
      node.status = { ...node.status, daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } } };
      try {
        await core.replaceNodeStatus({ name, body: node });
        break;
      } catch (err) {
        if ((err as { code?: number }).code !== 409 || attempt >= 10) throw err;
      }
    }
  }
}

export async function nodesReady(kc: k8s.KubeConfig): Promise<number> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const list = await core.listNode();
  return list.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
}
