/** Turning bad input into the named non-retryable failure the workflows expect. */
import { ApplicationFailure } from '@temporalio/common';
import { ErrorType } from '../domain/errors';
import { parseVersion } from '../domain/version';

export function invalidInput(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: ErrorType.InvalidInput, message, nonRetryable: true });
}

/** parseVersion for activities: a bad version is InvalidInput, never retried. */
export function checkedVersion(input: unknown): string {
  try {
    return parseVersion(input);
  } catch (err) {
    throw invalidInput((err as Error).message);
  }
}
