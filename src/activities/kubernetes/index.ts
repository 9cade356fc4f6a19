/**
 * Kubernetes activities (runbook "Update Kubernetes Deployment", "Blue-Green
 * Deployment Strategy", "Rollback Procedures", "Troubleshooting") over
 * @kubernetes/client-node, as the worker's least-privilege ServiceAccount
 * (deploy/kubernetes/worker-rbac.yaml lists every verb used here).
 *
 *  - rollout.ts      read the namespace, set images, wait, roll back, undo
 *  - wait.ts         `kubectl rollout status` with heartbeats and cancellation
 *  - diagnostics.ts  why a rollout is stuck, attached to its failure
 *  - deployments.ts  the guarded, idempotent writes they all share
 *  - config-snapshots.ts  immutable, content-named ConfigMaps and Secrets
 *                    that an image patch points the pod template at
 *
 * Failures follow clients/kube.ts's mapping: 404 → KubernetesNotFound and
 * 403 → KubernetesForbidden (both permanent), 409 → re-read and retry inside
 * the activity, anything else transient → KubernetesUnavailable, retried by
 * Temporal.
 */
import { blueGreenActivities } from '../traffic/blue-green';
import { configSnapshotActivities } from './config-snapshots';
import { Deployments, type KubernetesDeps } from './deployments';
import { rolloutActivities } from './rollout';

export type { KubernetesDeps } from './deployments';

/**
 * The rollout and config snapshot activities, and the blue-green ones: those live with traffic
 * (traffic/blue-green.ts) but are registered from here as they always were,
 * over the same client.
 */
export function kubernetesActivities(deps: KubernetesDeps) {
  const deployments = new Deployments(deps);
  return {
    ...rolloutActivities(deployments),
    ...blueGreenActivities(deployments),
    ...configSnapshotActivities(deployments, deps.sourceAt),
  };
}
