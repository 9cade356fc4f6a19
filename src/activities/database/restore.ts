/**
 * The runbook's "Database Rollback": a backup object, checked against its
 * recorded checksum before the database is touched, then streamed (download
 * -> hash [-> zstd -d for a .dump.zst] -> pg_restore -> psql) into one transaction that first empties the
 * schemas the role owns, so the database ends exactly as backed up or, on
 * any failure, exactly as it was. Row counts are then compared with the
 * backup's: a difference found after COMMIT is part of the result (the data
 * was replaced), never a failure that would say it was not.
 */
import type { HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { pipeline, type Readable } from 'node:stream';
import {
  decodeMetadata,
  headProblems,
  isTransientPgMessage,
  parseBackupKey,
  restoreCodec,
  restorePreludeSql,
  rowCountDifferences,
  toolErrorSummary,
  ZSTD_DECOMPRESS_ARGS,
} from '../../domain/backup';
import { ErrorType } from '../../domain/errors';
import type { PgTarget } from '../clients/postgres';
import { childEnv, lastLines, startTool } from '../clients/process';
import { storageFailure } from '../clients/s3';
import type { DatabaseProgress, RestoreRequest, RestoreResult } from '../contracts';
import { checkedWorkflowId, fail, invalidInput } from '../failures';
import { activityLogger } from '../runtime';
import { cancelled, toolPath, ZSTD, type DatabaseContext } from './context';
import { countRows } from './row-counts';
import { heartbeatTicker, InsertAfterBegin, Meter } from './streams';

/** download -> hash (the last chunk held until it matches) [-> zstd -d] -> pg_restore -> psql, in one transaction. */
async function restoreStream(
  ctx: DatabaseContext,
  t: PgTarget,
  key: string,
  etag: string | undefined,
  expected: { sha256: string; bytes: number },
  zstd: boolean,
  progress: DatabaseProgress,
  signal?: AbortSignal,
): Promise<void> {
  const { cfg } = ctx;
  let body: Readable;
  try {
    // IfMatch: the bytes restored are the bytes just checked.
    body = await ctx.objects.read(key, etag, signal);
  } catch (err) {
    if (signal?.aborted) throw cancelled('restore');
    throw storageFailure(err, `reading ${key}`, ErrorType.RestoreFailed);
  }
  const meter = new Meter({
    holdLast: true,
    onBytes: (n) => (progress.bytes = n),
    beforeEnd: (mt) =>
      mt.digest() === expected.sha256 && mt.bytes === expected.bytes
        ? Promise.resolve()
        : Promise.reject(new Error(`${key} changed while it was restored`)),
  });
  // pg_restore only converts the archive into SQL (BEGIN ... COMMIT with --single-transaction);
  // psql runs it, with the prelude inserted after BEGIN. COMMIT comes last, so any failure
  // upstream (download, checksum, pg_restore) leaves psql with an open transaction that the
  // server rolls back; psql is also killed before its input is closed.
  // A .dump.zst object goes through `zstd -d`, whose stdout is handed to pg_restore as its stdin
  // (a pipe between the two programs): nothing is written to local disk.
  const unzstd = zstd
    ? startTool(ZSTD, ZSTD_DECOMPRESS_ARGS, childEnv(ctx.env), { stdin: 'pipe', stdout: 'pipe' })
    : undefined;
  const restore = startTool(toolPath(cfg, 'pg_restore'), ['--single-transaction', '--file=-'], t.toolEnv, {
    stdin: unzstd ? unzstd.child.stdout! : 'pipe',
    stdout: 'pipe',
  });
  const psql = startTool(
    toolPath(cfg, 'psql'),
    ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '--no-password', `--dbname=${t.conninfo}`],
    t.toolEnv,
    { stdin: 'pipe', stdout: 'ignore' },
  );
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
    unzstd?.kill('SIGKILL');
    body.destroy();
  };
  const onAbort = () => stopAll(cancelled('restore'), true);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const inbound = new Promise<void>((resolve) =>
      pipeline(body, meter, (unzstd ?? restore).child.stdin!, (err) => {
        if (err && (err as { code?: string }).code !== 'EPIPE') stopAll(err, true);
        resolve();
      }),
    );
    const outbound = new Promise<void>((resolve) =>
      pipeline(
        restore.child.stdout!,
        new InsertAfterBegin(restorePreludeSql(cfg.database.lockTimeout)),
        psql.child.stdin!,
        (err) => {
          if (err && (err as { code?: string }).code !== 'EPIPE') stopAll(err, false);
          resolve();
        },
      ),
    );
    // zstd that failed by itself (a frame it cannot read; not killed by us, not a broken pipe after
    // pg_restore or psql died) is the cause of whatever pg_restore and psql then say. Its exit code
    // decides: by the time its exit is seen, stopAll may already have signalled the finished process.
    let unzstdFailure: Error | undefined;
    const unzstdExit = unzstd?.exit.then((r) => {
      // zstd -q prints only its errors: what it said counts even when our SIGKILL reached it while it was exiting.
      const said = unzstd.stderr().trim();
      const ownError = r.code !== 0 && !!said && !/broken pipe|write error/i.test(said);
      const ownSignal = r.signal !== null && r.signal !== 'SIGPIPE' && !unzstd.child.killed;
      if (ownError || ownSignal) {
        const how = ownError ? `failed: ${toolErrorSummary(said)}` : `was killed by ${r.signal}`;
        unzstdFailure = new Error(ctx.redact(`zstd -d ${how}`));
        stopAll(unzstdFailure, false);
      }
      return r;
    });
    const restoreExit = restore.exit.then((r) => {
      if (r.code !== 0 && !firstError)
        stopAll(new Error(ctx.redact(`pg_restore failed: ${toolErrorSummary(restore.stderr())}`)), false);
      return r;
    });
    const [psqlExit] = await Promise.all([psql.exit, restoreExit, inbound, outbound, unzstdExit]);
    if (signal?.aborted) throw cancelled('restore');
    // A download that failed first truncated zstd's input: then zstd's complaint is the consequence.
    if (unzstdFailure && !upstreamError)
      throw fail.RestoreFailed(
        `restore of ${key} into ${t.database} failed and was rolled back: ${unzstdFailure.message}`,
        { stderr: ctx.redact(lastLines(unzstd!.stderr(), 20)) },
      );
    // psql that ended by itself (we only ever SIGKILL it) is the cause: whatever broke upstream
    // afterwards (pg_restore's pipe, the download stream) is its consequence.
    if (psqlExit.code !== 0 && psqlExit.signal !== 'SIGKILL') {
      const msg = ctx.redact(
        `restore of ${key} into ${t.database} failed and was rolled back: ${toolErrorSummary(psql.stderr())}`,
      );
      if (isTransientPgMessage(psql.stderr())) throw fail.DatabaseUnavailable(msg);
      throw fail.RestoreFailed(msg, { stderr: ctx.redact(lastLines(psql.stderr(), 20)) });
    }
    if (upstreamError) throw storageFailure(upstreamError, `reading ${key}`, ErrorType.RestoreFailed);
    if (firstError)
      throw fail.RestoreFailed(
        `restore of ${key} into ${t.database} failed and was rolled back: ${firstError.message}`,
      );
  } catch (err) {
    stopAll(err as Error, false);
    if ((err as { code?: string }).code === 'ENOENT')
      throw fail.RestoreFailed(
        (err as { path?: string }).path === ZSTD
          ? `cannot run ${ZSTD}: not found (install zstd to restore ${key})`
          : 'cannot run pg_restore or psql: not found (set database.clientBin)',
      );
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

export function restoreActivities(ctx: DatabaseContext) {
  const { cfg, rt, objects } = ctx;
  return {
    /**
     * The runbook's "Database Rollback", refused unless `confirmKey` repeats
     * `key` (the workflow passes it only after a person approved). The
     * object's checksum is verified before anything is touched; the restore
     * then runs in one transaction that first empties the schemas the role
     * owns, so the database ends exactly as backed up or, on any failure,
     * exactly as it was. Row counts are then compared with the backup's;
     * differences come back with `verified: false`, since by then the
     * database has been replaced and a failure would say it had not.
     */
    async restoreDatabase(req: RestoreRequest): Promise<RestoreResult> {
      const started = Date.now();
      checkedWorkflowId(req.workflowId);
      if (typeof req.key !== 'string' || !req.key || req.confirmKey !== req.key) {
        throw fail.RestoreNotConfirmed(
          `restore of ${JSON.stringify(req.key)} refused: confirmKey must repeat the backup key after approval`,
        );
      }
      const key = req.key;
      const parsed = parseBackupKey(key, cfg.backup.prefix);
      if (!parsed) {
        throw invalidInput(
          `${key} is not a backup key under ${cfg.backup.prefix} (<database>_<version>_<timestamp>.dump or .dump.zst)`,
        );
      }
      // Another database's dump never replaces this one (a drill into a scratch copy names its target itself).
      if (parsed.database !== cfg.database.name) {
        throw invalidInput(
          `${key} is a backup of ${parsed.database}, not of ${cfg.database.name}: restore it with the configuration of ${parsed.database}`,
        );
      }
      if (req.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(req.sha256)) {
        throw invalidInput('sha256 must be 64 lowercase hex digits');
      }
      const database = req.database ?? cfg.database.name;
      const t = ctx.target(database);
      const signal = rt.cancellationSignal();
      const progress: DatabaseProgress = { phase: 'checking', key, bytes: 0 };
      const stopTicker = heartbeatTicker(rt, () => ({ ...progress }));
      try {
        let h: HeadObjectCommandOutput | undefined;
        try {
          h = await objects.head(key);
        } catch (err) {
          throw storageFailure(err, `reading ${key}`, ErrorType.RestoreFailed);
        }
        if (!h) throw fail.RestoreFailed(`no backup ${key} in s3://${objects.bucket}`);
        const meta = decodeMetadata(h.Metadata);
        const codec = restoreCodec(parsed, meta);
        const problems = [
          ...headProblems({ contentLength: h.ContentLength, metadata: meta }),
          ...('problem' in codec ? [codec.problem] : []),
        ];
        if (problems.length)
          throw fail.BackupNotVerified(`${key} is not a verified backup: ${problems.join('; ')}`, undefined, false);
        const expected = { sha256: meta.sha256!, bytes: meta.bytes! };
        // The object's metadata could have been rewritten with the object; the deployment's record could not.
        if (req.sha256 && req.sha256 !== expected.sha256) {
          throw fail.BackupNotVerified(
            `${key} is not the backup the deployment recorded: its sha256 is ${expected.sha256.slice(0, 12)}…, the deployment recorded ${req.sha256.slice(0, 12)}…; nothing was restored`,
            undefined,
            false,
          );
        }
        progress.totalBytes = expected.bytes;

        // 1. The checksum, before the database is touched.
        let check: { sha256: string; bytes: number };
        try {
          check = await objects.hash(key, h.ETag, (n) => (progress.bytes = n), signal);
        } catch (err) {
          if (signal?.aborted) throw cancelled('restore');
          throw storageFailure(err, `reading ${key}`, ErrorType.RestoreFailed);
        }
        if (check.sha256 !== expected.sha256 || check.bytes !== expected.bytes) {
          throw fail.BackupNotVerified(
            `${key} is corrupt: ${check.bytes} bytes with sha256 ${check.sha256.slice(0, 12)}…, recorded ${expected.bytes} with ${expected.sha256.slice(0, 12)}…`,
            undefined,
            false,
          );
        }
        if (signal?.aborted) throw cancelled('restore');

        // 2. download -> hash (last chunk held until it matches again) [-> zstd -d] -> pg_restore -> psql, one transaction.
        Object.assign(progress, { phase: 'restoring', bytes: 0 });
        rt.heartbeat({ ...progress });
        await restoreStream(ctx, t, key, h.ETag, expected, 'zstd' in codec && codec.zstd, progress, signal);

        // 3. The runbook's verification queries, compared with the counts recorded in the backup.
        progress.phase = 'verifying';
        rt.heartbeat({ ...progress });
        const tables = [...new Set([...cfg.database.verifyTables, ...Object.keys(meta.rowCounts ?? {})])];
        const counts = await countRows(t, tables);
        const missing = cfg.database.verifyTables
          .filter((tb) => counts[tb] === null && !(meta.rowCounts && tb in meta.rowCounts))
          .map((tb) => `${tb}: missing`);
        const differences = [...rowCountDifferences(meta.rowCounts, counts), ...missing];
        const present = Object.fromEntries(Object.entries(counts).filter((e): e is [string, number] => e[1] !== null));
        if (differences.length)
          activityLogger().warn('restored, but row counts differ from the backup', { key, database, differences });
        return {
          key,
          database,
          bytes: expected.bytes,
          sha256: expected.sha256,
          tables: present,
          expectedTables: meta.rowCounts,
          verified: differences.length === 0,
          differences,
          durationMs: Date.now() - started,
        };
      } finally {
        stopTicker();
      }
    },
  };
}
