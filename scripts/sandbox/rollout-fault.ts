/**
 * A real rollout failure in one cluster (`fault --cluster <name>
 * --stall-rollouts`): a ResourceQuota that allows no more pods in the
 * namespace. Pods that run keep running; a rolling update's new ReplicaSet
 * cannot create any (FailedCreate, "exceeded quota"), so the Deployment never
 * gets its updated replicas and, after its progress deadline, reports
 * ProgressDeadlineExceeded, as a cluster out of quota or capacity does. A
 * quota at zero rather than at the current count: with maxUnavailable > 0
 * (api-gateway's four replicas) the old pods a rollout removes would free room
 * for new ones and the rollout would still finish, slowly.
 */
import * as k8s from '@kubernetes/client-node';
import { sleep } from './common';

export const STALL_QUOTA = 'sandbox-stall-rollouts';
const NUDGE_ANNOTATION = 'sandbox.deploy-pipelines.dev/stall-cleared';

function isNotFound(err: unknown): boolean {
  return (err as { code?: number }).code === 404;
}

export async function stallRollouts(kc: k8s.KubeConfig, namespace: string): Promise<void> {
  const quota: k8s.V1ResourceQuota = {
    apiVersion: 'v1',
    kind: 'ResourceQuota',
    metadata: { name: STALL_QUOTA, namespace, labels: { 'app.kubernetes.io/managed-by': 'sandbox-fault' } },
    spec: { hard: { pods: '0' } },
  };
  await k8s.KubernetesObjectApi.makeApiClient(kc).patch(
    quota,
    undefined,
    undefined,
    'sandbox-fault',
    true,
    k8s.PatchStrategy.ServerSideApply,
  );
}

export async function rolloutsStalled(kc: k8s.KubeConfig, namespace: string): Promise<boolean> {
  try {
    await kc.makeApiClient(k8s.CoreV1Api).readNamespacedResourceQuota({ name: STALL_QUOTA, namespace });
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/**
 * Removes the quota; returns whether there was one. The ReplicaSet
 * controller retries a refused pod creation with an exponential back-off
 * (minutes after a long stall): each ReplicaSet short of its replicas is
 * touched, an update event that makes the controller sync it now, so the
 * rollout resumes at once as it would after a quota raise seen at the next retry.
 */
export async function clearStall(kc: k8s.KubeConfig, namespace: string): Promise<boolean> {
  try {
    await kc.makeApiClient(k8s.CoreV1Api).deleteNamespacedResourceQuota({ name: STALL_QUOTA, namespace });
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
  // The apiserver's quota admission sees the deletion through its informer: a sync before that would fail
  // again and lengthen the back-off.
  await sleep(1000);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const sets = await apps.listNamespacedReplicaSet({ namespace });
  for (const rs of sets.items) {
    if ((rs.status?.replicas ?? 0) >= (rs.spec?.replicas ?? 0)) continue;
    await apps.patchNamespacedReplicaSet(
      {
        name: rs.metadata!.name!,
        namespace,
        body: { metadata: { annotations: { [NUDGE_ANNOTATION]: new Date().toISOString() } } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }
  return true;
}
