/**
 * Runbook "Roll out", wave by wave: the services a wave holds get their new
 * images by a rolling update (the traffic service by its strategy, in its
 * wave), the wave's rollout is awaited, and every wave but the last passes
 * its checks before the next starts. Without an order in the config there is
 * one wave of every service, the rollout as it always was. From here on a
 * failure is rolled back; the rollback restores the waves last first.
 */
import { ApplicationFailure } from '@temporalio/common';
import { patched, sleep } from '@temporalio/workflow';
import { formatDuration } from '../domain/duration';
import { policyOf, proofFlags } from '../domain/identity';
import { shellCommand } from '../domain/shell';
import type { SignalRecord } from '../domain/status';
import type { ImageUpdate, ReferenceRename } from '../activities/contracts';
import { ErrorType } from '../domain/errors';
import { releaseImage, type DeployPlan, type PlannedService } from '../domain/plan';
import type { WaveStatus } from '../domain/status';
import { long, short } from './activity-options';
import { changedBeforeFailure, shiftTraffic, type Release, type RolloutStart } from './deploy-steps';
import { CONFIG_SNAPSHOTS_PATCH, PARTIAL_IMAGE_UNDO_PATCH, WAVES_PATCH } from './patches';
import type { AutomaticRollback } from './rollback';
import { approvalCommands, type Gate } from './support/gate';
import { nowIso } from './support/tracker';
import { verifyRelease } from './verify-release';

/** The plan's waves when it has more than one (and the history runs them); otherwise none: one wave. */
export function plannedWaves(p: Pick<DeployPlan, 'waves'>): string[][] | undefined {
  return p.waves && p.waves.length > 1 && patched(WAVES_PATCH) ? p.waves : undefined;
}

/** What the people who may steer it answer between two clusters (deploy.ts owns the gate and the abort). */
export interface BetweenClusters {
  gate: Gate;
  abortRequest: () => SignalRecord | undefined;
  notify: (kind: 'awaiting-approval', text: string, extra: { commands: string[] }) => Promise<void>;
}

/**
 * Every cluster of the environment in order (its one cluster when it names
 * none), each a wave of the whole service order; between two, the
 * environment's pause and approval. Returns what the final verification
 * compares against: the last cluster's start.
 */
export async function rollOut(rel: Release, between?: BetweenClusters): Promise<RolloutStart> {
  const { t, p } = rel;
  t.phase('rolling-out');
  rel.rolloutBegun = true;
  t.status.timeline = { ...t.status.timeline, rolloutStartedAt: nowIso() };
  const clusters = p.clusters?.length && patched(WAVES_PATCH) ? p.clusters : [undefined];
  const waves = plannedWaves(p) ?? [p.services.map((s) => s.name)];
  const states: WaveStatus[] = clusters.flatMap((cluster) =>
    waves.map((services, i) => ({ wave: i + 1, ...(cluster ? { cluster } : {}), services, state: 'pending' as const })),
  );
  if (states.length > 1) t.status.waves = states;
  let start: RolloutStart | undefined;
  for (const [c, cluster] of clusters.entries()) {
    if (c > 0 && p.betweenClusters) await waitBetweenClusters(rel, clusters[c - 1]!, cluster!, between);
    start = await beginCluster(rel, cluster);
    for (const [i, names] of waves.entries()) {
      const state = states[c * waves.length + i];
      const label = labelOf(cluster, waves.length > 1 ? `wave ${i + 1} of ${waves.length}` : undefined);
      try {
        state.state = 'rolling-out';
        state.startedAt = nowIso();
        await rollWave(
          rel,
          p.services.filter((s) => names.includes(s.name)),
          label,
          cluster,
        );
        // The last wave of the last cluster is checked by the verification of the whole release that follows.
        if (i < waves.length - 1 || c < clusters.length - 1) {
          state.state = 'checking';
          await checkWave(rel, start, names, label);
        }
        state.state = 'done';
        state.endedAt = nowIso();
      } catch (err) {
        state.state = 'failed';
        state.endedAt = nowIso();
        throw err;
      }
    }
  }
  return start!;
}

