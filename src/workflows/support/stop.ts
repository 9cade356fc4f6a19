/**
 * The one way a workflow leaves its forward path for its way back (saga
 * compensation, canary abort, switch back): thrown inside the workflow,
 * caught by the same workflow, never a workflow failure.
 */
import type { SignalRecord } from '../../domain/status';
import { describeError } from './tracker';

/** Ends the forward path with a known outcome; `timedOut` marks an approval gate that timed out into abort. */
export class Stop extends Error {
  constructor(
    readonly outcome: 'aborted' | 'failed',
    readonly reason: string,
    readonly timedOut = false,
  ) {
    super(reason);
  }
}

/** The stop an accepted abort signal asks for, worded as people read it in the status. */
export function abortedBy(req: SignalRecord): Stop {
  return new Stop('aborted', `aborted by ${req.by}: ${req.reason ?? ''}`.trim());
}

/** Any error as a stop: a Stop keeps its outcome, anything else failed with its description. */
export function asStop(err: unknown): Stop {
  return err instanceof Stop ? err : new Stop('failed', describeError(err));
}
