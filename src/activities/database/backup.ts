/**
 * The runbook's "Create Backup" without the local file: `pg_dump -Fc
 * -Z<compressionLevel>` (custom format, default level 1) streamed through a
 * hash straight into an S3 multipart upload. Measured here
 * (docs/benchmarks.md) it takes about a third of the runbook's
 * dump-gzip-upload sequence, but about 3x a bare `pg_dump > /dev/null` on 2
 * cores: compression itself is the cost (pg_dump -Z1 alone is 2.2-2.9x the
 * floor). pg_dump compresses in its own process, so the worker only hashes
 * and forwards bytes. The custom format is also what pg_restore reads from a
 * pipe in one transaction, and it records the server and tool versions in
 * its header.
 *
 * Idempotent per workflow and version: a retried attempt finds its previous
 * attempt's verified object and reuses it, or cleans up what it left.
 */
import { CancelledFailure } from '@temporalio/common';
import { pipeline } from 'node:stream';
import {
  backupKey,
  backupKeyPrefix,
  decodeMetadata,
  encodeMetadata,
  headProblems,
  isTransientPgMessage,
  parseBackupKey,
  toolErrorSummary,
  type BackupMetadata,
} from '../../domain/backup';
import { ErrorType } from '../../domain/errors';
import { pgFailure, type PgTarget } from '../clients/postgres';
import { lastLines, run, startTool } from '../clients/process';
import { storageFailure } from '../clients/s3';
import type { BackupRequest, BackupResult, DatabaseProgress } from '../contracts';
import { checkedVersion, checkedWorkflowId, fail } from '../failures';
import { cancelled, toolPath, type DatabaseContext } from './context';
import { openSnapshot, type Snapshot } from './row-counts';
import { heartbeatTicker, Meter, previousKey, settleWithin } from './streams';

class DumpFailed extends Error {}

