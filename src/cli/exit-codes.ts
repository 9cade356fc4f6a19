/**
 * deployctl's exit codes: what CI scripts branch on. Documented in the README
 * ("deployctl in CI"); never renumber.
 */
import type { DeployResult } from '../workflows/deploy';

export const ExitCode = {
  /** Succeeded (a dry run: planned; a signal: sent). */
  Ok: 0,
  /** Something unexpected: a bug or an unknown failure; the message says what. */
  Error: 1,
  /** Bad input: invalid version, unknown flag, a signal that does not apply now. */
  BadInput: 2,
  /** The deployment failed and was rolled back. */
  RolledBack: 3,
  /** Aborted by a person (and rolled back when the rollout had begun). */
  Aborted: 4,
  /** An approval gate timed out (the deployment was aborted for it). */
  TimedOut: 5,
  /** Refused: another deployment of the same environment is running, or a freeze window refuses deployments. */
  Refused: 6,
  /** Failed without a complete rollback: look at the status before anything else. */
  Failed: 7,
  /** The Temporal server cannot be reached. */
  Unreachable: 8,
  /** The workflow does not exist. */
  NotFound: 9,
} as const;

export function exitCodeFor(result: Pick<DeployResult, 'outcome' | 'timedOut' | 'refused'>): number {
  if (result.refused === 'deployment-in-progress' || result.refused === 'frozen') return ExitCode.Refused;
  if (result.refused === 'invalid-input') return ExitCode.BadInput;
  if (result.timedOut) return ExitCode.TimedOut;
  switch (result.outcome) {
    case 'succeeded':
    case 'planned':
      return ExitCode.Ok;
    case 'rolled-back':
      return ExitCode.RolledBack;
    case 'aborted':
      return ExitCode.Aborted;
    default:
      return ExitCode.Failed;
  }
}
