/**
 * The PostgreSQL backup, restore and pre-flight activities against the
 * sandbox's real PostgreSQL 15 and versitygw S3. Every test works in its own
 * databases (ai_saas_it_*, dropped afterwards) and under its own key prefix,
 * except the read-only pre-flight of ai_saas_prod.
 *
 * BACKUP_BIG_MB sets the size of the memory/throughput test (default 20; the
 * figures in the issue were measured with BACKUP_BIG_MB=300).
 */
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  AbortMultipartUploadCommand,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Client } from 'pg';
import type { DatabaseProgress } from '../../src/activities/contracts';
import { databaseActivities } from '../../src/activities/database';
import { CREATE_MIGRATIONS_TABLE_SQL } from '../../src/domain/migrations';
import { backupTimestamp, type BackupCodec } from '../../src/domain/backup';
import { loadConfig } from '../../src/load-config';
import { sandboxVar } from '../helpers/sandbox';
import { REPO_ROOT } from '../helpers/tools';

jest.setTimeout(180_000);

const RUN = randomBytes(4).toString('hex');
const PREFIX = `it-database/${RUN}/`;
const BUCKET = 'ai-saas-backups';
const PG_BIN = '/usr/lib/postgresql/15/bin';
const created: string[] = [];
const clients: S3Client[] = [];
const proxies: FaultyProxy[] = [];

function s3Client(endpoint = sandboxVar('S3_ENDPOINT'), maxAttempts?: number): S3Client {
  const c = new S3Client({
    endpoint,
    region: sandboxVar('AWS_REGION'),
    forcePathStyle: true,
    credentials: { accessKeyId: sandboxVar('AWS_ACCESS_KEY_ID'), secretAccessKey: sandboxVar('AWS_SECRET_ACCESS_KEY') },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts,
  });
  clients.push(c);
  return c;
}

let s3: S3Client;

// --- databases of our own --------------------------------------------------------

async function admin<T extends object = Record<string, unknown>>(database: string, sql: string): Promise<T[]> {
  const c = new Client({
    host: sandboxVar('PG_ADMIN_SOCKET'),
    port: Number(sandboxVar('PGPORT')),
    user: 'postgres',
    database,
  });
  await c.connect();
  try {
    const r = await c.query(sql);
    const last = Array.isArray(r) ? r[r.length - 1] : r;
    return last.rows as T[];
  } finally {
    await c.end();
  }
}

async function createDatabase(what: string): Promise<string> {
  const name = `ai_saas_it_${what}_${RUN}`;
  await admin('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin('postgres', `CREATE DATABASE ${name} OWNER app`);
  created.push(name);
  return name;
}

/** The platform as the sandbox builds ai_saas_prod: baseline schema (recorded as applied) and seed rows, owned by app. */
async function loadPlatform(db: string): Promise<void> {
  const baseline = readFileSync(path.join(sandboxVar('GIT_CHECKOUT'), 'migrations', '0001_baseline.sql'), 'utf8');
  const seed = readFileSync(path.join(REPO_ROOT, 'scripts', 'sandbox', 'sql', 'seed.sql'), 'utf8');
  await admin(
    db,
    `SET ROLE app;\n${baseline}\n${CREATE_MIGRATIONS_TABLE_SQL};\nINSERT INTO schema_migrations (filename, checksum, applied_by) VALUES ('0001_baseline.sql', 'c9b59ce2', 'test');\n${seed}`,
  );
}

const TABLES = ['users', 'subscriptions', 'conversations', 'messages', 'schema_migrations'];

/** Row count and a checksum of every row of each table, plus the tables and indexes that exist. */
async function fingerprint(db: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of TABLES) {
    const order = t === 'schema_migrations' ? 'filename' : 'id';
    const [r] = await admin<{ n: string; sum: string }>(
      db,
      `SELECT count(*) AS n, md5(coalesce(string_agg(t::text, '|' ORDER BY ${order}), '')) AS sum FROM ${t} t`,
    );
    out[t] = `${r.n}:${r.sum}`;
  }
  const [objects] = await admin<{ tables: string; indexes: string }>(
    db,
    "SELECT (SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public') AS tables, (SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public') AS indexes",
  );
  out.tables = objects.tables;
  out.indexes = objects.indexes;
  return out;
}

/** A table of about `mb` MB: text rows that compress about as well as chat messages do. */
async function fillBigTable(db: string, mb: number): Promise<number> {
  await admin(
    db,
    'SET ROLE app; CREATE TABLE big_messages (id bigserial PRIMARY KEY, conversation_id int NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())',
  );
  const rowsPerMb = 5200;
  const total = Math.max(1, Math.round(mb * rowsPerMb));
  for (let done = 0; done < total; done += 250_000) {
    const n = Math.min(250_000, total - done);
    await admin(
      db,
      `SET ROLE app; INSERT INTO big_messages (conversation_id, body) SELECT g % 5000, 'message ' || g || ': ' || md5(random()::text) || ' ' || md5(random()::text) || ' ' || md5(random()::text) || ' the quick brown fox ' || (g % 97) FROM generate_series(1, ${n}) AS g`,
    );
  }
  const [size] = await admin<{ bytes: string }>(db, `SELECT pg_database_size('${db}') AS bytes`);
  return Number(size.bytes);
}

function databaseUrl(db: string, password?: string): string {
  const u = new URL(sandboxVar('DATABASE_URL'));
  u.pathname = `/${db}`;
  if (password !== undefined) u.password = password;
  return u.toString();
}

