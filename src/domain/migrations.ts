/**
 * The built-in migrator's rules, without a database: which files are
 * migrations and in which order, which are pending, which applied files
 * changed since, and where in a file an error is. The adapter
 * (activities/database/migrators/builtin.ts) reads the folder and the table and applies the plan.
 */

/** The table the sandbox and the migrator share (scripts/sandbox/postgres.ts). */
export const MIGRATIONS_TABLE = 'schema_migrations';

export const CREATE_MIGRATIONS_TABLE_SQL = `CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (filename text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer NOT NULL DEFAULT 0, applied_by text NOT NULL DEFAULT '')`;

/** `0002_add_index.sql`: a number that orders the files, then a name. */
const FILE_RE = /^(\d{1,18})[_-][A-Za-z0-9_.-]*\.sql$/;

/**
 * A first-lines comment that runs the file outside a transaction, for
 * statements PostgreSQL refuses inside one (CREATE INDEX CONCURRENTLY). Such
 * a file cannot be rolled back when it fails.
 */
const NO_TRANSACTION_RE = /^\s*--\s*deploy:no-transaction\s*$/m;

export class MigrationFolderError extends Error {
  override name = 'MigrationFolderError';
}

/**
 * The migration files among a folder's entries, in the order they run: by
 * number (so 10_x follows 9_x), then by name. Other `.sql` names are an
 * error, because a file silently skipped is a migration silently not run.
 */
export function orderMigrationFiles(entries: readonly string[]): string[] {
  const sql = entries.filter((e) => e.endsWith('.sql'));
  const bad = sql.filter((e) => !FILE_RE.test(e));
  if (bad.length) {
    throw new MigrationFolderError(
      `migration file names must start with a number and "_" (e.g. 0003_add_table.sql): ${bad.join(', ')}`,
    );
  }
  const num = (f: string) => BigInt(FILE_RE.exec(f)![1]);
  return [...sql].sort((a, b) => {
    const d = num(a) - num(b);
    return d < 0n ? -1 : d > 0n ? 1 : a < b ? -1 : a > b ? 1 : 0;
  });
}

export function runsInTransaction(sql: string): boolean {
  // Only the leading comment block counts, so a file can mention the marker in its body.
  const head: string[] = [];
  for (const line of sql.split('\n')) {
    if (!/^\s*(--.*)?$/.test(line)) break;
    head.push(line);
  }
  return !NO_TRANSACTION_RE.test(head.join('\n'));
}

/** Statements that end or start a transaction: inside the one a migration runs in, they would commit part of the file. */
const TRANSACTION_CONTROL_RE =
  /^(?:BEGIN|COMMIT|END|ABORT|START\s+TRANSACTION|ROLLBACK(?!\s+TO\b)|PREPARE\s+TRANSACTION)\b/i;

/**
 * The transaction-control statements of a migration (COMMIT, BEGIN, END,
 * ROLLBACK, ...), each with its line. The product runs a file in one
 * transaction so that a failure leaves nothing behind; a COMMIT inside it
 * would make the statements before it permanent and the rest run outside any
 * transaction. Strings, quoted identifiers, comments and dollar-quoted bodies
 * (functions, DO blocks) are skipped; ROLLBACK TO SAVEPOINT is allowed.
 */
