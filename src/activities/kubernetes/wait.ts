/**
 * Waiting for rollouts: `kubectl rollout status` for several Deployments at
 * once, inside an activity that heartbeats its progress and stops when it is
 * cancelled.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { RolloutOutcome } from '../contracts';
import type { Kube } from '../clients/kube';
import { sleep, throwIfCancelled, type ActivityRuntime } from '../runtime';
import { ErrorType } from '../../domain/errors';
import { labelSelector } from '../../domain/kube-objects';
import { containerImages, replicaSetSettled, revisionOf, rolloutStatus } from '../../domain/rollout';
import { rolloutFailure } from './diagnostics';

/** How long and how often a wait reads, and how it gives up. */
export interface WaitOptions {
  timeoutMs: number;
  pollMs: number;
  /** Log lines of each pod that is not Ready, attached to the failure. */
  logLines: number;
  /** A wait inside a traffic step gives up as TrafficNotApplied (retried), not as a failed rollout. */
  retryableTimeout?: boolean;
}

/** Apiserver blips in a row that a wait rides out before it gives up (Temporal then retries the activity). */
const MAX_BLIPS = 5;

/**
 * Polls each Deployment until it is rolled out, heartbeating the progress,
 * and fails with diagnostics on ProgressDeadlineExceeded or when the timeout
 * passes. A blip of the apiserver does not end the wait; a permanent error
 * does.
 */
export async function waitForRollouts(
  kube: Kube,
  runtime: ActivityRuntime,
  namespace: string,
  deployments: string[],
  opts: WaitOptions,
): Promise<RolloutOutcome[]> {
  const signal = runtime.cancellationSignal();
  const deadline = Date.now() + opts.timeoutMs;
  const done = new Map<string, RolloutOutcome>();
  const pending = new Map<string, string>(deployments.map((d) => [d, 'not read yet']));
  let blips = 0;
  for (;;) {
    throwIfCancelled(signal);
    try {
      const read = await Promise.all([...pending.keys()].map((name) => kube.readDeployment(namespace, name)));
      blips = 0;
      for (const d of read) {
        const name = d.metadata?.name ?? '';
        let s = rolloutStatus(d);
        // The Deployment's status can run ahead of its ReplicaSet's (see replicaSetSettled): confirm with the ReplicaSet.
        if (s.done)
          s = replicaSetSettled(d, await kube.listReplicaSets(namespace, labelSelector(d.spec?.selector.matchLabels)));
        if (s.failed)
          throw await rolloutFailure(kube, namespace, name, `rollout of ${name} failed: ${s.message}`, opts.logLines);
        if (s.done) {
          pending.delete(name);
          done.set(name, {
            deployment: name,
            revision: revisionOf(d),
            images: containerImages(d.spec?.template),
            readyReplicas: d.status?.readyReplicas ?? 0,
            message: s.message,
          });
        } else {
          pending.set(name, s.message);
        }
      }
    } catch (err) {
      const transient = err instanceof ApplicationFailure && err.type === ErrorType.KubernetesUnavailable;
      if (!transient || ++blips > MAX_BLIPS) throw err;
    }
    if (!pending.size) return deployments.map((d) => done.get(d) as RolloutOutcome);
    runtime.heartbeat({ waiting: Object.fromEntries(pending), done: [...done.keys()] });
    if (Date.now() >= deadline) {
      const [first, message] = [...pending.entries()][0];
      const headline = `rollout of ${[...pending.keys()].join(', ')} did not finish within ${Math.round(opts.timeoutMs / 1000)}s: ${message}`;
      throw await rolloutFailure(kube, namespace, first, headline, opts.logLines, opts.retryableTimeout);
    }
    await sleep(Math.min(opts.pollMs, Math.max(0, deadline - Date.now())), signal);
  }
}
