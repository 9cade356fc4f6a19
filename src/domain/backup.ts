/**
 * Backups as the bucket sees them: key names, the metadata that makes an
 * object a *verified* backup, and which backup is the newest. Pure functions
 * so the rules are tested without a bucket (design §3.6); the adapter in
 * activities/database/ does the I/O.
 *
 * Key: `<prefix><database>_<version>_<timestamp>.dump[.zst]`, the runbook's
 * `postgres/ai_saas_prod_${VERSION}_<time>` with a sortable UTC timestamp.
 * Versions never contain "_" (domain/version.ts), database names may, so keys
 * are parsed from the right. The suffix names the codec: `.dump.zst` is a
 * pg_dump custom-format archive inside a zstd frame; `.dump` is the archive
 * as pg_dump wrote it (compressed by pg_dump's own zlib, or not at all),
 * which is every backup made before zstd and every gzip or none backup since.
 */

/** pg_dump's custom format (`-Fc`), restored with pg_restore. */
export const BACKUP_EXTENSION = 'dump';

// --- codecs -------------------------------------------------------------------

/**
 * How a dump is compressed (config backup.codec):
 * - `zstd`: `pg_dump -Fc -Z0` piped through a separate, multi-threaded
 *   `zstd -T0`, so compression no longer runs on pg_dump's one thread;
 * - `gzip`: pg_dump's own zlib (`-Fc -Z<level>`), the format of every backup
 *   made before zstd;
 * - `none`: `pg_dump -Fc -Z0`.
 */
export const BACKUP_CODECS = ['zstd', 'gzip', 'none'] as const;
export type BackupCodec = (typeof BACKUP_CODECS)[number];

/** The levels each codec accepts: zstd's CLI levels without --ultra, pg_dump's -Z. */
export const CODEC_LEVELS: Record<BackupCodec, { min: number; max: number }> = {
  zstd: { min: 1, max: 19 },
  gzip: { min: 0, max: 9 },
  none: { min: 0, max: 19 },
};

/** Why `level` does not suit `codec` (undefined: it does); `none` takes any level and ignores it. */
export function codecLevelProblem(codec: BackupCodec, level: number): string | undefined {
  const { min, max } = CODEC_LEVELS[codec];
  if (level >= min && level <= max) return undefined;
  const hint = codec === 'zstd' && level === 0 ? ' (for an uncompressed dump, set codec: none)' : '';
  return `compressionLevel ${level} does not suit codec ${codec}: it takes ${min}-${max}${hint}`;
}

/** The key suffix after the timestamp: the object says how it is compressed. */
export function backupSuffix(codec: BackupCodec): string {
  return codec === 'zstd' ? `.${BACKUP_EXTENSION}.zst` : `.${BACKUP_EXTENSION}`;
}

/** The object's Content-Type: a zstd frame, or pg_dump's archive (binary, whatever pg_dump compressed inside it). */
export function backupContentType(codec: BackupCodec): string {
  return codec === 'zstd' ? 'application/zstd' : 'application/octet-stream';
}

/**
 * The processes of one backup, as argument arrays: pg_dump's `--compress`,
 * and the compressor between pg_dump and the upload when the codec is not
 * pg_dump's own. zstd reads stdin and writes stdout; `-T0` uses every core.
 */
export function dumpCompression(codec: BackupCodec, level: number): { pgDumpLevel: number; zstdArgs?: string[] } {
  const problem = codecLevelProblem(codec, level);
  if (problem) throw new Error(problem);
  if (codec === 'zstd') return { pgDumpLevel: 0, zstdArgs: ['-q', '-T0', `-${level}`, '-c'] };
  return { pgDumpLevel: codec === 'gzip' ? level : 0 };
}

/** zstd's arguments for a restore: decompress stdin to stdout. */
export const ZSTD_DECOMPRESS_ARGS: readonly string[] = ['-q', '-d', '-c'];

