/**
 * How people steer a workflow with the five signals (design §4): every
 * payload is checked and a bad one is recorded as ignored, never thrown, so a
 * typo in the Temporal UI cannot wedge a deployment; a signal that does not
 * apply is recorded with the reason. Where the environment verifies senders
 * (approvals.verify ssh or oidc) the proof is checked by the verifySender
 * activity before the signal counts, and its identity replaces the typed
 * `by`; a proof seen before in this workflow is a replay. The deploy workflow
 * forwards signals to the child that runs, which verifies and records them in
 * its own status.
 */
import { getExternalWorkflowHandle, patched, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../../activities/contracts';
import type { ApprovalPolicy, VerifyMode } from '../../domain/identity';
import {
  checkSignal,
  type AbortPayload,
  type ApprovePayload,
  type PausePayload,
  type PromotePayload,
  type ResumePayload,
  type SignalName,
} from '../../domain/signals';
import { SHORT } from '../activity-options';
import { abortSignal, approveSignal, pauseSignal, promoteSignal, resumeSignal } from '../messages';
import { VERIFIED_STEERING_PATCH } from '../patches';
import { describeError, type Tracker } from './tracker';

/** Who sent a signal, as far as the workflow knows: verified (ssh, oidc) or typed (none). */
export interface Sender {
  by: string;
  via: VerifyMode;
  /** OIDC groups, for `group:<name>` approvers. */
  groups: string[];
  /** The gate a verified proof was made for. */
  gate?: string;
  /** The key or issuer that proved it, for the record. */
  credential?: string;
}

/** The most signals one workflow acts on; beyond it they are dropped with one record, so a flood cannot fill the history with verifications. */
export const MAX_SIGNALS = 500;

// Verification is a quick local check; a verifier that cannot run is retried a little, then the signal is ignored with why.
const { verifySender } = proxyActivities<Pick<Activities, 'verifySender'>>({
  ...SHORT,
  retry: { ...SHORT.retry, maximumAttempts: 3 },
});

/** The checked payload of each signal. */
export interface SignalPayloads {
  approve: ApprovePayload;
  abort: AbortPayload;
  pause: PausePayload;
  resume: ResumePayload;
  promote: PromotePayload;
}

/** What a workflow does with each signal it has a use for; the payload has passed checkSignal and the sender is known. */
export type SignalActions = { [N in SignalName]?: (p: SignalPayloads[N] & Sender) => void };

/** Sends a signal on to the running child; false when no child runs (the workflow handles it itself). */
export type Forward = (name: SignalName, payload: unknown) => Promise<boolean>;

export interface SteerOptions {
  /** Why a signal without an action is ignored, worded at the time it arrives. */
  idle?: (name: SignalName) => string;
  /** Deploy: a signal may be refused outright (true) before anything else looks at it. */
  refuse?: (name: SignalName, payload: unknown) => boolean;
  /** Deploy: while a child runs, signals go to it. */
  forward?: Forward;
  /** The environment's approval policy once the plan is known; before it, and for plans without one, names are taken as typed. */
  policy?: () => ApprovalPolicy | undefined;
}

const DEFINITIONS = {
  approve: approveSignal,
  abort: abortSignal,
  pause: pauseSignal,
  resume: resumeSignal,
  promote: promoteSignal,
} as const;
const NAMES: readonly SignalName[] = ['approve', 'abort', 'pause', 'resume', 'promote'];

/**
 * The workflow people signal: the root of this workflow's parents (the
 * release or the deployment forwards to its children), else this workflow. Commands in the status and
 * in notifications name it.
 */
export function signalTargetId(): string {
  const info = workflowInfo();
  // The root: a release's canary is steered through the release (release → stage deployment → canary).
  return info.root?.workflowId ?? info.parent?.workflowId ?? info.workflowId;
}

/**
 * Registers a handler for each of the five signals, before the workflow's
 * first await (design §3.7): the workflow's actions first, in their order,
 * then the rest, which record the signal as ignored with `idle`. Without
 * `forward` the handlers are synchronous, so a signal has taken effect before
 * anything else in the same workflow task runs.
 */
export function steer(t: Tracker, actions: SignalActions, options: SteerOptions = {}): void {
  const names = [...(Object.keys(actions) as SignalName[]), ...NAMES.filter((n) => !(n in actions))];
  /** Replay keys of the proofs that counted: workflow state, so it is rebuilt on replay. */
  const seen = new Set<string>();
  let received = 0;
  for (const name of names) {
    const act =
      (actions[name] as ((p: Sender) => void) | undefined) ??
      ((p: Sender) => t.ignore(name, p.by, options.idle?.(name) ?? `${name} does not apply here`));
    const handle = async (payload: unknown): Promise<void> => {
      received++;
      if (received > MAX_SIGNALS) {
        if (received === MAX_SIGNALS + 1)
          t.ignore(
            name,
            '(any)',
            `more than ${MAX_SIGNALS} signals reached this workflow; later ones are dropped unread`,
          );
        return;
      }
      const c = checkSignal<{ by: string; note?: string; reason?: string; full?: boolean }>(name, payload);
      if (!c.ok) return t.ignore(name, c.by, c.reason);
      const policy = options.policy?.();
      // No await on this path: the signal has taken effect before anything else in the same workflow task runs.
      if (!policy || policy.verify === 'none' || !patched(VERIFIED_STEERING_PATCH))
        return act({ ...c.value, via: 'none', groups: [] });
      const v = c.value;
      let r;
      try {
        r = await verifySender({
          environment: t.status.environment,
          message: {
            workflowId: signalTargetId(),
            signal: name,
            by: v.by,
            ...(v.note !== undefined ? { note: v.note } : {}),
            ...(v.reason !== undefined ? { reason: v.reason } : {}),
            ...(v.full !== undefined ? { full: v.full } : {}),
          },
          proof: (payload as { proof?: unknown }).proof,
        });
      } catch (err) {
        return t.ignore(name, v.by, `the sender could not be verified: ${describeError(err)}`);
      }
      if (!r.ok) return t.ignore(name, v.by, `not verified: ${r.reason}`);
      const sender = r.sender;
      if (seen.has(sender.replayKey))
        return t.ignore(name, sender.identity, `this proof was used before (a replay); sign the ${name} again`);
      seen.add(sender.replayKey);
      act({
        ...v,
        by: sender.identity,
        via: sender.via,
        groups: sender.groups,
        gate: sender.gate,
        ...(sender.credential ? { credential: sender.credential } : {}),
      });
    };
    const { refuse, forward } = options;
    setHandler(
      DEFINITIONS[name],
      forward
        ? async (payload: unknown) => {
            if (refuse?.(name, payload)) return;
            if (await forward(name, payload)) return;
            await handle(payload);
          }
        : handle,
    );
  }
}

/**
 * Forwarding for a workflow that runs children people steer: while
 * `activeChild()` names one, signals go to it; a signal that cannot be
 * delivered is recorded as ignored here, with why.
 */
export function forwarder(t: Tracker, activeChild: () => string | undefined): Forward {
  return async (name, payload) => {
    const child = activeChild();
    if (!child) return false;
    try {
      await getExternalWorkflowHandle(child).signal(name, payload);
    } catch (err) {
      const c = checkSignal(name, payload);
      t.ignore(
        name,
        c.ok ? (c.value as { by: string }).by : c.by,
        `could not forward to ${child}: ${describeError(err)}`,
      );
    }
    return true;
  };
}
