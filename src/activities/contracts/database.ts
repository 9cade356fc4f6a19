/** Requests and results of the database activities: pre-flight, backup, restore, migrations. */

export interface DatabasePreflightRequest {
  workflowId: string;
  /** Throw PreflightFailed (non-retryable) when a check fails, instead of returning the problems. */
  failOnProblems?: boolean;
}

export interface DatabasePreflightResult {
  database: string;
  /** `SELECT version()`; empty when the database could not be reached (see problems). */
  version: string;
  /** Connections per database (pg_stat_activity): the baseline that verification compares growth against. */
  connections: Record<string, number>;
  maxConnections?: number;
  /** The newest backup this tool made and can restore. */
  latestBackup?: { key: string; version: string; createdAt: string; ageMs: number; bytes?: number };
  /** The newest backup another tool made of this database (counts for the backup's age, never restored). */
  latestOtherBackup?: { key: string; createdAt: string; ageMs: number; bytes?: number };
  /** One line per failed check; empty means the database part of pre-flight passed. */
  problems: string[];
}

export interface BackupRequest extends InEnvironment {
  /** Idempotency: a verified backup made by this workflow for this version is reused. */
  workflowId: string;
  version: string;
}

export interface BackupResult {
  key: string;
  bucket: string;
  database: string;
  version: string;
  /** Size of the object (the compressed dump). */
  bytes: number;
  /** sha256 hex of the object, computed while uploading. */
  sha256: string;
  createdAt: string;
  /** True when an earlier attempt's verified backup was found and returned. */
  reused: boolean;
  /** True when the whole object was read back and its hash compared (backup.verifyReadBack). */
  readBack: boolean;
  /** Rows of the configured verifyTables in the dump's snapshot (compared after a restore). */
  rowCounts?: Record<string, number>;
  durationMs: number;
}

export interface RestoreRequest extends InEnvironment {
  workflowId: string;
  key: string;
  /** The key again, passed only after a person approved the restore: anything else is refused. */
  confirmKey: string;
  /** Restore into this database instead of config.database.name (e.g. a scratch copy for a drill). */
  database?: string;
  /**
   * The sha256 the deployment recorded when it made this backup (from its
   * history): an object whose checksum differs is refused, whatever its own
   * metadata says.
   */
  sha256?: string;
}

export interface RestoreResult {
  key: string;
  database: string;
  bytes: number;
  sha256: string;
  /** Row counts after the restore (verifyTables; the runbook's `SELECT COUNT(*) FROM users`). */
  tables: Record<string, number>;
  /** The counts recorded when the backup was made, when it recorded them. */
  expectedTables?: Record<string, number>;
  /**
   * False when the counts after the restore differ from the backup's record.
   * The restore has committed by then: the database is the dump, so this is
   * a result for a person to check, not a failure (a failure means the
   * database was left as it was).
   */
  verified: boolean;
  /** One line per table whose count differs, e.g. "users 1000 → 998" (the backup's, then the database's). */
  differences: string[];
  durationMs: number;
}

export interface MigrationRequest extends InEnvironment {
  workflowId: string;
  /** The release commit whose migrations are run. */
  commit: string;
}

export interface MigrationStatusResult {
  mode: 'builtin' | 'command';
  /** Applied files, in the order they were applied (builtin mode; a command's tool lists only what is pending). */
  applied: string[];
  /** Files apply would run, in order: shown in dry runs and approval messages. */
  pending: string[];
  /** False in command mode without a status command: nothing is known, and the command runs every time. */
  known: boolean;
  /** Recorded as applied but absent from the release. */
  missing: string[];
  /** Pending files that sort before an applied one. */
  outOfOrder: string[];
  /** Command mode: the tail of the status command's output. */
  output?: string;
}

export interface AppliedMigration {
  /** The file (builtin) or the tool's name for the migration (command mode). */
  file: string;
  /** sha256 of the file as applied (builtin; a command's tool keeps its own). */
  checksum?: string;
  durationMs: number;
}

export interface MigrationsApplied {
  mode: 'builtin' | 'command';
  applied: AppliedMigration[];
  /** Files that were already applied (by an earlier attempt or another runner). */
  alreadyApplied: number;
  /**
   * The database may have changed in a way only a restore of the
   * pre-migration backup undoes, so a rollback offers that decision. False
   * only when the migrator knows nothing ran; a command without a status
   * command is always true. Absent in results recorded before it existed.
   */
  changed?: boolean;
  durationMs: number;
  /** Command mode: the tail of the command's output. */
  output?: string;
}

import type { InEnvironment } from './scope';
/** Heartbeat details of the long activities; a retried attempt reads them back. */
export interface DatabaseProgress {
  phase:
    'listing' | 'dumping' | 'finishing' | 'verifying' | 'checking' | 'restoring' | 'waiting-for-lock' | 'migrating';
  key?: string;
  bytes?: number;
  totalBytes?: number;
  file?: string;
  done?: number;
  total?: number;
}
