/**
 * Runbook "Roll out", wave by wave: the services a wave holds get their new
 * images by a rolling update (the traffic service by its strategy, in its
 * wave), the wave's rollout is awaited, and every wave but the last passes
 * its checks before the next starts. Without an order in the config there is
 * one wave of every service, the rollout as it always was. From here on a
 * failure is rolled back; the rollback restores the waves last first.
 */
import { ApplicationFailure } from '@temporalio/common';
import { patched } from '@temporalio/workflow';
import type { ImageUpdate } from '../activities/contracts';
import { ErrorType } from '../domain/errors';
import { releaseImage, type DeployPlan, type PlannedService } from '../domain/plan';
import type { WaveStatus } from '../domain/status';
import { long, short } from './activity-options';
import { changedBeforeFailure, shiftTraffic, type Release, type RolloutStart } from './deploy-steps';
import { PARTIAL_IMAGE_UNDO_PATCH, WAVES_PATCH } from './patches';
import type { AutomaticRollback } from './rollback';
import { nowIso } from './support/tracker';
import { verifyRelease } from './verify-release';

/** The plan's waves when it has more than one (and the history runs them); otherwise none: one wave. */
export function plannedWaves(p: Pick<DeployPlan, 'waves'>): string[][] | undefined {
  return p.waves && p.waves.length > 1 && patched(WAVES_PATCH) ? p.waves : undefined;
}

export async function rollOut(rel: Release): Promise<RolloutStart> {
  const { t, p } = rel;
  t.phase('rolling-out');
  rel.rolloutBegun = true;
  const [restartsBefore, baseline] = await Promise.all([
    short
      .podRestarts({
        environment: p.environment,
        namespace: p.namespace,
        deployments: p.services.map((s) => s.deployment),
      })
      .catch(() => ({})),
    short.platformBaseline({ environment: p.environment }).catch(() => undefined),
  ]);
  const start: RolloutStart = { restartsBefore, ...(baseline ? { baseline } : {}), since: nowIso() };
  const waves = plannedWaves(p);
  if (!waves) {
    await rollWave(rel, p.services, '');
    return start;
  }
  const states: WaveStatus[] = waves.map((services, i) => ({ wave: i + 1, services, state: 'pending' }));
  t.status.waves = states;
  for (const [i, names] of waves.entries()) {
    const state = states[i];
    const label = ` (wave ${i + 1} of ${waves.length})`;
    try {
      state.state = 'rolling-out';
      state.startedAt = nowIso();
      await rollWave(
        rel,
        p.services.filter((s) => names.includes(s.name)),
        label,
      );
      // The last wave is checked by the verification of the whole release that follows.
      if (i < waves.length - 1) {
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
  return start;
}

/**
 * One wave: its services but the traffic service by a rolling update (all of
 * them for the rolling strategy), then the traffic service by its strategy
 * when the wave holds it. `label` names the wave in the steps' names.
 */
async function rollWave(rel: Release, services: PlannedService[], label: string): Promise<void> {
  const { t, p, workflowId, images, undo } = rel;
  const rolling = p.strategy === 'rolling' ? services : services.filter((s) => s.name !== p.traffic.service);
  if (rolling.length) {
    const updates: ImageUpdate[] = rolling.map((s) => ({
      deployment: s.deployment,
      container: s.container,
      image: releaseImage(s, images),
    }));
    let updated: { records: AutomaticRollback['records'] };
    try {
      updated = await t.step(
        `update images${label}`,
        () =>
          short.patchImages({
            workflowId,
            environment: p.environment,
            namespace: p.namespace,
            version: p.version,
            updates,
          }),
        (r) => `${r.records.filter((x) => x.changed).length} deployments changed`,
      );
    } catch (err) {
      // Some Deployments may have changed before one failed: the saga must undo those too.
      if (patched(PARTIAL_IMAGE_UNDO_PATCH)) undo.records.push(...changedBeforeFailure(err, rolling));
      throw err;
    }
    undo.records.push(...updated.records);
    await t.step(
      `wait for rollout${label}`,
      () =>
        long.waitForRollout({
          environment: p.environment,
          namespace: p.namespace,
          deployments: rolling.map((s) => s.deployment),
          timeoutMs: p.rolloutTimeoutMs,
        }),
      (r) => r.deployments.map((d) => `${d.deployment}@${d.revision ?? '?'}`).join(', '),
    );
  }
  if (p.strategy !== 'rolling' && services.some((s) => s.name === p.traffic.service)) await shiftTraffic(rel);
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
      deployments,
      restartsBefore: start.restartsBefore,
      since: start.since,
    },
    { checks: ['health check', 'kubernetes health'], label },
  );
  if (!verdict.ok)
    throw ApplicationFailure.create({
      type: ErrorType.VerificationFailed,
      message: `${label.trim().replace(/^\(|\)$/g, '')} (${names.join(', ')}): ${verdict.reason}`,
      nonRetryable: true,
    });
}
