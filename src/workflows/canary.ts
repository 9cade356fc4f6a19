/**
 * Canary promotion (runbook "Canary Deployment Strategy"): traffic moves
 * through the steps (5 → 25 → 50 → 100 by default), each followed by a
 * durable soak during which analysis runs every interval. People steer it
 * with signals: approve (gated steps), abort, pause / resume (the soak clock
 * stops and keeps the time left), promote (end this soak) and promote
 * {full:true} (one final analysis, then 100%). Abort is one signal with one
 * end state: stable at 100%, canary scaled to zero.
 */
import { CancellationScope, condition, log, patched, workflowInfo } from '@temporalio/workflow';
import type { CanaryTarget } from '../activities/contracts';
import { formatDuration } from '../domain/duration';
import { ErrorType } from '../domain/errors';
import type { CanaryOverrides } from '../domain/input';
import {
  needsApprovalBefore,
  stepRouteAt,
  trafficTarget,
  type CanarySettings,
  type DeployPlan,
  type StepRoute,
} from '../domain/plan';
import { policyOf } from '../domain/identity';
import type { PromotePayload } from '../domain/signals';
import type { CanaryState, DeploymentStatus, SignalRecord } from '../domain/status';
import { long, short, traffic } from './activity-options';
import {
  ABORT_AFTER_FAILED_START_PATCH,
  ABORT_DURING_FINAL_ANALYSIS_PATCH,
  CANARY_HOLDS_WHILE_FROZEN_PATCH,
  CHILD_CONFIRMS_PLAN_PATCH,
  CLOSE_STATUS_FOLLOWS_OUTCOME_PATCH,
  GATE_BEFORE_FULL_ON_PROMOTE_PATCH,
  PAUSE_LIMIT_PATCH,
} from './patches';
import { confirmHandedPlan, requireParent } from './support/handover';
import { outcomeFailure } from './outcome';
import { AnalysisLoop } from './support/analysis';
import { holdWhileFrozen } from './support/freeze';
import { approvalCommands, Gate, peopleRules, verifiedFields } from './support/gate';
import { aboutPlan, notifierFor } from './support/notifier';
import { signalTargetId, steer, type Sender, type SignalActions } from './support/steering';
import { abortedBy, asStop } from './support/stop';
import { canaryWeight } from './support/metrics';
import { childTracker, describeError, nowIso, Tracker } from './support/tracker';

/** A canary release, from the deploy workflow with its plan (started on its own it is refused). */
export interface CanaryInput {
  version: string;
  environment?: string;
  requestedBy?: string;
  canary?: CanaryOverrides;
  /** Set by the deploy workflow, and confirmed against config before use; without it the plan is resolved from config. */
  plan?: DeployPlan;
  /** Digest-pinned image of the traffic service, when the build step knows it. */
  image?: string;
  /** Upsert the Deploy* search attributes (off where the server has not registered them). */
  searchAttributes?: boolean;
}

/** How a canary ends: promoted to 100%, or back on stable. */
export type CanaryOutcome = 'promoted' | 'aborted' | 'failed';

/** The outcome and the weight the canary ended at. */
export interface CanaryResult {
  outcome: CanaryOutcome;
  reason?: string;
  /** An approval gate timed out (and so the canary was aborted). */
  timedOut?: boolean;
  weight: number;
  status: DeploymentStatus;
}

type SoakEnd = 'done' | 'abort' | 'promote' | 'promote-full' | 'analysis-failed';

/** What people change while the canary runs: the signal handlers write it, the steps and the soak read it. */
interface Steering {
  abortReq?: SignalRecord;
  paused: boolean;
  promoteReq?: PromotePayload & Sender;
  soaking: boolean;
  /** Workflow time of the pause, for the environment's maxPause. */
  pausedAt?: number;
}

