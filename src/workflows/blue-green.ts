/**
 * Blue-green (runbook "Blue-Green Deployment Strategy"): the new colour comes
 * up beside the live one → waits Ready → smoke checks → optional approval →
 * the Service switches → a monitoring window with analysis → the old colour
 * scales down, and is deleted after a delay by a detached child. An abort (or
 * a failed analysis) switches traffic back and removes the new colour.
 */
import { CancellationScope, ParentClosePolicy, condition, log, setHandler, sleep, startChild, workflowInfo } from '@temporalio/workflow';
import type { BlueGreenTarget, Colour, NotificationEvent } from '../activities/contracts';
import { tallyRun, type AnalysisTally } from '../domain/analysis';
import type { DeployPlan } from '../domain/plan';
import { checkSignal, isAllowedApprover, type AbortPayload, type ApprovePayload, type PromotePayload } from '../domain/signals';
import type { DeploymentStatus, SignalRecord } from '../domain/status';
import { analysis, long, notifier, short, traffic } from './activity-options';
import { abortSignal, approveSignal, pauseSignal, promoteSignal, resumeSignal } from './messages';
import { describeError, nowIso, Tracker } from './tracker';

export interface BlueGreenInput {
  version: string;
  environment?: string;
  requestedBy?: string;
  /** Set by the deploy workflow; a standalone start resolves its own plan. */
  plan?: DeployPlan;
  image?: string;
  searchAttributes?: boolean;
}

export interface BlueGreenResult {
  outcome: 'switched' | 'aborted' | 'failed';
  /** The colour serving traffic at the end. */
  live?: Colour;
  /** The colour that served before this release (where an undo switches back to). */
  previous?: Colour;
  /** The Deployment serving traffic at the end. */
  liveDeployment?: string;
  reason?: string;
  timedOut?: boolean;
  status: DeploymentStatus;
}

class StopBlueGreen extends Error {
  constructor(
    readonly outcome: 'aborted' | 'failed',
    readonly reason: string,
    readonly timedOut = false,
  ) {
    super(reason);
  }
}

