/**
 * Canary promotion (runbook "Canary Deployment Strategy"): traffic moves
 * through the steps (5 → 25 → 50 → 100 by default), each followed by a
 * durable soak during which analysis runs every interval. People steer it
 * with signals: approve (gated steps), abort, pause / resume (the soak clock
 * stops and keeps the time left), promote (end this soak) and promote
 * {full:true} (one final analysis, then 100%). Abort is one signal with one
 * end state: stable at 100%, canary scaled to zero.
 */
import { CancellationScope, condition, log, setHandler, workflowInfo } from '@temporalio/workflow';
import type { CanaryTarget, NotificationEvent } from '../activities/contracts';
import { tallyRun, type AnalysisTally } from '../domain/analysis';
import type { CanaryOverrides } from '../domain/input';
import { needsApprovalBefore, type DeployPlan } from '../domain/plan';
import { checkSignal, isAllowedApprover, type AbortPayload, type ApprovePayload, type PausePayload, type PromotePayload, type ResumePayload } from '../domain/signals';
import type { AnalysisRun, DeploymentStatus, SignalRecord } from '../domain/status';
import { analysis, long, notifier, short, traffic } from './activity-options';
import { abortSignal, approveSignal, pauseSignal, promoteSignal, resumeSignal } from './messages';
import { describeError, nowIso, Tracker } from './tracker';

export interface CanaryInput {
  version: string;
  environment?: string;
  requestedBy?: string;
  canary?: CanaryOverrides;
  /** Set by the deploy workflow; a standalone start resolves its own plan. */
  plan?: DeployPlan;
  /** Digest-pinned image of the traffic service, when the build step knows it. */
  image?: string;
  /** Upsert the Deploy* search attributes (off where the server has not registered them). */
  searchAttributes?: boolean;
}

export type CanaryOutcome = 'promoted' | 'aborted' | 'failed';

export interface CanaryResult {
  outcome: CanaryOutcome;
  reason?: string;
  /** An approval gate timed out (and so the canary was aborted). */
  timedOut?: boolean;
  weight: number;
  status: DeploymentStatus;
}

type SoakEnd = 'done' | 'abort' | 'promote' | 'promote-full' | 'analysis-failed';

/** Thrown inside the workflow to leave the step loop towards the abort path. */
class StopCanary extends Error {
  constructor(
    readonly outcome: 'aborted' | 'failed',
    readonly reason: string,
    readonly timedOut = false,
  ) {
    super(reason);
  }
}

