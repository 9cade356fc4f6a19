/**
 * The Kubernetes check (runbook "Service Health Checks"): the pods of the
 * deployments Running and Ready, no restarts since the baseline, and error
 * lines in the new pods' logs within verification.maxLogErrors. The cluster
 * is read through a PodReader, injected in tests; the default one is built on
 * the worker's one kubeconfig (clients/kube.ts). A check throws only when it
 * could not look: forbidden is permanent, anything else (apiserver down, a
 * timeout, 5xx) is retried by the activity's retry policy.
 */
import { labelSelector } from '../../domain/kube-objects';
import {
  countErrorLines,
  isNewPod,
  judgePods,
  redact,
  restartsOf,
  type LogState,
  type PodSnapshot,
} from '../../domain/verification';
import { withTimeout } from '../clients/http';
import { describeKubeError, loadKubeConfig, makeKubeClients, type KubeClients } from '../clients/kube';
import type { DeploymentHealth, KubernetesHealthRequest, KubernetesReport } from '../contracts';
import { fail } from '../failures';
import type { CheckContext } from './context';

/** A log the cluster cannot give (kwok pods have none): reported as such, never a failed check. */
export class LogsUnavailable extends Error {
  override name = 'LogsUnavailable';
}

/** What the Kubernetes check needs from the cluster. */
export interface PodReader {
  /** The pods of a Deployment (owned by its ReplicaSets), or null when there is no such Deployment. */
  deploymentPods(namespace: string, deployment: string): Promise<PodSnapshot[] | null>;
  /** The container's log since `sinceSeconds` ago; throws LogsUnavailable when the cluster cannot give it. */
  readLog(
    namespace: string,
    pod: string,
    container: string,
    opts: { sinceSeconds?: number; limitBytes: number },
  ): Promise<string>;
}

interface LabelSelectorLike {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** A Deployment's spec.selector as a label-selector string, set-based expressions included. */
function selectorString(sel: LabelSelectorLike | undefined): string {
  const parts = [labelSelector(sel?.matchLabels)];
  for (const e of sel?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.filter((p) => p !== '').join(',');
}

/**
 * A PodReader over the worker's API clients. Errors are described, not mapped
 * to KubernetesNotFound: a missing Deployment is an answer (null) and a log
 * the cluster cannot give is LogsUnavailable.
 */
export function kubePodReader(clients: Pick<KubeClients, 'apps' | 'core'>, timeoutMs: number): PodReader {
  const { apps, core } = clients;
  const call = async <T>(what: string, request: () => Promise<T>): Promise<T> => {
    try {
      return await withTimeout(request(), timeoutMs, what);
    } catch (err) {
      if ((err as { code?: unknown }).code === 403)
        throw fail.KubernetesForbidden(`${what}: ${describeKubeError(err)}`);
      // Anything else (apiserver down, timeout, 5xx) is retried by the activity's retry policy.
      throw new Error(`${what}: ${describeKubeError(err)}`, { cause: err });
    }
  };
  return {
    async deploymentPods(namespace, deployment) {
      let d;
      try {
        d = await withTimeout(
          apps.readNamespacedDeployment({ name: deployment, namespace }),
          timeoutMs,
          `reading deployment ${deployment}`,
        );
      } catch (err) {
        if ((err as { code?: unknown }).code === 404) return null;
        return call(`reading deployment ${deployment}`, () => Promise.reject(err as Error));
      }
      const selector = selectorString(d.spec?.selector);
      // Pods the Deployment owns: through its ReplicaSets, as `kubectl get pods` for a deployment shows them.
      const [replicaSets, pods] = await Promise.all([
        call(`listing replicasets of ${deployment}`, () =>
          apps.listNamespacedReplicaSet({ namespace, ...(selector ? { labelSelector: selector } : {}) }),
        ),
        call(`listing pods of ${deployment}`, () =>
          core.listNamespacedPod({ namespace, ...(selector ? { labelSelector: selector } : {}) }),
        ),
      ]);
      const owned = new Set(
        replicaSets.items
          .filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.uid === d.metadata?.uid))
          .map((rs) => rs.metadata?.name),
      );
      return pods.items
        .filter((p) => p.metadata?.ownerReferences?.some((o) => o.kind === 'ReplicaSet' && owned.has(o.name)))
        .map((p): PodSnapshot => {
          const created = p.metadata?.creationTimestamp;
          const createdAt =
            created instanceof Date ? created.toISOString() : typeof created === 'string' ? created : undefined;
          return {
            name: p.metadata?.name ?? '(unnamed)',
            phase: p.status?.phase ?? 'Unknown',
            ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
            ...(createdAt ? { createdAt } : {}),
            deleting: !!p.metadata?.deletionTimestamp,
            containers: (p.status?.containerStatuses ?? []).map((c) => ({
              name: c.name,
              ready: c.ready,
              restarts: c.restartCount,
              ...(c.state?.waiting?.reason ? { waitingReason: c.state.waiting.reason } : {}),
            })),
          };
        });
    },
    async readLog(namespace, pod, container, opts) {
      try {
        return await withTimeout(
          core.readNamespacedPodLog({
            name: pod,
            namespace,
            container,
            limitBytes: opts.limitBytes,
            ...(opts.sinceSeconds ? { sinceSeconds: opts.sinceSeconds } : {}),
          }),
          timeoutMs,
          'reading the log',
        );
      } catch (err) {
        throw new LogsUnavailable(describeKubeError(err));
      }
    },
  };
}

