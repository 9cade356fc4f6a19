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
import {
  CancellationScope,
  allHandlersFinished,
  condition,
  executeChild,
  isCancellation,
  patched,
  workflowInfo,
} from '@temporalio/workflow';
import type { DeploymentPreview } from '../activities/contracts';
import { ErrorType, type ErrorTypeName } from '../domain/errors';
import type { DeployInput } from '../domain/input';
import type { DeployPlan } from '../domain/plan';
import { policyOf } from '../domain/identity';
import { checkSignal, type AbortPayload } from '../domain/signals';
import type { DeploymentStatus, SignalRecord } from '../domain/status';
import { short } from './activity-options';
import {
  acquireEnvironmentLock,
  lockWorkflowId,
  releaseEnvironmentLock,
  type EnvironmentLock,
} from './environment-lock';
import { environmentBusy, refuseBadWorkflowId } from './support/lock';
import { COMMAND_MIGRATIONS_PATCH, FREEZE_WINDOWS_PATCH, QUARANTINE_PATCH } from './patches';
import { waitOutFreezeWindows } from './support/freeze-windows';
import { holdWhileFrozen } from './support/freeze';
import { rollbackWorkflow } from './rollback';
import { aboutPlan, notifierFor } from './support/notifier';
import { outcomeFailure, resultOf } from './outcome';
import { CLOSE_STATUS_FOLLOWS_OUTCOME_PATCH } from './patches';
import { forwarder, steer } from './support/steering';
import { Gate, peopleRules, verifiedFields } from './support/gate';
import { abortedBy, Stop } from './support/stop';
import { describeError, errorType, nowIso, Tracker } from './support/tracker';
import {
  deploymentFinished,
  deploymentRefused,
  deploymentStarted,
  rolledBack,
  secondsBetween,
} from './support/metrics';
import { buildAndBackUp, migrate, preflight, tagRelease, verify, writeSummary, type Release } from './deploy-steps';
import { pruneConfigSnapshots, rollOut } from './deploy-rollout';
import { deploymentFacts } from '../domain/audit-facts';
import { recordApprovals, recordAudit } from './support/audit';

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
  /** Another deployment holds the environment, the input was refused, or a freeze window refuses deployments. */
  refused?: 'deployment-in-progress' | 'invalid-input' | 'frozen';
  preview?: DeploymentPreview;
  summary?: string;
  status: DeploymentStatus;
}

