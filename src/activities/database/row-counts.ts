/**
 * The runbook's verification queries (`SELECT COUNT(*) FROM users`): rows
 * per table in the snapshot a backup dumps, recorded with it, and again
 * after a restore, compared with what was recorded.
 */
import { escapeIdentifier, type Client } from 'pg';
import { ErrorType } from '../../domain/errors';
import { connect, pgFailure, type PgTarget } from '../clients/postgres';

/** Rows of `table`, or null when there is no such table. */
async function rowsOf(client: Client, table: string): Promise<number | null> {
  const present = (
    await client.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [escapeIdentifier(table)])
  ).rows[0].ok;
  return present
    ? Number((await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${escapeIdentifier(table)}`)).rows[0].n)
    : null;
}

/** An exported snapshot that pg_dump reads (--snapshot), and the row counts in it. */
export interface Snapshot {
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
export async function openSnapshot(t: PgTarget, tables: readonly string[]): Promise<Snapshot> {
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
          const n = await rowsOf(client, table);
          if (n !== null) counts[table] = n;
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

/** Rows per table after a restore (null: the table is missing); a query that fails is RestoreFailed. */
export async function countRows(t: PgTarget, tables: readonly string[]): Promise<Record<string, number | null>> {
  let client: Client | undefined;
  try {
    client = await connect(t, 'restore-verify');
    const out: Record<string, number | null> = {};
    for (const table of tables) out[table] = await rowsOf(client, table);
    return out;
  } catch (err) {
    throw pgFailure(err, `verifying ${t.database} after the restore`, ErrorType.RestoreFailed);
  } finally {
    await client?.end().catch(() => undefined);
  }
}
