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
  isCancellation,
  log,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { BackupResult, DeploymentPreview, ImagesResult, ImageUpdate } from '../activities/contracts';
import { ErrorType } from '../domain/errors';
import type { DeployInput } from '../domain/input';
import { colourTarget, releaseImage, trafficService, trafficTarget, type DeployPlan } from '../domain/plan';
import { checkSignal, isAllowedApprover, type AbortPayload } from '../domain/signals';
import type { DeploymentStatus, SignalRecord } from '../domain/status';
import { long, short } from './activity-options';
import { blueGreenWorkflow } from './blue-green';
import { canaryWorkflow } from './canary';
import { environmentLockWorkflow, lockWorkflowId, releaseLockSignal } from './environment-lock';
import { rollbackWorkflow, type AutomaticRollback } from './rollback';
import { aboutPlan, notifierFor } from './support/notifier';
import { forwarder, steer } from './support/steering';
import { abortedBy, Stop } from './support/stop';
import { describeError, errorType, nowIso, Tracker } from './support/tracker';
import { verifyRelease } from './verify-release';

/** How a deployment ended; `planned` is a dry run. */
export type DeployOutcome = 'succeeded' | 'rolled-back' | 'aborted' | 'failed' | 'planned';

/** What a deployment returns: its outcome and its whole status. */
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

/** One release in flight: what the stages read, and what the saga's undo collects as they go. */
interface Release {
  t: Tracker;
  p: DeployPlan;
  workflowId: string;
  /** What the saga undoes once the rollout has begun. */
  undo: AutomaticRollback;
  images: ImagesResult;
  backup?: BackupResult;
  rolloutBegun: boolean;
  /** Services whose traffic is served by another Deployment than their own (blue-green's green). */
  liveDeployments: Map<string, string>;
  /** The child that people's signals go to while it runs. */
  child: { active?: string };
}

/** What verification compares against: the cluster and the platform as they were when the rollout began. */
interface RolloutStart {
  restartsBefore: Record<string, number>;
  baseline?: { databaseConnections: number };
  since: string;
}

