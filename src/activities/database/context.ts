/**
 * What every database activity shares: the deps as given, with their
 * defaults filled in once, so backup, restore, pre-flight and migrations
 * read the same clock, environment, runtime and bucket.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { CancelledFailure } from '@temporalio/common';
import * as path from 'node:path';
import { MAX_SINGLE_COPY_BYTES } from '../../domain/backup';
import type { DeployConfig } from '../../domain/config';
import { pgTarget, type PgTarget } from '../clients/postgres';
import { temporalRuntime, type ActivityRuntime } from '../runtime';
import type { MigratorFactory } from './migrators/migrator';
import { bucketObjects, type BucketObjects } from './objects';

export interface DatabaseDeps {
  config: Pick<DeployConfig, 'database' | 'backup'>;
  /** The connection URL from config.database.urlEnv; its database name is replaced by the target's. */
  databaseUrl: string;
  /** For config.backup (see createS3Client). */
  s3: S3Client;
  /** The release checkout at `commit`: builtin migrations are in its config.database.migrations.directory, and the command runs in it. */
  releaseDir(commit: string): Promise<string>;
  runtime?: ActivityRuntime;
  now?: () => Date;
  /** Environment for pg_dump, pg_restore, psql and the migration command; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Object-store limits, lowered by tests to exercise the multipart paths. */
  limits?: { singleCopyBytes?: number; copyPartBytes?: number };
  /**
   * Migrators by config.database.migrations.mode, added to or replacing the
   * built-in ones (migrators/index.ts): the seam a test or an extension
   * registers its own migrator through.
   */
  migrators?: Readonly<Record<string, MigratorFactory>>;
  /** The worker's redactor (deps.ts), for tool output put into failures; none: output kept as is. */
  redact?: (text: string) => string;
}

/** The deps with their defaults, shared by the activities of this folder. */
export interface DatabaseContext {
  deps: DatabaseDeps;
  cfg: DatabaseDeps['config'];
  rt: ActivityRuntime;
  now: () => Date;
  env: NodeJS.ProcessEnv;
  /** The backup bucket's objects (config.backup.bucket). */
  objects: BucketObjects;
  /** Where `database` (default config.database.name) is reached, for node-pg and the command-line tools. */
  target(database?: string): PgTarget;
  /** Every secret the worker holds replaced by ***: pg_dump's, psql's and the migration tool's output may echo them. */
  redact(text: string): string;
}

export function databaseContext(deps: DatabaseDeps): DatabaseContext {
  const cfg = deps.config;
  const env = deps.env ?? process.env;
  const objects = bucketObjects(deps.s3, cfg.backup.bucket, {
    singleCopyBytes: deps.limits?.singleCopyBytes ?? MAX_SINGLE_COPY_BYTES,
    copyPartBytes: deps.limits?.copyPartBytes ?? 512 * 1024 * 1024,
  });
  return {
    deps,
    cfg,
    rt: deps.runtime ?? temporalRuntime,
    now: deps.now ?? (() => new Date()),
    env,
    objects,
    target: (database = cfg.database.name) => pgTarget(deps.databaseUrl, database, env),
    redact: deps.redact ?? ((text) => text),
  };
}

/** The failure a cancelled step ends with, naming the step (runtime.ts's cancelledError would say only "activity"). */
export function cancelled(what: 'backup' | 'restore' | 'migrations'): CancelledFailure {
  return new CancelledFailure(`${what} cancelled`);
}

/** The zstd program, from PATH (Debian's package zstd: /usr/bin/zstd). */
export const ZSTD = 'zstd';

/** pg_dump, pg_restore and psql from config.database.clientBin, else from PATH. */
export function toolPath(cfg: DatabaseDeps['config'], name: 'pg_dump' | 'pg_restore' | 'psql'): string {
  return cfg.database.clientBin ? path.join(cfg.database.clientBin, name) : name;
}