// --- the activities under test ---------------------------------------------------------

interface Options {
  s3?: S3Client;
  url?: string;
  verifyTables?: string[];
  lockTimeout?: number;
  verifyReadBack?: boolean;
  now?: () => Date;
  limits?: { singleCopyBytes?: number; copyPartBytes?: number };
  codec?: BackupCodec;
  level?: number;
}

function activitiesFor(db: string, o: Options = {}) {
  const base = loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), {
    ...process.env,
    PG_BIN,
    S3_ENDPOINT: sandboxVar('S3_ENDPOINT'),
    AWS_REGION: sandboxVar('AWS_REGION'),
  });
  const config = {
    database: {
      ...base.database,
      name: db,
      verifyTables: o.verifyTables ?? base.database.verifyTables,
      lockTimeout: o.lockTimeout ?? base.database.lockTimeout,
    },
    backup: {
      ...base.backup,
      prefix: PREFIX,
      verifyReadBack: o.verifyReadBack ?? false,
      codec: o.codec ?? base.backup.codec,
      compressionLevel: o.level ?? base.backup.compressionLevel,
    },
  };
  return databaseActivities({
    config,
    databaseUrl: o.url ?? databaseUrl('ai_saas_prod'),
    s3: o.s3 ?? s3,
    releaseDir: () => Promise.reject(new Error('no migrations in these tests')),
    now: o.now,
    limits: o.limits,
  });
}

/** Expected failures are the point of several tests: the SDK's "Activity failed" warnings would only be noise. */
function quietEnvironment(info?: ConstructorParameters<typeof MockActivityEnvironment>[0]): MockActivityEnvironment {
  return new MockActivityEnvironment(info, { logger: new DefaultLogger('ERROR') });
}

/** Runs an activity in a mock activity context, collecting its heartbeats. */
async function inActivity<R>(
  fn: () => Promise<R>,
  opts: { heartbeatDetails?: unknown; beats?: DatabaseProgress[]; env?: MockActivityEnvironment } = {},
): Promise<R> {
  const env = opts.env ?? quietEnvironment({ heartbeatDetails: opts.heartbeatDetails });
  if (opts.beats) env.on('heartbeat', (d: DatabaseProgress) => opts.beats!.push(d));
  return env.run(fn);
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

async function objectBytes(key: string): Promise<Buffer> {
  const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

/** zstd -d of a whole buffer, with the same binary the activities run. */
function zstdDecompressSync(data: Buffer): Buffer {
  return execFileSync('zstd', ['-q', '-d', '-c'], { input: data, maxBuffer: 512 * 1024 * 1024 });
}

/** This process's child processes running `name` (the activities' own zstd), by pid. */
function childrenNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid ...
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(stat);
      if (m && m[1] === name && Number(m[2]) === process.pid) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

async function keysUnder(prefix: string): Promise<string[]> {
  const r = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
  return (r.Contents ?? []).map((o) => o.Key!).sort();
}

async function uploadsUnder(prefix: string): Promise<number> {
  const r = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: prefix }));
  return (r.Uploads ?? []).length;
}

/** A loopback TCP proxy in front of S3 that can be cut (connections reset, new ones refused) and brought back. */
class FaultyProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  forwarded = 0;
  cutAfterBytes = Infinity;
  /** Forward at most this many bytes per second towards S3 (a slow link). */
  bytesPerSecond = Infinity;
  cuts = 0;
  cutAt = 0;

  constructor(private readonly upstream: { host: string; port: number }) {
    proxies.push(this);
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      const up = net.connect(this.upstream);
      for (const s of [client, up]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.on('data', (d: Buffer) => {
        this.forwarded += d.length;
        if (this.forwarded > this.cutAfterBytes) return this.cut();
        if (!up.write(d)) client.pause();
        if (Number.isFinite(this.bytesPerSecond)) {
          client.pause();
          setTimeout(() => client.resume(), (1000 * d.length) / this.bytesPerSecond);
        }
      });
      up.on('drain', () => client.resume());
      up.pipe(client);
      client.on('close', () => up.destroy());
      up.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** The store "goes down": every connection is reset and the port refuses new ones. */
  cut(): void {
    if (!this.server) return;
    this.cuts++;
    this.cutAt = this.forwarded;
    this.cutAfterBytes = Infinity;
    this.server.close();
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
  }

  async restart(): Promise<void> {
    await this.start();
  }
}

beforeAll(() => {
  s3 = s3Client();
});

afterAll(async () => {
  for (const db of created)
    await admin('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
  const uploads = await s3
    .send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: PREFIX }))
    .catch(() => undefined);
  for (const u of uploads?.Uploads ?? [])
    await s3
      .send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: u.Key, UploadId: u.UploadId }))
      .catch(() => undefined);
  for (const key of await keysUnder(PREFIX).catch(() => [] as string[]))
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key })).catch(() => undefined);
  for (const c of clients) c.destroy();
  for (const p of proxies) p.cut();
});

// --- tests -----------------------------------------------------------------------------

