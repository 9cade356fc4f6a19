/** Requests and results of the audit ledger (activities/audit/ledger.ts; the record's shape: domain/audit.ts). */
export type { AuditAppendRequest, AuditEventKind, AuditFacts } from '../../domain/audit';

/** Where an append landed: the record's seq, key and sha256 (kept in the workflow's history too). */
export interface AuditAppendResult {
  seq: number;
  key: string;
  /** sha256 (hex) of the record's bytes: the next record's prev. */
  hash: string;
  /** False when a record of this workflow run and event was already there (a retry): it is returned, nothing is added. */
  appended: boolean;
  /** audit.enabled is false: nothing was recorded (seq 0, key and hash empty). */
  disabled?: true;
}
