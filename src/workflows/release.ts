/**
 * One release promoted through the stages (issue "environments that are
 * really separate"): tag and build once, then deploy the same image digests
 * to each stage in order (default staging → production), each stage a child
 * deployment that does not rebuild or retag. Between stages a promotion gate,
 * all durable: a soak in the stage before with its analysis passing over it
 * (hours are normal: timers, not sleeps), then the approvals the next
 * environment requires. People signal the release: while a stage deploys,
 * signals go to it; between stages the release answers them itself.
 */
import { CancellationScope, condition, executeChild, workflowInfo } from '@temporalio/workflow';
import { ErrorType } from '../domain/errors';
import { proofFlags } from '../domain/identity';
import type { DeployInput, ReleaseInput } from '../domain/input';
import { formatDuration } from '../domain/duration';
import type { ReleasePlan, ReleaseStage } from '../domain/release';
import { shellCommand } from '../domain/shell';
import { checkSignal, type AbortPayload } from '../domain/signals';
import type { SignalRecord, StageStatus } from '../domain/status';
import { heavy, long, short } from './activity-options';
import { deployWorkflow, type DeployResult } from './deploy';
import { outcomeFailure, resultOf } from './outcome';
import { AnalysisLoop } from './support/analysis';
import { approvalCommands, Gate, peopleRules, verifiedFields } from './support/gate';
import { refuseBadWorkflowId } from './support/lock';
import { aboutPlan, notifierFor } from './support/notifier';
import { forwarder, steer } from './support/steering';
import { abortedBy, Stop } from './support/stop';
import { recordAudit } from './support/audit';
import { releaseStageFacts } from '../domain/audit-facts';
import { describeError, errorType, nowIso, Tracker } from './support/tracker';

export type ReleaseOutcome = 'succeeded' | 'rolled-back' | 'aborted' | 'failed';

export interface ReleaseResult {
  outcome: ReleaseOutcome;
  workflowId: string;
  version: string;
  reason?: string;
  refused?: 'invalid-input';
  stages: StageStatus[];
  status: import('../domain/status').DeploymentStatus;
}

