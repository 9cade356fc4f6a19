/**
 * The built-in migrator (mode `builtin`): the release's SQL files, applied in
 * order, one transaction per file, each recorded with its checksum in
 * schema_migrations. An applied file that changed since is refused, so what
 * ran in production is what the release says ran. The rules (order, plan,
 * error positions) are pure, in domain/migrations.ts; this is their I/O.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { Client } from 'pg';
import { isTransientPgCode } from '../../../domain/backup';
import { ErrorType } from '../../../domain/errors';
import {
  CREATE_MIGRATIONS_TABLE_SQL,
  describeChanged,
  describeSqlError,
  MIGRATIONS_TABLE,
  MigrationFolderError,
  orderMigrationFiles,
  planMigrations,
  runsInTransaction,
  transactionControl,
  sqlPosition,
  type AppliedMigrationRow,
  type ChangedMigration,
  type MigrationFileInfo,
} from '../../../domain/migrations';
import { connect, pgFailure } from '../../clients/postgres';
import type { AppliedMigration } from '../../contracts';
import { fail } from '../../failures';
import { cancelled } from '../context';
import type {
  MigrationOutcome,
  MigrationRelease,
  MigrationSession,
  MigrationState,
  Migrator,
  MigratorDeps,
  MigrationsConfig,
} from './migrator';

interface LoadedMigration extends MigrationFileInfo {
  sql: string;
}

async function readMigrations(dir: string): Promise<LoadedMigration[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    throw fail.MigrationFailed(`cannot read the migrations folder ${dir}: ${(err as Error).message}`);
  }
  let ordered: string[];
  try {
    ordered = orderMigrationFiles(entries);
  } catch (err) {
    if (err instanceof MigrationFolderError) throw fail.MigrationFailed(err.message);
    throw err;
  }
  return Promise.all(
    ordered.map(async (filename) => {
      const bytes = await readFile(path.join(dir, filename));
      return { filename, checksum: createHash('sha256').update(bytes).digest('hex'), sql: bytes.toString('utf8') };
    }),
  );
}

/** The recorded migrations, oldest first; none when the table does not exist yet (status creates nothing). */
async function appliedRows(client: Client, tableExists: boolean): Promise<AppliedMigrationRow[]> {
  if (!tableExists) {
    const present = (
      await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [MIGRATIONS_TABLE])
    ).rows[0].ok;
    if (!present) return [];
  }
  const r = await client.query<{
    filename: string;
    checksum: string;
    applied_at: Date;
    duration_ms: number;
    applied_by: string;
  }>(
    `SELECT filename, checksum, applied_at, duration_ms, applied_by FROM ${MIGRATIONS_TABLE} ORDER BY applied_at, filename`,
  );
  return r.rows.map((x) => ({
    filename: x.filename,
    checksum: x.checksum,
    appliedAt: x.applied_at.toISOString(),
    durationMs: x.duration_ms,
    appliedBy: x.applied_by,
  }));
}

function changedFailure(changed: readonly ChangedMigration[]) {
  return fail.MigrationChanged(`applied migration changed since it was applied: ${describeChanged(changed)}`, {
    changed,
  });
}

/** Asks the server to cancel the running statement from a second connection. */
async function cancelBackend(deps: MigratorDeps, pid: number): Promise<void> {
  let c: Client | undefined;
  try {
    c = await connect(deps.target(), 'migrate-cancel');
    await c.query('SELECT pg_cancel_backend($1)', [pid]);
  } catch {
    // The statement runs to its end; the activity is cancelled after it.
  } finally {
    await c?.end().catch(() => undefined);
  }
}

/**
 * A file that runs in the product's transaction must not end it: its COMMIT
 * would make the statements before it permanent, and a later failure could no
 * longer be rolled back. Checked for every pending file before the first runs,
 * so the release applies whole or not at all.
 */
function refuseTransactionControl(pending: LoadedMigration[]): void {
  for (const file of pending) {
    if (!runsInTransaction(file.sql)) continue;
    const [found] = transactionControl(file.sql);
    if (found) {
      throw fail.MigrationFailed(
        `migration ${file.filename}:${found.line} has ${found.statement}, which would commit part of the file inside the transaction it runs in: remove it, or split the file, or mark it -- deploy:no-transaction (nothing was applied)`,
        { file: file.filename, line: found.line, statement: found.statement },
      );
    }
  }
}

