/**
 * The Migrator seam: one implementation per config.database.migrations.mode
 * (builtin.ts, command.ts), picked by the one factory in index.ts. The
 * activities around it (../migrations.ts) own what every migrator shares:
 * the release checkout, the database's migration lock, heartbeats, error
 * mapping and the result's `mode` and duration. A migrator says what is
 * pending, applies it, and tells the saga whether the database changed in a
 * way only a restore of the pre-migration backup would undo.
 */
import type { Client } from 'pg';
import type { DeployConfig } from '../../../domain/config';
import type { PgTarget } from '../../clients/postgres';
import type { DatabaseProgress, MigrationStatusResult, MigrationsApplied } from '../../contracts';

/** config.database.migrations: the schema's union on `mode` is where the migrator names are declared. */
export type MigrationsConfig = DeployConfig['database']['migrations'];

/** A migrator the schema knows; the factory has a constructor for each. */
export type MigratorName = MigrationsConfig['mode'];

/** The release whose migrations are read or applied. */
export interface MigrationRelease {
  /** The deployment applying them (recorded as applied_by). */
  workflowId: string;
  /** The release checkout at the requested commit. */
  dir: string;
}

/** What apply gets from the activity: the lock, progress and cancellation. */
export interface MigrationSession {
  /**
   * Runs `step` on a connection that holds the database's migration lock,
   * after waiting for any other runner; progress is heartbeated meanwhile,
   * errors come out as the activity's failures (MigrationFailed,
   * DatabaseUnavailable, a cancellation) and the lock is released afterwards.
   * Whatever can fail without the database (reading the release) belongs
   * before it, so that it fails without waiting for the lock.
   */
  locked<T>(step: (client: Client) => Promise<T>): Promise<T>;
  /** Heartbeated every second while locked: set phase, file, done and total as the work goes on. */
  progress: DatabaseProgress;
  /** Send `progress` now (a new file started) rather than at the next tick. */
  heartbeat(): void;
  signal?: AbortSignal;
}

/** What the migrator knows about the release's migrations; `pending` is what apply would run. */
export type MigrationState = Omit<MigrationStatusResult, 'mode'>;

export interface MigrationOutcome extends Omit<MigrationsApplied, 'mode' | 'durationMs' | 'changed'> {
  /**
   * The database may have changed in a way that only a restore of the
   * pre-migration backup undoes; false only when the migrator knows that
   * nothing ran. The saga offers the database decision on it.
   */
  changed: boolean;
}

export interface Migrator {
  /** Read-only: takes no lock and changes nothing, for dry runs and approval messages. */
  status(release: MigrationRelease): Promise<MigrationState>;
  /**
   * Applies what is pending, idempotently: a retry or a second runner finds
   * it applied. A failure after which the database may have changed carries
   * `{ changed: true }` among its details, so the saga offers the restore.
   */
  apply(release: MigrationRelease, session: MigrationSession): Promise<MigrationOutcome>;
}

/** What a migrator may use besides its own config section. */
export interface MigratorDeps {
  /** The configured database, for node-pg and for a command's DATABASE_URL. */
  target(): PgTarget;
  /** Environment of the migration command. */
  env: NodeJS.ProcessEnv;
  /** The worker's redactor: a tool's output is redacted before it enters a failure or a result. */
  redact?: (text: string) => string;
}

/**
 * Builds a migrator from config.database.migrations (the section whose
 * `mode` named it). A factory registered under a name outside the schema
 * gets whatever section the caller's config holds.
 */
export type MigratorFactory<C extends { mode: string } = MigrationsConfig> = (
  config: C,
  deps: MigratorDeps,
) => Migrator;
