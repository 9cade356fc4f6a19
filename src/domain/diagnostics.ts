/**
 * Why a rollout is stuck, without I/O (runbook "Troubleshooting"): what is
 * wrong with each pod that is not Ready, and one paragraph for the failure
 * message that the notification and the summary repeat.
 * activities/kubernetes/diagnostics.ts reads the pods, logs and events.
 */
import { isPodReady, podRestarts, type PodLike } from './kube-objects';

export interface PodDiagnosis {
  name: string;
  phase: string;
  ready: boolean;
  restarts: number;
  node?: string;
  /** Why it is not Ready: failing conditions and waiting/terminated container states. */
  reasons: string[];
  /** The last log lines, or why there are none. */
  logTail?: string[];
  logsUnavailable?: string;
}

export interface EventLine {
  at?: string;
  type: string;
  reason: string;
  object: string;
  message: string;
  count?: number;
}

/** What a failed rollout carries in its details: enough to act on without opening the cluster. */
export interface RolloutDiagnostics {
  namespace: string;
  deployment: string;
  status: string;
  conditions: string[];
  notReadyPods: PodDiagnosis[];
  events: EventLine[];
}

/** Why one pod is not Ready, in the words `kubectl describe pod` would use. */
export function diagnosePod(p: PodLike): PodDiagnosis {
  const reasons: string[] = [];
  for (const c of p.status?.conditions ?? []) {
    if (c.status !== 'True' && (c.reason || c.message))
      reasons.push(`${c.type}=${c.status}${c.reason ? ` ${c.reason}` : ''}${c.message ? `: ${c.message}` : ''}`);
  }
  for (const cs of p.status?.containerStatuses ?? []) {
    const w = cs.state?.waiting;
    const t = cs.state?.terminated;
    if (w?.reason) reasons.push(`container ${cs.name} waiting: ${w.reason}${w.message ? `: ${w.message}` : ''}`);
    if (t?.reason)
      reasons.push(
        `container ${cs.name} terminated: ${t.reason}${t.exitCode !== undefined ? ` (exit ${t.exitCode})` : ''}`,
      );
    if (cs.restartCount > 0 && cs.lastState?.terminated?.reason)
      reasons.push(`container ${cs.name} restarted ${cs.restartCount}x, last: ${cs.lastState.terminated.reason}`);
  }
  if (!reasons.length && !isPodReady(p)) reasons.push(`phase ${p.status?.phase ?? 'unknown'}, not Ready`);
  return {
    name: p.metadata?.name ?? '',
    phase: p.status?.phase ?? 'Unknown',
    ready: isPodReady(p),
    restarts: podRestarts(p),
    ...(p.spec?.nodeName ? { node: p.spec.nodeName } : {}),
    reasons,
  };
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 3)}...` : s;
}

/**
 * One paragraph that says why a rollout failed, for the failure message (and
 * so the notification and the summary): the status, the pods that are not
 * Ready with their reasons and log tails, and the newest warning events.
 */
export function describeDiagnostics(d: RolloutDiagnostics, maxChars = 1500): string {
  const parts: string[] = [];
  for (const p of d.notReadyPods.slice(0, 3)) {
    const logs = p.logTail?.length
      ? `; last log: ${clip(p.logTail[p.logTail.length - 1], 200)}`
      : p.logsUnavailable
        ? `; logs unavailable: ${clip(p.logsUnavailable, 160)}`
        : '';
    parts.push(`pod ${p.name} not Ready (${clip(p.reasons.join('; ') || p.phase, 300)})${logs}`);
  }
  if (d.notReadyPods.length > 3) parts.push(`${d.notReadyPods.length - 3} more pods not Ready`);
  const warnings = d.events.filter((e) => e.type !== 'Normal');
  const events = (warnings.length ? warnings : d.events).slice(-3);
  if (events.length)
    parts.push(
      `events: ${events.map((e) => `${e.type} ${e.reason} ${e.object}: ${clip(e.message, 200)}`).join(' | ')}`,
    );
  return clip(parts.join('; '), maxChars);
}
