/**
 * The migration activities against the sandbox's PostgreSQL 15, each test in
 * a database of its own (ai_saas_it_*, dropped afterwards) with migration
 * folders written by the test; the real release's migrations are copied from
 * the sandbox's git checkout.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import type { DatabaseProgress } from '../../src/activities/contracts';
import { databaseActivities } from '../../src/activities/database';
import type { DeployConfig } from '../../src/domain/config';
import { CREATE_MIGRATIONS_TABLE_SQL } from '../../src/domain/migrations';
import { loadConfig } from '../../src/load-config';
import { sandboxVar } from '../helpers/sandbox';
import { dbmateMigrations, prismaMigrations, REPO_ROOT } from '../helpers/tools';

jest.setTimeout(120_000);

const RUN = randomBytes(4).toString('hex');
const created: string[] = [];
const folders: string[] = [];

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
  const name = `ai_saas_it_mig_${what}_${RUN}`;
  await admin('postgres', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin('postgres', `CREATE DATABASE ${name} OWNER app`);
  created.push(name);
  return name;
}

/** A release checkout with `migrations/` holding the given files. */
function release(files: Record<string, string>): string {
  const root = mkdtempSync(path.join(tmpdir(), 'release-'));
  folders.push(root);
  mkdirSync(path.join(root, 'migrations'));
  for (const [name, sql] of Object.entries(files)) writeFileSync(path.join(root, 'migrations', name), sql);
  return root;
}

function databaseUrl(db: string): string {
  const u = new URL(sandboxVar('DATABASE_URL'));
  u.pathname = `/${db}`;
  return u.toString();
}

type Migrations = DeployConfig['database']['migrations'];

function activitiesFor(
  db: string,
  root: string,
  o: { migrations?: Migrations; migrationLockTimeout?: number; urlQuery?: string; env?: NodeJS.ProcessEnv } = {},
) {
  const base = loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), {
    ...process.env,
    S3_ENDPOINT: sandboxVar('S3_ENDPOINT'),
  });
  return databaseActivities({
    config: {
      database: {
        ...base.database,
        name: db,
        migrations: o.migrations ?? base.database.migrations,
        migrationLockTimeout: o.migrationLockTimeout ?? base.database.migrationLockTimeout,
      },
      backup: base.backup,
    },
    databaseUrl: databaseUrl('ai_saas_prod') + (o.urlQuery ?? ''),
    s3: undefined as never, // migrations never touch the bucket
    releaseDir: (commit) =>
      commit === 'c0ffee' ? Promise.resolve(root) : Promise.reject(new Error(`unknown commit ${commit}`)),
    ...(o.env ? { env: o.env } : {}),
  });
}