describe('round trip', () => {
  let db: string;
  let before: Record<string, string>;
  let backup: Awaited<ReturnType<ReturnType<typeof activitiesFor>['backupDatabase']>>;

  beforeAll(async () => {
    db = await createDatabase('roundtrip');
    await loadPlatform(db);
    before = await fingerprint(db);
  });

  test('backup streams pg_dump through zstd into the bucket, records checksum, size, codec and row counts, and verifies them', async () => {
    const acts = activitiesFor(db, { verifyReadBack: true });
    expect(loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), process.env).backup.codec).toBe('zstd');
    const beats: DatabaseProgress[] = [];
    backup = await inActivity(() => acts.backupDatabase({ workflowId: `wf-${RUN}`, version: 'v1.0.1' }), { beats });
    expect(backup).toMatchObject({ bucket: BUCKET, database: db, version: '1.0.1', reused: false, readBack: true });
    expect(backup.key).toMatch(new RegExp(`^${PREFIX}${db}_1\\.0\\.1_\\d{8}T\\d{6}Z\\.dump\\.zst$`));
    expect(backup.rowCounts).toEqual({
      users: 1000,
      conversations: expect.any(Number),
      messages: expect.any(Number),
      subscriptions: 1000,
    });
    expect(beats.some((b) => b.phase === 'dumping' && b.key === backup.key)).toBe(true);

    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: backup.key }));
    expect(head.ContentLength).toBe(backup.bytes);
    expect(head.Metadata).toMatchObject({
      sha256: backup.sha256,
      bytes: String(backup.bytes),
      database: db,
      version: '1.0.1',
      'workflow-id': `wf-${RUN}`,
      codec: 'zstd',
      level: '1',
    });
    expect(head.ContentType).toBe('application/zstd');
    expect(decodeURIComponent(head.Metadata!.tool)).toMatch(/^pg_dump \(PostgreSQL\) 15/);
    // The object is a zstd frame around a pg_dump custom-format archive (pg_dump -Z0: its data is not compressed twice).
    const whole = await objectBytes(backup.key);
    expect(whole.subarray(0, 4).toString('hex')).toBe('28b52ffd');
    const archive = zstdDecompressSync(whole);
    expect(archive.subarray(0, 5).toString('latin1')).toBe('PGDMP');
    expect(archive.length).toBeGreaterThan(whole.length);
  });

  test("a rollback's backup key is looked up in the bucket: the backup exists, a key beside it does not", async () => {
    const acts = activitiesFor(db);
    expect(await acts.backupExists(backup.key)).toBe(true);
    expect(await acts.backupExists(backup.key.replace(/\d{6}Z\.dump\.zst$/, '000000Z.dump.zst'))).toBe(false);
    expect(await acts.backupExists(backup.key.replace(/\.zst$/, ''))).toBe(false);
  });

  test('a retried backup of the same workflow and version reuses the verified object', async () => {
    const again = await inActivity(() =>
      activitiesFor(db).backupDatabase({ workflowId: `wf-${RUN}`, version: '1.0.1' }),
    );
    expect(again).toMatchObject({ key: backup.key, sha256: backup.sha256, bytes: backup.bytes, reused: true });
    expect(await keysUnder(`${PREFIX}${db}_`)).toEqual([backup.key]);
  });

  test('restore without the key as confirmation is refused and touches nothing', async () => {
    const acts = activitiesFor(db);
    await admin(db, 'DELETE FROM messages WHERE id % 2 = 0');
    const changed = await fingerprint(db);
    for (const confirmKey of ['', 'yes', `${backup.key}x`]) {
      const f = await failureOf(
        inActivity(() => acts.restoreDatabase({ workflowId: `wf-${RUN}`, key: backup.key, confirmKey })),
      );
      expect(f.type).toBe('RestoreNotConfirmed');
      expect(f.nonRetryable).toBe(true);
    }
    expect(await fingerprint(db)).toEqual(changed);
  });

  test("issue 16 item 8: restore refuses an object whose checksum is not the deployment's record, and another database's backup", async () => {
    await admin(db, 'DELETE FROM messages WHERE id % 3 = 0');
    const changed = await fingerprint(db);
    // The sha256 the deployment recorded when it made the backup (from its history), not the object's own metadata.
    const f = await failureOf(
      inActivity(() =>
        activitiesFor(db).restoreDatabase({
          workflowId: `wf-${RUN}`,
          key: backup.key,
          confirmKey: backup.key,
          sha256: 'f'.repeat(64),
        }),
      ),
    );
    expect(f.type).toBe('BackupNotVerified');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe(
      `${backup.key} is not the backup the deployment recorded: its sha256 is ${backup.sha256.slice(0, 12)}…, the deployment recorded ffffffffffff…; nothing was restored`,
    );
    expect(await fingerprint(db)).toEqual(changed);

    // A worker configured for another database never restores this database's dump into it.
    const other = await createDatabase('otherdb');
    await loadPlatform(other);
    const otherBefore = await fingerprint(other);
    const g = await failureOf(
      inActivity(() =>
        activitiesFor(other).restoreDatabase({ workflowId: `wf-${RUN}`, key: backup.key, confirmKey: backup.key }),
      ),
    );
    expect(g.type).toBe('InvalidInput');
    expect(g.nonRetryable).toBe(true);
    expect(g.message).toBe(
      `${backup.key} is a backup of ${db}, not of ${other}: restore it with the configuration of ${db}`,
    );
    expect(await fingerprint(other)).toEqual(otherBefore);
  });

  test('restore after rows were changed and deleted and a migration ran brings back exactly the backed-up database', async () => {
    await admin(
      db,
      [
        'SET ROLE app',
        "UPDATE users SET display_name = 'changed' WHERE id < 50",
        'DELETE FROM users WHERE id > 900',
        'DELETE FROM messages WHERE id % 3 = 0',
        'CREATE TABLE added_later (id int PRIMARY KEY)',
        'CREATE INDEX users_email_verified_at_idx ON users (email_verified_at)',
        "INSERT INTO schema_migrations (filename, checksum) VALUES ('0002_add_email_verified_at_index.sql', 'x')",
      ].join(';\n'),
    );
    expect(await fingerprint(db)).not.toEqual(before);
    const beats: DatabaseProgress[] = [];
    const restored = await inActivity(
      () => activitiesFor(db).restoreDatabase({ workflowId: `wf-${RUN}`, key: backup.key, confirmKey: backup.key }),
      { beats },
    );
    expect(restored).toMatchObject({ key: backup.key, database: db, bytes: backup.bytes, sha256: backup.sha256 });
    expect(restored.tables).toEqual(backup.rowCounts);
    expect(restored.expectedTables).toEqual(backup.rowCounts);
    expect(restored.tables.users).toBe(1000); // the runbook's SELECT COUNT(*) FROM users
    expect(await fingerprint(db)).toEqual(before);
    expect(beats.map((b) => b.phase)).toEqual(expect.arrayContaining(['checking', 'restoring']));
    // Sequences come back too: the next user gets the id after the last backed-up one.
    const [next] = await admin<{ id: string }>(
      db,
      "SET ROLE app; INSERT INTO users (email, display_name, password_hash) VALUES ('new@example.com', 'n', 'h') RETURNING id",
    );
    expect(Number(next.id)).toBe(1001);
    await admin(db, "DELETE FROM users WHERE email = 'new@example.com'; SELECT setval('users_id_seq', 1000)");
  });

  test('a restore that cannot finish (a table stays locked) rolls back and is retryable', async () => {
    await admin(db, 'DELETE FROM messages WHERE id % 5 = 0');
    const changed = await fingerprint(db);
    const locker = new Client({
      host: sandboxVar('PG_ADMIN_SOCKET'),
      port: Number(sandboxVar('PGPORT')),
      user: 'postgres',
      database: db,
    });
    await locker.connect();
    try {
      await locker.query('BEGIN; LOCK TABLE messages IN ACCESS SHARE MODE');
      const f = await failureOf(
        inActivity(() =>
          activitiesFor(db, { lockTimeout: 1000 }).restoreDatabase({
            workflowId: `wf-${RUN}`,
            key: backup.key,
            confirmKey: backup.key,
          }),
        ),
      );
      expect(f.type).toBe('DatabaseUnavailable');
      expect(f.nonRetryable).toBe(false);
      expect(f.message).toMatch(/rolled back: .*lock timeout/);
      await locker.query('ROLLBACK');
    } finally {
      await locker.end();
    }
    expect(await fingerprint(db)).toEqual(changed);
  });

  test('a backup whose bytes no longer match its checksum is refused before the database is touched', async () => {
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: backup.key }));
    // The same backup one second later (a real time: adding 1 to HHMMSS as a number made 59 s into 60 s).
    const key = backup.key.replace(/(\d{8})T(\d{6})Z\.dump\.zst$/, (_m, d: string, t: string) => {
      const at = new Date(
        Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +t.slice(0, 2), +t.slice(2, 4), +t.slice(4, 6)) +
          1000,
      );
      return `${backupTimestamp(at)}.dump.zst`;
    });
    expect(key).not.toBe(backup.key);
    const body = Buffer.from(
      await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: backup.key }))).Body!.transformToByteArray(),
    );
    body[body.length - 10] ^= 0xff;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body, Metadata: head.Metadata }));
    const changed = await fingerprint(db);
    const f = await failureOf(
      inActivity(() => activitiesFor(db).restoreDatabase({ workflowId: `wf-${RUN}`, key, confirmKey: key })),
    );
    expect(f.type).toBe('BackupNotVerified');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/is corrupt/);
    expect(await fingerprint(db)).toEqual(changed);
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
  });

  test('pre-flight reports the connections and the newest backup, and fails it when too old', async () => {
    const fresh = await inActivity(() => activitiesFor(db).databasePreflight({ workflowId: `wf-${RUN}` }));
    expect(fresh.version).toMatch(/^PostgreSQL 15/);
    expect(fresh.connections[db]).toBeGreaterThanOrEqual(1);
    expect(fresh.latestBackup).toMatchObject({ key: backup.key, version: '1.0.1' });
    expect(fresh.latestBackup!.ageMs).toBeLessThan(10 * 60_000);
    expect(fresh.problems).toEqual([]);

    const later = () => new Date(Date.now() + 3 * 24 * 3_600_000);
    const stale = await inActivity(() =>
      activitiesFor(db, { now: later }).databasePreflight({ workflowId: `wf-${RUN}` }),
    );
    expect(stale.problems).toEqual([
      expect.stringMatching(
        /^backup: latest backup .* is 3\.0d old \(maximum 26\.0h\): confirm backup schedule is running$/,
      ),
    ]);
    const f = await failureOf(
      inActivity(() =>
        activitiesFor(db, { now: later }).databasePreflight({ workflowId: `wf-${RUN}`, failOnProblems: true }),
      ),
    );
    expect(f.type).toBe('PreflightFailed');
    expect(f.nonRetryable).toBe(true);
  });
});