/** Moves traffic step by step, soaks with analysis, stops at gates, then promotes; any stop aborts to stable. */
export async function canaryWorkflow(input: CanaryInput): Promise<CanaryResult> {
  // Only a deployment starts a canary, and its plan is confirmed (histories from before it trusted their input).
  const confirms = patched(CHILD_CONFIRMS_PLAN_PATCH);
  if (confirms) requireParent('canary', input?.version);
  const info = workflowInfo();
  const t = childTracker('canary', input, 'default');
  const status = t.status;
  const signalTarget = signalTargetId();
  let plan: DeployPlan | undefined = input.plan;
  const s: Steering = { paused: false, soaking: false };
  const people = peopleRules(() => plan);
  const { allowed } = people;
  const gate = new Gate(t, {
    allowed,
    required: people.required,
    requester: people.requester,
    approvedAgain: (by) => `${by} already approved this step; a different person must approve`,
    keepNotes: true,
  });
  steer(t, canarySignals(t, s, gate, allowed), { policy: people.policy });
  const notify = notifierFor(t, signalTarget, () => aboutPlan(plan));
  /** The start was asked for (it may have half-happened), and whether it returned. */
  let canaryStarted = false;
  let canaryStartReturned = false;

  // --- plan -----------------------------------------------------------------
  if (!plan) {
    plan = await t.step('resolve plan', () =>
      short.resolvePlan({
        workflowId: info.workflowId,
        input: {
          version: input.version,
          strategy: 'canary',
          ...(input.environment ? { environment: input.environment } : {}),
          ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
          ...(input.canary ? { canary: input.canary } : {}),
        },
      }),
    );
  }
  const p: DeployPlan = plan;
  if (confirms && input.plan) await confirmHandedPlan(t, p, input.image);
  t.identify(p.version, p.environment, 'canary', input.searchAttributes ?? p.searchAttributes);
  t.governedBy(policyOf(p), p.requestedVia);
  const settings = p.canary;
  const target: CanaryTarget = trafficTarget(p, signalTarget, input.image);
  status.canary = {
    steps: settings.steps,
    stepIndex: -1,
    weight: 0,
    paused: s.paused,
    failedMeasurements: 0,
    consecutiveInconclusive: 0,
  };
  const canary = status.canary;
  const analysis = new AnalysisLoop(t, settings, (tally) => {
    canary.failedMeasurements = tally.failedRuns;
    canary.consecutiveInconclusive = tally.consecutiveInconclusive;
  });
  const analyse = () =>
    analysis.run({
      workflowId: signalTarget,
      environment: p.environment,
      namespace: p.namespace,
      version: p.version,
      weight: canary.weight,
      tracks: ['canary', 'stable'],
    });
  const stopIfAborted = (): void => {
    if (s.abortReq) throw abortedBy(s.abortReq);
  };
  /** Waits until `wake`; a pause longer than the environment's maxPause becomes an abort to stable. */
  const whilePaused = async (wake: () => boolean): Promise<void> => {
    const limit = p.approvals?.maxPauseMs;
    if (limit === undefined || !patched(PAUSE_LIMIT_PATCH)) return void (await condition(wake));
    const left = Math.max(1, limit - (Date.now() - (s.pausedAt ?? Date.now())));
    if (await condition(wake, left, { summary: `pause: aborts to stable after ${formatDuration(limit)}` })) return;
    s.abortReq = {
      signal: 'abort',
      by: 'deploy-pipelines',
      at: nowIso(),
      reason: `paused longer than ${formatDuration(limit)} (approvals.maxPause of ${p.environment})`,
    };
    status.aborts.push(s.abortReq);
  };
  /** Waits for the approvals a gate needs; a timeout aborts (approval gates time out into abort). */
  const approval = (id: string, what: string): Promise<void> =>
    gate.require({
      id,
      reason: what,
      phase: 'awaiting-approval',
      timeoutMs: settings.approvalTimeoutMs,
      commands: approvalCommands(signalTarget, policyOf(p)),
      announce: () =>
        notify('awaiting-approval', `${p.project} ${p.version} on ${p.environment}: ${what}`, {
          commands: approvalCommands(signalTarget, policyOf(p)),
          weight: canary.weight,
        }),
      abortRequest: () => s.abortReq,
      timedOut: `approval timed out after ${Math.round(settings.approvalTimeoutMs / 1000)}s: ${what}`,
    });
  /**
   * Before a weight increase after the first step: while the environment's line is stopped (deployctl freeze) the
   * canary holds its weight; an abort ends the hold at once. Canaries recorded before it took no such look (and
   * no await: `holdsWhileFrozen() && ...` leaves their path as it was).
   */
  const holdsWhileFrozen = (): boolean => patched(CANARY_HOLDS_WHILE_FROZEN_PATCH);
  const holdWhileLineStopped = (): Promise<'clear' | 'aborted'> =>
    holdWhileFrozen(t, p, () => s.abortReq !== undefined, { holding: `the canary holds at ${canary.weight}%` });
  /** The step's route options, in the activity's input only when the plan configures some (other inputs stay as they were). */
  const routeOf = (weight: number): { route?: StepRoute } => {
    const route = stepRouteAt(settings, weight);
    return route ? { route } : {};
  };
  const setWeight = async (weight: number): Promise<void> => {
    await t.step(
      `traffic ${weight}%`,
      () => traffic.setCanaryWeight({ target, weight, ...routeOf(weight) }),
      (r) => `stable ${r.observed.stable} / canary ${r.observed.canary}`,
    );
    canary.weight = weight;
    canaryWeight(p.environment, weight, true);
  };

  try {
    // --- steps: traffic moves, then soaks with analysis ------------------------
    t.phase('canary');
    // Set before the call: a start that fails half-way may leave a canary Deployment, and abortCanary is idempotent.
    canaryStarted = true;
    await t.step(
      'start canary',
      () => long.startCanary(target),
      (r) => r.deployment,
    );
    canaryStartReturned = true;
    for (let i = 0; i < settings.steps.length; i++) {
      stopIfAborted();
      const weight = settings.steps[i];
      if (needsApprovalBefore(weight, settings.approval))
        await approval(`traffic-${weight}`, `approval to move traffic to ${weight}%`);
      // A pause before a step holds traffic where it is; so does a stopped line after the first step, and the
      // step waits until neither holds (a freeze that starts during a pause holds it after the resume).
      for (;;) {
        if (i > 0 && holdsWhileFrozen() && (await holdWhileLineStopped()) === 'aborted') break;
        if (!s.paused) break;
        t.waitFor(`resume before moving to ${weight}%`);
        await whilePaused(() => !s.paused || s.abortReq !== undefined);
        t.doneWaiting();
        if (s.abortReq) break;
      }
      if (s.abortReq) continue;
      t.phase('canary');
      canary.stepIndex = i;
      await setWeight(weight);
      await notify('step-promoted', `${p.project} ${p.version}: canary at ${weight}%`, { weight });
      if (weight === 100) break;
      const end = await soak(t, s, canary, settings, analyse, whilePaused);
      if (end === 'abort') continue; // the top of the loop turns it into the abort path
      if (end === 'promote-full') {
        await analyse();
        // An abort during the final analysis: the top of the loop aborts (histories from before 4841158 go on to 100%).
        if (s.abortReq && patched(ABORT_DURING_FINAL_ANALYSIS_PATCH)) continue;
        // Promote {full} skips the soaks, never the gate before 100% (before-full and every-step alike; histories
        // from before 4841158 skipped it under every-step).
        if (
          needsApprovalBefore(100, settings.approval) &&
          (settings.approval !== 'every-step' || patched(GATE_BEFORE_FULL_ON_PROMOTE_PATCH))
        )
          await approval('traffic-100', 'approval to move traffic to 100%');
        // A stopped line holds the weight here too; an abort during the hold: the top of the loop aborts.
        if (holdsWhileFrozen() && (await holdWhileLineStopped()) === 'aborted') continue;
        canary.stepIndex = settings.steps.length - 1;
        await setWeight(100);
        await notify('step-promoted', `${p.project} ${p.version}: canary at 100% (promoted)`, { weight: 100 });
        break;
      }
    }
    stopIfAborted();

    // --- promote: stable takes the new image ----------------------------------
    t.phase('promoting');
    await t.step('promote', () => long.promoteCanary(target));
    canaryWeight(p.environment, 0, false);
    t.finish('succeeded');
    return { outcome: 'promoted', weight: canary.weight, status };
  } catch (err) {
    // --- abort: one end state, stable at 100% and the canary at zero ------------
    const stop = asStop(err);
    let reason = stop.reason;
    // Abort must land whatever happens to this scope: traffic back to stable first.
    await CancellationScope.nonCancellable(async () => {
      t.phase('rolling-back');
      // A start that failed half-way is aborted too (histories from before 4841158 abort only a started canary).
      const started = canaryStartReturned || (canaryStarted && patched(ABORT_AFTER_FAILED_START_PATCH));
      if (started || canary.weight > 0) {
        try {
          await t.step('abort canary', () => traffic.abortCanary(target));
          canary.weight = 0;
          canaryWeight(p.environment, 0, false);
        } catch (abortErr) {
          // Keep going (design §3.9), but say so: traffic may still be on the canary.
          log.error('abort of the canary failed', { error: describeError(abortErr) });
          reason = `${stop.reason}; aborting the canary failed: ${describeError(abortErr)}`;
        }
      }
      await notify(stop.outcome, `${p.project} ${p.version} canary ${stop.outcome}: ${reason}`, {
        weight: canary.weight,
      });
    });
    t.finish(stop.outcome, reason);
    const result: CanaryResult = {
      outcome: stop.outcome,
      reason,
      weight: canary.weight,
      status,
      ...(stop.timedOut ? { timedOut: true } : {}),
    };
    // Closes as Failed, the result in the failure (histories from before issue 16 item 9 completed).
    if (patched(CLOSE_STATUS_FOLLOWS_OUTCOME_PATCH))
      throw outcomeFailure(
        stop.outcome === 'aborted' ? ErrorType.CanaryAborted : ErrorType.CanaryFailed,
        reason,
        result,
      );
    return result;
  }
}