export function transactionControl(sql: string): { statement: string; line: number }[] {
  const found: { statement: string; line: number }[] = [];
  let i = 0;
  let line = 1;
  let start = true;
  while (i < sql.length) {
    const c = sql[i];
    if (c === '\n') line++;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (sql.startsWith('--', i)) {
      while (i < sql.length && sql[i] !== '\n') i++;
      continue;
    }
    if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      const stop = end < 0 ? sql.length : end + 2;
      line += (sql.slice(i, stop).match(/\n/g) ?? []).length;
      i = stop;
      continue;
    }
    if (start) {
      const m = TRANSACTION_CONTROL_RE.exec(sql.slice(i, i + 40));
      if (m) found.push({ statement: m[0].replace(/\s+/g, ' ').toUpperCase(), line });
      start = false;
    }
    if (c === ';') {
      start = true;
      i++;
      continue;
    }
    const quoted = c === "'" || c === '"' ? c : undefined;
    const dollar = c === '$' ? /^\$[A-Za-z_]?[A-Za-z0-9_]*\$/.exec(sql.slice(i, i + 64))?.[0] : undefined;
    const closer = quoted ?? dollar;
    if (closer) {
      const end = sql.indexOf(closer, i + closer.length);
      const stop = end < 0 ? sql.length : end + closer.length;
      line += (sql.slice(i, stop).match(/\n/g) ?? []).length;
      i = stop;
      continue;
    }
    i++;
  }
  return found;
}

export interface MigrationFileInfo {
  filename: string;
  /** sha256 hex of the file's bytes. */
  checksum: string;
}

export interface AppliedMigrationRow {
  filename: string;
  checksum: string;
  appliedAt?: string;
  durationMs?: number;
  appliedBy?: string;
}

export interface ChangedMigration {
  filename: string;
  recorded: string;
  current: string;
}

export interface MigrationPlan {
  /** Files to apply, in order. */
  pending: string[];
  /** Applied files whose content differs from what was applied: an error. */
  changed: ChangedMigration[];
  /** Recorded as applied but no longer in the folder (squashed or renamed): reported, not an error. */
  missing: string[];
  /** Pending files that sort before the newest applied one (e.g. from a merged branch): applied, and reported. */
  outOfOrder: string[];
}

/** Compares the folder (already ordered) with the table. */
export function planMigrations(
  files: readonly MigrationFileInfo[],
  applied: readonly AppliedMigrationRow[],
): MigrationPlan {
  const recorded = new Map(applied.map((a) => [a.filename, a]));
  const present = new Set(files.map((f) => f.filename));
  const pending: string[] = [];
  const changed: ChangedMigration[] = [];
  let lastAppliedIndex = -1;
  files.forEach((f, i) => {
    const row = recorded.get(f.filename);
    if (!row) {
      pending.push(f.filename);
      return;
    }
    lastAppliedIndex = i;
    if (row.checksum !== f.checksum)
      changed.push({ filename: f.filename, recorded: row.checksum, current: f.checksum });
  });
  const outOfOrder = files.filter((f, i) => i < lastAppliedIndex && !recorded.has(f.filename)).map((f) => f.filename);
  const missing = applied.filter((a) => !present.has(a.filename)).map((a) => a.filename);
  return { pending, changed, missing, outOfOrder };
}

export function describeChanged(changed: readonly ChangedMigration[]): string {
  return changed
    .map((c) => `${c.filename} (applied ${c.recorded.slice(0, 12)}…, now ${c.current.slice(0, 12)}…)`)
    .join(', ');
}

/** 1-based line and column of PostgreSQL's 1-based character `position` in `sql`. */
export function sqlPosition(
  sql: string,
  position: number | string | undefined,
): { line: number; column: number } | undefined {
  const pos = typeof position === 'string' ? Number(position) : position;
  if (pos === undefined || !Number.isInteger(pos) || pos < 1) return undefined;
  const chars = Array.from(sql); // PostgreSQL counts characters, not UTF-16 units
  if (pos > chars.length + 1) return undefined;
  let line = 1;
  let column = 1;
  for (let i = 0; i < pos - 1; i++) {
    if (chars[i] === '\n') {
      line++;
      column = 1;
    } else {
      column++;
    }
  }
  return { line, column };
}

/** `0003_x.sql:4:12: syntax error at or near "TABL"` — where a person opens the file. */
export function describeSqlError(
  filename: string,
  sql: string,
  err: { message: string; position?: string | number; code?: string },
): string {
  const at = sqlPosition(sql, err.position);
  const where = at ? `${filename}:${at.line}:${at.column}` : filename;
  return `${where}: ${err.message}${err.code ? ` (SQLSTATE ${err.code})` : ''}`;
}
