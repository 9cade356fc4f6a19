/**
 * Rollback (runbook "Rollback Procedures" and "Database Rollback").
 *
 * Automatic, from the deploy saga: traffic back to stable first (canary
 * aborted, blue-green switched back), then the recorded previous images.
 * Manual: to the previous version or a given revision (as `kubectl rollout
 * undo` does, through ReplicaSets) or to a given version. For a service whose
 * Service selects a blue-green colour, the previous version is the other
 * colour: traffic switches back to it and is read back; a revision, a version,
 * or a previous version with no other colour left, go to the Deployment that
 * serves rather than the idle base one.
 *
 * Then the database: when migrations ran (automatic) or a restore was asked
 * for (manual), the workflow waits for a person: `approve` restores the
 * backup, `abort` keeps the database as it is, and the wait times out into
 * keeping it. Nothing restores a database without that approval.
 */
import { ApplicationFailure } from '@temporalio/common';
import { patched, workflowInfo } from '@temporalio/workflow';
import type { CanaryTarget } from '../activities/contracts';
import { ErrorType } from '../domain/errors';
import { colourTarget, imageReference, trafficService, trafficTarget, type RollbackPlan } from '../domain/plan';
import { policyOf } from '../domain/identity';
import { restoreOrder } from '../domain/waves';
import { long, short, traffic } from './activity-options';
import {
  AUDIT_PATCH,
  RESTORE_APPROVALS_PATCH,
  ROLLBACK_BLUE_GREEN_PATCH,
  ROLLBACK_CONFIRMS_HANDOVER_PATCH,
  ROLLBACK_LOCK_PATCH,
  ROLLBACK_PAST_FAILED_STEP_PATCH,
  WAVES_PATCH,
} from './patches';
import { Gate, peopleRules, verifiedFields, type PolicySource } from './support/gate';
import { notifierFor } from './support/notifier';
import { switchColourBack } from './support/colour-rollback';
import { decisionCommands, restoreFromBackup } from './support/database-restore';
import { signalTargetId, steer } from './support/steering';
import { rolledBack, secondsBetween } from './support/metrics';
import { recordApprovals, recordAudit } from './support/audit';
import { rollbackFacts } from '../domain/audit-facts';
import { describeError, errorType, nowIso, Tracker } from './support/tracker';
import {
  acquireEnvironmentLock,
  lockWorkflowId,
  releaseEnvironmentLock,
  type EnvironmentLock,
} from './environment-lock';
import { environmentBusy, refuseBadWorkflowId } from './support/lock';

import { failedRollback, REFUSALS, type RollbackResult, type RollbackWorkflowInput } from './rollback-outcome';

export type { AutomaticRollback, RollbackResult, RollbackWorkflowInput } from './rollback-outcome';

