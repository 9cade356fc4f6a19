/**
 * The one failure factory of the activities. Every failure a workflow acts on
 * is an ApplicationFailure whose `type` is one of domain/errors.ts, and whether
 * it is retried follows from that type alone (NON_RETRYABLE_ERROR_TYPES), so a
 * permanent failure can never be thrown as retryable by one adapter and as
 * permanent by another. Each client's error mapping (clients/kube.ts,
 * clients/postgres.ts, clients/s3.ts) builds its failures here.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { ErrorType, NON_RETRYABLE_ERROR_TYPES, type ErrorTypeName } from '../domain/errors';
import { parseVersion } from '../domain/version';

const nonRetryable = new Set<ErrorTypeName>(NON_RETRYABLE_ERROR_TYPES);

/**
 * A failure of `type`, retryable exactly when the type is, unless `retryable`
 * says otherwise for this one case (a rollout that timed out while pods were
 * still progressing is worth another attempt); `details` travel with it to
 * the workflow.
 */
export function failure(
  type: ErrorTypeName,
  message: string,
  details?: unknown,
  retryable?: boolean,
): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message,
    nonRetryable: retryable === undefined ? nonRetryable.has(type) : !retryable,
    details: details === undefined ? undefined : [details],
  });
}

type Factory = (message: string, details?: unknown, retryable?: boolean) => ApplicationFailure;

/** One factory per ErrorType: `fail.RolloutFailed(message, details)`. */
export const fail = Object.fromEntries(
  Object.values(ErrorType).map((type): [ErrorTypeName, Factory] => [type, (m, d, r) => failure(type, m, d, r)]),
) as Record<ErrorTypeName, Factory>;

export function invalidInput(message: string): ApplicationFailure {
  return fail.InvalidInput(message);
}

export function configInvalid(message: string): ApplicationFailure {
  return fail.ConfigInvalid(message);
}

/** Already a failure the workflow understands (or a cancellation): pass it through any mapping unchanged. */
export function isFailure(err: unknown): err is ApplicationFailure | CancelledFailure {
  return err instanceof ApplicationFailure || err instanceof CancelledFailure;
}

/** A failure of `type` from `err`, or `err` itself when it already is one. */
export function asFailure(err: unknown, type: ErrorTypeName, what: string): Error {
  return isFailure(err) ? err : failure(type, `${what}: ${oneLine(messageOf(err))}`);
}

/** An error's message, also for errors made in another realm (instanceof Error fails there). */
export function messageOf(err: unknown): string {
  const m = (err as { message?: unknown } | null | undefined)?.message;
  return typeof m === 'string' ? m : String(err);
}

/** Tool and server messages span lines; a failure message is one line. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** parseVersion for activities: a bad version is InvalidInput, never retried. */
export function checkedVersion(input: unknown): string {
  try {
    return parseVersion(input);
  } catch (err) {
    throw invalidInput(messageOf(err));
  }
}

/** Side effects are keyed by the workflow id: one is required. */
export function checkedWorkflowId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 1000) throw invalidInput('workflowId is required');
  return id;
}
