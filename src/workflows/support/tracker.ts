/**
 * Keeps a workflow's `status` (what the `status` query returns) and its
 * search attributes up to date. Deterministic: timestamps come from workflow
 * time, which the SDK fixes in history.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  isCancellation,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { DeploymentStatus, IgnoredSignal, Phase, SignalRecord, StepRecord, WaitingFor } from '../../domain/status';
import { describePolicy, type ApprovalPolicy, type VerifyMode } from '../../domain/identity';
import { withSummary } from '../activity-options';
import { statusQuery } from '../messages';
import { currentDetails } from './details';
import { phaseChanged, stepEnded, type PhaseLabels } from './metrics';

/** The Deploy* search attributes: the Temporal UI lists and filters deployments by them. */
export const DeployEnvironmentKey = defineSearchAttributeKey('DeployEnvironment', SearchAttributeType.KEYWORD);
export const DeployVersionKey = defineSearchAttributeKey('DeployVersion', SearchAttributeType.KEYWORD);
export const DeployStrategyKey = defineSearchAttributeKey('DeployStrategy', SearchAttributeType.KEYWORD);
export const DeployPhaseKey = defineSearchAttributeKey('DeployPhase', SearchAttributeType.KEYWORD);
export const DeployReleaseKey = defineSearchAttributeKey('DeployRelease', SearchAttributeType.KEYWORD);
export const DeployStageKey = defineSearchAttributeKey('DeployStage', SearchAttributeType.KEYWORD);

/** Workflow time (fixed in history, so replay-safe) as the status records it. */
export function nowIso(): string {
  return new Date().toISOString();
}

/** One line describing any failure, as people read it in the status and notifications. */
export function describeError(err: unknown): string {
  let e: unknown = err;
  // Unwrap activity/child failures down to the cause that says what happened.
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  if (e instanceof ApplicationFailure) return e.type ? `${e.type}: ${e.message}` : e.message;
  if (isCancellation(e)) return 'cancelled';
  if (e instanceof Error) return e.message;
  return String(e);
}

/** The `type` of the ApplicationFailure behind an activity or child failure, if any. */
export function errorType(err: unknown): string | undefined {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  return e instanceof ApplicationFailure ? (e.type ?? undefined) : undefined;
}

/**
 * One workflow's status and step log: every workflow builds one before its
 * first await, so the `status` query answers from the first task on.
 */
/** What a strategy's child workflow knows of itself before its plan is read: its input. */
export interface ChildInput {
  version: string;
  environment?: string;
  requestedBy?: string;
  plan?: { environment: string };
}

/**
 * The first status of a canary or blue-green child, from its input.
 * `unnamedEnvironment` is what each has always shown before it knows the
 * environment ('default' for the canary, '(default)' for blue-green).
 */
export function childTracker(
  workflow: 'canary' | 'blue-green',
  input: ChildInput,
  unnamedEnvironment: string,
): Tracker {
  return new Tracker(workflow, {
    version: input.version,
    environment: input.environment ?? input.plan?.environment ?? unnamedEnvironment,
    strategy: workflow,
    ...(input.requestedBy ? { requestedBy: input.requestedBy } : {}),
  });
}

export class Tracker {
  readonly status: DeploymentStatus;

  /** Off until the plan says the server has the Deploy* attributes registered. */
  private searchAttributes = false;

  /** The phase gauge's labels last set to 1 (none until the plan names a configured environment). */
  private phaseGauge: PhaseLabels | undefined;
  private identified = false;

  /** Lines a workflow adds to its current details (the lock it holds). */
  private readonly notes = new Map<string, string>();

  constructor(
    workflow: DeploymentStatus['workflow'],
    init: { version: string; environment: string; strategy?: string; requestedBy?: string },
  ) {
    this.status = {
      workflow,
      workflowId: workflowInfo().workflowId,
      version: init.version,
      environment: init.environment,
      ...(init.strategy ? { strategy: init.strategy } : {}),
      ...(init.requestedBy ? { requestedBy: init.requestedBy } : {}),
      phase: 'planning',
      startedAt: nowIso(),
      steps: [],
      approvals: [],
      aborts: [],
      pauses: [],
      ignoredSignals: [],
      notificationFailures: 0,
      children: [],
    };
    // Registered before the workflow's first await (design §3.7); queries never mutate.
    setHandler(statusQuery, () => this.status);
    this.show();
  }

  /**
   * The Temporal UI's "current details" of this workflow: phase, what it
   * waits for, how it ended. No command: the SDK answers the UI's metadata
   * query with it, so it never changes a history.
   */
  private show(): void {
    setCurrentDetails(currentDetails(this.status, [...this.notes.values()]));
  }

  /** A line of the current details under `key` (undefined removes it). */
  note(key: string, line: string | undefined): void {
    if (line === undefined) this.notes.delete(key);
    else this.notes.set(key, line);
    this.show();
  }