const DATABASE_RE = /^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/;
const KEY_VERSION_RE = /^[0-9A-Za-z.-]{1,128}$/;
const TIMESTAMP_RE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const SHA256_RE = /^[0-9a-f]{64}$/;

/** 2026-11-26T03:08:11.123Z -> 20261126T030811Z (UTC, second precision, sorts as text). */
export function backupTimestamp(at: Date): string {
  return at
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

export function parseBackupTimestamp(text: string): Date | undefined {
  const m = TIMESTAMP_RE.exec(text);
  if (!m) return undefined;
  const d = new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
  return Number.isNaN(d.getTime()) || backupTimestamp(d) !== text ? undefined : d;
}

export function isDatabaseName(name: string): boolean {
  return DATABASE_RE.test(name);
}

/** The listing prefix that holds every backup of one database and version. */
export function backupKeyPrefix(prefix: string, database: string, version: string): string {
  if (!isDatabaseName(database)) throw new Error(`invalid database name ${JSON.stringify(database)}`);
  if (!KEY_VERSION_RE.test(version)) throw new Error(`invalid version ${JSON.stringify(version)} for a backup key`);
  return `${prefix}${database}_${version}_`;
}

export function backupKey(p: {
  prefix: string;
  database: string;
  version: string;
  at: Date;
  codec?: BackupCodec;
}): string {
  return `${backupKeyPrefix(p.prefix, p.database, p.version)}${backupTimestamp(p.at)}${backupSuffix(p.codec ?? 'gzip')}`;
}

export interface ParsedBackupKey {
  key: string;
  database: string;
  version: string;
  createdAt: Date;
  /** `.dump.zst`: the archive is inside a zstd frame; otherwise pg_restore reads the object as it is. */
  zstd: boolean;
}

/** Undefined for anything that is not a backup key under `prefix` (other files in the bucket are ignored, never guessed at). */
export function parseBackupKey(key: string, prefix: string): ParsedBackupKey | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const name = key.slice(prefix.length);
  if (name.includes('/')) return undefined;
  const suffix = [backupSuffix('zstd'), backupSuffix('none')].find((s) => name.endsWith(s));
  if (!suffix) return undefined;
  const parts = name.slice(0, -suffix.length).split('_');
  if (parts.length < 3) return undefined;
  const createdAt = parseBackupTimestamp(parts[parts.length - 1]);
  const version = parts[parts.length - 2];
  const database = parts.slice(0, -2).join('_');
  if (!createdAt || !KEY_VERSION_RE.test(version) || !isDatabaseName(database)) return undefined;
  return { key, database, version, createdAt, zstd: suffix === backupSuffix('zstd') };
}

// --- metadata ---------------------------------------------------------------

/**
 * What an uploaded backup says about itself (S3 user metadata). `sha256` and
 * `bytes` are only written once the whole dump is in the bucket, so an object
 * without them is an interrupted or unfinished backup, never a verified one.
 */
export interface BackupMetadata {
  workflowId: string;
  database: string;
  version: string;
  createdAt: string;
  /** pg_dump --version of the tool that made it, e.g. "pg_dump (PostgreSQL) 15.18". */
  tool?: string;
  sha256?: string;
  bytes?: number;
  /** Rows per verified table in the dump's snapshot; restore compares against them. */
  rowCounts?: Record<string, number>;
  /** How it was compressed; absent on backups made before zstd (pg_dump's own format, read as it is). */
  codec?: BackupCodec;
  /** The codec's level (zstd -<n>, pg_dump -Z<n>). */
  level?: number;
}

/** S3 allows 2 KB of user metadata; row counts beyond this budget are left out rather than failing the backup. */
const ROW_COUNTS_BUDGET = 1200;

