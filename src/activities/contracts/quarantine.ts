/** Requests and results of the quarantine of versions (activities/quarantine.ts). */
import type { VerifyMode } from '../../domain/identity';

/**
 * One quarantine of a version: a version rolled back, or that failed
 * verification, in some environment. While a record of a version is not
 * lifted, promoting the version and rolling back to it are refused with
 * `reason` and `workflowId`.
 */
export interface QuarantineRecord {
  version: string;
  /** Where it was rolled back or failed verification. */
  environment: string;
  /** The workflow that quarantined it. */
  workflowId: string;
  reason: string;
  /** ISO time of the quarantine. */
  at: string;
  /** Who lifted it, how that person was verified, why, when and from which workflow. */
  lifted?: QuarantineLift;
}

export interface QuarantineLift {
  by: string;
  via: VerifyMode;
  reason: string;
  /** ISO time of the lift. */
  at: string;
  workflowId: string;
}

export interface QuarantineRequest {
  version: string;
  environment: string;
  /** The quarantining workflow: one record per version and workflow, so a retry writes nothing new. */
  workflowId: string;
  reason: string;
}

export interface QuarantineOfRequest {
  version: string;
}

export interface LiftQuarantineRequest {
  version: string;
  /** The approver, as verified (or as typed, where the environment verifies none). */
  by: string;
  via: VerifyMode;
  reason: string;
  /** The lifting workflow: a retry of the same lift changes nothing more. */
  workflowId: string;
}
