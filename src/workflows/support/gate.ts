/**
 * The approval gate: a durable wait for people (canary steps, the blue-green
 * switch, the database decision after a rollback). It survives restarts
 * because it is workflow state, counts distinct approvers from the
 * environment's list, records who approved (design §5), and times out by
 * `condition(pred, timeout)` returning false, which the caller turns into an
 * abort or a safe default.
 */
import { condition } from '@temporalio/workflow';
import type { ApprovePayload } from '../../domain/signals';
import type { Phase, SignalRecord } from '../../domain/status';
import { abortedBy, Stop } from './stop';
import { nowIso, type Tracker } from './tracker';

export interface GateRules {
  /** Whether `by` may approve (the environment's approvers). */
  allowed: (by: string) => boolean;
  /** Distinct people the gate needs. */
  required: () => number;
  /** What a second approval from the same person is told. */
  approvedAgain?: (by: string) => string;
  /** Keep the note of a refused approval in the ignored signal (the canary does). */
  keepNotes?: boolean;
  /** False once the question is answered another way (the rollback's abort keeps the database). */
  awaiting?: () => boolean;
  /** Called for each approval the gate accepts. */
  onApprove?: (p: ApprovePayload) => void;
}

export interface GateWait {
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

/** The approve and abort commands people run for a gate on `workflowId` (shell-quoted). */
export { approvalCommands } from '../../domain/notification';

/** One gate of a workflow; open while `wait` runs, and the approve signal's handler. */
export class Gate {
  private open: { reason: string; approvals: Set<string> } | undefined;

  constructor(
    private readonly t: Tracker,
    private readonly rules: GateRules,
  ) {}

  /** A gate is waiting for an answer. */
  get isOpen(): boolean {
    return this.open !== undefined;
  }

  /** The approve signal: one approval from a distinct approver while the gate is open; anything else is recorded as ignored. */
  approve(p: ApprovePayload): void {
    const { t, rules } = this;
    const extra = rules.keepNotes ? { note: p.note } : {};
    const g = this.open;
    if (!g || rules.awaiting?.() === false)
      return t.ignore('approve', p.by, `nothing is awaiting approval (phase ${t.status.phase})`, extra);
    if (!rules.allowed(p.by))
      return t.ignore('approve', p.by, `${p.by} is not an approver for ${t.status.environment}`, extra);
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
    });
    rules.onApprove?.(p);
  }

  /** Opens the gate, announces it and waits; true when answered (enough approvals or interrupted), false when it timed out. */
  async wait(w: GateWait): Promise<boolean> {
    const g = { reason: w.reason, approvals: new Set<string>() };
    this.open = g;
    this.t.phase(w.phase);
    this.t.waitFor(w.waitingFor ?? w.reason, w.timeoutMs, w.commands);
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