export async function releaseWorkflow(input: ReleaseInput): Promise<ReleaseResult> {
  const workflowId = workflowInfo().workflowId;
  refuseBadWorkflowId(workflowId);
  const raw = (input ?? {}) as Partial<Record<string, unknown>>;
  const t = new Tracker('release', {
    version: typeof raw.version === 'string' ? raw.version : '(unknown)',
    environment: '(stages)',
    strategy: 'release',
    ...(typeof raw.requestedBy === 'string' ? { requestedBy: raw.requestedBy } : {}),
  });
  const status = t.status;
  status.stages = [];

  let plan: ReleasePlan | undefined;
  /** The stage being deployed or promoted into: its rules decide who may steer. */
  let current: ReleaseStage | undefined;
  const child: { active?: string } = {};
  let abortReq: SignalRecord | undefined;
  /** True between stages (soak, promotion gate): the release answers signals itself. */
  let between = false;

  const people = peopleRules(() =>
    plan && current ? { approvals: current.approvals, requestedBy: plan.requestedBy } : undefined,
  );
  const gate = new Gate(t, {
    allowed: people.allowed,
    requester: people.requester,
    required: people.required,
  });
  steer(
    t,
    {
      approve: (p) => gate.approve(p),
      abort: (p) => {
        if (abortReq)
          return t.ignore('abort', p.by, `already aborting (requested by ${abortReq.by})`, { reason: p.reason });
        if (!people.allowed(p))
          return t.ignore('abort', p.by, `${p.by} is not an approver for ${status.environment}`, { reason: p.reason });
        if (!between) return t.ignore('abort', p.by, `nothing to abort in phase ${status.phase}`, { reason: p.reason });
        abortReq = { signal: 'abort', by: p.by, at: nowIso(), reason: p.reason, ...verifiedFields(p) };
        status.aborts.push(abortReq);
      },
    },
    {
      idle: (name) => `${name} does not apply between stages (phase ${status.phase})`,
      refuse: (name, payload) => {
        if (name !== 'abort' || !t.isFinal) return false;
        const c = checkSignal<AbortPayload>('abort', payload);
        t.ignore('abort', c.ok ? c.value.by : c.by, `the release is already ${status.phase}`);
        return true;
      },
      forward: forwarder(t, () => child.active),
      policy: people.policy,
    },
  );
  const notify = notifierFor(t, workflowId, () => aboutPlan(plan));

  const finish = (outcome: ReleaseOutcome, reason?: string, refused?: 'invalid-input'): ReleaseResult => {
    t.finish(outcome, reason);
    const r: ReleaseResult = {
      outcome,
      workflowId,
      version: status.version,
      ...(reason ? { reason } : {}),
      ...(refused ? { refused } : {}),
      stages: status.stages ?? [],
      status,
    };
    if (outcome === 'succeeded') return r;
    throw outcomeFailure(
      refused
        ? ErrorType.DeploymentRefused
        : outcome === 'aborted'
          ? ErrorType.DeploymentAborted
          : outcome === 'rolled-back'
            ? ErrorType.DeploymentRolledBack
            : ErrorType.DeploymentFailed,
      reason,
      r,
    );
  };

  // --- plan -----------------------------------------------------------------------
  try {
    plan = await t.step(
      'resolve release',
      () => short.resolveRelease({ workflowId, input }),
      (p) => `${p.version} through ${p.stages.map((s) => s.environment).join(' → ')}, commit ${p.commit.slice(0, 12)}`,
    );
  } catch (err) {
    const reason = describeError(err);
    return finish('failed', reason, errorType(err) === ErrorType.InvalidInput ? 'invalid-input' : undefined);
  }
  const p: ReleasePlan = plan;
  status.requestedBy = p.requestedBy;
  status.stages = p.stages.map((s) => ({ environment: s.environment, workflowId: s.workflowId, state: 'pending' }));
  current = p.stages[0];
  t.identify(p.version, current.environment, 'release', p.searchAttributes);
  t.release(p.version, current.environment);
  t.governedBy(current.approvals, current.requestedVia);
  await notify(
    'started',
    `${p.project} release ${p.version} started by ${p.requestedBy}: ${p.stages.map((s) => s.environment).join(' → ')}`,
  );

  // --- once for every stage: checks, tag, images ----------------------------------------
  let images: Record<string, string>;
  try {
    t.phase('checks');
    await t.step(
      'pre-deployment checks',
      () => long.runPreDeploymentChecks({ workflowId, commit: p.commit }),
      (r) => r.checks.map((c) => c.name).join(', ') || 'none configured',
    );
    t.phase('tagging');
    await t.step(
      'release tag',
      () => short.createReleaseTag({ workflowId, version: p.version, commit: p.commit }),
      (r) => `${r.tag} at ${r.commit.slice(0, 12)}${r.created ? '' : ' (already there)'}`,
    );
    t.phase('building');
    const built = await t.step(
      'build and push images',
      () =>
        heavy(p.ioTaskQueue).buildImages({
          workflowId,
          version: p.version,
          commit: p.commit,
          services: p.services,
          allowOverwrite: false,
        }),
      (r) => `${Object.keys(r).length} images, digests fixed for every stage`,
    );
    images = Object.fromEntries(Object.entries(built).map(([name, b]) => [name, b.reference]));
    status.release = { commit: p.commit, images };
  } catch (err) {
    const reason = describeError(err);
    await notify('failed', `release ${p.version} failed before its first stage: ${reason}`);
    return finish('failed', reason);
  }

  // --- the stages, in order ---------------------------------------------------------------
  for (const [i, stage] of p.stages.entries()) {
    const record = status.stages[i];
    current = stage;
    status.environment = stage.environment;
    t.release(p.version, stage.environment);
    t.governedBy(stage.approvals, stage.requestedVia);
    // The approvals of this stage's promotion gate: recorded with the stage.
    const approvalsBefore = status.approvals.length;
    if (stage.promotion) {
      between = true;
      try {
        await promote(stage, record);
      } catch (err) {
        between = false;
        const stop = err instanceof Stop ? err : new Stop('failed', describeError(err));
        record.state = stop.outcome === 'aborted' ? 'aborted' : 'failed';
        record.reason = stop.message;
        skipRest(i + 1);
        // A soak whose analysis failed is a failed verification in the stage before: the version is quarantined.
        if (stop.outcome === 'failed' && stage.promotion) await quarantine(stage.promotion.from, stop.message);
        await notify(stop.outcome, `release ${p.version} stopped before ${stage.environment}: ${stop.message}`);
        return finish(stop.outcome, stop.message);
      }
      between = false;
    }
    // The promotion's approvals end here; the stage's deployment records its own (adopted below too).
    const promotionApprovals = status.approvals.slice(approvalsBefore);
    record.state = 'deploying';
    record.waitingFor = undefined;
    t.phase('rolling-out');
    const r = await deployStage(stage);
    record.state = r.outcome === 'succeeded' ? 'succeeded' : r.outcome === 'planned' ? 'failed' : r.outcome;
    if (r.reason) record.reason = r.reason;
    await recordAudit(
      stage.environment,
      'release-stage',
      `stage-${stage.environment}`,
      releaseStageFacts({ ...p, workflowId }, record, images, {
        requestedVia: stage.requestedVia,
        approvals: promotionApprovals,
      }),
      t,
    );
    if (r.outcome !== 'succeeded') {
      skipRest(i + 1);
      const reason = `${stage.environment}: ${r.reason ?? r.outcome}`;
      const outcome: ReleaseOutcome = r.outcome === 'planned' ? 'failed' : r.outcome;
      await notify(outcome, `release ${p.version} ${outcome} in ${stage.environment}: ${r.reason ?? ''}`);
      return finish(outcome, reason);
    }
  }
  await notify('succeeded', `release ${p.version} is live on ${p.stages.map((s) => s.environment).join(', ')}`);
  return finish('succeeded');

  // --- the steps of a stage -----------------------------------------------------------------

  /** The promotion gate into `stage`: the soak in the stage before with its analysis, then the approvals. */
  async function promote(stage: ReleaseStage, record: StageStatus): Promise<void> {
    const rule = stage.promotion!;
    const stopIfAborted = () => {
      if (abortReq) throw abortedBy(abortReq);
    };
    // The soak: timers (durable, replayed), one analysis of the stage before per interval.
    t.phase('soaking');
    const soakUntil = Date.now() + rule.soakMs;
    record.state = 'waiting';
    record.waitingFor = `a ${formatDuration(rule.soakMs)} soak in ${rule.from} with its analysis passing, until ${new Date(soakUntil).toISOString()}`;
    const abortCommand = `${shellCommand(['deployctl', 'abort', workflowId, '--by'])} <name> --reason <text>${proofFlags(stage.approvals)}`;
    t.waitFor(record.waitingFor, rule.soakMs, [abortCommand]);
    const loop = new AnalysisLoop(t, {
      failureLimit: rule.failureLimit,
      inconclusiveLimit: rule.inconclusiveLimit,
      ...(rule.metricRules ? { metricRules: rule.metricRules } : {}),
    });
    let runs = 0;
    while (Date.now() < soakUntil) {
      const wait = Math.min(rule.analysisIntervalMs, soakUntil - Date.now());
      if (await condition(() => abortReq !== undefined, wait, { summary: `soak in ${rule.from}` })) stopIfAborted();
      const ran = await loop.run({
        workflowId,
        environment: rule.from,
        namespace: rule.fromNamespace,
        version: p.version,
        stableVersion: p.version,
        weight: 100,
        tracks: ['stable'],
      });
      // With per-metric rules a run may measure nothing due (count, interval): not a run.
      if (ran) runs++;
    }
    t.doneWaiting();
    t.note('soak', undefined);
    stopIfAborted();
    await t.step(
      'soak',
      () => Promise.resolve(runs),
      (n) => `${formatDuration(rule.soakMs)} in ${rule.from}, ${n} analysis runs passed`,
    );
    if (!rule.approval) return;
    // The approvals the next environment requires, verified by its own verifier.
    const required = stage.approvals.required;
    record.waitingFor = `${required} approval${required > 1 ? 's' : ''} to promote ${p.version} from ${rule.from} to ${stage.environment}`;
    const commands = approvalCommands(workflowId, stage.approvals);
    await gate.require({
      id: `promote-${stage.environment}`,
      reason: `promote ${p.version} to ${stage.environment}`,
      phase: 'awaiting-approval',
      waitingFor: record.waitingFor,
      timeoutMs: rule.approvalTimeoutMs,
      commands,
      announce: () => notify('awaiting-approval', `release ${p.version}: ${record.waitingFor}`, { commands }),
      abortRequest: () => abortReq,
      timedOut: `no approval to promote to ${stage.environment} within ${formatDuration(rule.approvalTimeoutMs)}`,
    });
  }

  /** One stage: a child deployment of the release's commit and images, steered through this workflow. */
  async function deployStage(stage: ReleaseStage): Promise<DeployResult> {
    const args: DeployInput = {
      version: p.version,
      environment: stage.environment,
      requestedBy: p.requestedBy,
      release: { workflowId, commit: p.commit, images, requestedVia: stage.requestedVia },
    };
    status.children.push(stage.workflowId);
    child.active = stage.workflowId;
    try {
      const r = await t.step(
        `deploy to ${stage.environment}`,
        () =>
          resultOf(
            executeChild(deployWorkflow, {
              workflowId: stage.workflowId,
              args: [args],
              staticSummary: `${p.project}: release ${p.version}, stage ${stage.environment}`,
            }),
          ),
        (x) => `${x.outcome}${x.reason ? `: ${x.reason}` : ''}`,
      );
      t.adoptPeople(r.status);
      return r;
    } catch (err) {
      return {
        outcome: 'failed',
        workflowId: stage.workflowId,
        version: p.version,
        environment: stage.environment,
        reason: describeError(err),
        status,
      };
    } finally {
      child.active = undefined;
    }
  }

  function skipRest(from: number): void {
    for (const s of status.stages!.slice(from)) s.state = 'skipped';
  }

  async function quarantine(environment: string, reason: string): Promise<void> {
    await CancellationScope.nonCancellable(async () => {
      try {
        await t.step(
          'quarantine',
          () => short.quarantineVersion({ version: p.version, environment, workflowId, reason }),
          (q) => `${q.version} quarantined after ${environment}`,
        );
      } catch (err) {
        t.note('quarantine', `the quarantine of ${p.version} could not be recorded: ${describeError(err)}`);
      }
    });
  }
}
