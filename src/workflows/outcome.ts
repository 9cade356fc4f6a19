/**
 * How a workflow's outcome reaches its close status (issue 16 item 9). A
 * deployment that rolled back, was aborted, refused or failed, a canary or
 * blue-green that did not finish, a rollback that failed: each closes as
 * Failed, so the Temporal UI's list, its Failures filter and
 * `temporal workflow list --query 'ExecutionStatus="Failed"'` show it. The
 * failure is named after the outcome (domain/errors, OUTCOME_FAILURE_TYPES),
 * its message is the one-line reason, and its first detail is the result the
 * workflow used to return, so everything that read the result still reads
 * it: `resultOf` here, for deployctl, the parents of child workflows and the
 * tests alike.
 *
 * Deterministic and free of Node built-ins: the workflows import it, and so
 * does deployctl.
 */
import { ApplicationFailure } from '@temporalio/common';
import { OUTCOME_FAILURE_TYPES, type ErrorTypeName } from '../domain/errors';

/** The failure a workflow closes with for an outcome that is not a success. */
export function outcomeFailure(type: ErrorTypeName, reason: string | undefined, result: object): ApplicationFailure {
  return ApplicationFailure.create({
    type,
    message: reason ?? type,
    nonRetryable: true,
    details: [result],
  });
}

/**
 * The result a workflow closed with when it closed as Failed for its outcome
 * (the failure, or the child or workflow failure around it, as the client and
 * a parent workflow receive it); undefined for any other error.
 */
export function resultInFailure<T>(err: unknown): T | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (!(e instanceof ApplicationFailure)) continue;
    const result: unknown = e.details?.[0];
    if (OUTCOME_FAILURE_TYPES.includes(e.type as ErrorTypeName) && typeof result === 'object' && result !== null)
      return result as T;
    return undefined;
  }
  return undefined;
}

/**
 * A workflow's result whether it completed with it or closed as Failed
 * carrying it: what `handle.result()` and `executeChild` returned before
 * issue 16 item 9. Any other failure is rethrown as it was.
 */
export async function resultOf<T>(pending: Promise<T>): Promise<T> {
  try {
    return await pending;
  } catch (err) {
    const result = resultInFailure<T>(err);
    if (result === undefined) throw err;
    return result;
  }
}
