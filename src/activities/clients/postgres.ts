/**
 * PostgreSQL: the connection target of one database (the URL from the
 * environment with the database name replaced, the password kept out of argv),
 * node-pg connections, and the error mapping: transient server states and
 * dropped connections are DatabaseUnavailable (retried), anything else is the
 * caller's permanent type with the server's message and SQLSTATE.
 */
import { Client } from 'pg';
import { isDatabaseName, isTransientPgCode } from '../../domain/backup';
import { ErrorType, type ErrorTypeName } from '../../domain/errors';
import { configInvalid, failure, invalidInput, isFailure, oneLine } from '../failures';
import { childEnv } from './process';

export interface PgTarget {
  database: string;
  /** Connection URL without the password (safe for argv and messages). */
  conninfo: string;
  password?: string;
  /** The URL with the password (from the URL or PGPASSWORD): for node-pg and the migration command's DATABASE_URL, never argv. */
  fullUrl: string;
  /** Environment of the command-line tools: the password in PGPASSWORD, never in argv. */
  toolEnv: NodeJS.ProcessEnv;
}

export function pgTarget(databaseUrl: string, database: string, env: NodeJS.ProcessEnv): PgTarget {
  if (!isDatabaseName(database)) throw invalidInput(`invalid database name ${JSON.stringify(database)}`);
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw configInvalid('the database URL is not a postgres:// URL');
  }
  const password = url.password ? decodeURIComponent(url.password) : env.PGPASSWORD;
  url.pathname = `/${database}`;
  if (password !== undefined) url.password = encodeURIComponent(password);
  const fullUrl = url.toString();
  url.password = '';
  // libpq reads its settings from PG* variables; nothing else of the worker's environment is theirs.
  const pgVars = Object.keys(env).filter((k) => k.startsWith('PG'));
  const toolEnv = childEnv(env, pgVars, { PGCONNECT_TIMEOUT: env.PGCONNECT_TIMEOUT ?? '10' });
  if (password !== undefined) toolEnv.PGPASSWORD = password;
  return { database, conninfo: url.toString(), password, fullUrl, toolEnv };
}

export async function connect(t: PgTarget, purpose: string): Promise<Client> {
  // node-pg takes the URL with the password (fields parsed from a connection string override a separate `password`).
  const client = new Client({
    connectionString: t.fullUrl,
    application_name: `deploy-pipelines ${purpose}`,
    connectionTimeoutMillis: 10_000,
  });
  // A connection that dies while idle must not crash the worker; the next query reports it.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    await client.end().catch(() => undefined);
    throw err;
  }
  return client;
}

/** A pg (node) error as a failure: transient ones retryable, others `permanent` with the server's message. */
export function pgFailure(err: unknown, what: string, permanent: ErrorTypeName): Error {
  if (isFailure(err)) return err;
  const e = err as { code?: string; message?: string };
  const message = `${what}: ${oneLine(e.message ?? String(err))}`;
  if (
    isTransientPgCode(e.code) ||
    /Connection terminated|timeout exceeded when trying to connect/i.test(e.message ?? '')
  ) {
    return failure(ErrorType.DatabaseUnavailable, message);
  }
  return failure(permanent, message, { sqlstate: e.code });
}

/** Active connections to the database, not counting this one (runbook: pg_stat_activity). */
export async function countDatabaseConnections(url: string, database: string, timeoutMs: number): Promise<number> {
  const client = new Client({
    connectionString: url,
    connectionTimeoutMillis: timeoutMs,
    query_timeout: timeoutMs,
    statement_timeout: timeoutMs,
    application_name: 'deploy-pipelines-verify',
  });
  // An error event after connect (server gone) must not crash the worker.
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [database],
    );
    return r.rows[0].n;
  } finally {
    await client.end().catch(() => undefined);
  }
}
