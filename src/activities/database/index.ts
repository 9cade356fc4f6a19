/**
 * PostgreSQL adapter: the runbook's "Verify Current State" (database part),
 * "Create Backup", "Database Migrations" and "Database Rollback" as
 * activities over an injected pg connection URL and S3 client.
 *
 * Backup format: `pg_dump -Fc -Z<compressionLevel>` (custom format, default
 * level 1) streamed straight into an S3 multipart upload, with no local
 * file. Measured here (docs/benchmarks.md) it takes about a third of the
 * runbook's dump-gzip-upload sequence, but about 3x a bare `pg_dump >
 * /dev/null` on 2 cores: compression itself is the cost (pg_dump -Z1 alone is
 * 2.2-2.9x the floor). pg_dump compresses in its own process, so the worker
 * only hashes and forwards bytes. The custom format is also what
 * pg_restore reads from a pipe in one transaction, and it records the
 * server and tool versions in its header.
 *
 * Memory stays bounded whatever the database size: every byte flows through
 * streams with backpressure (pg_dump -> hash -> upload parts; download ->
 * hash -> pg_restore -> psql); the largest buffers are the upload's parts
 * (about partSize x (queueSize + 1)).
 *
 * Failures: a permanent problem (bad password, missing database, SQL error,
 * changed migration) is non-retryable with the tool's or server's message; a
 * blip of the database or the object store is retryable, and a retried
 * activity finds what its previous attempt left (heartbeat details and the
 * bucket) and either reuses it or cleans it up.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  S3Client,
  UploadPartCopyCommand,
  type HeadObjectCommandOutput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { currentActivity, heartbeat } from '../runtime';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { createHash, type Hash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import { Client, escapeIdentifier } from 'pg';
import {
  backupAgeProblem,
  backupKey,
  backupKeyPrefix,
  copyRanges,
  decodeMetadata,
  encodeMetadata,
  headProblems,
  isTransientPgCode,
  isTransientPgMessage,
  latestBackup,
  MAX_SINGLE_COPY_BYTES,
  parseBackupKey,
  restorePreludeSql,
  rowCountDifferences,
  toolErrorSummary,
  type BackupMetadata,
  type ListedObject,
} from '../../domain/backup';
import type { DeployConfig } from '../../domain/config';
import { ErrorType, type ErrorTypeName } from '../../domain/errors';
import {
  CREATE_MIGRATIONS_TABLE_SQL,
  describeChanged,
  describeSqlError,
  MIGRATIONS_TABLE,
  MigrationFolderError,
  orderMigrationFiles,
  planMigrations,
  runsInTransaction,
  sqlPosition,
  type AppliedMigrationRow,
  type MigrationFileInfo,
} from '../../domain/migrations';
import { parseVersion, VersionError } from '../../domain/version';
import { lastLines, run, startTool } from '../clients/process';
import { connect, pgFailure, pgTarget, type PgTarget } from '../clients/postgres';
import { copySource, s3Status, storageFailure } from '../clients/s3';
import type { AppliedMigration, BackupRequest, BackupResult, DatabasePreflightRequest, DatabasePreflightResult, DatabaseProgress, MigrationRequest, MigrationStatusResult, MigrationsApplied, RestoreRequest, RestoreResult } from '../contracts';

// --- dependencies --------------------------------------------------------------

/** The few things of the Temporal activity context this adapter uses; replaceable in unit use. */
export interface ActivityRuntime {
  heartbeat(details: DatabaseProgress): void;
  /** The last heartbeat of the previous attempt, if any. */
  previousDetails(): unknown;
  cancellationSignal(): AbortSignal | undefined;
}

/** The real activity context when there is one, no-ops otherwise. */
export const temporalRuntime: ActivityRuntime = {
  heartbeat,
  previousDetails: () => currentActivity()?.info.heartbeatDetails as unknown,
  cancellationSignal: () => currentActivity()?.cancellationSignal,
};

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
}

const HEARTBEAT_MS = 1000;
const LOCK_POLL_MS = 250;
/** Advisory lock key, computed by the server: the same for every runner of this product on a database. */
const MIGRATION_LOCK_SQL = "hashtext('deploy-pipelines/schema_migrations')";

// --- errors --------------------------------------------------------------------

function failure(type: ErrorTypeName, message: string, nonRetryable: boolean, details?: unknown): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable, details: details === undefined ? undefined : [details] });
}

function isOurs(err: unknown): err is ApplicationFailure | CancelledFailure {
  return err instanceof ApplicationFailure || err instanceof CancelledFailure;
}


function cancelled(what: string): CancelledFailure {
  return new CancelledFailure(`${what} cancelled`);
}

function checkVersion(version: unknown): string {
  try {
    return parseVersion(version);
  } catch (err) {
    if (err instanceof VersionError) throw failure(ErrorType.InvalidInput, err.message, true);
    throw err;
  }
}

function checkWorkflowId(id: unknown): string {
  if (typeof id !== 'string' || id.length === 0 || id.length > 1000) throw failure(ErrorType.InvalidInput, 'workflowId is required', true);
  return id;
}

// --- connections -----------------------------------------------------------------

// --- child processes and streams ---------------------------------------------------

function toolPath(cfg: DatabaseDeps['config'], name: 'pg_dump' | 'pg_restore' | 'psql'): string {
  return cfg.database.clientBin ? path.join(cfg.database.clientBin, name) : name;
}

/**
 * Hashes and counts the bytes that pass. `beforeEnd` runs before the end of
 * the stream is passed on and can fail it; with `holdLast` the final chunk is
 * also held back until then, so a consumer can never see a complete input
 * that has not been checked.
 */