describe('issue 16 item 8: restored but not verified', () => {
  test("a restore whose row counts differ from the backup's record replaces the database and returns the differences instead of failing after COMMIT", async () => {
    const db = await createDatabase('unverified');
    await loadPlatform(db);
    const before = await fingerprint(db);
    const backup = await inActivity(() =>
      activitiesFor(db).backupDatabase({ workflowId: `wf-${RUN}-unverified`, version: '1.0.1' }),
    );
    expect(backup.rowCounts?.users).toBe(1000);
    // The same dump under a new key, whose recorded row counts claim two more users than it holds:
    // the checksum still matches, so the restore runs and commits; only the comparison after it differs.
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: backup.key }));
    const key = backup.key.replace('_1.0.1_', '_1.0.2_');
    expect(key).not.toBe(backup.key);
    const body = Buffer.from(
      await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: backup.key }))).Body!.transformToByteArray(),
    );
    const recorded = { ...backup.rowCounts!, users: 1002 };
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: key,
        Body: body,
        Metadata: { ...head.Metadata, 'row-counts': encodeURIComponent(JSON.stringify(recorded)) },
      }),
    );
    await admin(
      db,
      [
        'SET ROLE app',
        'DELETE FROM messages WHERE id % 2 = 0',
        "UPDATE users SET display_name = 'changed' WHERE id < 10",
      ].join(';\n'),
    );
    expect(await fingerprint(db)).not.toEqual(before);

    const restored = await inActivity(() =>
      activitiesFor(db).restoreDatabase({ workflowId: `wf-${RUN}-unverified`, key, confirmKey: key }),
    );
    // The data was replaced: the database is exactly the dump, whatever its metadata claimed.
    expect(await fingerprint(db)).toEqual(before);
    expect(restored).toMatchObject({ key, database: db, bytes: backup.bytes, sha256: backup.sha256, verified: false });
    expect(restored.differences).toEqual(['users 1002 → 1000']);
    expect(restored.tables).toEqual(backup.rowCounts);
    expect(restored.expectedTables).toEqual(recorded);

    // The backup as recorded restores verified.
    const again = await inActivity(() =>
      activitiesFor(db).restoreDatabase({
        workflowId: `wf-${RUN}-unverified`,
        key: backup.key,
        confirmKey: backup.key,
      }),
    );
    expect(again).toMatchObject({ key: backup.key, verified: true, differences: [] });
    expect(await fingerprint(db)).toEqual(before);
  });
});

