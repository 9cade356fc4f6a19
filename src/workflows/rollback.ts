/**
 * Rollback (runbook "Rollback Procedures" and "Database Rollback").
 *
 * Automatic, from the deploy saga: traffic back to stable first (canary
 * aborted, blue-green switched back), then the recorded previous images.
 * Manual: to the previous version or a given revision (as `kubectl rollout
 * undo` does, through ReplicaSets) or to a given version.
 *
 * Then the database: when migrations ran (automatic) or a restore was asked
 * for (manual), the workflow waits for a person: `approve` restores the
 * backup, `abort` keeps the database as it is, and the wait times out into
 * keeping it. Nothing restores a database without that approval.
 */
import { condition, log, setHandler, workflowInfo } from '@temporalio/workflow';
import type { BlueGreenTarget, CanaryTarget, Colour, DeploymentRecord, NotificationEvent } from '../activities/contracts';
import type { RollbackInput } from '../domain/input';
import type { DeployPlan, RollbackPlan } from '../domain/plan';
import { checkSignal, isAllowedApprover, type AbortPayload, type ApprovePayload } from '../domain/signals';
import type { DeploymentStatus } from '../domain/status';
import { long, notifier, short, traffic } from './activity-options';
import { abortSignal, approveSignal, pauseSignal, promoteSignal, resumeSignal } from './messages';
import { describeError, nowIso, Tracker } from './tracker';

/** What the deploy saga hands over: everything it changed that can be undone. */
export interface AutomaticRollback {
  plan: DeployPlan;
  /** What the Deployments the deployment changed ran before. */
  records: Pick<DeploymentRecord, 'deployment' | 'previousImages' | 'previousVersion'>[];
  /** A canary to abort (weight back to stable 100, canary scaled to zero). */
  canary?: CanaryTarget;
  /** A blue-green switch to undo: traffic back to the colour that served before. */
  blueGreen?: { target: BlueGreenTarget; back: Colour };
  backupKey?: string;
  migrationsApplied: string[];
  reason: string;
}

export interface RollbackWorkflowInput extends RollbackInput {
  automatic?: AutomaticRollback;
}

export interface RollbackResult {
  outcome: 'rolled-back' | 'failed';
  workloads: string;
  database: 'restored' | 'kept' | 'kept (decision timed out)' | 'unchanged' | 'restore failed';
  reason?: string;
  status: DeploymentStatus;
}

