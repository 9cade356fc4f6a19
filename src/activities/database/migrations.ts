/**
 * The runbook's "Database Migrations" as two activities around the migrator
 * that config.database.migrations names (migrators/): what every migrator
 * shares lives here — the release checkout, the database's advisory lock
 * (one migrator at a time, whatever tool it runs), the heartbeat while
 * waiting and migrating, the error mapping, and the result's `mode` and
 * duration.
 */
import type { Client } from 'pg';
import { ErrorType } from '../../domain/errors';
import { connect, pgFailure } from '../clients/postgres';
import type { DatabaseProgress, MigrationRequest, MigrationStatusResult, MigrationsApplied } from '../contracts';
import { checkedWorkflowId, fail, invalidInput, isFailure } from '../failures';
import { sleep } from '../runtime';
import { cancelled, type DatabaseContext } from './context';
import { createMigrator, type MigrationSession } from './migrators';
import { heartbeatTicker } from './streams';

const LOCK_POLL_MS = 250;
/** Advisory lock key, computed by the server: the same for every runner of this product on a database. */
const MIGRATION_LOCK_SQL = "hashtext('deploy-pipelines/schema_migrations')";

/** Session-level advisory lock, polled so the wait heartbeats, can be cancelled and gives up after migrationLockTimeout. */
async function acquireMigrationLock(ctx: DatabaseContext, client: Client, signal?: AbortSignal): Promise<void> {
  const { database } = ctx.cfg;
  const deadline = Date.now() + database.migrationLockTimeout;
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
      throw fail.MigrationLocked(
        `another migrator${holder ? ` (${holder})` : ''} held the migration lock on ${database.name} for ${database.migrationLockTimeout}ms`,
      );
    }
    await sleep(LOCK_POLL_MS);
  }
}

/** The session a migrator's apply runs in: `locked` connects, waits for the lock and heartbeats until it is released. */
function migrationSession(ctx: DatabaseContext): MigrationSession {
  const { rt } = ctx;
  const signal = rt.cancellationSignal();
  const progress: DatabaseProgress = { phase: 'waiting-for-lock' };
  return {
    progress,
    signal,
    heartbeat: () => rt.heartbeat({ ...progress }),
    async locked(step) {
      const t = ctx.target();
      const stopTicker = heartbeatTicker(rt, () => ({ ...progress }));
      let client: Client | undefined;
      try {
        client = await connect(t, 'migrate');
        await acquireMigrationLock(ctx, client, signal);
        return await step(client);
      } catch (err) {
        if (signal?.aborted && !isFailure(err)) throw cancelled('migrations');
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
}

export function migrationActivities(ctx: DatabaseContext) {
  const { cfg, deps } = ctx;
  const migrator = () =>
    createMigrator(
      cfg.database.migrations,
      { target: () => ctx.target(), env: ctx.env, redact: (text) => ctx.redact(text) },
      deps.migrators,
    );

  async function releaseDir(commit: string): Promise<string> {
    if (typeof commit !== 'string' || !commit) throw invalidInput('commit is required');
    return deps.releaseDir(commit);
  }

  return {
    /** Pending migrations of a release, for dry runs and approval messages. Changed applied files are an error here already. */
    async migrationStatus(req: MigrationRequest): Promise<MigrationStatusResult> {
      const workflowId = checkedWorkflowId(req.workflowId);
      const dir = await releaseDir(req.commit);
      const state = await migrator().status({ workflowId, dir });
      return { mode: cfg.database.migrations.mode, ...state };
    },

    /**
     * Applies the release's pending migrations under an advisory lock, one
     * transaction per file, recording each with its checksum. Safe to retry
     * and to run twice at once: the second runner waits, then finds nothing
     * pending.
     */
    async applyMigrations(req: MigrationRequest): Promise<MigrationsApplied> {
      const started = Date.now();
      const workflowId = checkedWorkflowId(req.workflowId);
      const dir = await releaseDir(req.commit);
      const outcome = await migrator().apply({ workflowId, dir }, migrationSession(ctx));
      const { applied, alreadyApplied, output, changed } = outcome;
      return {
        mode: cfg.database.migrations.mode,
        applied,
        alreadyApplied,
        changed,
        durationMs: Date.now() - started,
        ...(output === undefined ? {} : { output }),
      };
    },
  };
}