export async function blueGreenWorkflow(input: BlueGreenInput): Promise<BlueGreenResult> {
  const info = workflowInfo();
  const t = new Tracker('blue-green', {
    version: input.version,
    environment: input.environment ?? input.plan?.environment ?? '(default)',
    strategy: 'blue-green',
    ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
  });
  const status = t.status;
  const signalTarget = info.parent?.workflowId ?? info.workflowId;
  let plan = input.plan;
  let abortReq: SignalRecord | undefined;
  let gate: { approvals: Set<string> } | undefined;
  let monitoring = false;
  let promoteReq: PromotePayload | undefined;
  const allowed = (by: string) => !plan || isAllowedApprover(by, plan.approvers);

  setHandler(approveSignal, (payload: unknown) => {
    const c = checkSignal<ApprovePayload>('approve', payload);
    if (!c.ok) return t.ignore('approve', c.by, c.reason);
    if (!gate) return t.ignore('approve', c.value.by, `nothing is awaiting approval (phase ${status.phase})`);
    if (!allowed(c.value.by)) return t.ignore('approve', c.value.by, `${c.value.by} is not an approver for ${status.environment}`);
    if (gate.approvals.has(c.value.by)) return t.ignore('approve', c.value.by, `${c.value.by} already approved; a different person must approve`);
    gate.approvals.add(c.value.by);
    status.approvals.push({ signal: 'approve', by: c.value.by, at: nowIso(), reason: 'switch traffic', ...(c.value.note ? { note: c.value.note } : {}) });
  });
  setHandler(abortSignal, (payload: unknown) => {
    const c = checkSignal<AbortPayload>('abort', payload);
    if (!c.ok) return t.ignore('abort', c.by, c.reason);
    if (t.isFinal) return t.ignore('abort', c.value.by, `the blue-green deployment is already ${status.phase}`);
    if (abortReq) return t.ignore('abort', c.value.by, `already aborting (requested by ${abortReq.by})`);
    // Past the monitoring window nothing reads an abort any more: record it as ignored, not as accepted.
    if (status.phase === 'promoting' || status.phase === 'rolling-back') return t.ignore('abort', c.value.by, `the blue-green deployment is already ${status.phase}`, { reason: c.value.reason });
    if (!allowed(c.value.by)) return t.ignore('abort', c.value.by, `${c.value.by} is not an approver for ${status.environment}`);
    abortReq = { signal: 'abort', by: c.value.by, at: nowIso(), reason: c.value.reason };
    status.aborts.push(abortReq);
  });
  setHandler(promoteSignal, (payload: unknown) => {
    const c = checkSignal<PromotePayload>('promote', payload);
    if (!c.ok) return t.ignore('promote', c.by, c.reason);
    if (!monitoring) return t.ignore('promote', c.value.by, `no monitoring window is running (phase ${status.phase})`);
    if (!allowed(c.value.by)) return t.ignore('promote', c.value.by, `${c.value.by} is not an approver for ${status.environment}`);
    promoteReq = c.value;
  });
  for (const [def, name] of [
    [pauseSignal, 'pause'],
    [resumeSignal, 'resume'],
  ] as const) {
    setHandler(def, (payload: unknown) => {
      const c = checkSignal<{ by: string }>(name, payload);
      t.ignore(name, c.ok ? c.value.by : c.by, c.ok ? 'blue-green has no soak to pause' : c.reason);
    });
  }

  const notify = async (kind: NotificationEvent['kind'], text: string, commands?: string[]): Promise<void> => {
    try {
      const r = await notifier.notify({ kind, workflowId: signalTarget, environment: status.environment, version: status.version, text, ...(plan ? { project: plan.project, ...(plan.uiUrl ? { uiUrl: plan.uiUrl } : {}) } : {}), ...(commands ? { commands } : {}) });
      status.notificationFailures += r.failed;
    } catch (err) {
      status.notificationFailures += 1;
      log.warn('notification failed', { error: describeError(err) });
    }
  };

  if (!plan) {
    plan = await t.step('resolve plan', () =>
      short.resolvePlan({ workflowId: info.workflowId, input: { version: input.version, strategy: 'blue-green', ...(input.environment ? { environment: input.environment } : {}), ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}) } }),
    );
  }
  const p: DeployPlan = plan;
  t.identify(p.version, p.environment, 'blue-green', input.searchAttributes ?? p.searchAttributes);
  const svc = p.services.find((s) => s.name === p.traffic.service);
  const target: BlueGreenTarget = {
    workflowId: signalTarget,
    namespace: p.namespace,
    service: p.traffic.service,
    ...(svc ? { deployment: svc.deployment } : {}),
    container: svc?.container ?? p.traffic.service,
    image: input.image ?? svc?.reference ?? `${p.registry}/${p.traffic.service}:${p.version}`,
    version: p.version,
  };
  const aborted = () => (abortReq ? new StopBlueGreen('aborted', `aborted by ${abortReq.by}: ${abortReq.reason ?? ''}`.trim()) : undefined);

  let active: Colour | undefined;
  let next: Colour | undefined;
  let switched = false;
  try {
    t.phase('rolling-out');
    const prepared = await t.step('start the new colour', () => long.prepareBlueGreen(target), (r) => `${r.target.deployment} (${r.target.colour}) ready beside ${r.active.deployment} (${r.active.colour})`);
    active = prepared.active.colour;
    if (prepared.alreadyActive) {
      t.finish('succeeded');
      return { outcome: 'switched', live: active, previous: active, liveDeployment: prepared.active.deployment, status };
    }
    const colour = prepared.target.colour;
    next = colour;
    let stop = aborted();
    if (stop) throw stop;
    t.phase('verifying');
    const smoke = await t.step(`smoke checks on ${colour}`, () => short.runSmokeChecks({ workflowId: signalTarget }), (r) => r.lines.slice(0, 3).join('; '));
    if (!smoke.ok) throw new StopBlueGreen('failed', `smoke checks failed on ${colour}: ${smoke.lines.join('; ')}`);
    if (p.blueGreen.approval) {
      gate = { approvals: new Set() };
      const g = gate;
      const commands = [`deployctl approve ${signalTarget} --by <name>`, `deployctl abort ${signalTarget} --by <name> --reason <text>`];
      t.phase('awaiting-approval');
      t.waitFor(`approval to switch traffic to ${colour}`, p.blueGreen.approvalTimeoutMs, commands);
      await notify('awaiting-approval', `${p.project} ${p.version}: ${colour} is ready; approve to switch traffic`, commands);
      const answered = await condition(() => abortReq !== undefined || g.approvals.size >= p.requiredApprovals, p.blueGreen.approvalTimeoutMs);
      gate = undefined;
      t.doneWaiting();
      stop = aborted();
      if (stop) throw stop;
      if (!answered) throw new StopBlueGreen('aborted', `approval to switch traffic timed out after ${Math.round(p.blueGreen.approvalTimeoutMs / 1000)}s`, true);
    }
    stop = aborted();
    if (stop) throw stop;
    t.phase('switching');
    await t.step(`switch traffic to ${colour}`, () => traffic.switchBlueGreen({ target, colour }), (r) => Object.entries(r.selector).map(([k, v]) => `${k}=${v}`).join(','));
    switched = true;
    await notify('step-promoted', `${p.project} ${p.version}: traffic switched to ${colour}`);

    // Monitoring window: analysis every interval; abort or a failed analysis switches back.
    t.phase('monitoring');
    monitoring = true;
    let tally: AnalysisTally = { failedRuns: 0, consecutiveInconclusive: 0 };
    let remaining = p.blueGreen.monitorMs;
    while (remaining > 0) {
      const slice = Math.min(remaining, p.blueGreen.analysisIntervalMs);
      t.waitFor(`monitoring ${colour} until ${new Date(Date.now() + remaining).toISOString()}`, remaining);
      const began = Date.now();
      await condition(() => abortReq !== undefined || promoteReq !== undefined, slice);
      remaining -= Date.now() - began;
      t.doneWaiting();
      stop = aborted();
      if (stop) throw stop;
      if (promoteReq) {
        status.approvals.push({ signal: 'promote', by: promoteReq.by, at: nowIso(), reason: 'end the monitoring window' });
        break;
      }
      let run;
      try {
        run = await analysis.analyzeCanary({ workflowId: signalTarget, namespace: p.namespace, version: p.version, stableVersion: p.version, weight: 100, tracks: ['stable'] });
      } catch (err) {
        run = { at: nowIso(), outcome: 'inconclusive' as const, measurements: [{ metric: 'analysis', track: 'stable', value: null, outcome: 'inconclusive' as const, reason: describeError(err) }] };
      }
      status.lastAnalysis = run;
      const v = tallyRun(tally, run, p.canary);
      tally = v.tally;
      if (v.verdict === 'fail') throw new StopBlueGreen('failed', v.reason);
    }
    monitoring = false;

    t.phase('promoting');
    const old = prepared.active.colour;
    const scaled = await t.step(`scale down ${old}`, () => short.scaleDownOldColour({ target, colour: old }), (r) => `${r.deployment} from ${r.previousReplicas} to 0`);
    // Deleting the old colour waits for a delay that outlives this workflow.
    await startChild(retireColourWorkflow, {
      workflowId: `${info.workflowId}-retire-${old}`,
      args: [{ target, colour: old, afterMs: scaled.deleteAfterMs }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
    });
    t.finish('succeeded');
    return { outcome: 'switched', live: colour, previous: old, liveDeployment: prepared.target.deployment, status };
  } catch (err) {
    monitoring = false;
    const stop = err instanceof StopBlueGreen ? err : new StopBlueGreen('failed', describeError(err));
    t.phase('rolling-back');
    // The way back must land even when this workflow is being cancelled (design §3.9).
    await CancellationScope.nonCancellable(async () => {
      if (active) {
        const back = active;
        try {
          // Traffic back on the colour that served before; the new colour scaled to zero.
          await t.step(`switch traffic back to ${back}`, () => long.abortBlueGreen({ target, colour: back }));
          switched = false;
        } catch (undoErr) {
          status.error = `${stop.reason}; switching back to ${back} failed: ${describeError(undoErr)}`;
        }
      }
      await notify(stop.outcome, `${p.project} ${p.version} blue-green ${stop.outcome}: ${stop.reason}`);
    });
    t.finish(stop.outcome, status.error ?? stop.reason);
    const live = switched ? next : active;
    return { outcome: stop.outcome, reason: status.error ?? stop.reason, ...(live ? { live } : {}), ...(active ? { previous: active } : {}), ...(stop.timedOut ? { timedOut: true } : {}), status };
  }
}

/** Deletes a retired colour after a delay (a durable timer), detached from the deployment that retired it. */
export async function retireColourWorkflow(input: { target: BlueGreenTarget; colour: Colour; afterMs: number }): Promise<void> {
  await sleep(input.afterMs);
  await short.deleteOldColour({ target: input.target, colour: input.colour });
}