async function inActivity<R>(fn: () => Promise<R>, beats?: DatabaseProgress[]): Promise<R> {
  const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
  if (beats) env.on('heartbeat', (d: DatabaseProgress) => beats.push(d));
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

async function publicTables(db: string): Promise<string[]> {
  const rows = await admin<{ t: string }>(
    db,
    "SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
  );
  return rows.map((r) => r.t);
}

async function recorded(
  db: string,
): Promise<{ filename: string; checksum: string; applied_by: string; duration_ms: number }[]> {
  return admin(db, 'SELECT filename, checksum, applied_by, duration_ms FROM schema_migrations ORDER BY filename');
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

afterAll(async () => {
  for (const db of created)
    await admin('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch(() => undefined);
  for (const f of folders) rmSync(f, { recursive: true, force: true });
});

test("status of ai_saas_prod from the sandbox's release checkout (read-only): the baseline's recorded checksum matches, 0002 is pending", async () => {
  const s = await inActivity(() =>
    activitiesFor('ai_saas_prod', sandboxVar('GIT_CHECKOUT')).migrationStatus({
      workflowId: `wf-${RUN}`,
      commit: 'c0ffee',
    }),
  );
  expect(s.applied).toContain('0001_baseline.sql');
  // Another test run may have applied it to ai_saas_prod already; either way it is never "changed".
  expect(['0002_add_email_verified_at_index.sql', undefined]).toContain(s.pending[0]);
});

describe("the release's migrations on a copy of the platform", () => {
  let db: string;
  let root: string;

  beforeAll(async () => {
    db = await createDatabase('release');
    root = mkdtempSync(path.join(tmpdir(), 'release-'));
    folders.push(root);
    mkdirSync(path.join(root, 'migrations'));
    for (const f of ['0001_baseline.sql', '0002_add_email_verified_at_index.sql']) {
      copyFileSync(path.join(sandboxVar('GIT_CHECKOUT'), 'migrations', f), path.join(root, 'migrations', f));
    }
    // The sandbox's v1.0.0 state: the baseline applied and recorded.
    const baseline = readFileSync(path.join(root, 'migrations', '0001_baseline.sql'), 'utf8');
    await admin(
      db,
      `SET ROLE app;\n${baseline}\n${CREATE_MIGRATIONS_TABLE_SQL};\nINSERT INTO schema_migrations (filename, checksum, applied_by) VALUES ('0001_baseline.sql', '${sha256(baseline)}', 'sandbox');`,
    );
  });

  test('status lists the pending file for dry runs and approval messages', async () => {
    const s = await inActivity(() =>
      activitiesFor(db, root).migrationStatus({ workflowId: `wf-${RUN}`, commit: 'c0ffee' }),
    );
    expect(s).toEqual({
      mode: 'builtin',
      applied: ['0001_baseline.sql'],
      pending: ['0002_add_email_verified_at_index.sql'],
      known: true,
      missing: [],
      outOfOrder: [],
    });
  });

  test('apply runs it, records it with its checksum, and says how long it took; a second apply has nothing to do', async () => {
    const beats: DatabaseProgress[] = [];
    const r = await inActivity(
      () => activitiesFor(db, root).applyMigrations({ workflowId: `wf-${RUN}`, commit: 'c0ffee' }),
      beats,
    );
    expect(r).toMatchObject({
      mode: 'builtin',
      alreadyApplied: 1,
      applied: [{ file: '0002_add_email_verified_at_index.sql', durationMs: expect.any(Number) }],
    });
    expect(r.applied[0].checksum).toBe(
      sha256(readFileSync(path.join(root, 'migrations', '0002_add_email_verified_at_index.sql'), 'utf8')),
    );
    expect(beats.some((b) => b.phase === 'migrating' && b.file === '0002_add_email_verified_at_index.sql')).toBe(true);
    const [index] = await admin<{ n: string }>(
      db,
      "SELECT count(*) AS n FROM pg_indexes WHERE indexname = 'users_email_verified_at_idx'",
    );
    expect(index.n).toBe('1');
    expect((await recorded(db)).map((m) => [m.filename, m.applied_by])).toEqual([
      ['0001_baseline.sql', 'sandbox'],
      ['0002_add_email_verified_at_index.sql', `wf-${RUN}`],
    ]);

    const again = await inActivity(() =>
      activitiesFor(db, root).applyMigrations({ workflowId: `wf-${RUN}`, commit: 'c0ffee' }),
    );
    expect(again).toMatchObject({ applied: [], alreadyApplied: 2 });
  });

  test('an applied file that changed is an error naming it, in status and apply, and nothing runs', async () => {
    const changed = release({
      '0001_baseline.sql': readFileSync(path.join(root, 'migrations', '0001_baseline.sql'), 'utf8'),
      '0002_add_email_verified_at_index.sql':
        '-- edited after it was applied\nCREATE INDEX users_email_verified_at_idx ON users (email_verified_at);\n',
      '0003_new.sql': 'CREATE TABLE should_not_exist (id int);\n',
    });
    const acts = activitiesFor(db, changed);
    const calls: (() => Promise<unknown>)[] = [
      () => acts.migrationStatus({ workflowId: `wf-${RUN}`, commit: 'c0ffee' }),
      () => acts.applyMigrations({ workflowId: `wf-${RUN}`, commit: 'c0ffee' }),
    ];
    for (const call of calls) {
      const f = await failureOf(inActivity(call));
      expect(f.type).toBe('MigrationChanged');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toMatch(
        /^applied migration changed since it was applied: 0002_add_email_verified_at_index\.sql \(applied [0-9a-f]{12}…, now [0-9a-f]{12}…\)$/,
      );
    }
    expect(await publicTables(db)).not.toContain('should_not_exist');
  });

  test('an unknown commit or a badly named file is a clear non-retryable failure', async () => {
    await expect(
      inActivity(() => activitiesFor(db, root).migrationStatus({ workflowId: `wf-${RUN}`, commit: 'other' })),
    ).rejects.toThrow('unknown commit other');
    const f = await failureOf(
      inActivity(() =>
        activitiesFor(db, release({ 'fix.sql': 'SELECT 1;' })).applyMigrations({
          workflowId: `wf-${RUN}`,
          commit: 'c0ffee',
        }),
      ),
    );
    expect(f.type).toBe('MigrationFailed');
    expect(f.message).toMatch(/must start with a number.*fix\.sql/);
  });
});

test('two migrators started at once apply each file exactly once', async () => {
  const db = await createDatabase('race');
  const root = release({
    '0001_log.sql':
      "CREATE TABLE applied_log (file text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());\nINSERT INTO applied_log (file) VALUES ('0001');\n",
    '0002_slow.sql': "SELECT pg_sleep(1.5);\nINSERT INTO applied_log (file) VALUES ('0002');\n",
    '0003_table.sql': "CREATE TABLE widgets (id int PRIMARY KEY);\nINSERT INTO applied_log (file) VALUES ('0003');\n",
  });
  const beatsA: DatabaseProgress[] = [];
  const beatsB: DatabaseProgress[] = [];
  const [a, b] = await Promise.all([
    inActivity(() => activitiesFor(db, root).applyMigrations({ workflowId: `wf-${RUN}-a`, commit: 'c0ffee' }), beatsA),
    inActivity(() => activitiesFor(db, root).applyMigrations({ workflowId: `wf-${RUN}-b`, commit: 'c0ffee' }), beatsB),
  ]);
  const applied = [...a.applied, ...b.applied].map((m) => m.file).sort();
  expect(applied).toEqual(['0001_log.sql', '0002_slow.sql', '0003_table.sql']);
  // One runner did the work; the other waited for the lock and then found nothing pending.
  expect([a.applied.length, b.applied.length].sort()).toEqual([0, 3]);
  expect([a.alreadyApplied, b.alreadyApplied].sort()).toEqual([0, 3]);
  const waiter = a.applied.length ? beatsB : beatsA;
  expect(waiter.filter((x) => x.phase === 'waiting-for-lock').length).toBeGreaterThan(1);
  const log = await admin<{ file: string; n: string }>(
    db,
    'SELECT file, count(*) AS n FROM applied_log GROUP BY file ORDER BY file',
  );
  expect(log).toEqual([
    { file: '0001', n: '1' },
    { file: '0002', n: '1' },
    { file: '0003', n: '1' },
  ]);
  expect((await recorded(db)).map((m) => m.filename)).toEqual(['0001_log.sql', '0002_slow.sql', '0003_table.sql']);
  console.log(
    `two migrators: durations ${JSON.stringify([...a.applied, ...b.applied].map((m) => [m.file, m.durationMs]))}`,
  );
});

test('a failing migration rolls its transaction back, leaves the schema as it was, stops, and names the file, line and error', async () => {
  const db = await createDatabase('failing');
  const good = {
    '0001_users.sql':
      "CREATE TABLE accounts (id int PRIMARY KEY, name text NOT NULL);\nINSERT INTO accounts VALUES (1, 'a');\n",
  };
  await inActivity(() =>
    activitiesFor(db, release(good)).applyMigrations({ workflowId: `wf-${RUN}`, commit: 'c0ffee' }),
  );
  const tablesBefore = await publicTables(db);
  const [columnsBefore] = await admin<{ cols: string }>(
    db,
    "SELECT string_agg(column_name, ',' ORDER BY column_name) AS cols FROM information_schema.columns WHERE table_name = 'accounts'",
  );

  const root = release({
    ...good,
    '0002_bad.sql': [
      '-- Adds orders and a column; the last statement fails at run time.',
      'CREATE TABLE orders (id int PRIMARY KEY, account_id int REFERENCES accounts (id));',
      'ALTER TABLE accounts ADD COLUMN email text;',
      "INSERT INTO orders VALUES (1, 1), ('two', 1);",
      '',
    ].join('\n'),
    '0003_after.sql': 'CREATE TABLE never_reached (id int);\n',
  });
  const f = await failureOf(
    inActivity(() => activitiesFor(db, root).applyMigrations({ workflowId: `wf-${RUN}`, commit: 'c0ffee' })),
  );
  expect(f.type).toBe('MigrationFailed');
  expect(f.nonRetryable).toBe(true);
  expect(f.message).toBe(
    'migration 0002_bad.sql:4:36: invalid input syntax for type integer: "two" (SQLSTATE 22P02) (rolled back)',
  );
  expect(f.details?.[0]).toMatchObject({
    file: '0002_bad.sql',
    line: 4,
    column: 36,
    sqlstate: '22P02',
    rolledBack: true,
  });

  expect(await publicTables(db)).toEqual(tablesBefore);
  const [columnsAfter] = await admin<{ cols: string }>(
    db,
    "SELECT string_agg(column_name, ',' ORDER BY column_name) AS cols FROM information_schema.columns WHERE table_name = 'accounts'",
  );
  expect(columnsAfter).toEqual(columnsBefore);
  expect((await recorded(db)).map((m) => m.filename)).toEqual(['0001_users.sql']);

  // A syntax error is located the same way.
  const syntax = release({ ...good, '0002_typo.sql': 'CREATE TABLE t1 (id int);\n\nCREATE TABLEE t2 (id int);\n' });
  const g = await failureOf(
    inActivity(() => activitiesFor(db, syntax).applyMigrations({ workflowId: `wf-${RUN}`, commit: 'c0ffee' })),
  );
  expect(g.message).toBe(
    'migration 0002_typo.sql:3:8: syntax error at or near "TABLEE" (SQLSTATE 42601) (rolled back)',
  );
  expect(await publicTables(db)).toEqual(tablesBefore);
});

test('issue 16 item 7: a migration containing COMMIT is refused before anything runs, and says why', async () => {
  const db = await createDatabase('commit');
  const root = release({
    '0001_t.sql': 'CREATE TABLE t (id int);\n',
    '0002_commit.sql': [
      '-- Half of this would be committed by its own COMMIT, then the last statement fails.',
      'CREATE TABLE half (id int);',
      'COMMIT;',
      "INSERT INTO t VALUES ('not a number');",
      '',
    ].join('\n'),
  });
  const f = await failureOf(
    inActivity(() => activitiesFor(db, root).applyMigrations({ workflowId: `wf-${RUN}`, commit: 'c0ffee' })),
  );
  expect(f.type).toBe('MigrationFailed');
  expect(f.nonRetryable).toBe(true);
  expect(f.message).toBe(
    'migration 0002_commit.sql:3 has COMMIT, which would commit part of the file inside the transaction it runs in: remove it, or split the file, or mark it -- deploy:no-transaction (nothing was applied)',
  );
  // Nothing ran: not even the file before it, so the release applies whole or not at all.
  expect(await publicTables(db)).not.toContain('half');
  expect(await publicTables(db)).not.toContain('t');
});

test('a file marked deploy:no-transaction runs outside a transaction (CREATE INDEX CONCURRENTLY)', async () => {
  const db = await createDatabase('notx');
  const root = release({
    '0001_t.sql': 'CREATE TABLE t (id int, v text);\n',
    '0002_index.sql': '-- deploy:no-transaction\nCREATE INDEX CONCURRENTLY t_v_idx ON t (v);\n',
  });
  const r = await inActivity(() =>
    activitiesFor(db, root).applyMigrations({ workflowId: `wf-${RUN}`, commit: 'c0ffee' }),
  );
  expect(r.applied.map((m) => m.file)).toEqual(['0001_t.sql', '0002_index.sql']);
  const [idx] = await admin<{ valid: boolean }>(
    db,
    "SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = 't_v_idx'::regclass",
  );
  expect(idx.valid).toBe(true);
});

test('a migrator that cannot get the lock in time gives up retryably, naming who holds it', async () => {
  const db = await createDatabase('locked');
  const holder = new Client({ connectionString: databaseUrl(db), application_name: 'someone-else' });
  await holder.connect();
  try {
    await holder.query("SELECT pg_advisory_lock(hashtext('deploy-pipelines/schema_migrations'))");
    const beats: DatabaseProgress[] = [];
    const f = await failureOf(
      inActivity(
        () =>
          activitiesFor(db, release({ '0001_t.sql': 'CREATE TABLE t (id int);' }), {
            migrationLockTimeout: 1500,
          }).applyMigrations({ workflowId: `wf-${RUN}`, commit: 'c0ffee' }),
        beats,
      ),
    );
    expect(f.type).toBe('MigrationLocked');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toMatch(
      /^another migrator \(someone-else pid \d+\) held the migration lock on ai_saas_it_mig_locked_\w+ for 1500ms$/,
    );
    expect(beats.every((x) => x.phase === 'waiting-for-lock')).toBe(true);
  } finally {
    await holder.end();
  }
  expect(await publicTables(db)).toEqual([]);
});

describe("command mode (the runbook's `npx prisma migrate deploy`)", () => {
  test('runs the configured command in the release checkout with DATABASE_URL in its environment, no shell', async () => {
    const db = await createDatabase('command');
    const root = release({});
    writeFileSync(path.join(root, 'marker.txt'), 'release checkout\n');
    // bash here is the configured program itself (as npx would be); the adapter spawns it without a shell.
    const script =
      'test -f marker.txt && exec psql -X -q -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "CREATE TABLE from_command (id int)" -c "SELECT \'migrated\'"';
    const migrations: Migrations = {
      mode: 'command',
      command: ['bash', '-c', script],
      statusCommand: ['bash', '-c', 'echo "pending: 0002_x"; exit 3'],
      pendingPattern: '^pending: (.+)$',
      pendingExitCodes: [3],
      env: {},
      passEnv: [],
      timeout: 30_000,
    };
    const acts = activitiesFor(db, root, { migrations });
    const s = await inActivity(() => acts.migrationStatus({ workflowId: `wf-${RUN}`, commit: 'c0ffee' }));
    expect(s).toMatchObject({ mode: 'command', known: true, pending: ['0002_x'], output: 'pending: 0002_x' });
    // The status command still says pending after the command ran: the command did not do its job.
    const f = await failureOf(inActivity(() => acts.applyMigrations({ workflowId: `wf-${RUN}`, commit: 'c0ffee' })));
    expect(f.message).toBe('the migration command exited 0 but the status command still lists 0002_x as pending');
    expect(f.details).toContainEqual(expect.objectContaining({ changed: true }));
    expect(await publicTables(db)).toEqual(['from_command']);
  });

  test('a failing command is a non-retryable failure with its error output', async () => {
    const db = await createDatabase('command_fail');
    const migrations: Migrations = {
      mode: 'command',
      command: ['bash', '-c', 'echo "Error: P3009 migrate found failed migrations" >&2; exit 1'],
      env: {},
      passEnv: [],
      pendingExitCodes: [],
      timeout: 30_000,
    };
    const f = await failureOf(
      inActivity(() =>
        activitiesFor(db, release({}), { migrations }).applyMigrations({ workflowId: `wf-${RUN}`, commit: 'c0ffee' }),
      ),
    );
    expect(f.type).toBe('MigrationFailed');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe(
      'migration command bash -c echo "Error: P3009 migrate found failed migrations" >&2; exit 1 exited with 1: Error: P3009 migrate found failed migrations',
    );
  });
});

describe('issue 16 item 1: command mode drives the real tools (Prisma 6 with its JS engine, dbmate)', () => {
  const DEMO = path.join(REPO_ROOT, 'scripts', 'sandbox', 'demo-repo');
  const wf = { workflowId: `wf-${RUN}`, commit: 'c0ffee' };

  /** A release with the demo platform's Prisma set-up (config, schema, baseline) and the given migrations. */
  function prismaRelease(migrations: Record<string, string>): string {
    const root = release({});
    cpSync(path.join(DEMO, 'prisma'), path.join(root, 'prisma'), { recursive: true });
    copyFileSync(path.join(DEMO, 'prisma.config.ts'), path.join(root, 'prisma.config.ts'));
    for (const [name, sql] of Object.entries(migrations)) {
      mkdirSync(path.join(root, 'prisma', 'migrations', name));
      writeFileSync(path.join(root, 'prisma', 'migrations', name, 'migration.sql'), sql);
    }
    return root;
  }

  const prisma: Migrations = prismaMigrations(60_000);

  test('Prisma: status names what is pending, apply runs it and says what changed, a second apply changes nothing', async () => {
    const db = await createDatabase('prisma');
    const root = prismaRelease({
      '20261101000000_add_email_verified_at_index':
        'CREATE INDEX users_email_verified_at_idx ON users (email_verified_at);\n',
    });
    const acts = activitiesFor(db, root, { migrations: prisma });
    const before = await inActivity(() => acts.migrationStatus(wf));
    expect(before).toMatchObject({
      mode: 'command',
      known: true,
      pending: ['0_init', '20261101000000_add_email_verified_at_index'],
    });
    const applied = await inActivity(() => acts.applyMigrations(wf));
    expect(applied.applied.map((a) => a.file)).toEqual(['0_init', '20261101000000_add_email_verified_at_index']);
    expect(applied.changed).toBe(true);
    expect(await publicTables(db)).toEqual([
      '_prisma_migrations',
      'conversations',
      'messages',
      'subscriptions',
      'users',
    ]);
    const names = await admin<{ n: string }>(db, 'SELECT migration_name AS n FROM _prisma_migrations ORDER BY 1');
    expect(names.map((r) => r.n)).toEqual(['0_init', '20261101000000_add_email_verified_at_index']);
    expect(await inActivity(() => acts.migrationStatus(wf))).toMatchObject({ known: true, pending: [] });
    const again = await inActivity(() => acts.applyMigrations(wf));
    expect(again).toMatchObject({ applied: [], changed: false });
  });

  test('Prisma: a failing migration is MigrationFailed that says the database may have changed (its earlier statements stay)', async () => {
    const db = await createDatabase('prisma_fail');
    const root = prismaRelease({ '20261102000000_half': 'CREATE TABLE half (id int);\nSELECT 1/0;\n' });
    const f = await failureOf(inActivity(() => activitiesFor(db, root, { migrations: prisma }).applyMigrations(wf)));
    expect(f.type).toBe('MigrationFailed');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toMatch(/^migration command .*prisma migrate deploy exited with 1: /);
    expect(f.details).toContainEqual(expect.objectContaining({ changed: true }));
    // Prisma's JS engine runs a migration's statements without a transaction: the first one stayed.
    expect(await publicTables(db)).toContain('half');
  });

  const dbmate = (extra: Partial<Extract<Migrations, { mode: 'command' }>> = {}): Migrations => ({
    ...dbmateMigrations(60_000),
    ...extra,
  });

  function dbmateRelease(files: Record<string, string>): string {
    const root = release({});
    mkdirSync(path.join(root, 'db', 'migrations'), { recursive: true });
    for (const [name, up] of Object.entries(files))
      writeFileSync(path.join(root, 'db', 'migrations', name), `-- migrate:up\n${up}\n-- migrate:down\n`);
    return root;
  }

  test('dbmate: status, apply and what it applied; a failing file stops there, in its own transaction', async () => {
    const db = await createDatabase('dbmate');
    const root = dbmateRelease({
      '20261101000000_widgets.sql': 'CREATE TABLE widgets (id int);',
      '20261102000000_gadgets.sql': 'CREATE TABLE gadgets (id int);',
    });
    // dbmate's driver asks for TLS unless the URL says otherwise.
    const acts = activitiesFor(db, root, { migrations: dbmate(), urlQuery: '?sslmode=disable' });
    expect(await inActivity(() => acts.migrationStatus(wf))).toMatchObject({
      known: true,
      pending: ['20261101000000_widgets.sql', '20261102000000_gadgets.sql'],
    });
    const applied = await inActivity(() => acts.applyMigrations(wf));
    expect(applied).toMatchObject({ mode: 'command', changed: true });
    expect(applied.applied.map((a) => a.file)).toEqual(['20261101000000_widgets.sql', '20261102000000_gadgets.sql']);

    writeFileSync(
      path.join(root, 'db', 'migrations', '20261103000000_bad.sql'),
      '-- migrate:up\nCREATE TABLE bad (id int);\nSELECT 1/0;\n-- migrate:down\n',
    );
    const f = await failureOf(inActivity(() => acts.applyMigrations(wf)));
    expect(f.type).toBe('MigrationFailed');
    expect(f.message).toContain('division by zero');
    expect(f.details).toContainEqual(expect.objectContaining({ changed: true }));
    expect(await publicTables(db)).toEqual(['dbmate_migrations', 'gadgets', 'widgets']);
  });

  test('a status command whose answer does not fit the rule fails the status, naming the rule', async () => {
    const db = await createDatabase('dbmate_tls');
    const acts = activitiesFor(db, dbmateRelease({ '1_a.sql': 'SELECT 1;' }), { migrations: dbmate() });
    const f = await failureOf(inActivity(() => acts.migrationStatus(wf)));
    expect(f.type).toBe('MigrationFailed');
    expect(f.message).toMatch(
      /^migration status command .*dbmate .* exited with 2 \(0 means up to date, 1 means pending\): Error: pq: SSL is not enabled on the server$/,
    );
  });

  test('the command gets DATABASE_URL, the variables it is given and a base environment: no other worker variable', async () => {
    const db = await createDatabase('command_env');
    const migrations: Migrations = {
      mode: 'command',
      command: ['bash', '-c', 'env | cut -d= -f1 | sort | tr "\\n" " "'],
      env: { CHECKPOINT_DISABLE: '1' },
      passEnv: ['NODE_PATH'],
      pendingExitCodes: [],
      timeout: 30_000,
    };
    const env = { PATH: process.env.PATH, HOME: '/root', NODE_PATH: '/opt/node', AWS_SECRET_ACCESS_KEY: 'not-for-you' };
    const r = await inActivity(() => activitiesFor(db, release({}), { migrations, env }).applyMigrations(wf));
    const names = r.output!.trim().split(' ');
    expect(names).toEqual(expect.arrayContaining(['CHECKPOINT_DISABLE', 'DATABASE_URL', 'HOME', 'NODE_PATH', 'PATH']));
    expect(names).not.toContain('AWS_SECRET_ACCESS_KEY');
    // Without a status command nothing is known: the saga must treat the database as changed.
    expect(r).toMatchObject({ applied: [], changed: true });
  });
});