/** S3 metadata values must be ASCII: every value is URI-encoded. */
export function encodeMetadata(m: BackupMetadata): Record<string, string> {
  const out: Record<string, string> = {
    'workflow-id': encodeURIComponent(m.workflowId),
    database: m.database,
    version: m.version,
    'created-at': m.createdAt,
  };
  if (m.tool) out.tool = encodeURIComponent(m.tool);
  if (m.codec) out.codec = m.codec;
  if (m.level !== undefined) out.level = String(m.level);
  if (m.sha256 !== undefined) out.sha256 = m.sha256;
  if (m.bytes !== undefined) out.bytes = String(m.bytes);
  if (m.rowCounts) {
    const counts = encodeURIComponent(JSON.stringify(m.rowCounts));
    if (counts.length <= ROW_COUNTS_BUDGET) out['row-counts'] = counts;
  }
  return out;
}

function decode(v: string | undefined): string | undefined {
  if (v === undefined) return undefined;
  try {
    return decodeURIComponent(v);
  } catch {
    return undefined;
  }
}

/** Reads what encodeMetadata wrote; fields that are missing or malformed come back undefined. */
export function decodeMetadata(raw: Record<string, string> | undefined): Partial<BackupMetadata> {
  const r = raw ?? {};
  const out: Partial<BackupMetadata> = {};
  const workflowId = decode(r['workflow-id']);
  if (workflowId !== undefined) out.workflowId = workflowId;
  if (r.database) out.database = r.database;
  if (r.version) out.version = r.version;
  if (r['created-at']) out.createdAt = r['created-at'];
  const tool = decode(r.tool);
  if (tool) out.tool = tool;
  if ((BACKUP_CODECS as readonly string[]).includes(r.codec ?? '')) out.codec = r.codec as BackupCodec;
  if (r.level && /^\d{1,2}$/.test(r.level)) out.level = Number(r.level);
  if (r.sha256 && SHA256_RE.test(r.sha256)) out.sha256 = r.sha256;
  if (r.bytes && /^\d{1,16}$/.test(r.bytes)) out.bytes = Number(r.bytes);
  const counts = decode(r['row-counts']);
  if (counts) {
    try {
      const parsed: unknown = JSON.parse(counts);
      if (parsed && typeof parsed === 'object' && Object.values(parsed).every((n) => Number.isSafeInteger(n))) {
        out.rowCounts = parsed as Record<string, number>;
      }
    } catch {
      // Malformed counts only cost the comparison after a restore.
    }
  }
  return out;
}

/**
 * Whether a restore pipes the object through `zstd -d` before pg_restore:
 * the key's suffix says so, and a codec in the metadata must agree with it
 * (a renamed object is not restored on a guess). Objects without a codec in
 * their metadata are backups made before zstd: pg_restore reads them as they are.
 */
export function restoreCodec(
  parsed: Pick<ParsedBackupKey, 'key' | 'zstd'>,
  metadata: Pick<Partial<BackupMetadata>, 'codec'>,
): { zstd: boolean } | { problem: string } {
  const c = metadata.codec;
  if (c !== undefined && (c === 'zstd') !== parsed.zstd)
    return {
      problem: `its key ends in ${parsed.zstd ? backupSuffix('zstd') : backupSuffix('none')} but its metadata says codec ${c}`,
    };
  return { zstd: parsed.zstd };
}

/**
 * Why an object is not a verified backup (empty when it is): the size the
 * store reports must equal the byte count measured while uploading, and the
 * checksum must be present (and equal `expected` when the caller knows it).
 */