export async function rollbackWorkflow(input: RollbackWorkflowInput): Promise<RollbackResult> {
  const info = workflowInfo();
  const auto = input.automatic;
  const t = new Tracker('rollback', {
    version: auto?.plan.previousVersion ?? input.toVersion ?? '(previous)',
    environment: auto?.plan.environment ?? input.environment ?? '(default)',
    strategy: 'rollback',
    ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
  });
  const status = t.status;
  // People signal the deploy workflow when there is one; it forwards to us.
  const signalTarget = info.parent?.workflowId ?? info.workflowId;

  let approvers: string[] = auto?.plan.approvers ?? [];
  let decisionOpen = false;
  let decision: { restore: boolean; by: string; note?: string } | undefined;

  setHandler(approveSignal, (payload: unknown) => {
    const c = checkSignal<ApprovePayload>('approve', payload);
    if (!c.ok) return t.ignore('approve', c.by, c.reason);
    if (!decisionOpen || decision) return t.ignore('approve', c.value.by, `nothing is awaiting approval (phase ${status.phase})`);
    if (!isAllowedApprover(c.value.by, approvers)) return t.ignore('approve', c.value.by, `${c.value.by} is not an approver for ${status.environment}`);
    decision = { restore: true, by: c.value.by, ...(c.value.note ? { note: c.value.note } : {}) };
    status.approvals.push({ signal: 'approve', by: c.value.by, at: nowIso(), reason: 'restore the database from the backup', ...(c.value.note ? { note: c.value.note } : {}) });
  });
  setHandler(abortSignal, (payload: unknown) => {
    const c = checkSignal<AbortPayload>('abort', payload);
    if (!c.ok) return t.ignore('abort', c.by, c.reason);
    if (!decisionOpen || decision) return t.ignore('abort', c.value.by, `a rollback runs to completion; abort only answers the database decision (phase ${status.phase})`, { reason: c.value.reason });
    if (!isAllowedApprover(c.value.by, approvers)) return t.ignore('abort', c.value.by, `${c.value.by} is not an approver for ${status.environment}`);
    decision = { restore: false, by: c.value.by, note: c.value.reason };
    status.aborts.push({ signal: 'abort', by: c.value.by, at: nowIso(), reason: `keep the database: ${c.value.reason}` });
  });
  for (const [def, name] of [
    [pauseSignal, 'pause'],
    [resumeSignal, 'resume'],
    [promoteSignal, 'promote'],
  ] as const) {
    setHandler(def, (payload: unknown) => {
      const c = checkSignal<{ by: string }>(name, payload);
      t.ignore(name, c.ok ? c.value.by : c.by, c.ok ? `a rollback has nothing to ${name}` : c.reason);
    });
  }

  let project = auto?.plan.project ?? '';
  let uiUrl = auto?.plan.uiUrl;
  const notify = async (kind: NotificationEvent['kind'], text: string, commands?: string[]): Promise<void> => {
    try {
      const r = await notifier.notify({ kind, workflowId: signalTarget, project, environment: status.environment, version: status.version, text, ...(uiUrl ? { uiUrl } : {}), ...(commands ? { commands } : {}) });
      status.notificationFailures += r.failed;
    } catch (err) {
      status.notificationFailures += 1;
      log.warn('notification failed', { error: describeError(err) });
    }
  };

  let workloads = '';
  let backupKey: string | undefined;
  let askForDecision: boolean;
  let decisionTimeoutMs: number;
  try {
    if (auto) {
      t.identify(auto.plan.previousVersion ?? '(previous)', auto.plan.environment, 'rollback', auto.plan.searchAttributes);
      t.phase('rolling-back');
      // This is the saga's compensation: a step that fails does not stop the ones after it (design §3.9),
      // so a traffic API that keeps failing cannot leave the other services on the new images.
      const failed: string[] = [];
      const undo = async <T>(name: string, fn: () => Promise<T>, detail?: (r: T) => string | undefined): Promise<void> => {
        try {
          await t.step(name, fn, detail);
        } catch (err) {
          failed.push(`${name}: ${describeError(err)}`);
        }
      };
      // Traffic first: it is what users feel.
      if (auto.canary) await undo('abort canary', () => traffic.abortCanary(auto.canary!));
      if (auto.blueGreen) {
        const bg = auto.blueGreen;
        await undo(`switch traffic back to ${bg.back}`, () => long.abortBlueGreen({ target: bg.target, colour: bg.back }));
      }
      if (auto.records.length) {
        await undo('restore previous images', () => long.rollbackImages({ workflowId: signalTarget, namespace: auto.plan.namespace, records: auto.records, timeoutMs: auto.plan.rolloutTimeoutMs }), (r) => r.deployments.map((d) => `${d.deployment}@${d.revision ?? '?'}`).join(', '));
      }
      // Workloads not fully back: no database decision (an old schema under new images is worse).
      if (failed.length) {
        workloads = 'not fully restored';
        throw new Error(failed.join('; '));
      }
      workloads = `${auto.records.length} deployments back to their previous images${auto.canary ? ', canary aborted' : ''}${auto.blueGreen ? `, traffic back on ${auto.blueGreen.back}` : ''}`;
      backupKey = auto.backupKey;
      askForDecision = auto.migrationsApplied.length > 0 && !!backupKey;
      decisionTimeoutMs = auto.plan.databaseDecisionTimeoutMs;
    } else {
      const plan: RollbackPlan = await t.step('resolve rollback', () => short.resolveRollback({ workflowId: info.workflowId, input }));
      approvers = plan.approvers;
      project = plan.project;
      uiUrl = plan.uiUrl;
      t.identify(plan.target.kind === 'version' ? plan.target.version : plan.target.kind === 'revision' ? `revision ${plan.target.revision}` : '(previous)', plan.environment, 'rollback', plan.searchAttributes);
      t.phase('rolling-back');
      const deployments = plan.services.map((s) => s.deployment);
      const stable: CanaryTarget = { workflowId: signalTarget, namespace: plan.namespace, version: status.version, service: plan.traffic.service, container: plan.traffic.service, image: '', traffic: plan.traffic };
      // Any canary traffic goes back to stable before the images change.
      if (plan.services.some((s) => s.name === plan.traffic.service)) await t.step('traffic to stable', () => traffic.abortCanary(stable));
      if (plan.target.kind === 'version') {
        const version = plan.target.version;
        const updates = plan.services.map((s) => ({ deployment: s.deployment, container: s.container, image: `${plan.registry}/${s.image}:${version}` }));
        await t.step(`images to ${version}`, () => short.patchImages({ workflowId: signalTarget, namespace: plan.namespace, version, updates }));
        const r = await t.step('wait for rollout', () => long.waitForRollout({ namespace: plan.namespace, deployments, timeoutMs: plan.rolloutTimeoutMs }));
        workloads = r.deployments.map((d) => `${d.deployment}@${d.revision ?? '?'}`).join(', ');
      } else {
        const toRevision = plan.target.kind === 'revision' ? plan.target.revision : undefined;
        // As `kubectl rollout undo`, one Deployment at a time, each awaited.
        const done: string[] = [];
        for (const d of deployments) {
          const r = await t.step(toRevision ? `undo ${d} to revision ${toRevision}` : `undo ${d}`, () => long.undoRollout({ workflowId: signalTarget, namespace: plan.namespace, deployment: d, timeoutMs: plan.rolloutTimeoutMs, ...(toRevision ? { toRevision } : {}) }), (x) => `revision ${x.toRevision}${x.skipped ? ' (already there)' : ''}`);
          done.push(`${d}@${r.revision ?? r.toRevision}`);
        }
        workloads = done.join(', ');
      }
      backupKey = plan.backupKey;
      askForDecision = plan.restoreDatabase && !!backupKey;
      if (plan.restoreDatabase && !backupKey) t.skip('database restore', 'no backup found to restore from');
      decisionTimeoutMs = plan.databaseDecisionTimeoutMs;
    }
  } catch (err) {
    const reason = describeError(err);
    await notify('failed', `rollback on ${status.environment} failed: ${reason}`);
    t.finish('failed', reason);
    return { outcome: 'failed', workloads: workloads || 'not restored', database: 'unchanged', reason, status };
  }

  let database: RollbackResult['database'] = 'unchanged';
  if (askForDecision && backupKey) {
    const key = backupKey;
    const commands = [`deployctl approve ${signalTarget} --by <name> --note "restore ${key}"`, `deployctl abort ${signalTarget} --by <name> --reason "keep the database"`];
    t.phase('awaiting-db-decision');
    t.waitFor(`a decision on the database: approve restores ${key}, abort keeps it as it is`, decisionTimeoutMs, commands);
    decisionOpen = true;
    await notify('rolled-back', `${workloads}. Database: approve to restore ${key}, abort to keep it (keeps it after ${Math.round(decisionTimeoutMs / 60_000)} min)`, commands);
    const answered = await condition(() => decision !== undefined, decisionTimeoutMs);
    decisionOpen = false;
    t.doneWaiting();
    if (!answered) {
      database = 'kept (decision timed out)';
      t.skip('database restore', 'no decision before the timeout: the database is kept as it is');
    } else if (decision?.restore) {
      t.phase('restoring');
      try {
        const r = await t.step('database restore', () => long.restoreDatabase({ workflowId: signalTarget, key, confirmKey: key }), (x) => Object.entries(x.tables).map(([k, v]) => `${k}=${v}`).join(', '));
        database = r ? 'restored' : 'restore failed';
      } catch (err) {
        database = 'restore failed';
        status.error = `database restore failed: ${describeError(err)}`;
      }
    } else {
      database = 'kept';
      t.skip('database restore', `kept as it is by ${decision?.by ?? 'unknown'}`);
    }
  }
  const ok = database !== 'restore failed';
  await notify(ok ? 'rolled-back' : 'failed', `rollback on ${status.environment}: ${workloads}; database ${database}`);
  t.finish(ok ? 'rolled-back' : 'failed', status.error);
  return { outcome: ok ? 'rolled-back' : 'failed', workloads, database, ...(status.error ? { reason: status.error } : {}), status };
}
