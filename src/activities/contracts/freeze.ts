/** Requests and results of the stop-the-line freeze (activities/freeze.ts, workflows/freeze.ts). */
import type { ApprovalPolicy, VerifyMode } from '../../domain/identity';

/** Whose freeze holds an environment now, as Temporal's record of its freeze workflow says. */
export interface FrozenBy {
  by: string;
  via: VerifyMode;
  reason: string;
  /** ISO time of the freeze. */
  at: string;
  /** The freeze workflow (deploy-freeze-<environment>). */
  workflowId: string;
}

/** `frozen` while the environment's freeze holds; empty when its line runs (or nothing can say otherwise). */
export interface FreezeState {
  frozen?: FrozenBy;
}

export interface FreezeStateRequest {
  environment: string;
}

/**
 * Who asks to freeze or unfreeze an environment: the person's own message,
 * checked by the activity (the environment must be configured, the proof
 * must hold where the environment verifies senders, and the sender must be
 * one of its approvers).
 */
export interface FreezerRequest {
  /** The freeze workflow: what a signed statement names. */
  workflowId: string;
  signal: 'freeze' | 'unfreeze';
  /** The gate a signed message must name: `-` for the freeze itself, the freeze's own gate for an unfreeze. */
  gate: string;
  /** As the person sent it, the environment added by the freeze workflow. */
  input: { environment: string; by: string; reason: string; proof?: unknown };
}

/** The sender as verified (or as typed, with verify: none), with the environment's rules; or why not. */
export type FreezerCheck =
  | {
      ok: true;
      by: string;
      via: VerifyMode;
      credential?: string;
      /** The environment's approvals: who may freeze and unfreeze, and how they prove it. */
      approvals: ApprovalPolicy;
    }
  | { ok: false; reason: string; approvals?: ApprovalPolicy };
