/**
 * The release pipeline as one durable saga (runbook "Deployment Steps"):
 * plan → pre-flight → pre-deployment checks → tag → images ∥ backup →
 * migrations → roll out by strategy (rolling, canary, blue-green) → verify →
 * summary. Once the rollout has begun, any failure or abort rolls workloads
 * and traffic back through the rollback child workflow, which then waits for
 * a person's decision on the database; nothing restores the database without
 * that decision.
 *
 * People send signals to this workflow's id; while a child (canary,
 * blue-green, rollback) runs, they are forwarded to it.
 */
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import {
  CancellationScope,
  ParentClosePolicy,
  type ChildWorkflowHandle,
  allHandlersFinished,
  condition,
  executeChild,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { BackupResult, BlueGreenTarget, CanaryTarget, DeploymentPreview, ImagesResult, ImageUpdate, NotificationEvent } from '../activities/contracts';
import { ErrorType } from '../domain/errors';
import type { DeployInput } from '../domain/input';
import type { DeployPlan } from '../domain/plan';
import { checkSignal, isAllowedApprover, type AbortPayload, type SignalName } from '../domain/signals';
import type { DeploymentStatus, SignalRecord } from '../domain/status';
import { long, notifier, short } from './activity-options';
import { blueGreenWorkflow } from './blue-green';
import { canaryWorkflow } from './canary';
import { environmentLockWorkflow, lockWorkflowId, releaseLockSignal } from './environment-lock';
import { abortSignal, approveSignal, pauseSignal, promoteSignal, resumeSignal } from './messages';
import { rollbackWorkflow, type AutomaticRollback } from './rollback';
import { describeError, errorType, nowIso, Tracker } from './tracker';
import { verifyRelease } from './verify-release';

export type DeployOutcome = 'succeeded' | 'rolled-back' | 'aborted' | 'failed' | 'planned';

export interface DeployResult {
  outcome: DeployOutcome;
  workflowId: string;
  version: string;
  environment: string;
  reason?: string;
  /** An approval gate timed out (the deployment was aborted for it). */
  timedOut?: boolean;
  /** Another deployment holds the environment, or the input was refused. */
  refused?: 'deployment-in-progress' | 'invalid-input';
  preview?: DeploymentPreview;
  summary?: string;
  status: DeploymentStatus;
}

/** Ends the pipeline towards the saga's compensation with a known outcome. */
class StopDeploy extends Error {
  constructor(
    readonly outcome: 'aborted' | 'failed',
    message: string,
    readonly timedOut = false,
  ) {
    super(message);
  }
}

export async function deployWorkflow(input: DeployInput): Promise<DeployResult> {
  const info = workflowInfo();
  const workflowId = info.workflowId;
  const raw = (input ?? {}) as Partial<Record<string, unknown>>;
  const t = new Tracker('deploy', {
    version: typeof raw.version === 'string' ? raw.version : typeof raw.bump === 'string' ? `(${raw.bump} bump)` : '(unknown)',
    environment: typeof raw.environment === 'string' ? raw.environment : '(default)',
    ...(typeof raw.strategy === 'string' ? { strategy: raw.strategy } : {}),
    ...(typeof raw.requestedBy === 'string' ? { requestedBy: raw.requestedBy } : {}),
  });
  const status = t.status;

  let plan: DeployPlan | undefined;
  let activeChild: string | undefined;
  let abortReq: SignalRecord | undefined;
  const pipeline = new CancellationScope();
  let pipelineRunning = false;

  /** While a child runs, people's signals go to it; it records them in its own status. */
  const forward = async (name: SignalName, payload: unknown): Promise<boolean> => {
    const child = activeChild;
    if (!child) return false;
    try {
      await getExternalWorkflowHandle(child).signal(name, payload);
    } catch (err) {
      const c = checkSignal(name, payload);
      t.ignore(name, c.ok ? (c.value as { by: string }).by : c.by, `could not forward to ${child}: ${describeError(err)}`);
    }
    return true;
  };

  setHandler(approveSignal, async (payload: unknown) => {
    if (await forward('approve', payload)) return;
    const c = checkSignal<{ by: string; note?: string }>('approve', payload);
    if (!c.ok) return t.ignore('approve', c.by, c.reason);
    t.ignore('approve', c.value.by, `nothing is awaiting approval (phase ${status.phase})`, c.value.note ? { note: c.value.note } : {});
  });
  setHandler(abortSignal, async (payload: unknown) => {
    if (t.isFinal) {
      const c = checkSignal<AbortPayload>('abort', payload);
      return t.ignore('abort', c.ok ? c.value.by : c.by, `the deployment is already ${status.phase}`);
    }
    if (await forward('abort', payload)) return;
    const c = checkSignal<AbortPayload>('abort', payload);
    if (!c.ok) return t.ignore('abort', c.by, c.reason);
    if (abortReq) return t.ignore('abort', c.value.by, `already aborting (requested by ${abortReq.by})`, { reason: c.value.reason });
    if (plan && !isAllowedApprover(c.value.by, plan.approvers)) return t.ignore('abort', c.value.by, `${c.value.by} is not an approver for ${plan.environment}`, { reason: c.value.reason });
    if (!pipelineRunning) return t.ignore('abort', c.value.by, `nothing to abort in phase ${status.phase}`, { reason: c.value.reason });
    abortReq = { signal: 'abort', by: c.value.by, at: nowIso(), reason: c.value.reason };
    status.aborts.push(abortReq);
    pipeline.cancel();
  });
  for (const [def, name] of [
    [pauseSignal, 'pause'],
    [resumeSignal, 'resume'],
    [promoteSignal, 'promote'],
  ] as const) {
    setHandler(def, async (payload: unknown) => {
      if (await forward(name, payload)) return;
      const c = checkSignal<{ by: string }>(name, payload);
      t.ignore(name, c.ok ? c.value.by : c.by, c.ok ? `no canary soak is running (phase ${status.phase})` : c.reason);
    });
  }

  const notify = async (kind: NotificationEvent['kind'], text: string, extra: Partial<NotificationEvent> = {}): Promise<void> => {
    try {
      const r = await notifier.notify({ kind, workflowId, environment: status.environment, version: status.version, text, ...(plan ? { project: plan.project, ...(plan.uiUrl ? { uiUrl: plan.uiUrl } : {}) } : {}), ...extra });
      status.notificationFailures += r.failed;
    } catch (err) {
      status.notificationFailures += 1;
      log.warn('notification failed', { kind, error: describeError(err) });
    }
  };

  let lock: ChildWorkflowHandle<typeof environmentLockWorkflow> | undefined;
  const finish = async (result: Omit<DeployResult, 'workflowId' | 'version' | 'environment' | 'status'>): Promise<DeployResult> => {
    // Release the environment explicitly; ParentClosePolicy TERMINATE is only the safety net.
    if (lock) {
      const l = lock;
      await CancellationScope.nonCancellable(async () => {
        await l.signal(releaseLockSignal);
        await l.result();
      }).catch((err: unknown) => log.warn('environment lock release failed', { error: describeError(err) }));
    }
    await condition(allHandlersFinished);
    return { workflowId, version: status.version, environment: status.environment, status, ...result };
  };

  // --- plan ---------------------------------------------------------------------
  try {
    plan = await t.step('resolve plan', () => short.resolvePlan({ workflowId, input }), (p) => `${p.version} to ${p.environment} (${p.strategy}), commit ${p.commit.slice(0, 12)}`);
  } catch (err) {
    const reason = describeError(err);
    t.finish('failed', reason);
    return finish({ outcome: 'failed', reason, ...(errorType(err) === ErrorType.InvalidInput ? { refused: 'invalid-input' as const } : {}) });
  }
  const p: DeployPlan = plan;
  t.identify(p.version, p.environment, p.strategy, p.searchAttributes);

  if (p.dryRun) {
    t.phase('planning');
    const preview = await t.step('preview', () => short.previewDeployment(p));
    t.finish('planned');
    return finish({ outcome: 'planned', preview });
  }

  // --- one deployment per environment ---------------------------------------
  try {
    lock = await startChild(environmentLockWorkflow, {
      workflowId: lockWorkflowId(p.environment),
      args: [{ environment: p.environment, holder: workflowId }],
      parentClosePolicy: ParentClosePolicy.TERMINATE,
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
    const holder = await short.lockHolder({ environment: p.environment }).catch(() => ({ workflowId: undefined }));
    const reason = `${ErrorType.DeploymentInProgress}: another deployment is running on ${p.environment}: ${holder.workflowId ?? lockWorkflowId(p.environment)}; wait for it or abort it (deployctl abort ${holder.workflowId ?? '<id>'} --by <name> --reason <text>)`;
    t.finish('failed', reason);
    return finish({ outcome: 'failed', reason, refused: 'deployment-in-progress' });
  }

  await notify('started', `${p.project} ${p.version} to ${p.environment} (${p.strategy}) started by ${p.requestedBy}`);

  // What the saga undoes once the rollout has begun.
  const undo: AutomaticRollback = { plan: p, records: [], migrationsApplied: [], reason: '' };
  /** Services whose traffic is served by another Deployment than their own (blue-green's green). */
  const liveDeployments = new Map<string, string>();
  let rolloutBegun = false;
  let images: ImagesResult = {};
  let backup: BackupResult | undefined;

  const trafficService = p.services.find((s) => s.name === p.traffic.service);
  const target = (image: string): CanaryTarget => ({
    workflowId,
    namespace: p.namespace,
    version: p.version,
    service: p.traffic.service,
    container: trafficService?.container ?? p.traffic.service,
    image,
    traffic: p.traffic,
  });

  const runPipeline = async (): Promise<void> => {
    t.phase('preflight');
    await t.step('pre-flight', () => short.preflight(p), (r) => `PostgreSQL ${r.database.version.split(' ')[1] ?? ''}, ${r.cluster.deployments.length} deployments`);

    t.phase('checks');
    await t.step('pre-deployment checks', () => long.runPreDeploymentChecks({ workflowId, commit: p.commit }), (r) => r.checks.map((c) => c.name).join(', ') || 'none configured');

    t.phase('tagging');
    await t.step('release tag', () => short.createReleaseTag({ workflowId, version: p.version, commit: p.commit }), (r) => `${r.tag} at ${r.commit.slice(0, 12)}${r.created ? '' : ' (already there)'}`);

    // Images and the backup do not depend on each other: run them side by side.
    t.phase('building');
    const [built, backedUp] = await Promise.all([
      t.step('build and push images', () => long.buildImages({ workflowId, version: p.version, commit: p.commit, services: p.services, allowOverwrite: p.allowImageOverwrite }), (r) => `${Object.keys(r).length} images (${Object.values(r).filter((i) => i.reused).length} reused)`),
      p.backup ? t.step('database backup', () => long.backupDatabase({ workflowId, version: p.version }), (r) => `${r.key} (${r.bytes} bytes${r.reused ? ', reused' : ''})`) : Promise.resolve(undefined),
    ]);
    images = built;
    backup = backedUp;
    if (!p.backup) t.skip('database backup', 'backup: false in the input');
    if (backup) undo.backupKey = backup.key;

    if (p.migrate) {
      t.phase('migrating');
      const pending = await t.step('migration status', () => short.migrationStatus({ workflowId, commit: p.commit }), (r) => `${r.pending.length} pending: ${r.pending.join(', ') || 'none'}`);
      if (pending.pending.length) {
        const applied = await t.step('migrations', () => long.applyMigrations({ workflowId, commit: p.commit }), (r) => r.applied.map((a) => a.file).join(', '));
        undo.migrationsApplied = applied.applied.map((a) => a.file);
      }
    } else {
      t.skip('migrations', 'migrate: false in the input');
    }

    // --- roll out -------------------------------------------------------------
    t.phase('rolling-out');
    rolloutBegun = true;
    const [restartsBefore, baseline] = await Promise.all([
      short.podRestarts({ namespace: p.namespace, deployments: p.services.map((s) => s.deployment) }).catch(() => ({})),
      short.platformBaseline().catch(() => undefined),
    ]);
    const rolloutStarted = nowIso();
    const rolling = p.strategy === 'rolling' ? p.services : p.services.filter((s) => s.name !== p.traffic.service);
    if (rolling.length) {
      const updates: ImageUpdate[] = rolling.map((s) => ({ deployment: s.deployment, container: s.container, image: images[s.name]?.reference ?? s.reference }));
      const updated = await t.step('update images', () => short.patchImages({ workflowId, namespace: p.namespace, version: p.version, updates }), (r) => `${r.records.filter((x) => x.changed).length} deployments changed`);
      undo.records.push(...updated.records);
      await t.step('wait for rollout', () => long.waitForRollout({ namespace: p.namespace, deployments: rolling.map((s) => s.deployment), timeoutMs: p.rolloutTimeoutMs }), (r) => r.deployments.map((d) => `${d.deployment}@${d.revision ?? '?'}`).join(', '));
    }
    if (p.strategy !== 'rolling' && trafficService) {
      const tgt = target(images[trafficService.name]?.reference ?? trafficService.reference);
      // The stable images before the traffic strategy runs: what the saga returns to after a promotion.
      const state = await short.readClusterState({ namespace: p.namespace, deployments: [trafficService.deployment] });
      const current = state.deployments.find((d) => d.name === trafficService.deployment);
      const childId = `${workflowId}-${p.strategy}`;
      status.children.push(childId);
      activeChild = childId;
      if (p.strategy === 'canary') {
        undo.canary = tgt;
        // Recorded before the child runs: a promotion that fails half-way has already changed stable.
        if (current) undo.records.push({ deployment: current.name, previousImages: current.images, ...(current.version ? { previousVersion: current.version } : {}) });
        const r = await t.step('canary', () =>
          executeChild(canaryWorkflow, { workflowId: childId, args: [{ version: p.version, plan: p, image: tgt.image, searchAttributes: p.searchAttributes }] }),
          (x) => `${x.outcome} at ${x.weight}%`,
        ).finally(() => (activeChild = undefined));
        if (r.outcome !== 'promoted') throw new StopDeploy(r.outcome === 'aborted' ? 'aborted' : 'failed', r.reason ?? `canary ${r.outcome}`, r.timedOut === true);
      } else {
        const r = await t.step('blue-green', () =>
          executeChild(blueGreenWorkflow, { workflowId: childId, args: [{ version: p.version, plan: p, image: tgt.image, searchAttributes: p.searchAttributes }] }),
          (x) => `${x.outcome}${x.live ? `, live: ${x.live}` : ''}`,
        ).finally(() => (activeChild = undefined));
        if (r.outcome !== 'switched') throw new StopDeploy(r.outcome === 'aborted' ? 'aborted' : 'failed', r.reason ?? `blue-green ${r.outcome}`, r.timedOut === true);
        // After a switch the saga's undo is a switch back to the colour that served before.
        if (r.previous) undo.blueGreen = { target: blueGreenTarget(tgt), back: r.previous };
        if (r.liveDeployment) liveDeployments.set(trafficService.name, r.liveDeployment);
      }
    }

    // --- verify -----------------------------------------------------------------
    t.phase('verifying');
    const verdict = await verifyRelease(t, { workflowId, plan: p, deployments: p.services.map((s) => liveDeployments.get(s.name) ?? s.deployment), restartsBefore, since: rolloutStarted, ...(baseline ? { baselineConnections: baseline.databaseConnections } : {}) });
    if (!verdict.ok) throw ApplicationFailure.create({ type: ErrorType.VerificationFailed, message: verdict.reason, nonRetryable: true });
  };

  let failure: StopDeploy | undefined;
  pipelineRunning = true;
  try {
    await pipeline.run(runPipeline);
  } catch (err) {
    if (err instanceof StopDeploy) failure = err;
    else if (abortReq && (isCancellation(err) || pipeline.consideredCancelled)) failure = new StopDeploy('aborted', `aborted by ${abortReq.by}: ${abortReq.reason ?? ''}`.trim());
    else failure = new StopDeploy('failed', describeError(err));
  } finally {
    pipelineRunning = false;
  }

  if (!failure) {
    t.phase('reporting');
    const summary = await writeSummary(t, p, undo.migrationsApplied, backup?.key);
    await notify('succeeded', `${p.project} ${p.version} is live on ${p.environment}`);
    t.finish('succeeded');
    return finish({ outcome: 'succeeded', ...(summary ? { summary } : {}) });
  }

  // --- saga: compensate -----------------------------------------------------------
  const stop = failure;
  status.error = stop.message;
  const final = await CancellationScope.nonCancellable(async (): Promise<DeployOutcome> => {
    if (!rolloutBegun) {
      await notify(stop.outcome, `${p.project} ${p.version} on ${p.environment} ${stop.outcome} before the rollout: ${stop.message}`);
      return stop.outcome;
    }
    t.phase('rolling-back');
    undo.reason = stop.message;
    const childId = `${workflowId}-rollback`;
    status.children.push(childId);
    activeChild = childId;
    try {
      const r = await t.step('rollback', () => executeChild(rollbackWorkflow, { workflowId: childId, args: [{ automatic: undo, requestedBy: 'deploy-pipelines', reason: stop.message }] }), (x) => `workloads ${x.workloads}; database ${x.database}`);
      if (r.outcome !== 'rolled-back') {
        status.error = `${stop.message}; rollback: ${r.reason ?? r.outcome}`;
        return 'failed';
      }
      // An abort that was rolled back ends as "aborted"; a failure that was rolled back as "rolled-back".
      return stop.outcome === 'aborted' ? 'aborted' : 'rolled-back';
    } catch (err) {
      status.error = `${stop.message}; rollback failed: ${describeError(err)}`;
      return 'failed';
    } finally {
      activeChild = undefined;
    }
  });
  await CancellationScope.nonCancellable(() => writeSummary(t, p, undo.migrationsApplied, backup?.key, final));
  t.finish(final, status.error);
  return finish({ outcome: final, reason: status.error ?? stop.message, ...(stop.timedOut ? { timedOut: true } : {}) });
}

export function blueGreenTarget(t: CanaryTarget): BlueGreenTarget {
  return { workflowId: t.workflowId, namespace: t.namespace, service: t.service, container: t.container, image: t.image, version: t.version };
}

/** Best effort: a summary that cannot be written never fails the deployment. */
async function writeSummary(t: Tracker, plan: DeployPlan, migrations: string[], backupKey: string | undefined, outcome?: DeployOutcome): Promise<string | undefined> {
  try {
    // The summary states the outcome the deployment is about to end with.
    const status = outcome && outcome !== 'planned' ? { ...t.status, phase: outcome } : t.status;
    const r = await t.step('summary', () => short.writeSummary({ plan, status, migrations, ...(backupKey ? { backupKey } : {}) }), (s) => s.key);
    return r.markdown;
  } catch (err) {
    log.warn('summary failed', { error: describeError(err) });
    return undefined;
  }
}