/**
 * The canary's signals: approve (gated steps), abort, pause / resume (the soak
 * clock stops and keeps the time left), promote (end this soak) and promote
 * {full:true}.
 */
function canarySignals(t: Tracker, s: Steering, gate: Gate, allowed: (p: Sender) => boolean): SignalActions {
  const status = t.status;
  /** Past the point where a person can still steer it: promoting, rolling back, or ended. */
  const settled = (): boolean => t.isFinal || status.phase === 'promoting' || status.phase === 'rolling-back';
  const showPaused = (paused: boolean): void => {
    if (status.canary) status.canary.paused = paused;
  };
  return {
    approve: (p) => gate.approve(p),
    abort: (p) => {
      if (s.abortReq)
        return t.ignore('abort', p.by, `already aborting (requested by ${s.abortReq.by})`, { reason: p.reason });
      if (settled()) return t.ignore('abort', p.by, `the canary is already ${status.phase}`, { reason: p.reason });
      if (!allowed(p))
        return t.ignore('abort', p.by, `${p.by} is not an approver for ${status.environment}`, { reason: p.reason });
      s.abortReq = { signal: 'abort', by: p.by, at: nowIso(), reason: p.reason, ...verifiedFields(p) };
      status.aborts.push(s.abortReq);
    },
    pause: (p) => {
      if (settled() || s.abortReq) return t.ignore('pause', p.by, `nothing to pause in phase ${status.phase}`);
      if (s.paused) return t.ignore('pause', p.by, 'already paused');
      if (!allowed(p)) return t.ignore('pause', p.by, `${p.by} is not an approver for ${status.environment}`);
      s.paused = true;
      s.pausedAt = Date.now();
      status.pauses.push({ signal: 'pause', by: p.by, at: nowIso(), ...verifiedFields(p) });
      showPaused(true);
    },
    resume: (p) => {
      if (!s.paused) return t.ignore('resume', p.by, 'not paused');
      if (!allowed(p)) return t.ignore('resume', p.by, `${p.by} is not an approver for ${status.environment}`);
      s.paused = false;
      status.pauses.push({ signal: 'resume', by: p.by, at: nowIso(), ...verifiedFields(p) });
      showPaused(false);
    },
    promote: (p) => {
      if (!s.soaking) return t.ignore('promote', p.by, `no soak is running (phase ${status.phase})`);
      if (s.promoteReq) return t.ignore('promote', p.by, 'a promotion is already requested');
      if (!allowed(p)) return t.ignore('promote', p.by, `${p.by} is not an approver for ${status.environment}`);
      s.promoteReq = p;
      // Promote is the go-ahead: it ends a pause too, so promote and promote {full} both move on at once.
      if (s.paused) {
        s.paused = false;
        status.pauses.push({ signal: 'resume', by: p.by, at: nowIso(), reason: 'promote' });
        showPaused(false);
      }
    },
  };
}