/** pg_dump -> sha256/bytes -> multipart upload; no local file, bounded memory. */
async function dumpToBucket(
  ctx: DatabaseContext,
  t: PgTarget,
  snapshotId: string,
  key: string,
  metadata: Record<string, string>,
  progress: DatabaseProgress,
  signal?: AbortSignal,
) {
  const { cfg } = ctx;
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
  const upload = ctx.objects.upload(key, meter, metadata, {
    partSize: cfg.backup.partSizeMiB * 1024 * 1024,
    queueSize: cfg.backup.queueSize,
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
    await ctx.objects.abortUploads(key);
    if (signal?.aborted) throw cancelled('backup');
    if (!killedByUs && exit && exit.code !== 0) {
      const msg = ctx.redact(`pg_dump of ${t.database} failed: ${toolErrorSummary(dump.stderr())}`);
      if (isTransientPgMessage(dump.stderr())) throw fail.DatabaseUnavailable(msg);
      throw fail.BackupFailed(msg, { stderr: ctx.redact(lastLines(dump.stderr(), 20)) });
    }
    if ((err as { code?: string }).code === 'ENOENT') {
      throw fail.BackupFailed(`cannot run ${toolPath(cfg, 'pg_dump')}: not found (set database.clientBin)`);
    }
    throw storageFailure(err, `upload of ${key} failed`, ErrorType.BackupFailed);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

async function pgDumpVersion(ctx: DatabaseContext): Promise<string | undefined> {
  const r = await run(toolPath(ctx.cfg, 'pg_dump'), ['--version'], { timeoutMs: 10_000 }).catch(() => undefined);
  return r?.code === 0 ? r.stdout.trim() : undefined;
}

/** Verifies an uploaded object against what was measured; deletes it (and throws) when it does not match. */
async function verifyObject(
  ctx: DatabaseContext,
  key: string,
  expected: { sha256: string; bytes: number },
  progress: DatabaseProgress,
  signal?: AbortSignal,
): Promise<{ readBack: boolean; etag?: string }> {
  const { objects, cfg } = ctx;
  const h = await objects.head(key);
  const problems = h
    ? headProblems({ contentLength: h.ContentLength, metadata: decodeMetadata(h.Metadata) }, expected)
    : ['the object is missing'];
  if (!problems.length && cfg.backup.verifyReadBack) {
    progress.phase = 'verifying';
    progress.totalBytes = expected.bytes;
    const back = await objects.hash(key, h!.ETag, (n) => (progress.bytes = n), signal);
    if (back.sha256 !== expected.sha256 || back.bytes !== expected.bytes)
      problems.push(
        `read back ${back.bytes} bytes with sha256 ${back.sha256.slice(0, 12)}…, uploaded ${expected.bytes} with ${expected.sha256.slice(0, 12)}…`,
      );
  }
  if (problems.length) {
    await objects.deleteQuietly(key);
    // Retryable: the object is gone and a new attempt makes a new one. A restore's BackupNotVerified is not.
    throw fail.BackupNotVerified(`backup ${key} failed verification: ${problems.join('; ')}`);
  }
  return { readBack: cfg.backup.verifyReadBack, etag: h?.ETag };
}

/**
 * This workflow's earlier backups of `version`: a verified one is reused;
 * unfinished ones (no checksum yet: an attempt died after the upload) are deleted.
 */
async function findOwnBackup(
  ctx: DatabaseContext,
  workflowId: string,
  database: string,
  version: string,
  progress: DatabaseProgress,
  signal?: AbortSignal,
): Promise<BackupResult | undefined> {
  const { objects, cfg } = ctx;
  const listed = await objects.list(backupKeyPrefix(cfg.backup.prefix, database, version));
  const candidates = listed
    .map((o) => parseBackupKey(o.key, cfg.backup.prefix))
    .filter((p): p is NonNullable<typeof p> => !!p && p.database === database && p.version === version)
    .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime())
    .slice(0, 50);
  let found: BackupResult | undefined;
  for (const c of candidates) {
    const h = await objects.head(c.key);
    if (!h) continue;
    const meta = decodeMetadata(h.Metadata);
    if (meta.workflowId !== workflowId) continue;
    const problems = headProblems({ contentLength: h.ContentLength, metadata: meta });
    if (problems.length || found) {
      if (problems.length) await objects.deleteQuietly(c.key);
      continue;
    }
    let readBack = false;
    if (cfg.backup.verifyReadBack) {
      progress.phase = 'verifying';
      progress.key = c.key;
      const back = await objects.hash(c.key, h.ETag, (n) => (progress.bytes = n), signal);
      if (back.sha256 !== meta.sha256 || back.bytes !== meta.bytes) {
        await objects.deleteQuietly(c.key);
        continue;
      }
      readBack = true;
    }
    found = {
      key: c.key,
      bucket: objects.bucket,
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

export function backupActivities(ctx: DatabaseContext) {
  const { cfg, rt, objects } = ctx;
  return {
    /**
     * The runbook's "Create Backup" without the local file: pg_dump streamed
     * through a hash into a multipart upload, then the checksum and size
     * written as metadata and verified. Idempotent per workflow and version.
     */
    async backupDatabase(req: BackupRequest): Promise<BackupResult> {
      const started = Date.now();
      const workflowId = checkedWorkflowId(req.workflowId);
      const version = checkedVersion(req.version);
      const database = cfg.database.name;
      const signal = rt.cancellationSignal();
      const progress: DatabaseProgress = { phase: 'listing', key: previousKey(rt.previousDetails()) };
      const stopTicker = heartbeatTicker(rt, () => ({ ...progress }));
      let key: string | undefined;
      let uploaded = false;
      let verified = false;
      try {
        // An earlier attempt that died mid-upload left parts behind; they are not an object, but they cost storage.
        if (progress.key) await objects.abortUploads(progress.key);
        const reused = await findOwnBackup(ctx, workflowId, database, version, progress, signal);
        if (reused) return { ...reused, durationMs: Date.now() - started };
        if (signal?.aborted) throw cancelled('backup');

        const createdAt = ctx.now();
        key = backupKey({ prefix: cfg.backup.prefix, database, version, at: createdAt });
        Object.assign(progress, { phase: 'dumping', key, bytes: 0 });
        rt.heartbeat({ ...progress });
        const base: BackupMetadata = {
          workflowId,
          database,
          version,
          createdAt: createdAt.toISOString(),
          tool: await pgDumpVersion(ctx),
        };
        const t = ctx.target(database);
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
          dumped = await dumpToBucket(ctx, t, snapshot.id, key, encodeMetadata(base), progress, signal);
          uploaded = true;
          rowCounts = await snapshot.rowCounts();
        } finally {
          await snapshot.close();
        }

        progress.phase = 'finishing';
        const meta: BackupMetadata = { ...base, sha256: dumped.sha256, bytes: dumped.bytes, rowCounts };
        try {
          await objects.replaceMetadata(key, dumped.etag, dumped.bytes, encodeMetadata(meta));
        } catch (err) {
          throw storageFailure(err, `recording the checksum of ${key}`, ErrorType.BackupFailed);
        }
        let readBack: boolean;
        try {
          readBack = (await verifyObject(ctx, key, dumped, progress, signal)).readBack;
        } catch (err) {
          if (signal?.aborted) throw cancelled('backup');
          throw storageFailure(err, `verifying ${key}`, ErrorType.BackupFailed);
        }
        verified = true;
        return {
          key,
          bucket: objects.bucket,
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
        if (key && uploaded && !verified) await objects.deleteQuietly(key);
        if (signal?.aborted && !(err instanceof CancelledFailure)) throw cancelled('backup');
        throw storageFailure(err, `backup of ${database}`, ErrorType.BackupFailed);
      } finally {
        stopTicker();
      }
    },
  };
}
