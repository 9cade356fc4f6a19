/**
 * How people steer a workflow with the five signals (design §4): every
 * payload is checked and a bad one is recorded as ignored, never thrown, so a
 * typo in the Temporal UI cannot wedge a deployment; a signal that does not
 * apply is recorded with the reason. The deploy workflow forwards signals to
 * the child that runs, which records them in its own status.
 */
import { getExternalWorkflowHandle, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  checkSignal,
  type AbortPayload,
  type ApprovePayload,
  type PausePayload,
  type PromotePayload,
  type ResumePayload,
  type SignalName,
} from '../../domain/signals';
import { abortSignal, approveSignal, pauseSignal, promoteSignal, resumeSignal } from '../messages';
import { describeError, type Tracker } from './tracker';

/** The checked payload of each signal. */
export interface SignalPayloads {
  approve: ApprovePayload;
  abort: AbortPayload;
  pause: PausePayload;
  resume: ResumePayload;
  promote: PromotePayload;
}

/** What a workflow does with each signal it has a use for; the payload has passed checkSignal. */
export type SignalActions = { [N in SignalName]?: (p: SignalPayloads[N]) => void };

/** Sends a signal on to the running child; false when no child runs (the workflow handles it itself). */
export type Forward = (name: SignalName, payload: unknown) => Promise<boolean>;

export interface SteerOptions {
  /** Why a signal without an action is ignored, worded at the time it arrives. */
  idle?: (name: SignalName) => string;
  /** Deploy: a signal may be refused outright (true) before anything else looks at it. */
  refuse?: (name: SignalName, payload: unknown) => boolean;
  /** Deploy: while a child runs, signals go to it. */
  forward?: Forward;
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
 * The workflow people signal: the parent (the deploy workflow forwards to its
 * children) when there is one, else this workflow. Commands in the status and
 * in notifications name it.
 */
export function signalTargetId(): string {
  const info = workflowInfo();
  return info.parent?.workflowId ?? info.workflowId;
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
  for (const name of names) {
    const act =
      (actions[name] as ((p: { by: string }) => void) | undefined) ??
      ((p: { by: string }) => t.ignore(name, p.by, options.idle?.(name) ?? `${name} does not apply here`));
    const handle = (payload: unknown): void => {
      const c = checkSignal<{ by: string }>(name, payload);
      if (!c.ok) return t.ignore(name, c.by, c.reason);
      act(c.value);
    };
    const { refuse, forward } = options;
    setHandler(
      DEFINITIONS[name],
      forward
        ? async (payload: unknown) => {
            if (refuse?.(name, payload)) return;
            if (await forward(name, payload)) return;
            handle(payload);
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
