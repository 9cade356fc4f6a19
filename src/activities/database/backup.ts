/**
 * The runbook's "Create Backup" without the local file: pg_dump's custom
 * format (`-Fc`) streamed through a hash straight into an S3 multipart
 * upload. Compression is config backup.codec: by default `pg_dump -Fc -Z0`
 * piped through `zstd -T0 -<level>` into the upload (`.dump.zst`). pg_dump's
 * own zlib (`gzip`, `-Z<level>`, the format before zstd) runs on pg_dump's
 * one thread and made a backup about 3x a bare `pg_dump > /dev/null` on 2
 * cores; zstd runs beside pg_dump on every core, compresses faster and
 * smaller than zlib -1 on this data (docs/benchmarks.md). The worker only
 * hashes and forwards the compressed bytes. The custom format is also what
 * pg_restore reads from a pipe in one transaction, and it records the server
 * and tool versions in its header.
 *
 * Idempotent per workflow and version: a retried attempt finds its previous
 * attempt's verified object and reuses it (whatever its codec), or cleans up
 * what it left.
 */
import { CancelledFailure } from '@temporalio/common';
import { pipeline } from 'node:stream';
import {
  backupContentType,
  backupKey,
  backupKeyPrefix,
  dumpCompression,
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
import { childEnv, lastLines, run, startTool } from '../clients/process';
import { storageFailure } from '../clients/s3';
import type { BackupRequest, BackupResult, DatabaseProgress } from '../contracts';
import { checkedVersion, checkedWorkflowId, fail } from '../failures';
import { cancelled, toolPath, ZSTD, type DatabaseContext } from './context';
import { openSnapshot, type Snapshot } from './row-counts';
import { heartbeatTicker, Meter, previousKey, settleWithin } from './streams';

class DumpFailed extends Error {}

type Exit = { code: number | null; signal: NodeJS.Signals | null };
const failed = (e: Exit | undefined): e is Exit => !!e && e.code !== 0;
const exitText = (e: Exit) => (e.signal ? `was killed by ${e.signal}` : `exited with ${e.code}`);

/**
 * pg_dump [-> zstd] -> sha256/bytes -> multipart upload; no local file, bounded memory.
 * With zstd, pg_dump's stdout is handed to zstd as its stdin (a pipe between
 * the two programs, as `pg_dump | zstd` in a shell): the worker only sees
 * the compressed bytes.
 */
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
  const { pgDumpLevel, zstdArgs } = dumpCompression(cfg.backup.codec, cfg.backup.compressionLevel);
  const args = [
    '--format=custom',
    `--compress=${pgDumpLevel}`,
    '--no-password',
    `--lock-wait-timeout=${cfg.database.lockTimeout}`,
    `--snapshot=${snapshotId}`,
    `--dbname=${t.conninfo}`,
  ];
  const dump = startTool(toolPath(cfg, 'pg_dump'), args, t.toolEnv, { stdin: 'ignore', stdout: 'pipe' });
  // zstd reads ZSTD_CLEVEL and ZSTD_NBTHREADS: it gets the base environment only, its settings are in argv.
  const zstd = zstdArgs
    ? startTool(ZSTD, zstdArgs, childEnv(ctx.env), { stdin: dump.child.stdout!, stdout: 'pipe' })
    : undefined;
  const tools = zstd ? [dump, zstd] : [dump];
  const killAll = () => tools.forEach((tool) => tool.kill());
  let killedByUs = false;
  // The stream ends only once every program has exited with 0, so the upload can never complete a truncated dump.
  const meter = new Meter({
    onBytes: (n) => (progress.bytes = n),
    beforeEnd: async () => {
      const [d, z] = await Promise.all([dump.exit, zstd?.exit]);
      if (failed(d)) throw new DumpFailed(`pg_dump ${exitText(d)}`);
      if (failed(z)) throw new DumpFailed(`zstd ${exitText(z)}`);
    },
  });
  pipeline((zstd ?? dump).child.stdout!, meter, () => undefined); // errors reach the upload through `meter`
  const upload = ctx.objects.upload(key, meter, metadata, {
    partSize: cfg.backup.partSizeMiB * 1024 * 1024,
    queueSize: cfg.backup.queueSize,
    contentType: backupContentType(cfg.backup.codec),
  });
  // Cancelled: the upload's input fails, so the upload ends once its parts in flight have returned
  // and it has aborted itself (upload.abort() would return at once, while a part still being
  // written could bring the multipart upload back after it was aborted). An upload that had
  // already read its whole input completes, and its object is deleted below.
  const onAbort = () => {
    killedByUs = true;
    killAll();
    meter.destroy(cancelled('backup'));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    if (signal?.aborted) onAbort();
    const out = await upload.done();
    if (signal?.aborted) throw cancelled('backup');
    return { bytes: meter.bytes, sha256: meter.digest(), etag: out.ETag };
  } catch (err) {
    const stillRunning = tools.some((tool) => tool.child.exitCode === null && tool.child.signalCode === null);
    if (stillRunning) {
      killedByUs = true;
      killAll();
    }
    meter.destroy();
    const [dumpExit, zstdExit] = await Promise.all([
      settleWithin(dump.exit, 5000),
      zstd ? settleWithin(zstd.exit, 5000) : undefined,
    ]);
    await ctx.objects.abortUploads(key);
    if (signal?.aborted) {
      await ctx.objects.deleteQuietly(key);
      throw cancelled('backup');
    }
    if ((err as { code?: string }).code === 'ENOENT') {
      const missing = (err as { path?: string }).path === ZSTD;
      throw fail.BackupFailed(
        missing
          ? `cannot run ${ZSTD}: not found (install zstd, or set backup.codec: gzip)`
          : `cannot run ${toolPath(cfg, 'pg_dump')}: not found (set database.clientBin)`,
      );
    }
    if (!killedByUs) {
      // A zstd that died leaves pg_dump writing into a broken pipe: then zstd is the cause, not pg_dump.
      const dumpBrokePipe = dumpExit?.signal === 'SIGPIPE' || /could not write|broken pipe/i.test(dump.stderr());
      if (failed(dumpExit) && !(failed(zstdExit) && dumpBrokePipe)) {
        const msg = ctx.redact(`pg_dump of ${t.database} failed: ${toolErrorSummary(dump.stderr())}`);
        if (isTransientPgMessage(dump.stderr())) throw fail.DatabaseUnavailable(msg);
        throw fail.BackupFailed(msg, { stderr: ctx.redact(lastLines(dump.stderr(), 20)) });
      }
      if (zstd && failed(zstdExit)) {
        const said = zstd.stderr().trim() ? `: ${toolErrorSummary(zstd.stderr())}` : '';
        throw fail.BackupFailed(ctx.redact(`zstd compressing the dump of ${t.database} ${exitText(zstdExit)}${said}`), {
          stderr: ctx.redact(lastLines(zstd.stderr(), 20)),
        });
      }
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
        // Side by side: the listing that finds an earlier attempt's backup, and the tool's version for a new one.
        const [reused, tool] = await Promise.all([
          findOwnBackup(ctx, workflowId, database, version, progress, signal),
          pgDumpVersion(ctx),
        ]);
        if (reused) return { ...reused, durationMs: Date.now() - started };
        if (signal?.aborted) throw cancelled('backup');

        const createdAt = ctx.now();
        key = backupKey({ prefix: cfg.backup.prefix, database, version, at: createdAt, codec: cfg.backup.codec });
        Object.assign(progress, { phase: 'dumping', key, bytes: 0 });
        rt.heartbeat({ ...progress });
        const base: BackupMetadata = {
          workflowId,
          database,
          version,
          createdAt: createdAt.toISOString(),
          tool,
          codec: cfg.backup.codec,
          ...(cfg.backup.codec === 'none' ? {} : { level: cfg.backup.compressionLevel }),
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
          await objects.replaceMetadata(
            key,
            dumped.etag,
            dumped.bytes,
            encodeMetadata(meta),
            backupContentType(cfg.backup.codec),
          );
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