export function headProblems(
  head: { contentLength?: number; metadata: Partial<BackupMetadata> },
  expected?: { sha256: string; bytes: number },
): string[] {
  const problems: string[] = [];
  const m = head.metadata;
  if (!m.sha256) problems.push('no sha256 metadata (the upload never finished)');
  if (m.bytes === undefined) problems.push('no byte count metadata (the upload never finished)');
  if (m.bytes !== undefined && head.contentLength !== m.bytes)
    problems.push(`size ${head.contentLength ?? '?'} differs from the ${m.bytes} bytes uploaded`);
  if (expected && m.sha256 && m.sha256 !== expected.sha256)
    problems.push(`sha256 ${m.sha256.slice(0, 12)}… differs from the uploaded ${expected.sha256.slice(0, 12)}…`);
  if (expected && m.bytes !== undefined && m.bytes !== expected.bytes)
    problems.push(`byte count ${m.bytes} differs from the uploaded ${expected.bytes}`);
  return problems;
}

/** Tables whose restored row count differs from the count recorded in the backup: "users 1000 → 998". */
export function rowCountDifferences(
  expected: Record<string, number> | undefined,
  actual: Record<string, number | null>,
): string[] {
  if (!expected) return [];
  return Object.entries(expected)
    .filter(([table, n]) => actual[table] !== n)
    .map(([table, n]) => `${table} ${n} → ${actual[table] ?? 'missing'}`);
}

/**
 * What a person must know after a restore that committed but whose row counts
 * differ from the backup's: the data was replaced, and it may not be what the
 * backup recorded.
 */
export function restoreAttention(key: string, differences: readonly string[]): string {
  return `database restored from ${key}; row counts differ from the backup's: ${differences.join(', ')}; check before reopening traffic`;
}

// --- the newest backup --------------------------------------------------------

export interface ListedObject {
  key: string;
  size?: number;
  lastModified?: Date;
}

export interface LatestBackup {
  key: string;
  version: string;
  createdAt: Date;
  size?: number;
}

/** The newest backup of `database` by the time in its key (LastModified changes when metadata is rewritten). */
export function latestBackup(
  objects: readonly ListedObject[],
  prefix: string,
  database: string,
): LatestBackup | undefined {
  let best: LatestBackup | undefined;
  for (const o of objects) {
    const p = parseBackupKey(o.key, prefix);
    if (!p || p.database !== database) continue;
    if (!best || p.createdAt.getTime() > best.createdAt.getTime())
      best = { key: o.key, version: p.version, createdAt: p.createdAt, size: o.size };
  }
  return best;
}

/**
 * The newest object under the prefix that another tool made of this database
 * (the runbook's `ai_saas_prod_<version>_<epoch>.sql.gz`, a nightly job's
 * dump): named after the database, followed by `_`, `.` or `-`, and not a key
 * of this tool. It proves the backup schedule runs, dated by its upload time;
 * this tool cannot restore it, so it is never the backup a rollback picks.
 */
export function newestOtherBackup(
  objects: readonly ListedObject[],
  prefix: string,
  database: string,
): { key: string; createdAt: Date; size?: number } | undefined {
  let best: { key: string; createdAt: Date; size?: number } | undefined;
  for (const o of objects) {
    if (!o.key.startsWith(prefix) || !o.lastModified) continue;
    const name = o.key.slice(prefix.length);
    if (name.includes('/') || !name.startsWith(database) || !/^[._-]/.test(name.slice(database.length))) continue;
    const ours = parseBackupKey(o.key, prefix);
    // Ours (any database): latestBackup's business; a longer database name that shares the prefix is not this one.
    if (ours) continue;
    if (!best || o.lastModified.getTime() > best.createdAt.getTime())
      best = { key: o.key, createdAt: o.lastModified, ...(o.size === undefined ? {} : { size: o.size }) };
  }
  return best;
}

/** The runbook's "Verify backups" as a check: none, or older than maxAgeMs, is a problem. */
export function backupAgeProblem(
  latest: LatestBackup | undefined,
  now: Date,
  maxAgeMs: number,
  where: string,
): string | undefined {
  if (!latest) return `no backup of the database in ${where}: confirm backup schedule is running`;
  const age = now.getTime() - latest.createdAt.getTime();
  if (age > maxAgeMs) {
    return `latest backup ${latest.key} is ${formatAge(age)} old (maximum ${formatAge(maxAgeMs)}): confirm backup schedule is running`;
  }
  return undefined;
}

