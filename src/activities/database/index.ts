/**
 * PostgreSQL adapter: the runbook's "Verify Current State" (database part),
 * "Create Backup", "Database Migrations" and "Database Rollback" as
 * activities over an injected pg connection URL and S3 client.
 *
 * One room per step: preflight.ts, backup.ts, restore.ts, migrations.ts
 * (with one migrator per config mode in migrators/), over objects.ts (the
 * bucket), row-counts.ts and streams.ts. Memory stays bounded whatever the
 * database size: every byte flows through streams with backpressure
 * (pg_dump [-> zstd] -> hash -> upload parts; download -> hash [-> zstd -d] -> pg_restore -> psql);
 * the largest buffers are the upload's parts (about partSize x (queueSize +
 * 1)).
 *
 * Failures: a permanent problem (bad password, missing database, SQL error,
 * changed migration) is non-retryable with the tool's or server's message; a
 * blip of the database or the object store is retryable, and a retried
 * activity finds what its previous attempt left (heartbeat details and the
 * bucket) and either reuses it or cleans it up.
 */
import { ErrorType } from '../../domain/errors';
import { storageFailure } from '../clients/s3';
import { backupActivities } from './backup';
import { databaseContext, type DatabaseDeps } from './context';
import { migrationActivities } from './migrations';
import { preflightActivities } from './preflight';
import { restoreActivities } from './restore';

export type { DatabaseDeps } from './context';
export type { Migrator, MigratorDeps, MigratorFactory, MigrationSession } from './migrators';

/** The database activities over one database and bucket (createActivities builds them from config). */
export function databaseActivities(deps: DatabaseDeps) {
  const ctx = databaseContext(deps);
  return {
    ...preflightActivities(ctx),
    ...backupActivities(ctx),
    ...restoreActivities(ctx),
    ...migrationActivities(ctx),
    /** Not an activity: whether the bucket holds `key`, for the checks of what a rollback is handed. */
    backupExists: async (key: string): Promise<boolean> => {
      try {
        return (await ctx.objects.head(key)) !== undefined;
      } catch (err) {
        throw storageFailure(err, `reading ${key}`, ErrorType.StorageUnavailable);
      }
    },
  };
}

export type DatabaseActivities = ReturnType<typeof databaseActivities>;