class Meter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private digestHex?: string;
  private held?: Buffer;
  bytes = 0;

  constructor(
    private readonly opts: { holdLast?: boolean; beforeEnd?: (m: Meter) => Promise<void>; onBytes?: (bytes: number) => void } = {},
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.opts.onBytes?.(this.bytes);
    if (!this.opts.holdLast) return cb(null, chunk);
    const prev = this.held;
    this.held = chunk;
    cb(null, prev);
  }

  override _flush(cb: TransformCallback): void {
    const finish = this.opts.beforeEnd ? this.opts.beforeEnd(this) : Promise.resolve();
    finish.then(
      () => cb(null, this.held),
      (err: Error) => cb(err),
    );
  }

  digest(): string {
    this.digestHex ??= this.hash.digest('hex');
    return this.digestHex;
  }
}

/** Passes pg_restore's script through and inserts `sql` right after its `BEGIN;`, so it runs in the restore's transaction. */
class InsertAfterBegin extends Transform {
  private head: Buffer[] = [];
  private headBytes = 0;
  private done = false;

  constructor(private readonly sql: string) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.done) return cb(null, chunk);
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const text = Buffer.concat(this.head).toString('latin1');
    const m = /^BEGIN;\r?\n/m.exec(text);
    if (m) {
      const cut = m.index + m[0].length;
      const all = Buffer.concat(this.head);
      this.done = true;
      this.head = [];
      this.push(all.subarray(0, cut));
      this.push(Buffer.from(this.sql));
      return cb(null, all.subarray(cut));
    }
    if (this.headBytes > 1024 * 1024) return cb(new Error('pg_restore printed no BEGIN; in its first MiB: cannot restore in one transaction'));
    cb();
  }

  override _flush(cb: TransformCallback): void {
    cb(this.done ? null : new Error('pg_restore printed no BEGIN;: the archive is empty or not a pg_dump custom-format archive'));
  }
}

function heartbeatTicker(rt: ActivityRuntime, progress: () => DatabaseProgress): () => void {
  rt.heartbeat(progress());
  const t = setInterval(() => rt.heartbeat(progress()), HEARTBEAT_MS);
  return () => clearInterval(t);
}

function previousKey(details: unknown): string | undefined {
  const key = (details as { key?: unknown } | undefined)?.key;
  return typeof key === 'string' ? key : undefined;
}