/** Workloads and traffic back first, then the database only on a person's approval. */
export async function rollbackWorkflow(input: RollbackWorkflowInput): Promise<RollbackResult> {
  const info = workflowInfo();
  // The deploy saga's rollback is named after its deployment's checked id (with a suffix that may pass 200 characters).
  refuseBadWorkflowId(info.workflowId, { prefixOnly: info.parent !== undefined });
  const auto = input.automatic;
  // A deployment's hand-over is confirmed before use (histories from before it acted on it as given).
  const confirms = patched(ROLLBACK_CONFIRMS_HANDOVER_PATCH);
  const t = new Tracker('rollback', {
    version: auto?.plan.previousVersion ?? input.toVersion ?? '(previous)',
    environment: auto?.plan.environment ?? input.environment ?? '(default)',
    strategy: 'rollback',
    ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
  });
  const status = t.status;
  const signalTarget = signalTargetId();

  // The deploy's plan, or the manual rollback's once resolved: who may decide, and how they prove it.
  let policySource: PolicySource | undefined = auto?.plan;
  const people = peopleRules(() => policySource);
  // Before this patch a restore opened on one approval whatever the environment required.
  const countsApprovals = patched(RESTORE_APPROVALS_PATCH);
  const required = () => (countsApprovals ? Math.max(1, people.required()) : 1);
  // The database decision: approve restores the backup (once enough distinct people approved), abort keeps it.
  let decision: { restore: boolean; by: string; note?: string } | undefined;
  const approvedBy: string[] = [];
  const gate = new Gate(t, {
    allowed: people.allowed,
    required,
    requester: people.requester,
    awaiting: () => decision === undefined,
    onApprove: (p) => {
      approvedBy.push(p.by);
      if (approvedBy.length >= required())
        decision = { restore: true, by: approvedBy.join(' and '), ...(p.note ? { note: p.note } : {}) };
    },
  });
  steer(
    t,
    {
      approve: (p) => gate.approve(p),
      abort: (p) => {
        if (!gate.isOpen || decision)
          return t.ignore(
            'abort',
            p.by,
            `a rollback runs to completion; abort only answers the database decision (phase ${status.phase})`,
            { reason: p.reason },
          );
        if (!people.allowed(p)) return t.ignore('abort', p.by, `${p.by} is not an approver for ${status.environment}`);
        decision = { restore: false, by: p.by, note: p.reason };
        status.aborts.push({
          signal: 'abort',
          by: p.by,
          at: nowIso(),
          reason: `keep the database: ${p.reason}`,
          ...verifiedFields(p),
        });
      },
    },
    { idle: (name) => `a rollback has nothing to ${name}`, policy: people.policy },
  );

  // A manual rollback learns the project from its plan; until then notifications name none.
  let project = auto?.plan.project ?? '';
  let uiUrl = auto?.plan.uiUrl;
  // Where a restore runs: the plan's I/O task queue, when it names one.
  let ioTaskQueue = auto?.plan.ioTaskQueue;
  const notify = notifierFor(t, signalTarget, () => ({ project, ...(uiUrl ? { uiUrl } : {}) }));

  let lock: EnvironmentLock | undefined = undefined;
  /** A manual rollback's plan, once resolved: who asked, what to, for the audit record. */
  let resolved: RollbackPlan | undefined;
  /** The environment is the configuration's: a deployment's hand-over confirmed, or a manual rollback resolved. */
  let trusted = false;
  /** How it ended, for the audit record written once the lock is released. */
  let ended: RollbackResult | undefined;
  try {
    let workloads = '';
    let switchedBack: RollbackResult['blueGreen'];
    let backupKey: string | undefined;
    let askForDecision: boolean;
    let decisionTimeoutMs: number;
    try {
      if (auto) {
        let records = auto.records;
        if (confirms) {
          // Only a deployment hands over what to undo; anyone else starts a manual rollback, resolved from config.
          if (!info.parent)
            throw ApplicationFailure.create({
              type: ErrorType.ParentRequired,
              nonRetryable: true,
              message:
                'automatic input runs only as a deployment\'s child: for a manual rollback leave out "automatic" (deployctl rollback)',
            });
          const confirmed = await t.step(
            'confirm hand-over',
            () =>
              short.confirmRollback({
                plan: auto.plan,
                records: auto.records,
                ...(auto.canary ? { canary: auto.canary } : {}),
                ...(auto.blueGreen ? { blueGreen: auto.blueGreen } : {}),
                ...(auto.earlierBlueGreen ? { earlierBlueGreen: auto.earlierBlueGreen } : {}),
                ...(auto.backupKey !== undefined ? { backupKey: auto.backupKey } : {}),
              }),
            (r) => `${r.records.length} records as configured`,
          );
          records = confirmed.records;
        }
        trusted = true;
        t.identify(
          auto.plan.previousVersion ?? '(previous)',
          auto.plan.environment,
          'rollback',
          auto.plan.searchAttributes,
        );
        t.governedBy(policyOf(auto.plan), auto.plan.requestedVia);
        t.phase('rolling-back');
        // This is the saga's compensation: a step that fails does not stop the ones after it (design §3.9),
        // so a traffic API that keeps failing cannot leave the other services on the new images.
        const failed: string[] = [];
        const undo = async <T>(
          name: string,
          fn: () => Promise<T>,
          detail?: (r: T) => string | undefined,
        ): Promise<void> => {
          try {
            await t.step(name, fn, detail);
          } catch (err) {
            // Histories from before 4841158 ended the rollback at the first failed step.
            if (!patched(ROLLBACK_PAST_FAILED_STEP_PATCH)) throw err;
            failed.push(`${name}: ${describeError(err)}`);
          }
        };
        // Traffic first: it is what users feel.
        if (auto.canary) await undo('abort canary', () => traffic.abortCanary(auto.canary!));
        if (auto.blueGreen) {
          const bg = auto.blueGreen;
          await undo(`switch traffic back to ${bg.back}`, () =>
            long.abortBlueGreen({ target: bg.target, colour: bg.back }),
          );
        }
        for (const bg of [...(auto.earlierBlueGreen ?? [])].reverse())
          await undo(`switch traffic back to ${bg.back}${bg.target.cluster ? ` in ${bg.target.cluster}` : ''}`, () =>
            long.abortBlueGreen({ target: bg.target, colour: bg.back }),
          );
        const restore = (rs: typeof records, label: string, cluster?: string) =>
          undo(
            `restore previous images${label ? ` (${label})` : ''}`,
            () =>
              long.rollbackImages({
                workflowId: signalTarget,
                environment: auto.plan.environment,
                ...(cluster ? { cluster } : {}),
                namespace: auto.plan.namespace,
                records: rs,
                timeoutMs: auto.plan.rolloutTimeoutMs,
              }),
            (r) => r.deployments.map((d) => `${d.deployment}@${d.revision ?? '?'}`).join(', '),
          );
        const ordered = (auto.plan.waves?.length ?? 0) > 1 || (auto.plan.clusters?.length ?? 0) > 0;
        if (records.length && ordered && patched(WAVES_PATCH)) {
          // Clusters and waves rolled out in order come back last first, each before what it depended on.
          for (const g of restoreOrder(auto.plan, records)) await restore(g.records, g.label, g.cluster);
        } else if (records.length) await restore(records, '');
        // Workloads not fully back: no database decision (an old schema under new images is worse).
        if (failed.length) {
          workloads = 'not fully restored';
          throw new Error(failed.join('; '));
        }
        workloads =
          records.length || auto.canary || auto.blueGreen
            ? `${records.length} deployments back to their previous images${auto.canary ? ', canary aborted' : ''}${auto.blueGreen ? `, traffic back on ${auto.blueGreen.back}` : ''}`
            : 'nothing had rolled out';
        backupKey = auto.backupKey;
        askForDecision = (auto.migrationsApplied.length > 0 || auto.databaseChanged === true) && !!backupKey;
        decisionTimeoutMs = auto.plan.databaseDecisionTimeoutMs;
      } else {
        const plan: RollbackPlan = await t.step('resolve rollback', () =>
          short.resolveRollback({ workflowId: info.workflowId, input }),
        );
        policySource = plan;
        resolved = plan;
        trusted = true;
        project = plan.project;
        uiUrl = plan.uiUrl;
        ioTaskQueue = plan.ioTaskQueue;
        t.identify(
          plan.target.kind === 'version'
            ? plan.target.version
            : plan.target.kind === 'revision'
              ? `revision ${plan.target.revision}`
              : '(previous)',
          plan.environment,
          'rollback',
          plan.searchAttributes,
        );
        t.governedBy(policyOf(plan), plan.requestedVia);
        // One change to an environment at a time: a manual rollback takes the lock a deployment takes.
        if (patched(ROLLBACK_LOCK_PATCH)) {
          lock = await acquireEnvironmentLock(plan.environment, info.workflowId);
          if (!lock) throw new Error(await environmentBusy(plan.environment));
          t.note('lock', `**holds** the environment lock ${lockWorkflowId(plan.environment)}`);
        }
        // A manual rollback is announced as a deployment is (histories from before it were not).
        if (patched(AUDIT_PATCH))
          await notify(
            'started',
            `rollback of ${plan.environment} to ${status.version} started by ${plan.requestedBy}${input.reason ? `: ${input.reason}` : ''}`,
          );
        t.phase('rolling-back');
        // abortCanary reads the Service and the traffic settings only: no new image, and the container as it was always sent.
        const stable: CanaryTarget = {
          ...trafficTarget({ ...plan, version: status.version }, signalTarget, ''),
          container: plan.traffic.service,
        };
        // Any canary traffic goes back to stable before the images change.
        if (plan.services.some((s) => s.name === plan.traffic.service))
          await t.step('traffic to stable', () => traffic.abortCanary(stable));
        // A Service that selects a blue-green colour: the Deployment that serves is that colour's, and the
        // previous version is the other colour's (runbook "Blue-Green": switch the Service back).
        const served = trafficService(plan);
        /** The traffic service's Deployment as the rest of the rollback acts on it (undefined: left out). */
        let servingDeployment: string | undefined = served?.deployment;
        if (served && patched(ROLLBACK_BLUE_GREEN_PATCH)) {
          const c = await switchColourBack(t, colourTarget(stable, served.deployment), served, {
            toPrevious: plan.target.kind === 'previous',
          });
          servingDeployment = c.servingDeployment;
          switchedBack = c.switchedBack;
          if (c.switchedBack) workloads = c.workloads;
        }
        /** A service's Deployment as this rollback acts on it: for the traffic service, the one that serves. */
        const acted = plan.services
          .map((s) => ({ ...s, deployment: s.name === served?.name ? servingDeployment : s.deployment }))
          .filter((s): s is typeof s & { deployment: string } => s.deployment !== undefined);
        const joined = (rest: string) => [workloads, rest].filter(Boolean).join(', ');
        if (plan.target.kind === 'version') {
          const version = plan.target.version;
          // From the registry, image and version, which every recorded rollback plan has.
          const updates = acted.map((s) => ({
            deployment: s.deployment,
            container: s.container,
            image: imageReference(plan.registry, s.image, version),
          }));
          await t.step(`images to ${version}`, () =>
            short.patchImages({
              workflowId: signalTarget,
              environment: plan.environment,
              namespace: plan.namespace,
              version,
              updates,
            }),
          );
          const deployments = acted.map((s) => s.deployment);
          const r = await t.step('wait for rollout', () =>
            long.waitForRollout({
              environment: plan.environment,
              namespace: plan.namespace,
              deployments,
              timeoutMs: plan.rolloutTimeoutMs,
            }),
          );
          workloads = joined(r.deployments.map((d) => `${d.deployment}@${d.revision ?? '?'}`).join(', '));
        } else {
          const toRevision = plan.target.kind === 'revision' ? plan.target.revision : undefined;
          // As `kubectl rollout undo`, one Deployment at a time, each awaited.
          const done: string[] = [];
          for (const d of acted.map((s) => s.deployment)) {
            const r = await t.step(
              toRevision ? `undo ${d} to revision ${toRevision}` : `undo ${d}`,
              () =>
                long.undoRollout({
                  workflowId: signalTarget,
                  environment: plan.environment,
                  namespace: plan.namespace,
                  deployment: d,
                  timeoutMs: plan.rolloutTimeoutMs,
                  ...(toRevision ? { toRevision } : {}),
                }),
              (x) => `revision ${x.toRevision}${x.skipped ? ' (already there)' : ''}`,
            );
            done.push(`${d}@${r.revision ?? r.toRevision}`);
          }
          workloads = joined(done.join(', '));
        }
        backupKey = plan.backupKey;
        askForDecision = plan.restoreDatabase && !!backupKey;
        if (plan.restoreDatabase && !backupKey) t.skip('database restore', 'no backup found to restore from');
        decisionTimeoutMs = plan.databaseDecisionTimeoutMs;
      }
      // Workloads and traffic are back: stable, whatever the database decision will be.
      status.timeline = { stableAt: nowIso() };
    } catch (err) {
      const reason = describeError(err);
      // Refused before anything changed (a failure of the input, not of the platform): deployctl exits 2.
      const refused = confirms && !workloads && REFUSALS.includes(errorType(err));
      await notify('failed', `rollback on ${status.environment} ${refused ? 'refused' : 'failed'}: ${reason}`);
      t.finish('failed', reason);
      // An environment named by input the configuration never confirmed is no label: anyone may start a workflow.
      if (!auto) rolledBack(trusted ? status.environment : 'unknown', 'manual', refused ? 'refused' : 'failed', NaN);
      const failure: RollbackResult = {
        outcome: 'failed',
        workloads: workloads || 'not restored',
        database: 'unchanged',
        ...(switchedBack ? { blueGreen: switchedBack } : {}),
        reason,
        ...(refused ? { refused: 'invalid-input' as const } : {}),
        status,
      };
      ended = failure;
      return failedRollback(failure);
    }

    let database: RollbackResult['database'] = 'unchanged';
    let restore: RollbackResult['restore'];
    let attention: string | undefined;
    if (askForDecision && backupKey) {
      const key = backupKey;
      const commands = decisionCommands(signalTarget, key, people.policy());
      const answered = await gate.wait({
        id: 'database',
        reason: 'restore the database from the backup',
        phase: 'awaiting-db-decision',
        waitingFor: `a decision on the database: approve restores ${key}, abort keeps it as it is`,
        timeoutMs: decisionTimeoutMs,
        commands,
        announce: () =>
          notify(
            'rolled-back',
            `${workloads}. Database: approve to restore ${key}, abort to keep it (keeps it after ${Math.round(decisionTimeoutMs / 60_000)} min)`,
            { commands },
          ),
        interrupted: () => decision !== undefined,
      });
      if (!answered) {
        database = 'kept (decision timed out)';
        t.skip('database restore', 'no decision before the timeout: the database is kept as it is');
      } else if (decision?.restore) {
        const r = await restoreFromBackup(t, {
          ioTaskQueue,
          workflowId: signalTarget,
          environment: status.environment,
          key,
          ...(auto?.backupSha256 ? { sha256: auto.backupSha256 } : {}),
        });
        database = r.database;
        restore = r.restore;
        attention = r.attention;
        if (r.error) status.error = r.error;
      } else {
        database = 'kept';
        t.skip('database restore', `kept as it is by ${decision?.by ?? 'unknown'}`);
      }
    }
    const ok = database !== 'restore failed';
    await notify(
      ok ? 'rolled-back' : 'failed',
      `rollback on ${status.environment}: ${workloads}; ${attention ?? `database ${database}`}`,
      attention ? { attention } : {},
    );
    t.finish(ok ? 'rolled-back' : 'failed', status.error);
    // An automatic rollback is counted by its deployment, which knows when the failure was.
    if (!auto)
      rolledBack(
        status.environment,
        'manual',
        ok ? 'rolled-back' : 'failed',
        secondsBetween(status.startedAt, status.timeline?.stableAt),
      );
    const result: RollbackResult = {
      outcome: ok ? 'rolled-back' : 'failed',
      workloads,
      database,
      ...(restore ? { restore } : {}),
      ...(attention ? { attention } : {}),
      ...(switchedBack ? { blueGreen: switchedBack } : {}),
      ...(status.error ? { reason: status.error } : {}),
      status,
    };
    ended = result;
    return ok ? result : failedRollback(result);
  } finally {
    if (lock) {
      await releaseEnvironmentLock(lock);
      t.note('lock', undefined);
    }
    // The database decision's approvals, then the rollback, once the environment is free: a slow store holds no one
    // up. A refused rollback changed nothing, and its input (environment, who) was never confirmed: no record.
    if (ended && trusted && !ended.refused && (await recordApprovals(status.environment, status.approvals, t)))
      await recordAudit(status.environment, 'rollback', 'rollback', rollbackFacts(status, ended, resolved), t);
  }
}
