/**
 * What the runbook's "Troubleshooting" reads when a rollout is stuck, read
 * from the cluster and attached to the failure: so the notification and the
 * summary say why, without anyone running kubectl. domain/diagnostics.ts
 * decides what a pod's state means and how the paragraph reads.
 */
import type * as k8s from '@kubernetes/client-node';
import type { ApplicationFailure } from '@temporalio/common';
import type { Kube } from '../clients/kube';
import { fail } from '../failures';
import { describeDiagnostics, diagnosePod, type EventLine, type RolloutDiagnostics } from '../../domain/diagnostics';
import { controlledBy, isPodReady, labelSelector } from '../../domain/kube-objects';
import { revisionOf, rolloutStatus } from '../../domain/rollout';

/** The newest events of the named objects: `kubectl describe`, in short. An unreadable list is no events, not a failure. */
async function eventsFor(kube: Kube, namespace: string, names: string[]): Promise<EventLine[]> {
  const lists = await Promise.all(
    names.map((n) => kube.listEvents(namespace, `involvedObject.name=${n}`).catch(() => [] as k8s.CoreV1Event[])),
  );
  const time = (e: k8s.CoreV1Event): number =>
    new Date(e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp ?? 0).getTime();
  return lists
    .flat()
    .sort((a, b) => time(a) - time(b))
    .slice(-10)
    .map((e) => ({
      at: new Date(time(e)).toISOString(),
      type: e.type ?? 'Normal',
      reason: e.reason ?? '',
      object: `${(e.involvedObject.kind ?? '').toLowerCase()}/${e.involvedObject.name ?? ''}`,
      message: (e.message ?? '').trim(),
      ...(e.count ? { count: e.count } : {}),
    }));
}

/**
 * The Deployment's conditions, its pods that are not Ready (reasons, restarts
 * and the last log lines; kwok's pods and pods without a node have no logs,
 * which is said instead), and the events of the Deployment, its newest
 * ReplicaSet and those pods.
 */
async function gatherDiagnostics(
  kube: Kube,
  namespace: string,
  deployment: string,
  logLines: number,
): Promise<RolloutDiagnostics> {
  const d = await kube.findDeployment(namespace, deployment);
  if (!d)
    return { namespace, deployment, status: 'deployment not found', conditions: [], notReadyPods: [], events: [] };
  const selector = labelSelector(d.spec?.selector.matchLabels);
  const [replicaSets, pods] = await Promise.all([
    kube.listReplicaSets(namespace, selector),
    kube.listPods(namespace, selector),
  ]);
  const owned = controlledBy(replicaSets, new Set([d.metadata?.uid ?? '']));
  const newest = [...owned].sort((a, b) => (revisionOf(b) ?? 0) - (revisionOf(a) ?? 0))[0];
  const ownPods = controlledBy(pods, new Set(owned.map((rs) => rs.metadata?.uid ?? '')));
  const notReady = ownPods.filter((p) => !isPodReady(p) && !p.metadata?.deletionTimestamp).slice(0, 5);
  const diagnosed = notReady.map(diagnosePod);
  await Promise.all(
    diagnosed.slice(0, 3).map(async (p, i) => {
      if (logLines <= 0) return;
      const pod = notReady[i];
      const container = pod.status?.containerStatuses?.find((c) => !c.ready)?.name ?? pod.spec?.containers[0]?.name;
      try {
        const text = await kube.podLog(namespace, p.name, container, logLines);
        const lines = String(text ?? '')
          .split('\n')
          .filter((l) => l.trim() !== '');
        if (lines.length) p.logTail = lines.slice(-logLines);
        else p.logsUnavailable = 'the log is empty';
      } catch (err) {
        p.logsUnavailable = err instanceof Error ? err.message : String(err);
      }
    }),
  );
  const events = await eventsFor(kube, namespace, [
    deployment,
    ...(newest?.metadata?.name ? [newest.metadata.name] : []),
    ...notReady.map((p) => p.metadata?.name ?? ''),
  ]);
  return {
    namespace,
    deployment,
    status: rolloutStatus(d).message,
    conditions: (d.status?.conditions ?? []).map(
      (c) => `${c.type}=${c.status}${c.reason ? ` ${c.reason}` : ''}${c.message ? `: ${c.message}` : ''}`,
    ),
    notReadyPods: diagnosed,
    events,
  };
}

/** The headline, then why: the diagnostics' paragraph, or why there is none. */
function failureMessage(headline: string, diag: RolloutDiagnostics | undefined, diagError?: string): string {
  const tail = diag ? describeDiagnostics(diag) : diagError ? `diagnostics unavailable: ${diagError}` : '';
  return tail ? `${headline}; ${tail}` : headline;
}

/**
 * A failed rollout with its diagnostics attached: RolloutFailed (permanent),
 * or TrafficNotApplied (retried) when `retryable`. Diagnostics that cannot be
 * read do not hide the failure: the message says why they are missing.
 */
export async function rolloutFailure(
  kube: Kube,
  namespace: string,
  deployment: string,
  headline: string,
  logLines: number,
  retryable = false,
): Promise<ApplicationFailure> {
  let diag: RolloutDiagnostics | undefined;
  let diagError: string | undefined;
  try {
    diag = await gatherDiagnostics(kube, namespace, deployment, logLines);
  } catch (err) {
    diagError = err instanceof Error ? err.message : String(err);
  }
  const message = failureMessage(headline, diag, diagError);
  const details = diag ?? { namespace, deployment, diagnosticsUnavailable: diagError };
  return retryable ? fail.TrafficNotApplied(message, details, true) : fail.RolloutFailed(message, details, false);
}