async function settleWithin<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([p.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// --- the activities -----------------------------------------------------------------

export function databaseActivities(deps: DatabaseDeps) {
  const cfg = deps.config;
  const bucket = cfg.backup.bucket;
  const rt = deps.runtime ?? temporalRuntime;
  const now = deps.now ?? (() => new Date());
  const env = deps.env ?? process.env;
  const singleCopyBytes = deps.limits?.singleCopyBytes ?? MAX_SINGLE_COPY_BYTES;
  const copyPartBytes = deps.limits?.copyPartBytes ?? 512 * 1024 * 1024;
  const target = (database = cfg.database.name) => pgTarget(deps.databaseUrl, database, env);

  // --- object store helpers ---

  async function listObjects(prefix: string): Promise<ListedObject[]> {
    const out: ListedObject[] = [];
    let token: string | undefined;
    do {
      const page = await deps.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) if (o.Key) out.push({ key: o.Key, size: o.Size, lastModified: o.LastModified });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async function head(key: string): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await deps.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    } catch (err) {
      if (s3Status(err) === 404) return undefined;
      throw err;
    }
  }

  async function deleteQuietly(key: string): Promise<void> {
    await deps.s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  }

  /** Aborts unfinished multipart uploads of exactly `key` (an interrupted attempt's parts). */
  async function abortUploads(key: string): Promise<void> {
    try {
      const list = await deps.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
      for (const u of list.Uploads ?? []) {
        if (u.Key === key && u.UploadId) await deps.s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: u.UploadId }));
      }
    } catch {
      // Best effort: a lifecycle rule (AbortIncompleteMultipartUpload) removes what is left.
    }
  }

  /** Reads the whole object and hashes it, never holding more than a chunk. */
  async function hashObject(key: string, etag: string | undefined, onBytes: (n: number) => void, signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> {
    const got = await deps.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: etag }), { abortSignal: signal });
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of got.Body as Readable) {
      hash.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      onBytes(bytes);
    }
    return { sha256: hash.digest('hex'), bytes };
  }

  /**
   * Rewrites the object's metadata in place (S3 cannot change metadata
   * otherwise): CopyObject onto itself, or a multipart copy above 5 GiB.
   * CopySourceIfMatch pins the copy to the object this attempt uploaded.
   */
  async function replaceMetadata(key: string, etag: string | undefined, size: number, metadata: Record<string, string>): Promise<void> {
    const common = { Bucket: bucket, Key: key, Metadata: metadata, ContentType: 'application/octet-stream' };
    if (size <= singleCopyBytes) {
      await deps.s3.send(new CopyObjectCommand({ ...common, CopySource: copySource(bucket, key), CopySourceIfMatch: etag, MetadataDirective: 'REPLACE' }));
      return;
    }
    const { UploadId } = await deps.s3.send(new CreateMultipartUploadCommand(common));
    try {
      const parts: { PartNumber: number; ETag?: string }[] = [];
      for (const [i, r] of copyRanges(size, copyPartBytes).entries()) {
        const out = await deps.s3.send(
          new UploadPartCopyCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: i + 1, CopySource: copySource(bucket, key), CopySourceRange: `bytes=${r.first}-${r.last}`, CopySourceIfMatch: etag }),
        );
        parts.push({ PartNumber: i + 1, ETag: out.CopyPartResult?.ETag });
      }
      await deps.s3.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
    } catch (err) {
      await deps.s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => undefined);
      throw err;
    }
  }

  // --- backup helpers ---

  interface Snapshot {
    id: string;
    /** Row counts in the snapshot, or undefined when counting failed. */
    rowCounts(): Promise<Record<string, number> | undefined>;
    close(): Promise<void>;
  }

  /**
   * Opens a REPEATABLE READ transaction and exports its snapshot for pg_dump
   * (--snapshot), so the row counts recorded with the backup are exactly the
   * dump's. The transaction stays open until pg_dump is done with it.
   */
  async function openSnapshot(t: PgTarget, tables: readonly string[]): Promise<Snapshot> {
    const client = await connect(t, 'backup');
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const { rows } = await client.query<{ id: string }>('SELECT pg_export_snapshot() AS id');
      const counting = (async () => {
        const counts: Record<string, number> = {};
        for (const table of tables) {
          // A savepoint per table: a failing count must not end the transaction pg_dump's snapshot lives in.
          await client.query('SAVEPOINT count_rows');
          try {
            const present = (await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [escapeIdentifier(table)])).rows[0].ok;
            if (present) counts[table] = Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${escapeIdentifier(table)}`)).rows[0].n);
            await client.query('RELEASE SAVEPOINT count_rows');
          } catch {
            await client.query('ROLLBACK TO SAVEPOINT count_rows');
          }
        }
        return counts;
      })();
      counting.catch(() => undefined);
      return {
        id: rows[0].id,
        rowCounts: () => counting.catch(() => undefined),
        close: async () => {
          await counting.catch(() => undefined);
          await client.query('COMMIT').catch(() => undefined);
          await client.end().catch(() => undefined);
        },
      };
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  class DumpFailed extends Error {}

  /** pg_dump -> sha256/bytes -> multipart upload; no local file, bounded memory. */
  async function dumpToBucket(t: PgTarget, snapshotId: string, key: string, metadata: Record<string, string>, progress: DatabaseProgress, signal?: AbortSignal) {
    const args = [
      '--format=custom',
      `--compress=${cfg.backup.compressionLevel}`,
      '--no-password',
      `--lock-wait-timeout=${cfg.database.lockTimeout}`,
      `--snapshot=${snapshotId}`,
      `--dbname=${t.conninfo}`,
    ];
    const dump = startTool(toolPath(cfg, 'pg_dump'), args, t.toolEnv, { stdin: 'ignore', stdout: 'pipe' });
    let killedByUs = false;
    // The stream ends only once pg_dump has exited with 0, so the upload can never complete a truncated dump.
    const meter = new Meter({
      onBytes: (n) => (progress.bytes = n),
      beforeEnd: async () => {
        const r = await dump.exit;
        if (r.code !== 0) throw new DumpFailed(`pg_dump exited with ${r.code ?? r.signal}`);
      },
    });
    pipeline(dump.child.stdout!, meter, () => undefined); // errors reach the upload through `meter`
    const upload = new Upload({
      client: deps.s3,
      params: { Bucket: bucket, Key: key, Body: meter, ContentType: 'application/octet-stream', Metadata: metadata },
      partSize: cfg.backup.partSizeMiB * 1024 * 1024,
      queueSize: cfg.backup.queueSize,
      leavePartsOnError: false,
    });
    const onAbort = () => {
      killedByUs = true;
      dump.kill();
      void upload.abort();
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      if (signal?.aborted) onAbort();
      const out = await upload.done();
      return { bytes: meter.bytes, sha256: meter.digest(), etag: out.ETag };
    } catch (err) {
      const stillRunning = dump.child.exitCode === null && dump.child.signalCode === null;
      if (stillRunning) {
        killedByUs = true;
        dump.kill();
      }
      meter.destroy();
      const exit = await settleWithin(dump.exit, 5000);
      await abortUploads(key);
      if (signal?.aborted) throw cancelled('backup');
      if (!killedByUs && exit && exit.code !== 0) {
        const msg = `pg_dump of ${t.database} failed: ${toolErrorSummary(dump.stderr())}`;
        if (isTransientPgMessage(dump.stderr())) throw failure(ErrorType.DatabaseUnavailable, msg, false);
        throw failure(ErrorType.BackupFailed, msg, true, { stderr: lastLines(dump.stderr(), 20) });
      }
      if ((err as { code?: string }).code === 'ENOENT') {
        throw failure(ErrorType.BackupFailed, `cannot run ${toolPath(cfg, 'pg_dump')}: not found (set database.clientBin)`, true);
      }
      throw storageFailure(err, `upload of ${key} failed`, ErrorType.BackupFailed);
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async function pgDumpVersion(): Promise<string | undefined> {
    const r = await run(toolPath(cfg, 'pg_dump'), ['--version'], { timeoutMs: 10_000 }).catch(() => undefined);
    return r?.code === 0 ? r.stdout.trim() : undefined;
  }

  /** Verifies an uploaded object against what was measured; deletes it (and throws) when it does not match. */
  async function verifyObject(key: string, expected: { sha256: string; bytes: number }, progress: DatabaseProgress, signal?: AbortSignal): Promise<{ readBack: boolean; etag?: string }> {
    const h = await head(key);
    const problems = h ? headProblems({ contentLength: h.ContentLength, metadata: decodeMetadata(h.Metadata) }, expected) : ['the object is missing'];
    if (!problems.length && cfg.backup.verifyReadBack) {
      progress.phase = 'verifying';
      progress.totalBytes = expected.bytes;
      const back = await hashObject(key, h!.ETag, (n) => (progress.bytes = n), signal);
      if (back.sha256 !== expected.sha256 || back.bytes !== expected.bytes) problems.push(`read back ${back.bytes} bytes with sha256 ${back.sha256.slice(0, 12)}…, uploaded ${expected.bytes} with ${expected.sha256.slice(0, 12)}…`);
    }
    if (problems.length) {
      await deleteQuietly(key);
      throw failure(ErrorType.BackupNotVerified, `backup ${key} failed verification: ${problems.join('; ')}`, false);
    }
    return { readBack: cfg.backup.verifyReadBack, etag: h?.ETag };
  }

  /**
   * This workflow's earlier backups of `version`: a verified one is reused;
   * unfinished ones (no checksum yet: an attempt died after the upload) are deleted.
   */
  async function findOwnBackup(workflowId: string, database: string, version: string, progress: DatabaseProgress, signal?: AbortSignal): Promise<BackupResult | undefined> {
    const listed = await listObjects(backupKeyPrefix(cfg.backup.prefix, database, version));
    const candidates = listed
      .map((o) => parseBackupKey(o.key, cfg.backup.prefix))
      .filter((p): p is NonNullable<typeof p> => !!p && p.database === database && p.version === version)
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
      .slice(0, 50);
    let found: BackupResult | undefined;
    for (const c of candidates) {
      const h = await head(c.key);
      if (!h) continue;
      const meta = decodeMetadata(h.Metadata);
      if (meta.workflowId !== workflowId) continue;
      const problems = headProblems({ contentLength: h.ContentLength, metadata: meta });
      if (problems.length || found) {
        if (problems.length) await deleteQuietly(c.key);
        continue;
      }
      let readBack = false;
      if (cfg.backup.verifyReadBack) {
        progress.phase = 'verifying';
        progress.key = c.key;
        const back = await hashObject(c.key, h.ETag, (n) => (progress.bytes = n), signal);
        if (back.sha256 !== meta.sha256 || back.bytes !== meta.bytes) {
          await deleteQuietly(c.key);
          continue;
        }
        readBack = true;
      }
      found = {
        key: c.key,
        bucket,
        database,
        version,
        bytes: meta.bytes!,
        sha256: meta.sha256!,
        createdAt: meta.createdAt ?? c.createdAt.toISOString(),
        reused: true,
        readBack,
        rowCounts: meta.rowCounts,
        durationMs: 0,
      };
    }
    return found;
  }

  return {
    /**
     * The database part of the runbook's "Verify Current State":
     * connectivity (`SELECT version()`), connections per database, and the
     * newest backup with its age. Returns the problems for the caller to
     * combine with the other pre-flight checks, or throws PreflightFailed
     * when asked to. A database or store that is down right now is retried.
     */
    async databasePreflight(req: DatabasePreflightRequest): Promise<DatabasePreflightResult> {
      checkWorkflowId(req.workflowId);
      const database = cfg.database.name;
      const result: DatabasePreflightResult = { database, version: '', connections: {}, problems: [] };
      const t = target();
      let client: Client | undefined;
      try {
        client = await connect(t, 'preflight');
        result.version = (await client.query<{ version: string }>('SELECT version()')).rows[0].version;
        const conns = await client.query<{ datname: string; n: number }>('SELECT datname, count(*)::int AS n FROM pg_stat_activity WHERE datname IS NOT NULL GROUP BY datname ORDER BY datname');
        for (const r of conns.rows) result.connections[r.datname] = r.n;
        result.maxConnections = Number((await client.query<{ max_connections: string }>('SHOW max_connections')).rows[0].max_connections);
        const total = Object.values(result.connections).reduce((a, b) => a + b, 0);
        if (result.maxConnections > 0 && total >= 0.9 * result.maxConnections) {
          result.problems.push(`database: ${total} of ${result.maxConnections} connections in use`);
        }
      } catch (err) {
        const f = pgFailure(err, `database ${database}`, ErrorType.PreflightFailed);
        if (f instanceof ApplicationFailure && !f.nonRetryable) throw f;
        result.problems.push(`database: cannot query ${database}: ${(err as Error).message}`);
      } finally {
        await client?.end().catch(() => undefined);
      }
      try {
        const where = `s3://${bucket}/${cfg.backup.prefix}`;
        const latest = latestBackup(await listObjects(`${cfg.backup.prefix}${database}_`), cfg.backup.prefix, database);
        const at = now();
        if (latest) {
          result.latestBackup = { key: latest.key, version: latest.version, createdAt: latest.createdAt.toISOString(), ageMs: at.getTime() - latest.createdAt.getTime(), bytes: latest.size };
        }
        const problem = backupAgeProblem(latest, at, cfg.backup.maxAge, where);
        if (problem) result.problems.push(`backup: ${problem}`);
      } catch (err) {
        const f = storageFailure(err, `listing s3://${bucket}/${cfg.backup.prefix}`, ErrorType.PreflightFailed);
        if (f instanceof ApplicationFailure && !f.nonRetryable) throw f;
        result.problems.push(`backup: ${f.message}`);
      }
      if (req.failOnProblems && result.problems.length) {
        throw failure(ErrorType.PreflightFailed, `pre-flight failed: ${result.problems.join('; ')}`, true, result);
      }
      return result;
    },

    /**
     * The runbook's "Create Backup" without the local file: pg_dump streamed
     * through a hash into a multipart upload, then the checksum and size
     * written as metadata and verified. Idempotent per workflow and version.
     */
    async backupDatabase(req: BackupRequest): Promise<BackupResult> {
      const started = Date.now();
      const workflowId = checkWorkflowId(req.workflowId);
      const version = checkVersion(req.version);
      const database = cfg.database.name;
      const signal = rt.cancellationSignal();
      const progress: DatabaseProgress = { phase: 'listing', key: previousKey(rt.previousDetails()) };
      const stopTicker = heartbeatTicker(rt, () => ({ ...progress }));
      let key: string | undefined;
      let uploaded = false;
      let verified = false;
      try {
        // An earlier attempt that died mid-upload left parts behind; they are not an object, but they cost storage.
        if (progress.key) await abortUploads(progress.key);
        const reused = await findOwnBackup(workflowId, database, version, progress, signal);
        if (reused) return { ...reused, durationMs: Date.now() - started };
        if (signal?.aborted) throw cancelled('backup');

        const createdAt = now();
        key = backupKey({ prefix: cfg.backup.prefix, database, version, at: createdAt });
        Object.assign(progress, { phase: 'dumping', key, bytes: 0 });
        rt.heartbeat({ ...progress });
        const base: BackupMetadata = { workflowId, database, version, createdAt: createdAt.toISOString(), tool: await pgDumpVersion() };
        const t = target(database);
        if (signal?.aborted) throw cancelled('backup');
        let snapshot: Snapshot;
        try {
          snapshot = await openSnapshot(t, cfg.database.verifyTables);
        } catch (err) {
          throw pgFailure(err, `backup of ${database}`, ErrorType.BackupFailed);
        }
        let dumped: { bytes: number; sha256: string; etag?: string };
        let rowCounts: Record<string, number> | undefined;
        try {
          dumped = await dumpToBucket(t, snapshot.id, key, encodeMetadata(base), progress, signal);
          uploaded = true;
          rowCounts = await snapshot.rowCounts();
        } finally {
          await snapshot.close();
        }

        progress.phase = 'finishing';
        const meta: BackupMetadata = { ...base, sha256: dumped.sha256, bytes: dumped.bytes, rowCounts };
        try {
          await replaceMetadata(key, dumped.etag, dumped.bytes, encodeMetadata(meta));
        } catch (err) {
          throw storageFailure(err, `recording the checksum of ${key}`, ErrorType.BackupFailed);
        }
        let readBack: boolean;
        try {
          readBack = (await verifyObject(key, dumped, progress, signal)).readBack;
        } catch (err) {
          if (signal?.aborted) throw cancelled('backup');
          throw storageFailure(err, `verifying ${key}`, ErrorType.BackupFailed);
        }
        verified = true;
        return {
          key,
          bucket,
          database,
          version,
          bytes: dumped.bytes,
          sha256: dumped.sha256,
          createdAt: createdAt.toISOString(),
          reused: false,
          readBack,
          rowCounts,
          durationMs: Date.now() - started,
        };
      } catch (err) {
        // An object that exists but was not verified must not survive to look like a backup.
        if (key && uploaded && !verified) await deleteQuietly(key);
        if (signal?.aborted && !(err instanceof CancelledFailure)) throw cancelled('backup');
        throw storageFailure(err, `backup of ${database}`, ErrorType.BackupFailed);
      } finally {
        stopTicker();
      }
    },

    /**
     * The runbook's "Database Rollback", refused unless `confirmKey` repeats
     * `key` (the workflow passes it only after a person approved). The
     * object's checksum is verified before anything is touched; the restore
     * then runs in one transaction that first empties the schemas the role
     * owns, so the database ends exactly as backed up or, on any failure,
     * exactly as it was. Row counts are compared with the backup's.
     */
    async restoreDatabase(req: RestoreRequest): Promise<RestoreResult> {
      const started = Date.now();
      checkWorkflowId(req.workflowId);
      if (typeof req.key !== 'string' || !req.key || req.confirmKey !== req.key) {
        throw failure(ErrorType.RestoreNotConfirmed, `restore of ${JSON.stringify(req.key)} refused: confirmKey must repeat the backup key after approval`, true);
      }
      const key = req.key;
      if (!parseBackupKey(key, cfg.backup.prefix)) {
        throw failure(ErrorType.InvalidInput, `${key} is not a backup key under ${cfg.backup.prefix} (<database>_<version>_<timestamp>.dump)`, true);
      }
      const database = req.database ?? cfg.database.name;
      const t = target(database);
      const signal = rt.cancellationSignal();
      const progress: DatabaseProgress = { phase: 'checking', key, bytes: 0 };
      const stopTicker = heartbeatTicker(rt, () => ({ ...progress }));
      try {
        let h: HeadObjectCommandOutput | undefined;
        try {
          h = await head(key);
        } catch (err) {
          throw storageFailure(err, `reading ${key}`, ErrorType.RestoreFailed);
        }
        if (!h) throw failure(ErrorType.RestoreFailed, `no backup ${key} in s3://${bucket}`, true);
        const meta = decodeMetadata(h.Metadata);
        const problems = headProblems({ contentLength: h.ContentLength, metadata: meta });
        if (problems.length) throw failure(ErrorType.BackupNotVerified, `${key} is not a verified backup: ${problems.join('; ')}`, true);
        const expected = { sha256: meta.sha256!, bytes: meta.bytes! };
        progress.totalBytes = expected.bytes;

        // 1. The checksum, before the database is touched.
        let check: { sha256: string; bytes: number };
        try {
          check = await hashObject(key, h.ETag, (n) => (progress.bytes = n), signal);
        } catch (err) {
          if (signal?.aborted) throw cancelled('restore');
          throw storageFailure(err, `reading ${key}`, ErrorType.RestoreFailed);
        }
        if (check.sha256 !== expected.sha256 || check.bytes !== expected.bytes) {
          throw failure(ErrorType.BackupNotVerified, `${key} is corrupt: ${check.bytes} bytes with sha256 ${check.sha256.slice(0, 12)}…, recorded ${expected.bytes} with ${expected.sha256.slice(0, 12)}…`, true);
        }
        if (signal?.aborted) throw cancelled('restore');

        // 2. download -> hash (last chunk held until it matches again) -> pg_restore -> psql, one transaction.
        Object.assign(progress, { phase: 'restoring', bytes: 0 });
        rt.heartbeat({ ...progress });
        await restoreStream(t, key, h.ETag, expected, progress, signal);

        // 3. The runbook's verification queries, compared with the counts recorded in the backup.
        progress.phase = 'verifying';
        rt.heartbeat({ ...progress });
        const tables = [...new Set([...cfg.database.verifyTables, ...Object.keys(meta.rowCounts ?? {})])];
        const counts = await countRows(t, tables);
        const missing = cfg.database.verifyTables.filter((tb) => counts[tb] === null && !(meta.rowCounts && tb in meta.rowCounts)).map((tb) => `${tb}: missing`);
        const differences = [...rowCountDifferences(meta.rowCounts, counts), ...missing];
        const present = Object.fromEntries(Object.entries(counts).filter((e): e is [string, number] => e[1] !== null));
        if (differences.length) {
          throw failure(ErrorType.RestoreFailed, `restored ${key} into ${database} but verification failed: ${differences.join('; ')}`, true, { tables: present, expectedTables: meta.rowCounts });
        }
        return { key, database, bytes: expected.bytes, sha256: expected.sha256, tables: present, expectedTables: meta.rowCounts, durationMs: Date.now() - started };
      } finally {
        stopTicker();
      }
    },

    /** Pending migrations of a release, for dry runs and approval messages. Changed applied files are an error here already. */
    async migrationStatus(req: MigrationRequest): Promise<MigrationStatusResult> {
      checkWorkflowId(req.workflowId);
      const dir = await releaseDir(req.commit);
      const m = cfg.database.migrations;
      if (m.mode === 'command') {
        if (!m.statusCommand) return { mode: 'command', applied: [], pending: [], known: false, missing: [], outOfOrder: [] };
        const r = await runMigrationCommand(m.statusCommand, dir, m.timeout);
        // A status command may exit non-zero just to say something is pending (prisma does): its output is the answer.
        return { mode: 'command', applied: [], pending: [], known: false, missing: [], outOfOrder: [], output: lastLines(`${r.stdout}\n${r.stderr}`, 40) };
      }
      const files = await readMigrations(path.resolve(dir, m.directory));
      const t = target();
      let client: Client | undefined;
      try {
        client = await connect(t, 'migration-status');
        const applied = await appliedRows(client, false);
        const plan = planMigrations(files, applied);
        if (plan.changed.length) throw changedFailure(plan.changed);
        return { mode: 'builtin', applied: applied.map((a) => a.filename), pending: plan.pending, known: true, missing: plan.missing, outOfOrder: plan.outOfOrder };
      } catch (err) {
        throw pgFailure(err, `migration status of ${t.database}`, ErrorType.MigrationFailed);
      } finally {
        await client?.end().catch(() => undefined);
      }
    },

    /**
     * Applies the release's pending migrations under an advisory lock, one
     * transaction per file, recording each with its checksum. Safe to retry
     * and to run twice at once: the second runner waits, then finds nothing
     * pending.
     */
    async applyMigrations(req: MigrationRequest): Promise<MigrationsApplied> {
      const started = Date.now();
      const workflowId = checkWorkflowId(req.workflowId);
      const dir = await releaseDir(req.commit);
      const m = cfg.database.migrations;
      const files = m.mode === 'builtin' ? await readMigrations(path.resolve(dir, m.directory)) : [];
      const t = target();
      const signal = rt.cancellationSignal();
      const progress: DatabaseProgress = { phase: 'waiting-for-lock' };
      const stopTicker = heartbeatTicker(rt, () => ({ ...progress }));
      let client: Client | undefined;
      try {
        client = await connect(t, 'migrate');
        await acquireMigrationLock(client, signal);
        if (m.mode === 'command') {
          progress.phase = 'migrating';
          const r = await runMigrationCommand(m.command, dir, m.timeout, signal);
          if (r.code !== 0) {
            const out = `${r.stderr}\n${r.stdout}`;
            const why = r.timedOut ? `timed out after ${m.timeout}ms` : `exited with ${r.code ?? r.signal}`;
            throw failure(ErrorType.MigrationFailed, `migration command ${m.command.join(' ')} ${why}: ${toolErrorSummary(out)}`, true, { output: lastLines(out, 40) });
          }
          return { mode: 'command', applied: [], alreadyApplied: 0, durationMs: Date.now() - started, output: lastLines(`${r.stdout}\n${r.stderr}`, 40) };
        }
        await client.query(CREATE_MIGRATIONS_TABLE_SQL);
        const rows = await appliedRows(client, true);
        const plan = planMigrations(files, rows);
        if (plan.changed.length) throw changedFailure(plan.changed);
        const applied: AppliedMigration[] = [];
        const byName = new Map(files.map((f) => [f.filename, f]));
        for (const [i, filename] of plan.pending.entries()) {
          if (signal?.aborted) throw cancelled('migrations');
          Object.assign(progress, { phase: 'migrating', file: filename, done: i, total: plan.pending.length });
          rt.heartbeat({ ...progress });
          applied.push(await applyOne(client, byName.get(filename)!, workflowId, signal));
        }
        return { mode: 'builtin', applied, alreadyApplied: files.length - plan.pending.length, durationMs: Date.now() - started };
      } catch (err) {
        if (signal?.aborted && !isOurs(err)) throw cancelled('migrations');
        throw pgFailure(err, `migrations of ${t.database}`, ErrorType.MigrationFailed);
      } finally {
        stopTicker();
        if (client) {
          await client.query(`SELECT pg_advisory_unlock(${MIGRATION_LOCK_SQL})`).catch(() => undefined);
          await client.end().catch(() => undefined);
        }
      }
    },
  };

  // --- restore helpers ---

  async function restoreStream(t: PgTarget, key: string, etag: string | undefined, expected: { sha256: string; bytes: number }, progress: DatabaseProgress, signal?: AbortSignal): Promise<void> {
    let body: Readable;
    try {
      // IfMatch: the bytes restored are the bytes just checked.
      const got = await deps.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: etag }), { abortSignal: signal });
      body = got.Body as Readable;
    } catch (err) {
      if (signal?.aborted) throw cancelled('restore');
      throw storageFailure(err, `reading ${key}`, ErrorType.RestoreFailed);
    }
    const meter = new Meter({
      holdLast: true,
      onBytes: (n) => (progress.bytes = n),
      beforeEnd: (mt) =>
        mt.digest() === expected.sha256 && mt.bytes === expected.bytes ? Promise.resolve() : Promise.reject(new Error(`${key} changed while it was restored`)),
    });
    // pg_restore only converts the archive into SQL (BEGIN ... COMMIT with --single-transaction);
    // psql runs it, with the prelude inserted after BEGIN. COMMIT comes last, so any failure
    // upstream (download, checksum, pg_restore) leaves psql with an open transaction that the
    // server rolls back; psql is also killed before its input is closed.
    const restore = startTool(toolPath(cfg, 'pg_restore'), ['--single-transaction', '--file=-'], t.toolEnv, { stdin: 'pipe', stdout: 'pipe' });
    const psql = startTool(toolPath(cfg, 'psql'), ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', `--dbname=${t.conninfo}`], t.toolEnv, { stdin: 'pipe', stdout: 'ignore' });
    let firstError: Error | undefined;
    let upstreamError: Error | undefined;
    // Only the first failure says what went wrong; the rest are the consequences of stopping.
    const stopAll = (err: Error, upstream: boolean) => {
      if (!firstError) {
        firstError = err;
        if (upstream) upstreamError = err;
      }
      psql.kill('SIGKILL'); // first, before its input can end
      restore.kill('SIGKILL');
      body.destroy();
    };
    const onAbort = () => stopAll(cancelled('restore'), true);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const inbound = new Promise<void>((resolve) =>
        pipeline(body, meter, restore.child.stdin!, (err) => {
          if (err && (err as { code?: string }).code !== 'EPIPE') stopAll(err, true);
          resolve();
        }),
      );
      const outbound = new Promise<void>((resolve) =>
        pipeline(restore.child.stdout!, new InsertAfterBegin(restorePreludeSql(cfg.database.lockTimeout)), psql.child.stdin!, (err) => {
          if (err && (err as { code?: string }).code !== 'EPIPE') stopAll(err, false);
          resolve();
        }),
      );
      const restoreExit = restore.exit.then((r) => {
        if (r.code !== 0 && !firstError) stopAll(new Error(`pg_restore failed: ${toolErrorSummary(restore.stderr())}`), false);
        return r;
      });
      const [psqlExit] = await Promise.all([psql.exit, restoreExit, inbound, outbound]);
      if (signal?.aborted) throw cancelled('restore');
      // psql that ended by itself (we only ever SIGKILL it) is the cause: whatever broke upstream
      // afterwards (pg_restore's pipe, the download stream) is its consequence.
      if (psqlExit.code !== 0 && psqlExit.signal !== 'SIGKILL') {
        const msg = `restore of ${key} into ${t.database} failed and was rolled back: ${toolErrorSummary(psql.stderr())}`;
        if (isTransientPgMessage(psql.stderr())) throw failure(ErrorType.DatabaseUnavailable, msg, false);
        throw failure(ErrorType.RestoreFailed, msg, true, { stderr: lastLines(psql.stderr(), 20) });
      }
      if (upstreamError) throw storageFailure(upstreamError, `reading ${key}`, ErrorType.RestoreFailed);
      if (firstError) throw failure(ErrorType.RestoreFailed, `restore of ${key} into ${t.database} failed and was rolled back: ${firstError.message}`, true);
    } catch (err) {
      stopAll(err as Error, false);
      if ((err as { code?: string }).code === 'ENOENT') throw failure(ErrorType.RestoreFailed, 'cannot run pg_restore or psql: not found (set database.clientBin)', true);
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async function countRows(t: PgTarget, tables: readonly string[]): Promise<Record<string, number | null>> {
    let client: Client | undefined;
    try {
      client = await connect(t, 'restore-verify');
      const out: Record<string, number | null> = {};
      for (const table of tables) {
        const present = (await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [escapeIdentifier(table)])).rows[0].ok;
        out[table] = present ? Number((await client.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${escapeIdentifier(table)}`)).rows[0].n) : null;
      }
      return out;
    } catch (err) {
      throw pgFailure(err, `verifying ${t.database} after the restore`, ErrorType.RestoreFailed);
    } finally {
      await client?.end().catch(() => undefined);
    }
  }

  // --- migration helpers ---

  async function releaseDir(commit: string): Promise<string> {
    if (typeof commit !== 'string' || !commit) throw failure(ErrorType.InvalidInput, 'commit is required', true);
    return deps.releaseDir(commit);
  }

  interface LoadedMigration extends MigrationFileInfo {
    sql: string;
  }

  async function readMigrations(dir: string): Promise<LoadedMigration[]> {
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch (err) {
      throw failure(ErrorType.MigrationFailed, `cannot read the migrations folder ${dir}: ${(err as Error).message}`, true);
    }
    let ordered: string[];
    try {
      ordered = orderMigrationFiles(entries);
    } catch (err) {
      if (err instanceof MigrationFolderError) throw failure(ErrorType.MigrationFailed, err.message, true);
      throw err;
    }
    return Promise.all(
      ordered.map(async (filename) => {
        const bytes = await readFile(path.join(dir, filename));
        return { filename, checksum: createHash('sha256').update(bytes).digest('hex'), sql: bytes.toString('utf8') };
      }),
    );
  }

  async function appliedRows(client: Client, tableExists: boolean): Promise<AppliedMigrationRow[]> {
    if (!tableExists) {
      const present = (await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [MIGRATIONS_TABLE])).rows[0].ok;
      if (!present) return [];
    }
    const r = await client.query<{ filename: string; checksum: string; applied_at: Date; duration_ms: number; applied_by: string }>(
      `SELECT filename, checksum, applied_at, duration_ms, applied_by FROM ${MIGRATIONS_TABLE} ORDER BY applied_at, filename`,
    );
    return r.rows.map((x) => ({ filename: x.filename, checksum: x.checksum, appliedAt: x.applied_at.toISOString(), durationMs: x.duration_ms, appliedBy: x.applied_by }));
  }

  function changedFailure(changed: Parameters<typeof describeChanged>[0]): ApplicationFailure {
    return failure(ErrorType.MigrationChanged, `applied migration changed since it was applied: ${describeChanged(changed)}`, true, { changed });
  }

  /** Session-level advisory lock, polled so the wait heartbeats, can be cancelled and gives up after migrationLockTimeout. */
  async function acquireMigrationLock(client: Client, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + cfg.database.migrationLockTimeout;
    for (;;) {
      const r = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(${MIGRATION_LOCK_SQL}) AS ok`);
      if (r.rows[0].ok) return;
      if (signal?.aborted) throw cancelled('migrations');
      if (Date.now() > deadline) {
        const holder = await client
          .query<{ who: string }>(
            `SELECT coalesce(a.application_name, '') || ' pid ' || l.pid AS who FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.objid = (${MIGRATION_LOCK_SQL})::oid LIMIT 1`,
          )
          .then((x) => x.rows[0]?.who)
          .catch(() => undefined);
        throw failure(ErrorType.MigrationLocked, `another migrator${holder ? ` (${holder})` : ''} held the migration lock on ${cfg.database.name} for ${cfg.database.migrationLockTimeout}ms`, false);
      }
      await new Promise((r2) => setTimeout(r2, LOCK_POLL_MS));
    }
  }

  async function applyOne(client: Client, file: LoadedMigration, workflowId: string, signal?: AbortSignal): Promise<AppliedMigration> {
    const inTx = runsInTransaction(file.sql);
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    // Cancelling the activity cancels the running statement (the transaction then rolls back).
    const onAbort = () => void cancelBackend(pid);
    signal?.addEventListener('abort', onAbort, { once: true });
    const t0 = Date.now();
    try {
      if (inTx) await client.query('BEGIN');
      try {
        await client.query(file.sql);
        const durationMs = Date.now() - t0;
        await client.query(`INSERT INTO ${MIGRATIONS_TABLE} (filename, checksum, duration_ms, applied_by) VALUES ($1, $2, $3, $4)`, [file.filename, file.checksum, durationMs, workflowId]);
        if (inTx) await client.query('COMMIT');
        return { file: file.filename, checksum: file.checksum, durationMs };
      } catch (err) {
        if (inTx) await client.query('ROLLBACK').catch(() => undefined);
        if (signal?.aborted) throw cancelled('migrations');
        const e = err as { message: string; position?: string; code?: string };
        if (isTransientPgCode(e.code) && inTx) throw failure(ErrorType.DatabaseUnavailable, `${file.filename}: ${e.message} (rolled back; retried)`, false);
        const at = sqlPosition(file.sql, e.position);
        const state = inTx ? 'rolled back' : 'ran outside a transaction, check the database before retrying';
        throw failure(ErrorType.MigrationFailed, `migration ${describeSqlError(file.filename, file.sql, e)} (${state})`, true, {
          file: file.filename,
          line: at?.line,
          column: at?.column,
          sqlstate: e.code,
          error: e.message,
          rolledBack: inTx,
        });
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  async function cancelBackend(pid: number): Promise<void> {
    let c: Client | undefined;
    try {
      c = await connect(target(), 'migrate-cancel');
      await c.query('SELECT pg_cancel_backend($1)', [pid]);
    } catch {
      // The statement runs to its end; the activity is cancelled after it.
    } finally {
      await c?.end().catch(() => undefined);
    }
  }

  async function runMigrationCommand(command: string[], cwd: string, timeoutMs: number, signal?: AbortSignal) {
    // DATABASE_URL in the environment, never in argv; no shell.
    const childEnv = { ...env, DATABASE_URL: target().fullUrl };
    try {
      return await run(command[0], command.slice(1), { cwd, env: childEnv, timeoutMs, signal, maxOutput: 256 * 1024 });
    } catch (err) {
      if (signal?.aborted) throw cancelled('migrations');
      throw failure(ErrorType.MigrationFailed, `cannot run migration command ${command[0]}: ${(err as Error).message}`, true);
    }
  }
}

export type DatabaseActivities = ReturnType<typeof databaseActivities>;