describe('codecs', () => {
  let db: string;
  let before: Record<string, string>;

  beforeAll(async () => {
    db = await createDatabase('codecs');
    await loadPlatform(db);
    before = await fingerprint(db);
  });

  /** Changes every table the platform has, so that a restore has something to put back. */
  const scramble = () =>
    admin(
      db,
      [
        'SET ROLE app',
        "UPDATE users SET display_name = 'changed' WHERE id < 50",
        'DELETE FROM messages WHERE id % 2 = 0',
        'CREATE TABLE added_later (id int PRIMARY KEY)',
      ].join(';\n'),
    );

  /** `key`'s bytes under `to`, with `metadata` instead of its own. */
  async function copyAs(key: string, to: string, metadata: (m: Record<string, string>) => Record<string, string>) {
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    await s3.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: to,
        Body: await objectBytes(key),
        Metadata: metadata(head.Metadata!),
      }),
    );
  }

  test.each([
    ['gzip', 1],
    ['none', 0],
  ] as const)("codec %s: pg_dump's own archive under .dump, restored to the row", async (codec, level) => {
    const acts = activitiesFor(db, { codec, level, verifyReadBack: true });
    const b = await inActivity(() => acts.backupDatabase({ workflowId: `wf-${RUN}-${codec}`, version: '1.1.0' }));
    expect(b.key).toMatch(new RegExp(`^${PREFIX}${db}_1\\.1\\.0_\\d{8}T\\d{6}Z\\.dump$`));
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: b.key }));
    expect(head.ContentType).toBe('application/octet-stream');
    expect(head.Metadata).toMatchObject({ codec, sha256: b.sha256 });
    expect(head.Metadata!.level).toBe(codec === 'none' ? undefined : String(level));
    expect((await objectBytes(b.key)).subarray(0, 5).toString('latin1')).toBe('PGDMP');

    await scramble();
    expect(await fingerprint(db)).not.toEqual(before);
    const r = await inActivity(() =>
      acts.restoreDatabase({ workflowId: `wf-${RUN}-${codec}`, key: b.key, confirmKey: b.key }),
    );
    expect(r).toMatchObject({ verified: true, differences: [], tables: b.rowCounts });
    expect(await fingerprint(db)).toEqual(before);
    await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: b.key }));
  });

  test('zstd is smaller than gzip -1 here and restores to the row; the row counts agree', async () => {
    const z = await inActivity(() =>
      activitiesFor(db).backupDatabase({ workflowId: `wf-${RUN}-zstd`, version: '1.2.0' }),
    );
    const g = await inActivity(() =>
      activitiesFor(db, { codec: 'gzip', level: 1 }).backupDatabase({ workflowId: `wf-${RUN}-gzip`, version: '1.2.0' }),
    );
    expect(z.key.endsWith('.dump.zst')).toBe(true);
    expect(g.key.endsWith('.dump')).toBe(true);
    expect(z.rowCounts).toEqual(g.rowCounts);
    expect(z.bytes).toBeLessThan(g.bytes * 1.1);
    await scramble();
    // Whatever codec this worker is configured with, the object's own says how to read it.
    const r = await inActivity(() =>
      activitiesFor(db, { codec: 'gzip' }).restoreDatabase({
        workflowId: `wf-${RUN}-zstd`,
        key: z.key,
        confirmKey: z.key,
      }),
    );
    expect(r).toMatchObject({ verified: true, tables: z.rowCounts, expectedTables: z.rowCounts });
    expect(await fingerprint(db)).toEqual(before);
  });

  test('a backup made before zstd (a .dump without codec metadata) still restores', async () => {
    const old = await inActivity(() =>
      activitiesFor(db, { codec: 'gzip', level: 1 }).backupDatabase({ workflowId: `wf-${RUN}-old`, version: '0.9.0' }),
    );
    // As the code before zstd wrote it: pg_dump -Fc -Z1, and metadata with no codec or level.
    const key = old.key.replace('_0.9.0_', '_0.9.1_');
    await copyAs(old.key, key, ({ codec: _c, level: _l, ...m }) => m);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }));
    expect(head.Metadata!.codec).toBeUndefined();
    await scramble();
    const r = await inActivity(() =>
      activitiesFor(db).restoreDatabase({ workflowId: `wf-${RUN}-old`, key, confirmKey: key }),
    );
    expect(r).toMatchObject({ verified: true, sha256: old.sha256 });
    expect(await fingerprint(db)).toEqual(before);
  });

  test("a .dump.zst that zstd cannot read fails the restore with zstd's message and rolls back", async () => {
    const g = await inActivity(() =>
      activitiesFor(db, { codec: 'gzip', level: 1 }).backupDatabase({
        workflowId: `wf-${RUN}-notzstd`,
        version: '1.3.0',
      }),
    );
    // pg_dump's archive renamed .dump.zst: its checksum matches (it is what was uploaded), but it is no zstd frame.
    const key = `${g.key}.zst`;
    await copyAs(g.key, key, ({ codec: _c, level: _l, ...m }) => m);
    await scramble();
    const changed = await fingerprint(db);
    const f = await failureOf(
      inActivity(() => activitiesFor(db).restoreDatabase({ workflowId: `wf-${RUN}-notzstd`, key, confirmKey: key })),
    );
    expect(f.type).toBe('RestoreFailed');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(
      new RegExp(
        `^restore of ${key.replace(/\./g, '\\.')} into ${db} failed and was rolled back: zstd -d failed: .*unsupported format`,
        'i',
      ),
    );
    expect(await fingerprint(db)).toEqual(changed);

    // The same bytes whose metadata says zstd under a .dump key: not restored on a guess.
    const mislabelled = g.key.replace('_1.3.0_', '_1.3.1_');
    await copyAs(g.key, mislabelled, (m) => ({ ...m, codec: 'zstd' }));
    const n = await failureOf(
      inActivity(() =>
        activitiesFor(db).restoreDatabase({
          workflowId: `wf-${RUN}-notzstd`,
          key: mislabelled,
          confirmKey: mislabelled,
        }),
      ),
    );
    expect(n.type).toBe('BackupNotVerified');
    expect(n.nonRetryable).toBe(true);
    expect(n.message).toBe(
      `${mislabelled} is not a verified backup: its key ends in .dump but its metadata says codec zstd`,
    );
    expect(await fingerprint(db)).toEqual(changed);
  });
});

