/**
 * Issue 16 item 1: how a migration tool's status output is read (the command
 * migrator's rule). The outputs are the real tools' own, as Prisma 6.19 and
 * dbmate 2.36 print them against PostgreSQL 15; the same tools run for real
 * in test/integration/database-migrations.test.ts.
 */
import { readMigrationStatus } from '../../src/domain/migration-status';
import { migrationsSchema } from '../../src/domain/config';

const PRISMA = { pendingPattern: '^(\\d+_\\w+)$', pendingExitCodes: [1] };
const DBMATE = { pendingPattern: '^\\[ \\] (\\S+)$', pendingExitCodes: [1] };

const prismaPending = `Prisma schema loaded from prisma/schema.prisma
Datasource "db": PostgreSQL database "ai_saas_prod", schema "public" using driver adapter "@prisma/adapter-pg"

2 migrations found in prisma/migrations
Following migrations have not yet been applied:
20260101000000_init
20260102000000_add_flag

To apply migrations in development run prisma migrate dev.
To apply migrations in production run prisma migrate deploy.`;

test('issue 16 item 1: Prisma lists its pending migrations by name and exits 1', () => {
  expect(readMigrationStatus(prismaPending, 1, PRISMA)).toEqual({
    ok: true,
    pending: ['20260101000000_init', '20260102000000_add_flag'],
  });
  expect(
    readMigrationStatus('2 migrations found in prisma/migrations\n\nDatabase schema is up to date!', 0, PRISMA),
  ).toEqual({ ok: true, pending: [] });
});

test('issue 16 item 1: dbmate marks pending files with [ ], with or without --exit-code', () => {
  const out = '[X] 20261101000000_a.sql\n[ ] 20261102000000_b.sql\n\nApplied: 1\nPending: 1';
  expect(readMigrationStatus(out, 1, DBMATE)).toEqual({ ok: true, pending: ['20261102000000_b.sql'] });
  expect(readMigrationStatus(out, 0, DBMATE)).toEqual({ ok: true, pending: ['20261102000000_b.sql'] });
});

test('issue 16 item 1: an exit code outside the rule is the status command failing, with its last line', () => {
  expect(readMigrationStatus('Error: pq: SSL is not enabled on the server', 2, DBMATE)).toEqual({
    ok: false,
    problem: 'exited with 2 (0 means up to date, 1 means pending): Error: pq: SSL is not enabled on the server',
  });
  expect(readMigrationStatus('killed', null, DBMATE)).toMatchObject({ ok: false });
});

test('issue 16 item 1: "pending" by exit code with no line naming a migration is a rule that does not fit the tool', () => {
  expect(readMigrationStatus('Error: P1001: cannot reach database server', 1, PRISMA)).toEqual({
    ok: false,
    problem:
      'exited with 1 (pending) but no line matched pendingPattern /^(\\d+_\\w+)$/: fix the pattern, or the status command failed: Error: P1001: cannot reach database server',
  });
});

test('a pattern without a group names the migration by the whole line, trimmed, once each', () => {
  expect(
    readMigrationStatus(' pending a.sql \npending a.sql\npending b.sql', 0, {
      pendingPattern: 'pending \\S+',
      pendingExitCodes: [],
    }),
  ).toEqual({
    ok: true,
    pending: ['pending a.sql', 'pending b.sql'],
  });
});

describe('issue 16 item 1: the command mode config', () => {
  const parse = (migrations: unknown) => migrationsSchema.safeParse(migrations);

  test('a status command needs a pendingPattern that compiles, and exit codes that are not 0', () => {
    const noPattern = parse({ mode: 'command', command: ['dbmate', 'up'], statusCommand: ['dbmate', 'status'] });
    expect(noPattern.success).toBe(false);
    expect(JSON.stringify(noPattern.error?.issues)).toContain('statusCommand needs pendingPattern');
    const badRegex = parse({ mode: 'command', command: ['x'], statusCommand: ['y'], pendingPattern: '([' });
    expect(JSON.stringify(badRegex.error?.issues)).toContain('a regular expression');
    expect(
      parse({ mode: 'command', command: ['x'], statusCommand: ['y'], pendingPattern: 'p', pendingExitCodes: [0] })
        .success,
    ).toBe(false);
  });

  test('env and passEnv say what the command gets; nothing else of the worker environment', () => {
    const ok = parse({
      mode: 'command',
      command: ['prisma', 'migrate', 'deploy'],
      statusCommand: ['prisma', 'migrate', 'status'],
      pendingPattern: '^(\\d+_\\w+)$',
      pendingExitCodes: [1],
      env: { CHECKPOINT_DISABLE: '1' },
      passEnv: ['NODE_PATH'],
    });
    expect(ok.success).toBe(true);
    expect(parse({ mode: 'command', command: ['x'], passEnv: ['lower-case'] }).success).toBe(false);
    expect(parse({ mode: 'command', command: ['x'], env: { DATABASE_URL: 'postgres://elsewhere' } }).success).toBe(
      false,
    );
  });
});