/** The whole release: plan, one deployment per environment, the pipeline as a saga, summary. */
export async function deployWorkflow(input: DeployInput): Promise<DeployResult> {
  const workflowId = workflowInfo().workflowId;
  refuseBadWorkflowId(workflowId);
  const t = new Tracker('deploy', provisionalStatus(input));
  const status = t.status;

  let plan: DeployPlan | undefined;
  const child: Release['child'] = {};
  let abortReq: SignalRecord | undefined;
  const pipeline = new CancellationScope();
  let pipelineRunning = false;
  /** Waiting out a freeze window: an abort ends the wait. */
  let holding = false;

  const people = peopleRules(() => plan);
  // The approval between two clusters of the environment (deploy-rollout.ts); nothing else here waits for one.
  const gate = new Gate(t, { allowed: people.allowed, requester: people.requester, required: people.required });
  // While a child runs, people's signals go to it; it verifies and records them in its own status.
  steer(
    t,
    {
      approve: (p) =>
        gate.isOpen
          ? gate.approve(p)
          : t.ignore(
              'approve',
              p.by,
              `nothing is awaiting approval (phase ${status.phase})`,
              p.note ? { note: p.note } : {},
            ),
      abort: (p) => {
        if (abortReq)
          return t.ignore('abort', p.by, `already aborting (requested by ${abortReq.by})`, { reason: p.reason });
        if (!people.allowed(p))
          return t.ignore('abort', p.by, `${p.by} is not an approver for ${status.environment}`, { reason: p.reason });
        if (!pipelineRunning && !holding)
          return t.ignore('abort', p.by, `nothing to abort in phase ${status.phase}`, { reason: p.reason });
        abortReq = { signal: 'abort', by: p.by, at: nowIso(), reason: p.reason, ...verifiedFields(p) };
        status.aborts.push(abortReq);
        if (pipelineRunning) pipeline.cancel();
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
      policy: people.policy,
    },
  );
  const notify = notifierFor(t, workflowId, () => aboutPlan(plan));

  // Taken once the plan is known; released by finish() on every way out.
  let lock: EnvironmentLock | undefined = undefined;
  /** The deployment took its environment and began: it counts as started and finished in the metrics. */
  let began = false;
  /** What the pipeline did (images, migrations, backup), once it runs: for the audit record. */
  let rel: Release | undefined = undefined;
  const finish = async (
    result: Omit<DeployResult, 'workflowId' | 'version' | 'environment' | 'status'>,
  ): Promise<DeployResult> => {
    // Before a plan the environment is only what the input says: no label of its own.
    if (result.refused) deploymentRefused(plan ? plan.environment : 'unknown', result.refused);
    else if (began) deploymentFinished(status, result.outcome, rel?.rolloutBegun === true);
    if (lock) {
      await releaseEnvironmentLock(lock);
      t.note('lock', undefined);
    }
    await condition(allHandlersFinished);
    const r: DeployResult = { workflowId, version: status.version, environment: status.environment, status, ...result };
    // The ledger's records once the environment is free again: a slow store holds up no one else.
    if (plan && !plan.dryRun) await auditDeployment(t, plan, r, rel);
    // Anything but a success closes as Failed, the result in the failure (histories from before it completed).
    const type = failureTypeFor(r);
    if (type && patched(CLOSE_STATUS_FOLLOWS_OUTCOME_PATCH)) throw outcomeFailure(type, r.reason, r);
    return r;
  };

  // --- plan -----------------------------------------------------------------------
  // A release's stage is started by that release only: what it hands over is confirmed against it.
  const handed = (input as { release?: { workflowId?: unknown } } | undefined)?.release;
  if (handed !== undefined && workflowInfo().parent?.workflowId !== handed?.workflowId) {
    const reason = `${ErrorType.ParentRequired}: a release's stage is started by its release workflow, not by hand (deployctl release)`;
    t.finish('failed', reason);
    return finish({ outcome: 'failed', reason, refused: 'invalid-input' });
  }
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
  if (p.committedAt) status.timeline = { committedAt: p.committedAt };
  if (p.release) t.release(p.version, p.environment);
  t.governedBy(policyOf(p), p.requestedVia);

  if (p.dryRun) {
    t.phase('planning');
    const preview = await t.step('preview', () => short.previewDeployment(p));
    t.finish('planned');
    return finish({ outcome: 'planned', preview });
  }

  // --- freeze windows: wait for the end, or be refused --------------------------------
  if (p.freeze?.windows.length && patched(FREEZE_WINDOWS_PATCH)) {
    holding = true;
    const w = await waitOutFreezeWindows(t, p, workflowId, () => abortReq !== undefined);
    holding = false;
    if (w.kind !== 'clear') {
      const reason = w.kind === 'refused' ? w.reason : `aborted by ${abortReq?.by}: ${abortReq?.reason ?? ''}`;
      const outcome = w.kind === 'refused' ? 'failed' : 'aborted';
      t.finish(outcome, reason);
      await notify(outcome, `${p.project} ${p.version} on ${p.environment}: ${reason}`);
      return finish({ outcome, reason, ...(w.kind === 'refused' ? { refused: 'frozen' as const } : {}) });
    }
  }

  // --- a stopped line (deployctl freeze): wait until unfrozen --------------------------
  if (patched(FREEZE_WINDOWS_PATCH)) {
    holding = true;
    const held = await holdWhileFrozen(t, p, () => abortReq !== undefined);
    holding = false;
    if (held === 'aborted') {
      const reason = `aborted by ${abortReq?.by}: ${abortReq?.reason ?? ''}`;
      t.finish('aborted', reason);
      return finish({ outcome: 'aborted', reason });
    }
  }

  // --- one deployment per environment ---------------------------------------
  lock = await acquireEnvironmentLock(p.environment, workflowId);
  if (!lock) {
    const reason = await environmentBusy(p.environment);
    t.finish('failed', reason);
    return finish({ outcome: 'failed', reason, refused: 'deployment-in-progress' });
  }

  t.note('lock', `**holds** the environment lock ${lockWorkflowId(p.environment)}`);
  await notify('started', `${p.project} ${p.version} to ${p.environment} (${p.strategy}) started by ${p.requestedBy}`);
  began = true;
  deploymentStarted(p.environment, p.strategy);

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
  rel = r;
  let failure: Stop | undefined;
  pipelineRunning = true;
  try {
    await pipeline.run(async () => {
      await preflight(r);
      await tagRelease(r);
      await buildAndBackUp(r);
      await migrate(r);
      const rollout = await rollOut(r, { gate, abortRequest: () => abortReq, notify });
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
    status.timeline = { ...status.timeline, liveAt: nowIso() };
    t.phase('reporting');
    await pruneConfigSnapshots(r);
    // The summary states the outcome the deployment ends with, as on the failure path.
    const summary = await writeSummary(t, p, r.undo.migrationsApplied, r.backup?.key, 'succeeded');
    await notify('succeeded', `${p.project} ${p.version} is live on ${p.environment}`);
    t.finish('succeeded');
    return finish({ outcome: 'succeeded', ...(summary ? { summary } : {}) });
  }

  // --- saga: compensate -----------------------------------------------------------
  const stop = failure;
  status.error = stop.message;
  if (r.rolloutBegun) status.timeline = { ...status.timeline, failedAt: nowIso() };
  const final = await CancellationScope.nonCancellable(async (): Promise<DeployOutcome> => {
    // Before the rollout nothing runs new code, but a migration may have changed the database: offer its decision.
    const databaseOnly = () =>
      r.undo.databaseChanged === true && !!r.undo.backupKey && patched(COMMAND_MIGRATIONS_PATCH);
    if (!r.rolloutBegun && !databaseOnly()) {
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
          resultOf(
            executeChild(rollbackWorkflow, {
              workflowId: childId,
              args: [{ automatic: r.undo, requestedBy: 'deploy-pipelines', reason: stop.message }],
              staticSummary: `${p.project}: automatic rollback of ${p.version} on ${p.environment} to ${p.previousVersion ?? 'the previous images'}`,
            }),
          ),
        (x) => `workloads ${x.workloads}; database ${x.database}`,
      );
      // Stable once the rollback had the workloads back, before any database decision.
      const stableAt = rb.status.timeline?.stableAt;
      if (stableAt) status.timeline = { ...status.timeline, stableAt };
      rolledBack(p.environment, 'automatic', rb.outcome, secondsBetween(status.timeline?.failedAt, stableAt));
      if (rb.outcome !== 'rolled-back') {
        status.error = `${stop.message}; rollback: ${rb.reason ?? rb.outcome}`;
        return 'failed';
      }
      for (const w of status.waves ?? []) if (w.state !== 'pending') w.state = 'rolled-back';
      // An abort that was rolled back ends as "aborted"; a failure that was rolled back as "rolled-back".
      return stop.outcome === 'aborted' ? 'aborted' : 'rolled-back';
    } catch (err) {
      status.error = `${stop.message}; rollback failed: ${describeError(err)}`;
      return 'failed';
    } finally {
      child.active = undefined;
    }
  });
  // A version rolled back, or that failed once it ran, is quarantined: no release promotes it, no rollback returns to it.
  if ((final === 'rolled-back' || (final === 'failed' && r.rolloutBegun)) && patched(QUARANTINE_PATCH)) {
    await CancellationScope.nonCancellable(() => quarantine(t, p, workflowId, status.error ?? stop.message));
  }
  await CancellationScope.nonCancellable(() => writeSummary(t, p, r.undo.migrationsApplied, r.backup?.key, final));
  t.finish(final, status.error);
  return finish({ outcome: final, reason: status.error ?? stop.message, ...(stop.timedOut ? { timedOut: true } : {}) });
}

/** The approvals this deployment counted, then the deployment itself, in its environment's audit ledger. */
async function auditDeployment(t: Tracker, p: DeployPlan, r: DeployResult, rel: Release | undefined): Promise<void> {
  // A store that did not take the approvals is not waited for again.
  if (!(await recordApprovals(p.environment, r.status.approvals, t))) return;
  const images = Object.fromEntries(Object.entries(rel?.images ?? {}).map(([name, b]) => [name, b.reference]));
  await recordAudit(
    p.environment,
    'deployment',
    'deployment',
    deploymentFacts(p, r.status, r.refused ? `refused (${r.refused})` : r.outcome, r.reason, {
      ...(Object.keys(images).length ? { images } : {}),
      ...(rel ? { migrations: rel.undo.migrationsApplied } : {}),
      ...(rel?.backup?.key ? { backupKey: rel.backup.key } : {}),
    }),
    t,
  );
}

/** Records the quarantine of the plan's version; best effort, as a summary is: its failure is noted, never fatal. */
async function quarantine(t: Tracker, p: DeployPlan, workflowId: string, reason: string): Promise<void> {
  try {
    await t.step(
      'quarantine',
      () => short.quarantineVersion({ version: p.version, environment: p.environment, workflowId, reason }),
      (q) =>
        `${q.version} quarantined: no release promotes it and no rollback returns to it until an approver lifts it`,
    );
  } catch (err) {
    t.note('quarantine', `the quarantine of ${p.version} could not be recorded: ${describeError(err)}`);
  }
}

/** The failure a deployment closes with: none for a success or a dry run. */
function failureTypeFor(r: DeployResult): ErrorTypeName | undefined {
  if (r.refused) return ErrorType.DeploymentRefused;
  switch (r.outcome) {
    case 'rolled-back':
      return ErrorType.DeploymentRolledBack;
    case 'aborted':
      return ErrorType.DeploymentAborted;
    case 'failed':
      return ErrorType.DeploymentFailed;
    default:
      return undefined;
  }
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