/** The soak: a durable clock that stops while paused and wakes for abort or promote; analysis runs every interval. */
async function soak(
  t: Tracker,
  s: Steering,
  canary: CanaryState,
  settings: CanarySettings,
  analyse: () => Promise<unknown>,
  whilePaused: (wake: () => boolean) => Promise<void>,
): Promise<SoakEnd> {
  let remaining = settings.soakMs;
  let untilAnalysis = Math.min(settings.analysisIntervalMs, remaining);
  s.soaking = true;
  try {
    while (remaining > 0) {
      if (s.abortReq) return 'abort';
      if (s.paused) {
        t.phase('soaking');
        canary.soakEndsAt = undefined;
        canary.soakRemainingMs = remaining;
        t.waitFor(`resume (paused with ${Math.round(remaining / 1000)}s of soak left)`);
        await whilePaused(() => !s.paused || s.abortReq !== undefined || s.promoteReq !== undefined);
        t.doneWaiting();
        if (s.promoteReq) break;
        continue;
      }
      t.phase('soaking');
      canary.soakEndsAt = new Date(Date.now() + remaining).toISOString();
      canary.soakRemainingMs = remaining;
      t.waitFor(`soak at ${canary.weight}% until ${canary.soakEndsAt}`, remaining);
      const slice = Math.min(remaining, untilAnalysis);
      const started = Date.now();
      await condition(() => s.paused || s.abortReq !== undefined || s.promoteReq !== undefined, slice, {
        summary: `soak at ${canary.weight}% until ${canary.soakEndsAt}${slice < remaining ? ' (analysis on the way)' : ''}`,
      });
      const elapsed = Date.now() - started;
      remaining -= elapsed;
      untilAnalysis -= elapsed;
      t.doneWaiting();
      if (s.abortReq) return 'abort';
      if (s.promoteReq) break;
      if (untilAnalysis <= 0 || remaining <= 0) {
        await analyse();
        untilAnalysis = Math.min(settings.analysisIntervalMs, Math.max(remaining, 0));
      }
    }
    if (s.promoteReq) {
      const full = s.promoteReq.full === true;
      t.status.approvals.push({
        signal: 'promote',
        by: s.promoteReq.by,
        at: nowIso(),
        reason: full ? 'promote to 100%' : `end soak at ${canary.weight}%`,
        ...verifiedFields(s.promoteReq),
      });
      s.promoteReq = undefined;
      return full ? 'promote-full' : 'promote';
    }
    return 'done';
  } finally {
    s.soaking = false;
    canary.soakEndsAt = undefined;
    canary.soakRemainingMs = undefined;
  }
}