export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.round(s / 60);
  if (m < 120) return `${m}m`;
  const h = s / 3600;
  return h < 48 ? `${h.toFixed(1)}h` : `${(h / 24).toFixed(1)}d`;
}

// --- PostgreSQL failures --------------------------------------------------------

/**
 * SQLSTATEs a retry can fix: the server is starting, shutting down, out of
 * connections, or a lock was busy. Everything else (bad password 28P01,
 * missing database 3D000, permission 42501, SQL errors) needs a person.
 */
const TRANSIENT_SQLSTATES = new Set([
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '53300',
  '57P01',
  '57P02',
  '57P03',
  '55P03',
  '40001',
  '40P01',
]);
const TRANSIENT_NODE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

export function isTransientPgCode(code: string | undefined): boolean {
  return !!code && (TRANSIENT_SQLSTATES.has(code) || TRANSIENT_NODE_CODES.has(code));
}

/** The same judgement for the text pg_dump, pg_restore and psql print (libpq's messages). */
export function isTransientPgMessage(stderr: string): boolean {
  return /connection refused|could not connect to server|server closed the connection unexpectedly|connection to server .* failed: (?!FATAL)|timeout expired|the database system is (starting up|shutting down|in recovery mode)|too many clients|terminating connection due to administrator command|lock timeout|deadlock detected|could not serialize access|no route to host|network is unreachable/i.test(
    stderr,
  );
}

/** The lines of a tool's stderr worth showing: its errors, without the noise around them. */
export function toolErrorSummary(stderr: string, maxLines = 3): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const errors = lines.filter((l) => /error|fatal|failed|could not|refused|denied|does not exist/i.test(l));
  return (errors.length ? errors : lines).slice(-maxLines).join(' | ') || '(no output)';
}

// --- copying objects ----------------------------------------------------------

/** S3's CopyObject limit; larger objects need a multipart copy. */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 ** 3;

/** Byte ranges (inclusive) for a multipart copy of `size` bytes in parts of `partSize`. */
export function copyRanges(size: number, partSize: number): { first: number; last: number }[] {
  if (!(partSize > 0)) throw new Error('partSize must be positive');
  const ranges: { first: number; last: number }[] = [];
  for (let first = 0; first < size; first += partSize)
    ranges.push({ first, last: Math.min(size, first + partSize) - 1 });
  return ranges;
}

// --- restore ------------------------------------------------------------------

/**
 * SQL run inside the restore's transaction, before the dump's own statements,
 * so the database ends up exactly as it was at the backup (the runbook's
 * "this will overwrite current database"): every schema the restoring role
 * owns is dropped, including tables a later migration added, which
 * pg_restore --clean would leave behind. `public` is recreated as PostgreSQL
 * 15 creates it, because pg_dump leaves a default `public` out of the dump.
 * Objects of other roles are not touched; a dump that needs them replaced
 * fails and the transaction rolls back.
 */
export function restorePreludeSql(lockTimeoutMs: number): string {
  return [
    `SET LOCAL lock_timeout = ${Math.max(0, Math.floor(lockTimeoutMs))};`,
    'DO $restore$',
    'DECLARE s record;',
    'BEGIN',
    "  FOR s IN SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' AND pg_has_role(nspowner, 'MEMBER') LOOP",
    "    EXECUTE format('DROP SCHEMA %I CASCADE', s.nspname);",
    '  END LOOP;',
    "  IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') THEN",
    '    CREATE SCHEMA public AUTHORIZATION pg_database_owner;',
    '    GRANT USAGE ON SCHEMA public TO PUBLIC;',
    "    COMMENT ON SCHEMA public IS 'standard public schema';",
    '  END IF;',
    'END $restore$;',
    '',
  ].join('\n');
}
