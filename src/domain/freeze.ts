/**
 * Stop the line (`deployctl freeze --env production --reason ...`): an
 * approver stops an environment's deployments at once, whatever its
 * configured windows (freeze-window.ts) say; new deployments wait and
 * running canaries hold their weight until an approver unfreezes it. Who
 * froze and who unfroze it, how each was verified and why, are recorded.
 *
 * The freeze is a workflow (workflows/freeze.ts) under the environment's
 * reserved id, so Temporal itself refuses a second freeze while one runs and
 * nothing outside Temporal has to be kept. Pure: the workflows, the
 * freezeState activity and deployctl share these shapes and texts.
 */
import { proofFlags, type ApprovalPolicy, type VerifyMode } from './identity';
import { shellCommand } from './shell';
import type { IgnoredSignal } from './status';

/** Who froze or unfroze an environment: verified (ssh, oidc) or as typed (none), and why. */
export interface FreezeRecord {
  by: string;
  via: VerifyMode;
  reason: string;
  /** ISO time. */
  at: string;
  /** The SSH key or the token issuer that proved it. */
  credential?: string;
}

/** How a freeze workflow stands: verifying who asked, frozen, refused (never frozen), or unfrozen. */
export type FreezePhase = 'verifying' | 'frozen' | 'refused' | 'unfrozen';

/** What a freeze workflow's `status` query answers (its own shape: `workflow` is 'freeze'). */
export interface FreezeStatus {
  workflow: 'freeze';
  workflowId: string;
  environment: string;
  phase: FreezePhase;
  startedAt: string;
  endedAt?: string;
  /** What the environment verifies and who may freeze and unfreeze it (describePolicy); once verification ran. */
  steering?: string;
  frozen?: FreezeRecord;
  /** Why the freeze was refused (it never stopped anything). */
  refused?: string;
  /** What a signed unfreeze names as its gate: this freeze and no other (a proof for an earlier one does not count). */
  gate?: string;
  /** The exact command that ends it, with the proof flags the environment needs. */
  unfreezeCommand?: string;
  unfrozen?: FreezeRecord;
  /** Unfreeze signals that did not count, each with why (never thrown). */
  ignoredSignals: IgnoredSignal[];
}

/** How a freeze workflow ends. */
export interface FreezeResult {
  outcome: 'unfrozen' | 'refused';
  reason?: string;
  status: FreezeStatus;
}

/** The `gate` a signed unfreeze of one freeze names: its first run's id, so a proof made for another freeze never counts. */
export function unfreezeGate(firstRunId: string): string {
  return `unfreeze-${firstRunId
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '')
    .slice(0, 54)}`;
}

/** `deployctl unfreeze --env <env> --by <name> --reason <text>`, shell-quoted, with the proof flags `policy` needs. */
export function unfreezeCommand(environment: string, policy?: ApprovalPolicy): string {
  return `${shellCommand(['deployctl', 'unfreeze', '--env', environment, '--by'])} <name> --reason <text>${policy ? proofFlags(policy) : ''}`;
}

/** `deployctl freeze --env <env> --by <name> --reason <text>`, as the docs and deployctl print it. */
export function freezeCommand(environment: string, policy?: ApprovalPolicy): string {
  return `${shellCommand(['deployctl', 'freeze', '--env', environment, '--by'])} <name> --reason <text>${policy ? proofFlags(policy) : ''}`;
}

/** One line for the freeze's status: how the environment verifies who freezes and unfreezes it, and who may. */
export function describeFreezePolicy(environment: string, policy: ApprovalPolicy): string {
  const how =
    policy.verify === 'none'
      ? 'senders are NOT verified (verify: none): the name given with --by is taken as it is'
      : `senders are verified by ${policy.verify === 'ssh' ? 'SSH signature' : 'OIDC ID token'}`;
  return `${environment}: ${how}; who may freeze and unfreeze: ${policy.approvers.length ? policy.approvers.join(', ') : 'anyone'} (its approvers)`;
}

/** "alice" or "alice (ssh)": a name as typed says nothing more; a verified one says how. */
export function whoFroze(r: Pick<FreezeRecord, 'by' | 'via'>): string {
  return r.via === 'none' ? r.by : `${r.by} (${r.via})`;
}

/**
 * What a held deployment waits for, as people read it in its status:
 * "production is frozen by alice: <reason>; the canary holds at 25% until
 * deployctl unfreeze --env production --by <name> --reason <text>".
 */
export function frozenLine(
  environment: string,
  frozen: Pick<FreezeRecord, 'by' | 'reason'>,
  holding: string,
  command: string,
): string {
  return `${environment} is frozen by ${frozen.by}: ${frozen.reason}; ${holding} until ${command}`;
}

/** Whether a `status` answer is a freeze's (deployctl reads deployments' and freezes' alike). */
export function isFreezeStatus(s: unknown): s is FreezeStatus {
  return typeof s === 'object' && s !== null && (s as { workflow?: unknown }).workflow === 'freeze';
}