/** The whole release: plan, one deployment per environment, the pipeline as a saga, summary. */
export async function deployWorkflow(input: DeployInput): Promise<DeployResult> {
  const workflowId = workflowInfo().workflowId;
  const t = new Tracker('deploy', provisionalStatus(input));
  const status = t.status;

  let plan: DeployPlan | undefined;
  const child: Release['child'] = {};
  let abortReq: SignalRecord | undefined;
  const pipeline = new CancellationScope();
  let pipelineRunning = false;

  // While a child runs, people's signals go to it; it records them in its own status.
  steer(
    t,
    {
      approve: (p) =>
        t.ignore(
          'approve',
          p.by,
          `nothing is awaiting approval (phase ${status.phase})`,
          p.note ? { note: p.note } : {},
        ),
      abort: (p) => {
        if (abortReq)
          return t.ignore('abort', p.by, `already aborting (requested by ${abortReq.by})`, { reason: p.reason });
        if (plan && !isAllowedApprover(p.by, plan.approvers))
          return t.ignore('abort', p.by, `${p.by} is not an approver for ${plan.environment}`, { reason: p.reason });
        if (!pipelineRunning)
          return t.ignore('abort', p.by, `nothing to abort in phase ${status.phase}`, { reason: p.reason });
        abortReq = { signal: 'abort', by: p.by, at: nowIso(), reason: p.reason };
        status.aborts.push(abortReq);
        pipeline.cancel();
      },
    },
    {
      idle: () => `no canary soak is running (phase ${status.phase})`,
      refuse: (name, payload) => {
        // An ended deployment refuses an abort before anything else, children included.
        if (name !== 'abort' || !t.isFinal) return false;
        const c = checkSignal<AbortPayload>('abort', payload);
        t.ignore('abort', c.ok ? c.value.by : c.by, `the deployment is already ${status.phase}`);
        return true;
      },
      forward: forwarder(t, () => child.active),
    },
  );
  const notify = notifierFor(t, workflowId, () => aboutPlan(plan));

  let lock: ChildWorkflowHandle<typeof environmentLockWorkflow> | undefined;
  const finish = async (
    result: Omit<DeployResult, 'workflowId' | 'version' | 'environment' | 'status'>,
  ): Promise<DeployResult> => {
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

  // --- plan -----------------------------------------------------------------------
  try {
    plan = await t.step(
      'resolve plan',
      () => short.resolvePlan({ workflowId, input }),
      (p) => `${p.version} to ${p.environment} (${p.strategy}), commit ${p.commit.slice(0, 12)}`,
    );
  } catch (err) {
    const reason = describeError(err);
    t.finish('failed', reason);
    return finish({
      outcome: 'failed',
      reason,
      ...(errorType(err) === ErrorType.InvalidInput ? { refused: 'invalid-input' as const } : {}),
    });
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

  // --- the runbook's steps, in order ---------------------------------------------
  const r: Release = {
    t,
    p,
    workflowId,
    undo: { plan: p, records: [], migrationsApplied: [], reason: '' },
    images: {},
    rolloutBegun: false,
    liveDeployments: new Map(),
    child,
  };
  let failure: Stop | undefined;
  pipelineRunning = true;
  try {
    await pipeline.run(async () => {
      await preflight(r);
      await tagRelease(r);
      await buildAndBackUp(r);
      await migrate(r);
      const rollout = await rollOut(r);
      await verify(r, rollout);
    });
  } catch (err) {
    if (err instanceof Stop) failure = err;
    else if (abortReq && (isCancellation(err) || pipeline.consideredCancelled)) failure = abortedBy(abortReq);
    else failure = new Stop('failed', describeError(err));
  } finally {
    pipelineRunning = false;
  }

  if (!failure) {
    t.phase('reporting');
    const summary = await writeSummary(t, p, r.undo.migrationsApplied, r.backup?.key);
    await notify('succeeded', `${p.project} ${p.version} is live on ${p.environment}`);
    t.finish('succeeded');
    return finish({ outcome: 'succeeded', ...(summary ? { summary } : {}) });
  }

  // --- saga: compensate -----------------------------------------------------------
  const stop = failure;
  status.error = stop.message;
  const final = await CancellationScope.nonCancellable(async (): Promise<DeployOutcome> => {
    if (!r.rolloutBegun) {
      await notify(
        stop.outcome,
        `${p.project} ${p.version} on ${p.environment} ${stop.outcome} before the rollout: ${stop.message}`,
      );
      return stop.outcome;
    }
    t.phase('rolling-back');
    r.undo.reason = stop.message;
    const childId = `${workflowId}-rollback`;
    status.children.push(childId);
    child.active = childId;
    try {
      const rb = await t.step(
        'rollback',
        () =>
          executeChild(rollbackWorkflow, {
            workflowId: childId,
            args: [{ automatic: r.undo, requestedBy: 'deploy-pipelines', reason: stop.message }],
          }),
        (x) => `workloads ${x.workloads}; database ${x.database}`,
      );
      if (rb.outcome !== 'rolled-back') {
        status.error = `${stop.message}; rollback: ${rb.reason ?? rb.outcome}`;
        return 'failed';
      }
      // An abort that was rolled back ends as "aborted"; a failure that was rolled back as "rolled-back".
      return stop.outcome === 'aborted' ? 'aborted' : 'rolled-back';
    } catch (err) {
      status.error = `${stop.message}; rollback failed: ${describeError(err)}`;
      return 'failed';
    } finally {
      child.active = undefined;
    }
  });
  await CancellationScope.nonCancellable(() => writeSummary(t, p, r.undo.migrationsApplied, r.backup?.key, final));
  t.finish(final, status.error);
  return finish({ outcome: final, reason: status.error ?? stop.message, ...(stop.timedOut ? { timedOut: true } : {}) });
}

/** The status before the plan exists: what the raw input says (it is not checked yet, and may be anything). */
function provisionalStatus(input: DeployInput): {
  version: string;
  environment: string;
  strategy?: string;
  requestedBy?: string;
} {
  const raw = (input ?? {}) as Partial<Record<string, unknown>>;
  return {
    version:
      typeof raw.version === 'string' ? raw.version : typeof raw.bump === 'string' ? `(${raw.bump} bump)` : '(unknown)',
    environment: typeof raw.environment === 'string' ? raw.environment : '(default)',
    ...(typeof raw.strategy === 'string' ? { strategy: raw.strategy } : {}),
    ...(typeof raw.requestedBy === 'string' ? { requestedBy: raw.requestedBy } : {}),
  };
}

/** Runbook "Pre-flight checks" and the project's pre-deployment checks. */
async function preflight({ t, p, workflowId }: Release): Promise<void> {
  t.phase('preflight');
  await t.step(
    'pre-flight',
    () => short.preflight(p),
    (r) => `PostgreSQL ${r.database.version.split(' ')[1] ?? ''}, ${r.cluster.deployments.length} deployments`,
  );

  t.phase('checks');
  await t.step(
    'pre-deployment checks',
    () => long.runPreDeploymentChecks({ workflowId, commit: p.commit }),
    (r) => r.checks.map((c) => c.name).join(', ') || 'none configured',
  );
}

/** Runbook "Create release tag". */
async function tagRelease({ t, p, workflowId }: Release): Promise<void> {
  t.phase('tagging');
  await t.step(
    'release tag',
    () => short.createReleaseTag({ workflowId, version: p.version, commit: p.commit }),
    (r) => `${r.tag} at ${r.commit.slice(0, 12)}${r.created ? '' : ' (already there)'}`,
  );
}

/** Runbook "Build and push images" and "Back up the database": they do not depend on each other, so they run side by side. */
async function buildAndBackUp(rel: Release): Promise<void> {
  const { t, p, workflowId } = rel;
  t.phase('building');
  const [built, backedUp] = await Promise.all([
    t.step(
      'build and push images',
      () =>
        long.buildImages({
          workflowId,
          version: p.version,
          commit: p.commit,
          services: p.services,
          allowOverwrite: p.allowImageOverwrite,
        }),
      (r) => `${Object.keys(r).length} images (${Object.values(r).filter((i) => i.reused).length} reused)`,
    ),
    p.backup
      ? t.step(
          'database backup',
          () => long.backupDatabase({ workflowId, version: p.version }),
          (r) => `${r.key} (${r.bytes} bytes${r.reused ? ', reused' : ''})`,
        )
      : Promise.resolve(undefined),
  ]);
  rel.images = built;
  rel.backup = backedUp;
  if (!p.backup) t.skip('database backup', 'backup: false in the input');
  if (rel.backup) rel.undo.backupKey = rel.backup.key;
}

/** Runbook "Run migrations": only what is pending; what ran is what a restore would undo. */
async function migrate({ t, p, workflowId, undo }: Release): Promise<void> {
  if (!p.migrate) return t.skip('migrations', 'migrate: false in the input');
  t.phase('migrating');
  const pending = await t.step(
    'migration status',
    () => short.migrationStatus({ workflowId, commit: p.commit }),
    (r) => `${r.pending.length} pending: ${r.pending.join(', ') || 'none'}`,
  );
  if (pending.pending.length) {
    const applied = await t.step(
      'migrations',
      () => long.applyMigrations({ workflowId, commit: p.commit }),
      (r) => r.applied.map((a) => a.file).join(', '),
    );
    undo.migrationsApplied = applied.applied.map((a) => a.file);
  }
}

/**
 * Runbook "Roll out": every service but the traffic service by a rolling
 * update (all of them for the rolling strategy), then the traffic service by
 * its strategy. From here on a failure is rolled back.
 */
async function rollOut(rel: Release): Promise<RolloutStart> {
  const { t, p, workflowId, images, undo } = rel;
  t.phase('rolling-out');
  rel.rolloutBegun = true;
  const [restartsBefore, baseline] = await Promise.all([
    short.podRestarts({ namespace: p.namespace, deployments: p.services.map((s) => s.deployment) }).catch(() => ({})),
    short.platformBaseline().catch(() => undefined),
  ]);
  const since = nowIso();
  const rolling = p.strategy === 'rolling' ? p.services : p.services.filter((s) => s.name !== p.traffic.service);
  if (rolling.length) {
    const updates: ImageUpdate[] = rolling.map((s) => ({
      deployment: s.deployment,
      container: s.container,
      image: releaseImage(s, images),
    }));
    const updated = await t.step(
      'update images',
      () => short.patchImages({ workflowId, namespace: p.namespace, version: p.version, updates }),
      (r) => `${r.records.filter((x) => x.changed).length} deployments changed`,
    );
    undo.records.push(...updated.records);
    await t.step(
      'wait for rollout',
      () =>
        long.waitForRollout({
          namespace: p.namespace,
          deployments: rolling.map((s) => s.deployment),
          timeoutMs: p.rolloutTimeoutMs,
        }),
      (r) => r.deployments.map((d) => `${d.deployment}@${d.revision ?? '?'}`).join(', '),
    );
  }
  if (p.strategy !== 'rolling') await shiftTraffic(rel);
  return { restartsBefore, ...(baseline ? { baseline } : {}), since };
}

/** The traffic service by its strategy: the canary or blue-green child, steered by people through this workflow. */
async function shiftTraffic(rel: Release): Promise<void> {
  const { t, p, workflowId, undo } = rel;
  const service = trafficService(p);
  if (!service) return;
  const target = trafficTarget(p, workflowId, releaseImage(service, rel.images));
  // The stable images before the traffic strategy runs: what the saga returns to after a promotion.
  const state = await short.readClusterState({ namespace: p.namespace, deployments: [service.deployment] });
  const current = state.deployments.find((d) => d.name === service.deployment);
  const childId = `${workflowId}-${p.strategy}`;
  t.status.children.push(childId);
  rel.child.active = childId;
  const args = { version: p.version, plan: p, image: target.image, searchAttributes: p.searchAttributes };
  if (p.strategy === 'canary') {
    undo.canary = target;
    // Recorded before the child runs: a promotion that fails half-way has already changed stable.
    if (current)
      undo.records.push({
        deployment: current.name,
        previousImages: current.images,
        ...(current.version ? { previousVersion: current.version } : {}),
      });
    const r = await t
      .step(
        'canary',
        () => executeChild(canaryWorkflow, { workflowId: childId, args: [args] }),
        (x) => `${x.outcome} at ${x.weight}%`,
      )
      .finally(() => (rel.child.active = undefined));
    if (r.outcome !== 'promoted')
      throw new Stop(
        r.outcome === 'aborted' ? 'aborted' : 'failed',
        r.reason ?? `canary ${r.outcome}`,
        r.timedOut === true,
      );
  } else {
    const r = await t
      .step(
        'blue-green',
        () => executeChild(blueGreenWorkflow, { workflowId: childId, args: [args] }),
        (x) => `${x.outcome}${x.live ? `, live: ${x.live}` : ''}`,
      )
      .finally(() => (rel.child.active = undefined));
    if (r.outcome !== 'switched')
      throw new Stop(
        r.outcome === 'aborted' ? 'aborted' : 'failed',
        r.reason ?? `blue-green ${r.outcome}`,
        r.timedOut === true,
      );
    // After a switch the saga's undo is a switch back to the colour that served before. The target names the
    // Service only, as this saga has always recorded it (abortBlueGreen then takes the Service's name as blue's).
    if (r.previous) undo.blueGreen = { target: colourTarget(target), back: r.previous };
    if (r.liveDeployment) rel.liveDeployments.set(service.name, r.liveDeployment);
  }
}

/** Runbook "Post-deployment verification": every check against the Deployments that now serve the release. */
async function verify({ t, p, workflowId, liveDeployments }: Release, start: RolloutStart): Promise<void> {
  t.phase('verifying');
  const deployments = p.services.map((s) => liveDeployments.get(s.name) ?? s.deployment);
  const verdict = await verifyRelease(t, {
    workflowId,
    plan: p,
    deployments,
    restartsBefore: start.restartsBefore,
    since: start.since,
    ...(start.baseline ? { baselineConnections: start.baseline.databaseConnections } : {}),
  });
  if (!verdict.ok)
    throw ApplicationFailure.create({
      type: ErrorType.VerificationFailed,
      message: verdict.reason,
      nonRetryable: true,
    });
}

/** Best effort: a summary that cannot be written never fails the deployment. */
async function writeSummary(
  t: Tracker,
  plan: DeployPlan,
  migrations: string[],
  backupKey: string | undefined,
  outcome?: DeployOutcome,
): Promise<string | undefined> {
  try {
    // The summary states the outcome the deployment is about to end with.
    const status = outcome && outcome !== 'planned' ? { ...t.status, phase: outcome } : t.status;
    const r = await t.step(
      'summary',
      () => short.writeSummary({ plan, status, migrations, ...(backupKey ? { backupKey } : {}) }),
      (s) => s.key,
    );
    return r.markdown;
  } catch (err) {
    log.warn('summary failed', { error: describeError(err) });
    return undefined;
  }
}