export async function canaryWorkflow(input: CanaryInput): Promise<CanaryResult> {
  const info = workflowInfo();
  const t = new Tracker(
    'canary',
    { version: input.version, environment: input.environment ?? input.plan?.environment ?? 'default', strategy: 'canary', ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}) },
  );
  const status = t.status;
  // People signal the deploy workflow when there is one; it forwards to us.
  const signalTarget = info.parent?.workflowId ?? info.workflowId;

  let plan: DeployPlan | undefined = input.plan;
  let abortReq: SignalRecord | undefined;
  let paused = false;
  let promoteReq: PromotePayload | undefined;
  let gate: { what: string; approvals: Set<string> } | undefined;
  let soaking = false;
  let canaryStarted = false;

  const allowed = (by: string): boolean => !plan || isAllowedApprover(by, plan.approvers);
  /** Past the point where a person can still steer it: promoting, rolling back, or ended. */
  const settled = (): boolean => t.isFinal || status.phase === 'promoting' || status.phase === 'rolling-back';

  setHandler(approveSignal, (payload: unknown) => {
    const c = checkSignal<ApprovePayload>('approve', payload);
    if (!c.ok) return t.ignore('approve', c.by, c.reason);
    const p = c.value;
    if (!gate) return t.ignore('approve', p.by, `nothing is awaiting approval (phase ${status.phase})`, { note: p.note });
    if (!allowed(p.by)) return t.ignore('approve', p.by, `${p.by} is not an approver for ${status.environment}`, { note: p.note });
    if (gate.approvals.has(p.by)) return t.ignore('approve', p.by, `${p.by} already approved this step; a different person must approve`, { note: p.note });
    gate.approvals.add(p.by);
    status.approvals.push({ signal: 'approve', by: p.by, at: nowIso(), ...(p.note ? { note: p.note } : {}), reason: gate.what });
  });

  setHandler(abortSignal, (payload: unknown) => {
    const c = checkSignal<AbortPayload>('abort', payload);
    if (!c.ok) return t.ignore('abort', c.by, c.reason);
    const p = c.value;
    if (abortReq) return t.ignore('abort', p.by, `already aborting (requested by ${abortReq.by})`, { reason: p.reason });
    if (settled()) return t.ignore('abort', p.by, `the canary is already ${status.phase}`, { reason: p.reason });
    if (!allowed(p.by)) return t.ignore('abort', p.by, `${p.by} is not an approver for ${status.environment}`, { reason: p.reason });
    abortReq = { signal: 'abort', by: p.by, at: nowIso(), reason: p.reason };
    status.aborts.push(abortReq);
  });

  setHandler(pauseSignal, (payload: unknown) => {
    const c = checkSignal<PausePayload>('pause', payload);
    if (!c.ok) return t.ignore('pause', c.by, c.reason);
    if (settled() || abortReq) return t.ignore('pause', c.value.by, `nothing to pause in phase ${status.phase}`);
    if (paused) return t.ignore('pause', c.value.by, 'already paused');
    paused = true;
    status.pauses.push({ signal: 'pause', by: c.value.by, at: nowIso() });
    if (status.canary) status.canary.paused = true;
  });

  setHandler(resumeSignal, (payload: unknown) => {
    const c = checkSignal<ResumePayload>('resume', payload);
    if (!c.ok) return t.ignore('resume', c.by, c.reason);
    if (!paused) return t.ignore('resume', c.value.by, 'not paused');
    paused = false;
    status.pauses.push({ signal: 'resume', by: c.value.by, at: nowIso() });
    if (status.canary) status.canary.paused = false;
  });

  setHandler(promoteSignal, (payload: unknown) => {
    const c = checkSignal<PromotePayload>('promote', payload);
    if (!c.ok) return t.ignore('promote', c.by, c.reason);
    if (!soaking) return t.ignore('promote', c.value.by, `no soak is running (phase ${status.phase})`);
    if (promoteReq) return t.ignore('promote', c.value.by, 'a promotion is already requested');
    if (!allowed(c.value.by)) return t.ignore('promote', c.value.by, `${c.value.by} is not an approver for ${status.environment}`);
    promoteReq = c.value;
    // Promote is the go-ahead: it ends a pause too, so promote and promote {full} both move on at once.
    if (paused) {
      paused = false;
      status.pauses.push({ signal: 'resume', by: c.value.by, at: nowIso(), reason: 'promote' });
      if (status.canary) status.canary.paused = false;
    }
  });

  const notify = async (kind: NotificationEvent['kind'], text: string, extra: Partial<NotificationEvent> = {}): Promise<void> => {
    try {
      const r = await notifier.notify({
        kind,
        workflowId: signalTarget,
        ...(plan ? { project: plan.project, uiUrl: plan.uiUrl } : {}),
        environment: status.environment,
        version: status.version,
        text,
        ...extra,
      });
      status.notificationFailures += r.failed;
    } catch (err) {
      status.notificationFailures += 1;
      log.warn('notification failed', { kind, error: describeError(err) });
    }
  };

  // --- plan -----------------------------------------------------------------
  if (!plan) {
    plan = await t.step('resolve plan', () =>
      short.resolvePlan({
        workflowId: info.workflowId,
        input: { version: input.version, strategy: 'canary', ...(input.environment ? { environment: input.environment } : {}), ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}), ...(input.canary ? { canary: input.canary } : {}) },
      }),
    );
  }
  const p: DeployPlan = plan;
  t.identify(p.version, p.environment, 'canary', input.searchAttributes ?? p.searchAttributes);
  const settings = p.canary;
  const trafficService = p.services.find((s) => s.name === p.traffic.service);
  const target: CanaryTarget = {
    workflowId: signalTarget,
    namespace: p.namespace,
    version: p.version,
    service: p.traffic.service,
    container: trafficService?.container ?? p.traffic.service,
    image: input.image ?? trafficService?.reference ?? `${p.registry}/${p.traffic.service}:${p.version}`,
    traffic: p.traffic,
  };
  status.canary = { steps: settings.steps, stepIndex: -1, weight: 0, paused, failedMeasurements: 0, consecutiveInconclusive: 0 };
  const canary = status.canary;
  let tally: AnalysisTally = { failedRuns: 0, consecutiveInconclusive: 0 };

  const commands = (): string[] => [
    `deployctl approve ${signalTarget} --by <name>`,
    `deployctl abort ${signalTarget} --by <name> --reason <text>`,
  ];

  /** Waits for the approvals a gate needs; a timeout aborts (approval gates time out into abort). */
  const awaitApproval = async (what: string): Promise<void> => {
    gate = { what, approvals: new Set() };
    const g = gate;
    t.phase('awaiting-approval');
    t.waitFor(what, settings.approvalTimeoutMs, commands());
    await notify('awaiting-approval', `${p.project} ${p.version} on ${p.environment}: ${what}`, { commands: commands(), weight: canary.weight });
    const answered = await condition(() => abortReq !== undefined || g.approvals.size >= p.requiredApprovals, settings.approvalTimeoutMs);
    gate = undefined;
    t.doneWaiting();
    if (abortReq) throw new StopCanary('aborted', `aborted by ${abortReq.by}: ${abortReq.reason ?? ''}`.trim());
    if (!answered) throw new StopCanary('aborted', `approval timed out after ${Math.round(settings.approvalTimeoutMs / 1000)}s: ${what}`, true);
  };

  const runAnalysis = async (): Promise<AnalysisRun> => {
    let run: AnalysisRun;
    try {
      run = await analysis.analyzeCanary({ workflowId: signalTarget, namespace: p.namespace, version: p.version, weight: canary.weight, tracks: ['canary', 'stable'] });
    } catch (err) {
      // The measurement could not be taken: inconclusive, never a pass.
      run = { at: nowIso(), outcome: 'inconclusive', weight: canary.weight, measurements: [{ metric: 'analysis', track: 'canary', value: null, outcome: 'inconclusive', reason: describeError(err) }] };
    }
    status.lastAnalysis = run;
    const v = tallyRun(tally, run, settings);
    tally = v.tally;
    canary.failedMeasurements = tally.failedRuns;
    canary.consecutiveInconclusive = tally.consecutiveInconclusive;
    if (v.verdict === 'fail') throw new StopCanary('failed', v.reason);
    return run;
  };

  /** The soak: a durable clock that stops while paused and wakes for abort or promote. */
  const soak = async (): Promise<SoakEnd> => {
    let remaining = settings.soakMs;
    let untilAnalysis = Math.min(settings.analysisIntervalMs, remaining);
    soaking = true;
    try {
      while (remaining > 0) {
        if (abortReq) return 'abort';
        if (paused) {
          t.phase('soaking');
          canary.soakEndsAt = undefined;
          canary.soakRemainingMs = remaining;
          t.waitFor(`resume (paused with ${Math.round(remaining / 1000)}s of soak left)`);
          await condition(() => !paused || abortReq !== undefined || promoteReq !== undefined);
          t.doneWaiting();
          if (promoteReq) break;
          continue;
        }
        t.phase('soaking');
        canary.soakEndsAt = new Date(Date.now() + remaining).toISOString();
        canary.soakRemainingMs = remaining;
        t.waitFor(`soak at ${canary.weight}% until ${canary.soakEndsAt}`, remaining);
        const slice = Math.min(remaining, untilAnalysis);
        const started = Date.now();
        await condition(() => paused || abortReq !== undefined || promoteReq !== undefined, slice);
        const elapsed = Date.now() - started;
        remaining -= elapsed;
        untilAnalysis -= elapsed;
        t.doneWaiting();
        if (abortReq) return 'abort';
        if (promoteReq) break;
        if (untilAnalysis <= 0 || remaining <= 0) {
          await runAnalysis();
          untilAnalysis = Math.min(settings.analysisIntervalMs, Math.max(remaining, 0));
        }
      }
      if (promoteReq) {
        const full = promoteReq.full === true;
        status.approvals.push({ signal: 'promote', by: promoteReq.by, at: nowIso(), reason: full ? 'promote to 100%' : `end soak at ${canary.weight}%` });
        promoteReq = undefined;
        return full ? 'promote-full' : 'promote';
      }
      return 'done';
    } finally {
      soaking = false;
      canary.soakEndsAt = undefined;
      canary.soakRemainingMs = undefined;
    }
  };

  const setWeight = async (weight: number): Promise<void> => {
    await t.step(`traffic ${weight}%`, () => traffic.setCanaryWeight({ target, weight }), (r) => `stable ${r.observed.stable} / canary ${r.observed.canary}`);
    canary.weight = weight;
  };

  try {
    t.phase('canary');
    // Set before the call: a start that fails half-way may leave a canary Deployment, and abortCanary is idempotent.
    canaryStarted = true;
    await t.step('start canary', () => long.startCanary(target), (r) => r.deployment);
    for (let i = 0; i < settings.steps.length; i++) {
      if (abortReq) throw new StopCanary('aborted', `aborted by ${abortReq.by}: ${abortReq.reason ?? ''}`.trim());
      const weight = settings.steps[i];
      if (needsApprovalBefore(weight, settings.approval)) await awaitApproval(`approval to move traffic to ${weight}%`);
      // A pause before a step holds traffic where it is.
      if (paused) {
        t.waitFor(`resume before moving to ${weight}%`);
        await condition(() => !paused || abortReq !== undefined);
        t.doneWaiting();
        if (abortReq) continue;
      }
      t.phase('canary');
      canary.stepIndex = i;
      await setWeight(weight);
      await notify('step-promoted', `${p.project} ${p.version}: canary at ${weight}%`, { weight });
      if (weight === 100) break;
      const end = await soak();
      if (end === 'abort') continue; // the top of the loop turns it into the abort path
      if (end === 'promote-full') {
        await runAnalysis();
        if (abortReq) continue; // an abort during the final analysis: the top of the loop aborts
        // Promote {full} skips the soaks, never the gate before 100% (before-full and every-step alike).
        if (needsApprovalBefore(100, settings.approval)) await awaitApproval('approval to move traffic to 100%');
        canary.stepIndex = settings.steps.length - 1;
        await setWeight(100);
        await notify('step-promoted', `${p.project} ${p.version}: canary at 100% (promoted)`, { weight: 100 });
        break;
      }
    }
    if (abortReq) throw new StopCanary('aborted', `aborted by ${abortReq.by}: ${abortReq.reason ?? ''}`.trim());
    t.phase('promoting');
    await t.step('promote', () => long.promoteCanary(target));
    t.finish('succeeded');
    return { outcome: 'promoted', weight: canary.weight, status };
  } catch (err) {
    const stop = err instanceof StopCanary ? err : new StopCanary('failed', describeError(err));
    let reason = stop.reason;
    // Abort must land whatever happens to this scope: traffic back to stable first.
    await CancellationScope.nonCancellable(async () => {
      t.phase('rolling-back');
      if (canaryStarted || canary.weight > 0) {
        try {
          await t.step('abort canary', () => traffic.abortCanary(target));
          canary.weight = 0;
        } catch (abortErr) {
          // Keep going (design §3.9), but say so: traffic may still be on the canary.
          log.error('abort of the canary failed', { error: describeError(abortErr) });
          reason = `${stop.reason}; aborting the canary failed: ${describeError(abortErr)}`;
        }
      }
      await notify(stop.outcome === 'aborted' ? 'aborted' : 'failed', `${p.project} ${p.version} canary ${stop.outcome}: ${reason}`, { weight: canary.weight });
    });
    t.finish(stop.outcome, reason);
    return { outcome: stop.outcome, reason, weight: canary.weight, status, ...(stop.timedOut ? { timedOut: true } : {}) };
  }
}
