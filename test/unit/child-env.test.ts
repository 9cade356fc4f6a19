/**
 * Child processes get only the variables they need: the migration command
 * (test/integration/database-migrations.test.ts) and pg_dump, pg_restore and
 * psql, which read their connection settings from PG* variables.
 */
import { childEnv } from '../../src/activities/clients/process';
import { pgTarget } from '../../src/activities/clients/postgres';

const worker = {
  PATH: '/usr/bin',
  HOME: '/home/worker',
  PGSSLMODE: 'require',
  PGPASSWORD: 'from-env',
  AWS_SECRET_ACCESS_KEY: 'not-for-pg_dump',
  SLACK_WEBHOOK_URL: 'https://hooks.example/secret',
};

test('childEnv: the base variables and the named ones, then the set ones; nothing else', () => {
  expect(childEnv(worker, ['PGSSLMODE', 'MISSING'], { DATABASE_URL: 'postgres://x' })).toEqual({
    PATH: '/usr/bin',
    HOME: '/home/worker',
    PGSSLMODE: 'require',
    DATABASE_URL: 'postgres://x',
  });
});

test("the PostgreSQL tools' environment has the PG* variables and the password, not the worker's secrets", () => {
  const t = pgTarget('postgres://app:s3cret@127.0.0.1:5432/other', 'ai_saas_prod', worker);
  expect(t.toolEnv).toEqual({
    PATH: '/usr/bin',
    HOME: '/home/worker',
    PGSSLMODE: 'require',
    PGPASSWORD: 's3cret',
    PGCONNECT_TIMEOUT: '10',
  });
});