describe('pre-flight', () => {
  test('of ai_saas_prod (read-only): connectivity, connections per database, backups under the prefix', async () => {
    const r = await inActivity(() => activitiesFor('ai_saas_prod').databasePreflight({ workflowId: `wf-${RUN}` }));
    expect(r.version).toMatch(/^PostgreSQL 15/);
    expect(r.connections.ai_saas_prod).toBeGreaterThanOrEqual(1);
    expect(r.maxConnections).toBe(200);
    // Nothing of ai_saas_prod under this run's prefix: the runbook's advice.
    expect(r.problems).toEqual([
      `backup: no backup of the database in s3://${BUCKET}/${PREFIX}: confirm backup schedule is running`,
    ]);
  });

  test("issue 16 item 6: a recent backup made by another tool (the runbook's pg_dump | gzip) counts for pre-flight", async () => {
    // The runbook's own naming: ai_saas_prod_<version>_<epoch>.sql.gz, uploaded with `aws s3 cp`.
    const key = `${PREFIX}ai_saas_prod_1.0.0_${Math.floor(Date.now() / 1000)}.sql.gz`;
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.from('not ours') }));
    try {
      const r = await inActivity(() => activitiesFor('ai_saas_prod').databasePreflight({ workflowId: `wf-${RUN}` }));
      expect(r.problems).toEqual([]);
      expect(r.latestOtherBackup).toMatchObject({ key });
      expect(r.latestOtherBackup!.ageMs).toBeLessThan(10 * 60_000);
      // Not one this tool can restore: a manual rollback's restore never picks it.
      expect(r.latestBackup).toBeUndefined();
    } finally {
      await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    }
  });

  test('a wrong password is a problem to report, not a retry', async () => {
    const r = await inActivity(() =>
      activitiesFor('ai_saas_prod', { url: databaseUrl('ai_saas_prod', 'wrong') }).databasePreflight({
        workflowId: `wf-${RUN}`,
      }),
    );
    expect(r.version).toBe('');
    expect(r.problems[0]).toMatch(
      /^database: cannot query ai_saas_prod: password authentication failed for user "app"$/,
    );
  });
});