  /** Once the plan is known, the status and the UI's search attributes carry it. */
  identify(version: string, environment: string, strategy: string, searchAttributes: boolean): void {
    this.searchAttributes = searchAttributes;
    this.identified = true;
    this.status.version = version;
    this.status.environment = environment;
    this.status.strategy = strategy;
    if (this.searchAttributes) {
      upsertSearchAttributes([
        { key: DeployEnvironmentKey, value: environment },
        { key: DeployVersionKey, value: version },
        { key: DeployStrategyKey, value: strategy },
        { key: DeployPhaseKey, value: this.status.phase },
      ]);
    }
    this.show();
  }

  phase(phase: Phase): void {
    if (this.status.phase === phase) return;
    this.status.phase = phase;
    // Only an identified workflow's environment is a label: before, it is whatever the input said.
    this.phaseGauge = phaseChanged(this.phaseGauge, this.identified ? this.status : undefined);
    if (this.searchAttributes) upsertSearchAttributes([{ key: DeployPhaseKey, value: phase }]);
    this.show();
  }

  get isFinal(): boolean {
    return ['succeeded', 'failed', 'rolled-back', 'aborted', 'planned'].includes(this.status.phase);
  }

  finish(phase: Phase, error?: string): void {
    this.status.endedAt = nowIso();
    this.status.waitingFor = undefined;
    if (error) this.status.error = error;
    this.phase(phase);
    this.show();
  }

  /**
   * Runs one step, recording its state, timings and error. Rethrows failures.
   * The activities `fn` schedules before its first await carry the step's
   * name as their summary (the Temporal UI shows it on the timeline).
   *
   * A result that carries `attention` (a child's result, such as a rollback
   * that restored a database whose row counts differ) puts it on the step,
   * so the parent's status and summary say it too.
   */
  async step<T>(name: string, fn: () => Promise<T>, detail?: (r: T) => string | undefined): Promise<T> {
    const rec: StepRecord = { name, state: 'running', startedAt: nowIso(), attempts: 1 };
    this.status.steps.push(rec);
    this.show();
    const start = Date.now();
    try {
      const r = await withSummary(name, fn);
      rec.state = 'succeeded';
      const d = detail?.(r);
      if (d) rec.detail = d;
      const attention = (r as { attention?: unknown } | undefined)?.attention;
      if (typeof attention === 'string' && attention) rec.attention = attention;
      return r;
    } catch (err) {
      rec.state = 'failed';
      rec.error = describeError(err);
      if (err instanceof ActivityFailure && err.retryState) rec.detail = `retry state: ${err.retryState}`;
      throw err;
    } finally {
      rec.endedAt = nowIso();
      rec.durationMs = Date.now() - start;
      stepEnded(this.status.workflow, name, rec.state, rec.durationMs / 1000);
      this.show();
    }
  }

  /** Takes in a finished child's people records (approvals, aborts, pauses, ignored signals), so this status and the summary say who steered it. */
  adoptPeople(child: DeploymentStatus): void {
    this.status.approvals.push(...child.approvals);
    this.status.aborts.push(...child.aborts);
    this.status.pauses.push(...child.pauses);
    for (const i of child.ignoredSignals) this.ignore(i.signal, i.by, i.ignoredBecause, i);
    this.show();
  }

  /** Shows who may steer this deployment and how they prove it (the plan's approvals). */
  /** A release and its stage (the release's version; the environment the release or its stage deploys): deployctl list --release. */
  release(version: string, stage: string): void {
    if (this.searchAttributes)
      upsertSearchAttributes([
        { key: DeployReleaseKey, value: version },
        { key: DeployStageKey, value: stage },
      ]);
  }

  governedBy(policy: ApprovalPolicy, requestedVia?: VerifyMode): void {
    this.status.steering = {
      verify: policy.verify,
      approvers: policy.approvers,
      required: policy.required,
      allowSelfApproval: policy.allowSelfApproval,
      ...(requestedVia ? { requestedVia } : {}),
      summary: describePolicy(this.status.environment, policy),
    };
    this.show();
  }

  skip(name: string, why: string): void {
    this.status.steps.push({ name, state: 'skipped', detail: why });
    this.show();
  }

  waitFor(what: string, timeoutMs?: number, commands?: string[], gate?: string): WaitingFor {
    const since = nowIso();
    const w: WaitingFor = {
      what,
      ...(gate ? { gate } : {}),
      since,
      ...(timeoutMs !== undefined ? { timeoutAt: new Date(Date.now() + timeoutMs).toISOString() } : {}),
      ...(commands ? { commands } : {}),
    };
    this.status.waitingFor = w;
    this.show();
    return w;
  }

  doneWaiting(): void {
    this.status.waitingFor = undefined;
    this.show();
  }

  ignore(signal: string, by: string, because: string, extra: Partial<SignalRecord> = {}): void {
    const rec: IgnoredSignal = { signal, by, at: nowIso(), ignoredBecause: because, ...extra };
    // Bounded, so a flood of bad signals cannot grow the status without limit.
    if (this.status.ignoredSignals.length >= 200) this.status.ignoredSignals.shift();
    this.status.ignoredSignals.push(rec);
    this.show();
  }
}
