/**
 * Blue-green (runbook "Blue-Green Deployment Strategy"): the new colour comes
 * up beside the live one → waits Ready → smoke checks → optional approval →
 * the Service switches → a monitoring window with analysis → the old colour
 * scales down, and is deleted after a delay by a detached child. An abort (or
 * a failed analysis) switches traffic back and removes the new colour.
 */
import {
  CancellationScope,
  ParentClosePolicy,
  condition,
  patched,
  sleep,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import type { BlueGreenTarget, Colour } from '../activities/contracts';
import { ErrorType } from '../domain/errors';
import { colourTarget, trafficService, trafficTarget, type DeployPlan } from '../domain/plan';
import { policyOf } from '../domain/identity';
import type { PromotePayload } from '../domain/signals';
import type { DeploymentStatus, SignalRecord } from '../domain/status';
import { long, short, traffic } from './activity-options';
import { outcomeFailure } from './outcome';
import {
  BLUE_GREEN_PREVIEW_SMOKE_PATCH,
  CHILD_CONFIRMS_PLAN_PATCH,
  CLOSE_STATUS_FOLLOWS_OUTCOME_PATCH,
} from './patches';
import { confirmHandedPlan, requireParent } from './support/handover';
import { AnalysisLoop } from './support/analysis';
import { approvalCommands, Gate, peopleRules, verifiedFields } from './support/gate';
import { aboutPlan, notifierFor } from './support/notifier';
import { signalTargetId, steer, type Sender } from './support/steering';
import { abortedBy, asStop, Stop } from './support/stop';
import { childTracker, describeError, nowIso } from './support/tracker';

/** A blue-green release, from the deploy workflow with its plan (started on its own it is refused). */
export interface BlueGreenInput {
  version: string;
  environment?: string;
  requestedBy?: string;
  /** Set by the deploy workflow, and confirmed against config before use; without it the plan is resolved from config. */
  plan?: DeployPlan;
  image?: string;
  searchAttributes?: boolean;
}

/** Which colour serves at the end, and which served before (what an undo switches back to). */
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

/** New colour beside the live one, smoke checks, optional approval, switch, monitoring, old colour retired. */
export async function blueGreenWorkflow(input: BlueGreenInput): Promise<BlueGreenResult> {
  // Only a deployment starts a blue-green, and its plan is confirmed (histories from before it trusted their input).
  const confirms = patched(CHILD_CONFIRMS_PLAN_PATCH);
  if (confirms) requireParent('blue-green', input?.version);
  const info = workflowInfo();
  const t = childTracker('blue-green', input, '(default)');
  const status = t.status;
  const signalTarget = signalTargetId();
  let plan = input.plan;
  let abortReq: SignalRecord | undefined;
  let monitoring = false;
  let promoteReq: (PromotePayload & Sender) | undefined;
  const people = peopleRules(() => plan);
  const { allowed } = people;
  const gate = new Gate(t, { allowed, required: people.required, requester: people.requester });

  steer(
    t,
    {
      approve: (p) => gate.approve(p),
      abort: (p) => {
        if (t.isFinal) return t.ignore('abort', p.by, `the blue-green deployment is already ${status.phase}`);
        if (abortReq) return t.ignore('abort', p.by, `already aborting (requested by ${abortReq.by})`);
        // Past the monitoring window nothing reads an abort any more: record it as ignored, not as accepted.
        if (status.phase === 'promoting' || status.phase === 'rolling-back')
          return t.ignore('abort', p.by, `the blue-green deployment is already ${status.phase}`, { reason: p.reason });
        if (!allowed(p)) return t.ignore('abort', p.by, `${p.by} is not an approver for ${status.environment}`);
        abortReq = { signal: 'abort', by: p.by, at: nowIso(), reason: p.reason, ...verifiedFields(p) };
        status.aborts.push(abortReq);
      },
      promote: (p) => {
        if (!monitoring) return t.ignore('promote', p.by, `no monitoring window is running (phase ${status.phase})`);
        if (!allowed(p)) return t.ignore('promote', p.by, `${p.by} is not an approver for ${status.environment}`);
        promoteReq = p;
      },
    },
    { idle: () => 'blue-green has no soak to pause', policy: people.policy },
  );
  const notify = notifierFor(t, signalTarget, () => aboutPlan(plan));

  if (!plan) {
    plan = await t.step('resolve plan', () =>
      short.resolvePlan({
        workflowId: info.workflowId,
        input: {
          version: input.version,
          strategy: 'blue-green',
          ...(input.environment ? { environment: input.environment } : {}),
          ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
        },
      }),
    );
  }
  const p: DeployPlan = plan;
  if (confirms && input.plan) await confirmHandedPlan(t, p, input.image);
  t.identify(p.version, p.environment, 'blue-green', input.searchAttributes ?? p.searchAttributes);
  t.governedBy(policyOf(p), p.requestedVia);
  const target: BlueGreenTarget = {
    ...colourTarget(trafficTarget(p, signalTarget, input.image), trafficService(p)?.deployment),
    ...(p.blueGreen.previewService ? { previewService: p.blueGreen.previewService } : {}),
  };
  const stopIfAborted = (): void => {
    if (abortReq) throw abortedBy(abortReq);
  };

  /** The monitoring window: analysis every interval; abort or a failed analysis ends it towards the switch back. */
  const monitor = async (colour: Colour): Promise<void> => {
    t.phase('monitoring');
    monitoring = true;
    const analysis = new AnalysisLoop(t, p.canary);
    let remaining = p.blueGreen.monitorMs;
    while (remaining > 0) {
      const slice = Math.min(remaining, p.blueGreen.analysisIntervalMs);
      t.waitFor(`monitoring ${colour} until ${new Date(Date.now() + remaining).toISOString()}`, remaining);
      const began = Date.now();
      await condition(() => abortReq !== undefined || promoteReq !== undefined, slice, {
        summary: `monitoring ${colour}: ${Math.round(remaining / 1000)}s of the window left`,
      });
      remaining -= Date.now() - began;
      t.doneWaiting();
      stopIfAborted();
      if (promoteReq) {
        status.approvals.push({
          signal: 'promote',
          by: promoteReq.by,
          at: nowIso(),
          reason: 'end the monitoring window',
          ...verifiedFields(promoteReq),
        });
        break;
      }
      await analysis.run({
        workflowId: signalTarget,
        environment: p.environment,
        namespace: p.namespace,
        version: p.version,
        stableVersion: p.version,
        weight: 100,
        tracks: ['stable'],
      });
    }
    monitoring = false;
  };

  let active: Colour | undefined;
  let next: Colour | undefined;
  let switched = false;
  try {
    t.phase('rolling-out');
    const prepared = await t.step(
      'start the new colour',
      () => long.prepareBlueGreen(target),
      (r) => `${r.target.deployment} (${r.target.colour}) ready beside ${r.active.deployment} (${r.active.colour})`,
    );
    active = prepared.active.colour;
    if (prepared.alreadyActive) {
      t.finish('succeeded');
      return {
        outcome: 'switched',
        live: active,
        previous: active,
        liveDeployment: prepared.active.deployment,
        status,
      };
    }
    const colour = prepared.target.colour;
    next = colour;
    stopIfAborted();
    t.phase('verifying');
    // Histories from before the preview smoke-tested the live colour here, whatever it was.
    const throughPreview = patched(BLUE_GREEN_PREVIEW_SMOKE_PATCH);
    if (!throughPreview || target.previewService) {
      const smoke = await t.step(
        `smoke checks on ${colour}`,
        () =>
          short.runSmokeChecks({
            workflowId: signalTarget,
            environment: p.environment,
            ...(throughPreview ? { preview: true } : {}),
          }),
        (r) => r.lines.slice(0, 3).join('; '),
      );
      if (!smoke.ok) throw new Stop('failed', `smoke checks failed on ${colour}: ${smoke.lines.join('; ')}`);
    } else {
      t.skip(
        `smoke checks on ${colour}`,
        'no rollout.blueGreen.preview: the new colour is smoke-tested on the live URL after the switch',
      );
    }
    if (p.blueGreen.approval) {
      const commands = approvalCommands(signalTarget, policyOf(p));
      await gate.require({
        id: 'switch',
        reason: 'switch traffic',
        phase: 'awaiting-approval',
        waitingFor: `approval to switch traffic to ${colour}`,
        timeoutMs: p.blueGreen.approvalTimeoutMs,
        commands,
        announce: () =>
          notify('awaiting-approval', `${p.project} ${p.version}: ${colour} is ready; approve to switch traffic`, {
            commands,
          }),
        abortRequest: () => abortReq,
        timedOut: `approval to switch traffic timed out after ${Math.round(p.blueGreen.approvalTimeoutMs / 1000)}s`,
      });
    }
    stopIfAborted();
    t.phase('switching');
    await t.step(
      `switch traffic to ${colour}`,
      () => traffic.switchBlueGreen({ target, colour }),
      (r) =>
        Object.entries(r.selector)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
    );
    switched = true;
    await notify('step-promoted', `${p.project} ${p.version}: traffic switched to ${colour}`);
    await monitor(colour);

    t.phase('promoting');
    const old = prepared.active.colour;
    const scaled = await t.step(
      `scale down ${old}`,
      () => short.scaleDownOldColour({ target, colour: old }),
      (r) => `${r.deployment} from ${r.previousReplicas} to 0`,
    );
    // Deleting the old colour waits for a delay that outlives this workflow.
    await startChild(retireColourWorkflow, {
      workflowId: `${info.workflowId}-retire-${old}`,
      args: [{ target, colour: old, afterMs: scaled.deleteAfterMs }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      staticSummary: `${p.project}: delete ${scaled.deployment} (${old}) of ${p.environment}, retired by ${p.version}`,
    });
    t.finish('succeeded');
    return { outcome: 'switched', live: colour, previous: old, liveDeployment: prepared.target.deployment, status };
  } catch (err) {
    monitoring = false;
    const stop = asStop(err);
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
    const result: BlueGreenResult = {
      outcome: stop.outcome,
      reason: status.error ?? stop.reason,
      ...(live ? { live } : {}),
      ...(active ? { previous: active } : {}),
      ...(stop.timedOut ? { timedOut: true } : {}),
      status,
    };
    // Closes as Failed, the result in the failure (histories from before issue 16 item 9 completed).
    if (patched(CLOSE_STATUS_FOLLOWS_OUTCOME_PATCH))
      throw outcomeFailure(
        stop.outcome === 'aborted' ? ErrorType.BlueGreenAborted : ErrorType.BlueGreenFailed,
        result.reason,
        result,
      );
    return result;
  }
}

/** Deletes a retired colour after a delay (a durable timer), detached from the deployment that retired it. */
export async function retireColourWorkflow(input: {
  target: BlueGreenTarget;
  colour: Colour;
  afterMs: number;
}): Promise<void> {
  await sleep(input.afterMs, { summary: `delete the retired ${input.colour} colour after this delay` });
  await short.deleteOldColour({ target: input.target, colour: input.colour });
}
