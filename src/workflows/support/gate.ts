/**
 * The approval gate: a durable wait for people (canary steps, the blue-green
 * switch, the database decision after a rollback). It survives restarts
 * because it is workflow state, counts distinct approvers from the
 * environment's list, records who approved (design §5), and times out by
 * `condition(pred, timeout)` returning false, which the caller turns into an
 * abort or a safe default.
 */
import { condition } from '@temporalio/workflow';
import { mayApprove, policyOf, proofFlags, type ApprovalPolicy } from '../../domain/identity';
import { approvalCommands as baseApprovalCommands } from '../../domain/notification';
import type { ApprovePayload } from '../../domain/signals';
import type { Phase, SignalRecord } from '../../domain/status';
import type { Sender } from './steering';
import { abortedBy, Stop } from './stop';
import { approved } from './metrics';
import { nowIso, type Tracker } from './tracker';

export interface GateRules {
  /** Whether the sender may approve (the environment's approvers). */
  allowed: (sender: Sender) => boolean;
  /** The requester, when the environment forbids approving one's own deployment. */
  requester?: () => string | undefined;
  /** Distinct people the gate needs. */
  required: () => number;
  /** What a second approval from the same person is told. */
  approvedAgain?: (by: string) => string;
  /** Keep the note of a refused approval in the ignored signal (the canary does). */
  keepNotes?: boolean;
  /** False once the question is answered another way (the rollback's abort keeps the database). */
  awaiting?: () => boolean;
  /** Called for each approval the gate accepts. */
  onApprove?: (p: ApprovePayload & Sender) => void;
}

export interface GateWait {
  /** Names the gate in the status (`waitingFor.gate`); a verified approval is signed for it and counts only here. */
  id: string;
  /** Recorded with each approval: what was approved. */
  reason: string;
  phase: Phase;
  /** The status's `waitingFor` (default: `reason`). */
  waitingFor?: string;
  timeoutMs: number;
  /** The exact commands a person can run, in the status and the notification. */
  commands: string[];
  /** Tells people that the gate is open (a notification). */
  announce: () => Promise<void>;
  /** Ends the wait early, e.g. an abort. */
  interrupted?: () => boolean;
}

/** The approve and abort commands people run for a gate on `workflowId` (shell-quoted), with the proof the environment needs. */
export function approvalCommands(workflowId: string, policy?: ApprovalPolicy): string[] {
  const proof = policy ? proofFlags(policy) : '';
  return baseApprovalCommands(workflowId).map((c) => `${c}${proof}`);
}

/** The record of a sender in the status: how it was verified, when it was. */
export function verifiedFields(p: Sender): Pick<SignalRecord, 'via' | 'credential'> {
  return p.via === 'none' ? {} : { via: p.via, ...(p.credential ? { credential: p.credential } : {}) };
}

/** One gate of a workflow; open while `wait` runs, and the approve signal's handler. */
export class Gate {
  private open: { id: string; reason: string; approvals: Set<string>; since: number } | undefined;

  constructor(
    private readonly t: Tracker,
    private readonly rules: GateRules,
  ) {}

  /** A gate is waiting for an answer. */
  get isOpen(): boolean {
    return this.open !== undefined;
  }

  /** The approve signal: one approval from a distinct approver while the gate is open; anything else is recorded as ignored. */
  approve(p: ApprovePayload & Sender): void {
    const { t, rules } = this;
    const extra = { ...(rules.keepNotes ? { note: p.note } : {}), ...verifiedFields(p) };
    const g = this.open;
    if (!g || rules.awaiting?.() === false)
      return t.ignore('approve', p.by, `nothing is awaiting approval (phase ${t.status.phase})`, extra);
    // A verified approval counts only at the gate it was signed for, never at the next one.
    if (p.via !== 'none' && p.gate !== g.id)
      return t.ignore('approve', p.by, `signed for gate ${p.gate ?? '(none)'}, but the open gate is ${g.id}`, extra);
    if (!rules.allowed(p))
      return t.ignore('approve', p.by, `${p.by} is not an approver for ${t.status.environment}`, extra);
    if (p.by === rules.requester?.())
      return t.ignore(
        'approve',
        p.by,
        `${p.by} requested this deployment and may not approve it (${t.status.environment} does not allow self-approval)`,
        extra,
      );
    if (g.approvals.has(p.by))
      return t.ignore(
        'approve',
        p.by,
        rules.approvedAgain?.(p.by) ?? `${p.by} already approved; a different person must approve`,
        extra,
      );
    g.approvals.add(p.by);
    t.status.approvals.push({
      signal: 'approve',
      by: p.by,
      at: nowIso(),
      reason: g.reason,
      ...(p.note ? { note: p.note } : {}),
      ...verifiedFields(p),
    });
    approved(t.status.environment, g.id, (Date.now() - g.since) / 1000);
    rules.onApprove?.(p);
  }

  /** Opens the gate, announces it and waits; true when answered (enough approvals or interrupted), false when it timed out. */
  async wait(w: GateWait): Promise<boolean> {
    const g = { id: w.id, reason: w.reason, approvals: new Set<string>(), since: Date.now() };
    this.open = g;
    this.t.phase(w.phase);
    this.t.waitFor(w.waitingFor ?? w.reason, w.timeoutMs, w.commands, w.id);
    await w.announce();
    const answered = await condition(
      () => w.interrupted?.() === true || g.approvals.size >= this.rules.required(),
      w.timeoutMs,
      // The gate's timeout, as the Temporal UI names the timer.
      { summary: `${w.waitingFor ?? w.reason}: gives up at the timeout` },
    );
    this.open = undefined;
    this.t.doneWaiting();
    return answered;
  }

  /**
   * An approval gate on the way forward: an abort while it waits stops the
   * workflow, and so does the timeout (approval gates time out into abort).
   */
  async require(
    w: Omit<GateWait, 'interrupted'> & { abortRequest: () => SignalRecord | undefined; timedOut: string },
  ): Promise<void> {
    const answered = await this.wait({ ...w, interrupted: () => w.abortRequest() !== undefined });
    const abort = w.abortRequest();
    if (abort) throw abortedBy(abort);
    if (!answered) throw new Stop('aborted', w.timedOut, true);
  }
}

/** What the gate rules read from a plan; plans recorded before `approvals` are read through policyOf. */
export interface PolicySource {
  approvals?: ApprovalPolicy;
  approvers?: string[];
  requiredApprovals?: number;
  requestedBy: string;
}

/**
 * The environment's rules for people, from the plan once it is known: who may
 * steer, how many distinct approvals a gate needs, whether the requester may
 * approve, and the policy steer() verifies senders with. Before the plan is
 * known anyone counts (nothing is gated yet).
 */
export function peopleRules(plan: () => PolicySource | undefined) {
  const policy = (): ApprovalPolicy | undefined => {
    const p = plan();
    return p && policyOf(p);
  };
  return {
    policy,
    allowed: (s: Sender): boolean => {
      const pol = policy();
      return !pol || mayApprove(pol, s.by, s.groups);
    },
    required: (): number => policy()?.required ?? 1,
    requester: (): string | undefined => {
      const p = plan();
      return p && !policyOf(p).allowSelfApproval ? p.requestedBy : undefined;
    },
  };
}
