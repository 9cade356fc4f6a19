/**
 * Issue 16 item 1 end to end: the demo platform's v1.0.1 deployed with its
 * migrations run by Prisma (6, JS engine and the node-postgres adapter) and
 * by dbmate instead of the built-in migrator. Each run applies the release's
 * migration through the real tool, a fault injected into the canary fails its
 * analysis, and the rollback offers the database decision; approving it
 * restores the pre-deploy backup, which takes the tool's own record of the
 * migration with it.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { Client } from 'pg';
import type { DeployConfig } from '../../src/domain/config';
import { deployWorkflow } from '../../src/workflows/deploy';
import { approveSignal, statusQuery } from '../../src/workflows/messages';
import { resultOf } from '../../src/workflows/outcome';
import { sandboxCli, startE2E, type E2E, type E2EOptions } from '../helpers/e2e';
import { sandboxVar } from '../helpers/sandbox';
import { dbmateMigrations, PRISMA, prismaMigrations, REPO_ROOT } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

const INDEX = 'users_email_verified_at_idx';

type Migrations = DeployConfig['database']['migrations'];
const withMigrations =
  (migrations: Migrations): E2EOptions['config'] =>
  (c) => ({ ...c, database: { ...c.database, migrations } });

async function query<T extends object>(sql: string): Promise<T[]> {
  const db = new Client({ connectionString: sandboxVar('DATABASE_URL') });
  await db.connect();
  try {
    return (await db.query<T>(sql)).rows;
  } finally {
    await db.end();
  }
}

const indexExists = async () =>
  (await query<{ n: string }>(`SELECT indexname AS n FROM pg_indexes WHERE indexname = '${INDEX}'`)).length === 1;

let e2e: E2E | undefined;
afterEach(async () => {
  await sandboxCli('fault', '--clear').catch(() => undefined);
  await e2e?.stop();
  e2e = undefined;
}, 120_000);
afterAll(async () => {
  // Other suites start from v1.0.0 everywhere, with the built-in migrator's records only.
  await sandboxCli('reset');
}, 180_000);

/** Deploys 1.0.1, fails its canary, checks the migration is there while the rollback waits, approves the restore. */
async function failCanaryAndRestore(
  toolRecords: () => Promise<string[]>,
  migration: { applied: string; recorded: string },
): Promise<void> {
  const workflowId = `deploy-production-migrations-${Date.now()}`;
  const handle = await e2e!.env.client.workflow.start(deployWorkflow, {
    taskQueue: e2e!.taskQueue,
    workflowId,
    args: [{ version: '1.0.1', requestedBy: 'e2e', canary: { soak: '10s', analysisInterval: '2s' } }],
  });
  const canary = e2e!.env.client.workflow.getHandle(`${workflowId}-canary`);
  await waitFor(
    async () => (await canary.query(statusQuery).catch(() => undefined))?.canary?.weight === 5,
    240_000,
    500,
  );
  await sandboxCli('fault', '--track', 'canary', '--error-rate', '0.5');
  const rollback = e2e!.env.client.workflow.getHandle(`${workflowId}-rollback`);
  await waitFor(
    async () => (await rollback.query(statusQuery).catch(() => undefined))?.phase === 'awaiting-db-decision',
    180_000,
    500,
  );
  const migrated = (await handle.query(statusQuery)).steps.find((s) => s.name === 'migrations');
  expect(migrated?.detail).toBe(migration.applied);
  expect(await toolRecords()).toContain(migration.recorded);
  expect(await indexExists()).toBe(true);

  await handle.signal(approveSignal, { by: 'oncall', note: 'restore the pre-deploy backup' });
  const result = await resultOf(handle.result());
  expect(result.outcome).toBe('rolled-back');
  expect((await rollback.result()).database).toBe('restored');
  expect(await toolRecords()).not.toContain(migration.recorded);
  expect(await indexExists()).toBe(false);
}

test('Prisma: migrate deploy applies the release migration; a failed canary offers the restore, which undoes it', async () => {
  await sandboxCli('reset');
  // A database adopting Prisma marks its baseline applied once (the real CLI, in the release checkout).
  execFileSync(PRISMA, ['migrate', 'resolve', '--applied', '0_init'], {
    cwd: sandboxVar('GIT_CHECKOUT'),
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DATABASE_URL: sandboxVar('DATABASE_URL'),
      NODE_PATH: path.join(REPO_ROOT, 'node_modules'),
      CHECKPOINT_DISABLE: '1',
    },
    stdio: 'pipe',
  });
  e2e = await startE2E({
    config: withMigrations(prismaMigrations(120_000)),
  });
  await failCanaryAndRestore(
    async () =>
      (
        await query<{ n: string }>('SELECT migration_name AS n FROM _prisma_migrations WHERE finished_at IS NOT NULL')
      ).map((r) => r.n),
    { applied: '20261101000000_add_email_verified_at_index', recorded: '20261101000000_add_email_verified_at_index' },
  );
}, 900_000);

test('dbmate: up applies the release migration; a failed canary offers the restore, which undoes it', async () => {
  await sandboxCli('reset');
  e2e = await startE2E({
    config: withMigrations(dbmateMigrations(120_000)),
    // dbmate's driver asks for TLS unless the URL says otherwise; the sandbox's server has none.
    env: (e) => ({ ...e, DATABASE_URL: `${sandboxVar('DATABASE_URL')}?sslmode=disable` }),
  });
  await failCanaryAndRestore(
    async () => {
      const table = await query<{ n: string | null }>("SELECT to_regclass('dbmate_migrations')::text AS n");
      return table[0].n
        ? (await query<{ v: string }>('SELECT version AS v FROM dbmate_migrations')).map((r) => r.v)
        : [];
    },
    { applied: '20261101000000_add_email_verified_at_index.sql', recorded: '20261101000000' },
  );
}, 900_000);