/** " (region-a, wave 1 of 2)", " (wave 1 of 2)", " (region-a)" or "": what names a step of one wave. */
function labelOf(cluster: string | undefined, wave: string | undefined): string {
  const parts = [cluster, wave].filter((x): x is string => !!x);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** Restart counts and the platform's baseline before a cluster's rollout: what its checks compare against. */
async function beginCluster({ p }: Release, cluster: string | undefined): Promise<RolloutStart> {
  const [restartsBefore, baseline] = await Promise.all([
    short
      .podRestarts({
        environment: p.environment,
        ...(cluster ? { cluster } : {}),
        namespace: p.namespace,
        deployments: p.services.map((s) => s.deployment),
      })
      .catch(() => ({})),
    short.platformBaseline({ environment: p.environment }).catch(() => undefined),
  ]);
  return { ...(cluster ? { cluster } : {}), restartsBefore, ...(baseline ? { baseline } : {}), since: nowIso() };
}

/** The environment's pause between two clusters (time to watch the first), then its approval when it asks for one. */
async function waitBetweenClusters(
  rel: Release,
  done: string,
  next: string,
  between: BetweenClusters | undefined,
): Promise<void> {
  const { t, p, workflowId } = rel;
  const rule = p.betweenClusters!;
  if (rule.pauseMs > 0) {
    t.phase('soaking');
    const abortCommand = `${shellCommand(['deployctl', 'abort', workflowId, '--by'])} <name> --reason <text>${proofFlags(policyOf(p))}`;
    t.waitFor(`a ${formatDuration(rule.pauseMs)} pause in ${done} before ${next}`, rule.pauseMs, [abortCommand]);
    // An abort cancels the rollout's scope, and with it this timer.
    await sleep(rule.pauseMs, { summary: `pause in ${done} before ${next}` });
    t.doneWaiting();
    await t.step(
      `pause before ${next}`,
      () => Promise.resolve(rule.pauseMs),
      (ms) => `${formatDuration(ms)} in ${done}`,
    );
  }
  if (!rule.approval || !between) return;
  const commands = approvalCommands(workflowId, policyOf(p));
  const waitingFor = `approval to roll ${p.version} out to ${next} (${done} is done)`;
  await between.gate.require({
    id: `cluster-${next}`,
    reason: `roll out to ${next}`,
    phase: 'awaiting-approval',
    waitingFor,
    timeoutMs: rule.approvalTimeoutMs,
    commands,
    announce: () =>
      between.notify('awaiting-approval', `${p.project} ${p.version} on ${p.environment}: ${waitingFor}`, { commands }),
    abortRequest: between.abortRequest,
    timedOut: `no approval to roll out to ${next} within ${formatDuration(rule.approvalTimeoutMs)}`,
  });
  t.phase('rolling-out');
}

/**
 * One wave: its services but the traffic service by a rolling update (all of
 * them for the rolling strategy), then the traffic service by its strategy
 * when the wave holds it. `label` names the wave in the steps' names.
 */
async function rollWave(
  rel: Release,
  services: PlannedService[],
  label: string,
  cluster: string | undefined,
): Promise<void> {
  const { t, p, workflowId, images, undo } = rel;
  const rolling = p.strategy === 'rolling' ? services : services.filter((s) => s.name !== p.traffic.service);
  if (rolling.length) {
    const moved = await snapshotConfiguration(rel, rolling, label, cluster);
    const updates: ImageUpdate[] = rolling.map((s) => {
      const references = moved.get(s.deployment);
      return {
        deployment: s.deployment,
        container: s.container,
        image: releaseImage(s, images),
        ...(references?.length ? { references } : {}),
      };
    });
    let updated: { records: AutomaticRollback['records'] };
    try {
      updated = await t.step(
        `update images${label}`,
        () =>
          short.patchImages({
            workflowId,
            environment: p.environment,
            ...(cluster ? { cluster } : {}),
            namespace: p.namespace,
            version: p.version,
            updates,
          }),
        (r) => `${r.records.filter((x) => x.changed).length} deployments changed`,
      );
    } catch (err) {
      // Some Deployments may have changed before one failed: the saga must undo those too.
      if (patched(PARTIAL_IMAGE_UNDO_PATCH))
        undo.records.push(...inCluster(changedBeforeFailure(err, rolling), cluster));
      throw err;
    }
    undo.records.push(...inCluster(updated.records, cluster));
    await t.step(
      `wait for rollout${label}`,
      () =>
        long.waitForRollout({
          environment: p.environment,
          ...(cluster ? { cluster } : {}),
          namespace: p.namespace,
          deployments: rolling.map((s) => s.deployment),
          timeoutMs: p.rolloutTimeoutMs,
        }),
      (r) => r.deployments.map((d) => `${d.deployment}@${d.revision ?? '?'}`).join(', '),
    );
  }
  if (p.strategy !== 'rolling' && services.some((s) => s.name === p.traffic.service)) await shiftTraffic(rel, cluster);
}

/**
 * Configuration versioned with the release: the wave's ConfigMaps from the
 * release commit and the Secrets its Deployments reference, copied into
 * immutable content-named snapshots. Returns each Deployment's references to
 * move, which go in the same write as its image (patchImages), so the
 * ReplicaSet of this revision names exactly the configuration it ran with.
 */
async function snapshotConfiguration(
  rel: Release,
  services: PlannedService[],
  label: string,
  cluster: string | undefined,
): Promise<Map<string, ReferenceRename[]>> {
  const { t, p, workflowId } = rel;
  if (!patched(CONFIG_SNAPSHOTS_PATCH)) return new Map();
  const r = await t.step(
    `configuration snapshots${label}`,
    () =>
      short.snapshotConfiguration({
        workflowId,
        environment: p.environment,
        ...(cluster ? { cluster } : {}),
        namespace: p.namespace,
        commit: p.commit,
        deployments: services.map((s) => ({ deployment: s.deployment, configMaps: s.configMaps ?? [] })),
      }),
    (x) => {
      const n = x.deployments.reduce((k, d) => k + d.references.length, 0);
      return n
        ? `${n} references: ${x.deployments.flatMap((d) => d.references.map((c) => c.to)).join(', ')}`
        : 'none referenced';
    },
  );
  const moved = new Map<string, ReferenceRename[]>();
  for (const d of r.deployments) {
    const changed = d.references.filter((c) => c.from !== c.to);
    moved.set(
      d.deployment,
      changed.map((c) => ({ kind: c.kind, from: c.from, to: c.to })),
    );
    rel.t.status.configuration = [
      ...(rel.t.status.configuration ?? []),
      ...changed.map((c) => ({
        ...(cluster ? { cluster } : {}),
        deployment: d.deployment,
        kind: c.kind,
        from: c.from,
        to: c.to,
        hash: c.hash,
      })),
    ];
  }
  return moved;
}

/**
 * After a success: snapshots that neither a Deployment nor one of the
 * ReplicaSets it keeps (revisionHistoryLimit) references are deleted, in
 * every cluster. Best effort: what is left is pruned by the next release.
 */
export async function pruneConfigSnapshots(rel: Release): Promise<void> {
  const { t, p } = rel;
  if (!patched(CONFIG_SNAPSHOTS_PATCH)) return;
  for (const cluster of p.clusters?.length ? p.clusters : [undefined]) {
    await t
      .step(
        `prune configuration snapshots${cluster ? ` (${cluster})` : ''}`,
        () =>
          short.pruneConfigSnapshots({
            environment: p.environment,
            ...(cluster ? { cluster } : {}),
            namespace: p.namespace,
            deployments: p.services.map((s) => s.deployment),
          }),
        (x) => {
          const deleted = x.deployments.flatMap((d) => d.deleted);
          return deleted.length ? `deleted ${deleted.join(', ')}` : 'nothing to delete';
        },
      )
      .catch(() => undefined);
  }
}

/** Records of changes in `cluster`, so the rollback restores them there. */
function inCluster<R extends object>(records: R[], cluster: string | undefined): (R & { cluster?: string })[] {
  return cluster ? records.map((r) => ({ ...r, cluster })) : records;
}

/**
 * A wave's checks before the next wave starts: its pods Ready, not
 * restarting and without error lines in their logs, and the platform's
 * health endpoint. The traffic service's canary or blue-green has analysed
 * its own wave already.
 */
async function checkWave(rel: Release, start: RolloutStart, names: string[], label: string): Promise<void> {
  const { t, p, workflowId, liveDeployments } = rel;
  const deployments = p.services
    .filter((s) => names.includes(s.name))
    .map((s) => liveDeployments.get(s.name) ?? s.deployment);
  const verdict = await verifyRelease(
    t,
    {
      workflowId,
      plan: p,
      ...(start.cluster ? { cluster: start.cluster } : {}),
      deployments,
      restartsBefore: start.restartsBefore,
      since: start.since,
    },
    { checks: ['health check', 'kubernetes health'], label },
  );
  if (!verdict.ok)
    throw ApplicationFailure.create({
      type: ErrorType.VerificationFailed,
      message: `${label.trim().replace(/^\(|\)$/g, '')}: ${names.join(', ')}: ${verdict.reason}`,
      nonRetryable: true,
    });
}
