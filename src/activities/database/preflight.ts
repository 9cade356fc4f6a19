/**
 * The database part of the runbook's "Verify Current State": connectivity,
 * connections per database, and the newest backup with its age.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Client } from 'pg';
import { backupAgeProblem, latestBackup, newestOtherBackup } from '../../domain/backup';
import { ErrorType } from '../../domain/errors';
import { connect, pgFailure } from '../clients/postgres';
import { storageFailure } from '../clients/s3';
import type { DatabasePreflightRequest, DatabasePreflightResult } from '../contracts';
import { checkedWorkflowId, fail } from '../failures';
import type { DatabaseContext } from './context';

export function preflightActivities(ctx: DatabaseContext) {
  const { cfg, objects } = ctx;
  const bucket = objects.bucket;
  return {
    /**
     * The database part of the runbook's "Verify Current State":
     * connectivity (`SELECT version()`), connections per database, and the
     * newest backup with its age. Returns the problems for the caller to
     * combine with the other pre-flight checks, or throws PreflightFailed
     * when asked to. A database or store that is down right now is retried.
     */
    async databasePreflight(req: DatabasePreflightRequest): Promise<DatabasePreflightResult> {
      checkedWorkflowId(req.workflowId);
      const database = cfg.database.name;
      const result: DatabasePreflightResult = { database, version: '', connections: {}, problems: [] };
      const t = ctx.target();
      let client: Client | undefined;
      try {
        client = await connect(t, 'preflight');
        result.version = (await client.query<{ version: string }>('SELECT version()')).rows[0].version;
        const conns = await client.query<{ datname: string; n: number }>(
          'SELECT datname, count(*)::int AS n FROM pg_stat_activity WHERE datname IS NOT NULL GROUP BY datname ORDER BY datname',
        );
        for (const r of conns.rows) result.connections[r.datname] = r.n;
        result.maxConnections = Number(
          (await client.query<{ max_connections: string }>('SHOW max_connections')).rows[0].max_connections,
        );
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
        const listed = await objects.list(`${cfg.backup.prefix}${database}`);
        const latest = latestBackup(listed, cfg.backup.prefix, database);
        const other = newestOtherBackup(listed, cfg.backup.prefix, database);
        const at = ctx.now();
        if (other) {
          result.latestOtherBackup = {
            key: other.key,
            createdAt: other.createdAt.toISOString(),
            ageMs: at.getTime() - other.createdAt.getTime(),
            ...(other.size === undefined ? {} : { bytes: other.size }),
          };
        }
        if (latest) {
          result.latestBackup = {
            key: latest.key,
            version: latest.version,
            createdAt: latest.createdAt.toISOString(),
            ageMs: at.getTime() - latest.createdAt.getTime(),
            bytes: latest.size,
          };
        }
        // The schedule runs if any backup of the database is fresh, whichever tool made it.
        const newest =
          other && (!latest || other.createdAt > latest.createdAt)
            ? { key: other.key, version: '', createdAt: other.createdAt }
            : latest;
        const problem = backupAgeProblem(newest, at, cfg.backup.maxAge, where);
        if (problem) result.problems.push(`backup: ${problem}`);
      } catch (err) {
        const f = storageFailure(err, `listing s3://${bucket}/${cfg.backup.prefix}`, ErrorType.PreflightFailed);
        if (f instanceof ApplicationFailure && !f.nonRetryable) throw f;
        result.problems.push(`backup: ${f.message}`);
      }
      if (req.failOnProblems && result.problems.length) {
        throw fail.PreflightFailed(`pre-flight failed: ${result.problems.join('; ')}`, result);
      }
      return result;
    },
  };
}