describe('backup failures', () => {
  test('a wrong password is a clear non-retryable failure, and nothing is left in the bucket', async () => {
    const db = await createDatabase('badpw');
    const f = await failureOf(
      inActivity(() =>
        activitiesFor(db, { url: databaseUrl(db, 'wrong') }).backupDatabase({
          workflowId: `wf-${RUN}-pw`,
          version: '1.0.1',
        }),
      ),
    );
    expect(f.type).toBe('BackupFailed');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe(`backup of ${db}: password authentication failed for user "app"`);
    expect(await keysUnder(`${PREFIX}${db}_`)).toEqual([]);
  });

  test('a missing database is a non-retryable failure', async () => {
    const f = await failureOf(
      inActivity(() =>
        activitiesFor(`ai_saas_it_missing_${RUN}`).backupDatabase({
          workflowId: `wf-${RUN}-missing`,
          version: '1.0.1',
        }),
      ),
    );
    expect(f.type).toBe('BackupFailed');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/database "ai_saas_it_missing_\w+" does not exist/);
  });

  test("pg_dump's own failure carries its stderr, and no object or upload is left behind", async () => {
    const db = await createDatabase('denied');
    await admin(
      db,
      'SET ROLE app; CREATE TABLE ok (id int); RESET ROLE; CREATE TABLE secret (id int); INSERT INTO secret VALUES (1)',
    );
    const f = await failureOf(
      inActivity(() =>
        activitiesFor(db, { verifyTables: ['ok'] }).backupDatabase({
          workflowId: `wf-${RUN}-denied`,
          version: '1.0.1',
        }),
      ),
    );
    expect(f.type).toBe('BackupFailed');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(
      /^pg_dump of ai_saas_it_denied_\w+ failed: pg_dump: error: query failed: ERROR: +permission denied for table secret/,
    );
    expect(await keysUnder(`${PREFIX}${db}_`)).toEqual([]);
    expect(await uploadsUnder(`${PREFIX}${db}_`)).toBe(0);
  });

  test('an invalid version is refused as input', async () => {
    const f = await failureOf(
      inActivity(() => activitiesFor('ai_saas_prod').backupDatabase({ workflowId: `wf-${RUN}`, version: '1.0' })),
    );
    expect(f.type).toBe('InvalidInput');
  });
});

describe('object store faults', () => {
  let db: string;

  beforeAll(async () => {
    db = await createDatabase('faults');
    await fillBigTable(db, 40);
  });

  test('S3 cut mid-upload: the attempt fails retryably, leaves no object, and the retried attempt cleans up and completes verified', async () => {
    const upstream = new URL(sandboxVar('S3_ENDPOINT'));
    const proxy = new FaultyProxy({ host: upstream.hostname, port: Number(upstream.port) });
    await proxy.start();
    const viaProxy = s3Client(proxy.endpoint, 2);
    const acts = activitiesFor(db, { s3: viaProxy, verifyTables: ['big_messages'] });
    const workflowId = `wf-${RUN}-cut`;

    proxy.cutAfterBytes = 12 * 1024 * 1024; // during the second 8 MiB part
    const beats: DatabaseProgress[] = [];
    const f = await failureOf(inActivity(() => acts.backupDatabase({ workflowId, version: '1.0.2' }), { beats }));
    expect(proxy.cuts).toBe(1);
    expect(f.type).toBe('StorageUnavailable');
    expect(f.nonRetryable).toBe(false);
    expect(await keysUnder(`${PREFIX}${db}_`)).toEqual([]);
    const last = beats[beats.length - 1];
    expect(last.key).toMatch(new RegExp(`^${PREFIX}${db}_1\\.0\\.2_`));
    const leftover = await uploadsUnder(last.key!);

    // The store comes back; Temporal retries with the last heartbeat's details.
    await proxy.restart();
    const done = await inActivity(() => acts.backupDatabase({ workflowId, version: '1.0.2' }), {
      heartbeatDetails: last,
    });
    expect(done.reused).toBe(false);
    expect(done.bytes).toBeGreaterThan(12 * 1024 * 1024); // the cut was mid-upload
    expect(await keysUnder(`${PREFIX}${db}_`)).toEqual([done.key]);
    expect(await uploadsUnder(`${PREFIX}${db}_`)).toBe(0);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: done.key }));
    expect([head.ContentLength, head.Metadata?.sha256]).toEqual([done.bytes, done.sha256]);
    console.log(
      `S3 cut after ${(proxy.cutAt / 1024 / 1024).toFixed(1)} MiB: ${leftover} unfinished upload(s) left by the failed attempt, aborted by the retry; retried backup ${done.bytes} bytes verified`,
    );
    proxy.cut();
  });

  test('above the single-copy limit the checksum is recorded with a multipart copy', async () => {
    const acts = activitiesFor(db, {
      verifyTables: [],
      verifyReadBack: true,
      limits: { singleCopyBytes: 5 * 1024 * 1024, copyPartBytes: 5 * 1024 * 1024 },
    });
    const r = await inActivity(() => acts.backupDatabase({ workflowId: `wf-${RUN}-mpcopy`, version: '1.0.3' }));
    expect(r).toMatchObject({ reused: false, readBack: true });
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: r.key }));
    expect(head.ETag).toMatch(/-\d+"$/);
    expect([head.ContentLength, head.Metadata?.sha256]).toEqual([r.bytes, r.sha256]);
  });

  test('a zstd killed mid-backup fails the backup as BackupFailed naming zstd, and leaves nothing behind', async () => {
    const env = quietEnvironment();
    const killed: number[] = [];
    env.on('heartbeat', (d: DatabaseProgress) => {
      if (d.phase !== 'dumping' || killed.length) return;
      for (const pid of childrenNamed('zstd')) {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      }
    });
    // zstd -19 takes seconds over this table: it is still compressing at the first heartbeats.
    const acts = activitiesFor(db, { verifyTables: [], codec: 'zstd', level: 19 });
    const f = await failureOf(
      inActivity(() => acts.backupDatabase({ workflowId: `wf-${RUN}-zstdkill`, version: '1.0.5' }), { env }),
    );
    expect(killed).toHaveLength(1);
    expect(f.type).toBe('BackupFailed');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe(`zstd compressing the dump of ${db} was killed by SIGKILL`);
    await new Promise((r) => setTimeout(r, 500));
    expect(await keysUnder(`${PREFIX}${db}_1.0.5_`)).toEqual([]);
    expect(await uploadsUnder(`${PREFIX}${db}_1.0.5_`)).toBe(0);
    expect(childrenNamed('zstd')).toEqual([]);
    expect(childrenNamed('pg_dump')).toEqual([]);
  });

  test('cancellation stops pg_dump and the upload and leaves nothing behind', async () => {
    const env = quietEnvironment();
    let cancelledAt = 0;
    env.on('heartbeat', (d: DatabaseProgress) => {
      if (d.phase === 'dumping' && (d.bytes ?? 0) > 0 && !cancelledAt) {
        cancelledAt = d.bytes!;
        env.cancel();
      }
    });
    const slow = new FaultyProxy({
      host: new URL(sandboxVar('S3_ENDPOINT')).hostname,
      port: Number(new URL(sandboxVar('S3_ENDPOINT')).port),
    });
    slow.bytesPerSecond = 4 * 1024 * 1024;
    await slow.start();
    const acts = activitiesFor(db, { s3: s3Client(slow.endpoint, 1), verifyTables: [] });
    const err = await inActivity(() => acts.backupDatabase({ workflowId: `wf-${RUN}-cancel`, version: '1.0.4' }), {
      env,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CancelledFailure);
    expect(cancelledAt).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 500));
    expect(await keysUnder(`${PREFIX}${db}_1.0.4_`)).toEqual([]);
    expect(await uploadsUnder(`${PREFIX}${db}_1.0.4_`)).toBe(0);
    slow.cut();
  });
});