/**
 * The podRestarts and checkKubernetesHealth activities over `ctx`. Without
 * an injected reader, the worker's clients (deps', else built from
 * config.kubernetes.kubeconfig) are used on first use, so a worker whose checks never read the cluster
 * never needs one.
 */
export function clusterHealthChecks(ctx: CheckContext, deps: { pods?: PodReader; kubeClients?: KubeClients }) {
  const { config, log, now, envSecrets } = ctx;
  const v = config.verification;
  let podReader = deps.pods;
  const pods = (): PodReader =>
    (podReader ??= kubePodReader(
      deps.kubeClients ?? makeKubeClients(loadKubeConfig(config.kubernetes.kubeconfig || undefined)),
      v.kubernetesTimeout,
    ));

  /** Restart counts per pod of the deployments now: the baseline a later Kubernetes check compares with. */
  async function podRestarts(req: { namespace: string; deployments: string[] }): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const d of req.deployments) {
      for (const p of (await pods().deploymentPods(req.namespace, d)) ?? []) out[p.name] = restartsOf(p);
    }
    return out;
  }

  async function readLogs(
    namespace: string,
    targets: PodSnapshot[],
    sinceSeconds: number | undefined,
  ): Promise<Record<string, LogState>> {
    const reader = pods();
    const secrets = envSecrets();
    const logs: Record<string, LogState> = {};
    const queue = [...targets];
    // A few at a time: a namespace may have many pods and the apiserver is shared.
    const worker = async (): Promise<void> => {
      for (let pod = queue.shift(); pod; pod = queue.shift()) {
        let errorLines = 0;
        let sample: string | undefined;
        let unavailable: string | undefined;
        let read = 0;
        for (const c of pod.containers) {
          try {
            const text = await reader.readLog(namespace, pod.name, c.name, {
              limitBytes: v.logLimitBytes,
              ...(sinceSeconds ? { sinceSeconds } : {}),
            });
            read++;
            const counted = countErrorLines(text, v.logErrorPattern);
            errorLines += counted.count;
            sample ??= counted.sample !== undefined ? redact(counted.sample, secrets) : undefined;
          } catch (err) {
            if (!(err instanceof LogsUnavailable)) throw err;
            unavailable ??= `${c.name}: ${err.message}`;
          }
        }
        if (read === 0 && unavailable !== undefined) logs[pod.name] = { state: 'unavailable', reason: unavailable };
        else logs[pod.name] = { state: 'checked', errorLines, ...(sample !== undefined ? { sample } : {}) };
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, targets.length) }, worker));
    return logs;
  }

  /**
   * Runbook "Service Health Checks": every pod of the deployments Running and
   * Ready, no restart counts risen since the baseline, error lines in the new
   * pods' logs since the rollout within verification.maxLogErrors. Logs the
   * cluster cannot give (kwok pods have none) are reported as such.
   */
  async function checkKubernetesHealth(req: KubernetesHealthRequest): Promise<KubernetesReport> {
    const sinceSeconds = req.since
      ? Math.max(1, Math.ceil((now().getTime() - Date.parse(req.since)) / 1000))
      : undefined;
    const deployments: DeploymentHealth[] = [];
    const problems: string[] = [];
    const warnings: string[] = [];
    const totals = { checked: 0, unavailable: 0, errorLines: 0, limit: v.maxLogErrors };
    let ok = true;
    for (const name of req.deployments) {
      const list = await pods().deploymentPods(req.namespace, name);
      if (list === null) {
        ok = false;
        problems.push(`deployment ${name} not found in ${req.namespace}`);
        deployments.push({ name, found: false, pods: [], summary: 'not found' });
        continue;
      }
      const logs = await readLogs(
        req.namespace,
        list.filter((p) => !p.deleting && isNewPod(p, req.since)),
        sinceSeconds,
      );
      const j = judgePods(list, {
        baselineRestarts: req.baselineRestarts,
        since: req.since,
        maxLogErrors: v.maxLogErrors,
        logs,
      });
      ok &&= j.ok;
      problems.push(...j.problems.map((p) => `${name}: ${p}`));
      warnings.push(...j.warnings.map((w) => `${name}: ${w}`));
      totals.checked += j.pods.filter((p) => p.logs.state === 'checked').length;
      totals.unavailable += j.pods.filter((p) => p.logs.state === 'unavailable').length;
      totals.errorLines += j.logErrorLines;
      deployments.push({ name, found: true, pods: j.pods, summary: j.summary });
    }
    const lines = [
      ...problems.map((p) => `failed: ${p}`),
      ...warnings.map((w) => `warning: ${w}`),
      ...deployments.map((d) => `${d.name}: ${d.summary}`),
    ];
    for (const w of warnings) log.warn('kubernetes check warning', { namespace: req.namespace, warning: w });
    if (ok) log.info('kubernetes check passed', { namespace: req.namespace, deployments: req.deployments.length });
    else log.warn('kubernetes check failed', { namespace: req.namespace, problems });
    return { ok, lines, namespace: req.namespace, deployments, problems, warnings, logs: totals };
  }

  return { podRestarts, checkKubernetesHealth };
}
