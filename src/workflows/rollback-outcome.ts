/**
 * The rollback's contract: what the deploy saga hands over, what a rollback
 * returns, and how one that failed or was refused closes.
 */
import { patched } from '@temporalio/workflow';
import type { BlueGreenTarget, CanaryTarget, Colour, DeploymentRecord } from '../activities/contracts';
import { ErrorType } from '../domain/errors';
import type { RollbackInput } from '../domain/input';
import type { DeployPlan } from '../domain/plan';
import type { DeploymentStatus } from '../domain/status';
import { outcomeFailure } from './outcome';
import { CLOSE_STATUS_FOLLOWS_OUTCOME_PATCH } from './patches';

/** What the deploy saga hands over: everything it changed that can be undone. */
export interface AutomaticRollback {
  plan: DeployPlan;
  /** What the Deployments the deployment changed ran before. */
  records: (Pick<DeploymentRecord, 'deployment' | 'previousImages' | 'previousVersion' | 'previousReferences'> & {
    /** The cluster the record's Deployment is in (an environment of several clusters). */
    cluster?: string;
  })[];
  /** A canary to abort (weight back to stable 100, canary scaled to zero). */
  canary?: CanaryTarget;
  /** A blue-green switch to undo: traffic back to the colour that served before. */
  blueGreen?: { target: BlueGreenTarget; back: Colour };
  /** Switches made in clusters before the last one, in order: switched back after `blueGreen`, last first. */
  earlierBlueGreen?: { target: BlueGreenTarget; back: Colour }[];
  backupKey?: string;
  /** The backup's sha256 as the backup step recorded it: the restore refuses an object that differs. */
  backupSha256?: string;
  migrationsApplied: string[];
  /** A migration may have changed the database though none is named (a command's tool, or one that failed). */
  databaseChanged?: boolean;
  reason: string;
}

/** A manual rollback's input, or the deploy saga's hand-over. */
export interface RollbackWorkflowInput extends RollbackInput {
  automatic?: AutomaticRollback;
}

/**
 * How far the rollback got: workloads, then the database. `restored` means
 * the restore committed and the row counts match the backup's; `restored,
 * row counts differ` that it committed (the data was replaced, so the
 * rollback happened) but the counts differ, which `attention` says loudly;
 * every other value means the database was not replaced.
 */
export interface RollbackResult {
  outcome: 'rolled-back' | 'failed';
  workloads: string;
  database:
    'restored' | 'restored, row counts differ' | 'kept' | 'kept (decision timed out)' | 'unchanged' | 'restore failed';
  /** The restore that committed: which backup, and whether the row counts matched it. */
  restore?: { key: string; verified: boolean; differences: string[] };
  /** What a person must check before reopening traffic, e.g. row counts that differ after a restore. */
  attention?: string;
  /** A manual rollback that switched a blue-green Service back: from which colour to which, read back. */
  blueGreen?: { service: string; from: Colour; to: Colour; deployment: string; version?: string };
  reason?: string;
  /** Refused before anything changed: bad input, or a hand-over the configuration does not confirm (deployctl exit 2). */
  refused?: 'invalid-input';
  status: DeploymentStatus;
}

/** Failures that refuse a rollback before it changes anything: its input, not the platform, is wrong. */
export const REFUSALS: readonly (string | undefined)[] = [
  ErrorType.InvalidInput,
  ErrorType.PlanMismatch,
  ErrorType.ParentRequired,
];

/**
 * A rollback that failed closes as Failed, its result in the failure
 * (histories from before issue 16 item 9 completed with it).
 */
export function failedRollback(result: RollbackResult): RollbackResult {
  if (patched(CLOSE_STATUS_FOLLOWS_OUTCOME_PATCH))
    throw outcomeFailure(
      result.refused ? ErrorType.RollbackRefused : ErrorType.RollbackFailed,
      result.reason ?? `rollback failed: database ${result.database}`,
      result,
    );
  return result;
}