function readStatus(field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}

async function timeCommand(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = Date.now();
  await new Promise<void>((resolve, reject) => {
    const c = spawn(file, args, { env, stdio: ['ignore', 'ignore', 'inherit'] });
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${file} exited with ${code}`))));
  });
  return Date.now() - t0;
}

test(`backup of a ${Number(process.env.BACKUP_BIG_MB ?? 20)} MB database keeps the worker's memory bounded`, async () => {
  const mb = Number(process.env.BACKUP_BIG_MB ?? 20);
  const db = await createDatabase('big');
  const dbBytes = await fillBigTable(db, mb);
  const pgEnv = { ...process.env, PGPASSWORD: decodeURIComponent(new URL(sandboxVar('DATABASE_URL')).password) };
  const conninfo = (() => {
    const u = new URL(databaseUrl(db));
    u.password = '';
    return u.toString();
  })();
  // The floor: pg_dump alone (plain format, as in the runbook) with stdout on /dev/null, and the custom format alone.
  const floorPlainMs = await timeCommand(
    path.join(PG_BIN, 'pg_dump'),
    ['--no-password', `--dbname=${conninfo}`],
    pgEnv,
  );
  const floorCustomMs = await timeCommand(
    path.join(PG_BIN, 'pg_dump'),
    ['--no-password', '-Fc', '-Z1', `--dbname=${conninfo}`],
    pgEnv,
  );

  const acts = activitiesFor(db, { verifyTables: ['big_messages'] });
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let hwmReset = false;
  try {
    writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM, the kernel's peak RSS
    hwmReset = true;
  } catch {
    // Not permitted here: fall back to sampling.
  }
  let sampledPeak = rssBefore;
  const sampler = setInterval(() => (sampledPeak = Math.max(sampledPeak, process.memoryUsage().rss)), 20);
  const t0 = Date.now();
  const r = await inActivity(() => acts.backupDatabase({ workflowId: `wf-${RUN}-big`, version: '1.0.0' }));
  const backupMs = Date.now() - t0;
  clearInterval(sampler);
  const peak = hwmReset ? Math.max(readStatus('VmHWM'), sampledPeak) : sampledPeak;
  const MiB = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  console.log(
    [
      `backup of ${db}: database ${MiB(dbBytes)} (pg_database_size), object ${MiB(r.bytes)} in ${backupMs} ms`,
      `  floor pg_dump > /dev/null: ${floorPlainMs} ms (ratio ${(backupMs / floorPlainMs).toFixed(2)}x); pg_dump -Fc -Z1 > /dev/null: ${floorCustomMs} ms (ratio ${(backupMs / floorCustomMs).toFixed(2)}x)`,
      `  worker RSS: ${MiB(rssBefore)} before, peak ${MiB(peak)} during (+${MiB(peak - rssBefore)}; ${hwmReset ? 'VmHWM after reset via /proc/self/clear_refs' : 'sampled every 20 ms'})`,
      `  rows: ${JSON.stringify(r.rowCounts)}`,
    ].join('\n'),
  );
  expect(r.reused).toBe(false);
  expect(r.rowCounts?.big_messages).toBe(Math.max(1, Math.round(mb * 5200)));
  // Bounded by the upload's parts (8 MiB x 5) and stream buffers, not by the database size.
  expect(peak - rssBefore).toBeLessThan(150 * 1024 * 1024);
}, 1_800_000);