async function applyOne(
  deps: MigratorDeps,
  client: Client,
  file: LoadedMigration,
  workflowId: string,
  signal?: AbortSignal,
): Promise<AppliedMigration> {
  const inTx = runsInTransaction(file.sql);
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
  // Cancelling the activity cancels the running statement (the transaction then rolls back).
  const onAbort = () => void cancelBackend(deps, pid);
  signal?.addEventListener('abort', onAbort, { once: true });
  const t0 = Date.now();
  try {
    if (inTx) await client.query('BEGIN');
    try {
      await client.query(file.sql);
      const durationMs = Date.now() - t0;
      await client.query(
        `INSERT INTO ${MIGRATIONS_TABLE} (filename, checksum, duration_ms, applied_by) VALUES ($1, $2, $3, $4)`,
        [file.filename, file.checksum, durationMs, workflowId],
      );
      if (inTx) await client.query('COMMIT');
      return { file: file.filename, checksum: file.checksum, durationMs };
    } catch (err) {
      if (inTx) await client.query('ROLLBACK').catch(() => undefined);
      if (signal?.aborted) throw cancelled('migrations');
      const e = err as { message: string; position?: string; code?: string };
      if (isTransientPgCode(e.code) && inTx)
        throw fail.DatabaseUnavailable(`${file.filename}: ${e.message} (rolled back; retried)`);
      const at = sqlPosition(file.sql, e.position);
      const state = inTx ? 'rolled back' : 'ran outside a transaction, check the database before retrying';
      throw fail.MigrationFailed(`migration ${describeSqlError(file.filename, file.sql, e)} (${state})`, {
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

export class BuiltinMigrator implements Migrator {
  constructor(
    private readonly config: Extract<MigrationsConfig, { mode: 'builtin' }>,
    private readonly deps: MigratorDeps,
  ) {}

  /** Changed applied files are an error here already, so a dry run shows them before the deployment starts. */
  async status(release: MigrationRelease): Promise<MigrationState> {
    const files = await readMigrations(path.resolve(release.dir, this.config.directory));
    const t = this.deps.target();
    let client: Client | undefined;
    try {
      client = await connect(t, 'migration-status');
      const applied = await appliedRows(client, false);
      const plan = planMigrations(files, applied);
      if (plan.changed.length) throw changedFailure(plan.changed);
      return {
        applied: applied.map((a) => a.filename),
        pending: plan.pending,
        known: true,
        missing: plan.missing,
        outOfOrder: plan.outOfOrder,
      };
    } catch (err) {
      throw pgFailure(err, `migration status of ${t.database}`, ErrorType.MigrationFailed);
    } finally {
      await client?.end().catch(() => undefined);
    }
  }

  /** The files are read before the lock; the plan is made under it, so a second runner finds nothing pending. */
  async apply(release: MigrationRelease, session: MigrationSession): Promise<MigrationOutcome> {
    const files = await readMigrations(path.resolve(release.dir, this.config.directory));
    const { progress, signal } = session;
    return session.locked(async (client) => {
      await client.query(CREATE_MIGRATIONS_TABLE_SQL);
      const rows = await appliedRows(client, true);
      const plan = planMigrations(files, rows);
      if (plan.changed.length) throw changedFailure(plan.changed);
      const byName = new Map(files.map((f) => [f.filename, f]));
      refuseTransactionControl(plan.pending.map((f) => byName.get(f)!));
      const applied: AppliedMigration[] = [];
      for (const [i, filename] of plan.pending.entries()) {
        if (signal?.aborted) throw cancelled('migrations');
        Object.assign(progress, { phase: 'migrating', file: filename, done: i, total: plan.pending.length });
        session.heartbeat();
        applied.push(await applyOne(this.deps, client, byName.get(filename)!, release.workflowId, signal));
      }
      return { applied, alreadyApplied: files.length - plan.pending.length, changed: applied.length > 0 };
    });
  }
}
