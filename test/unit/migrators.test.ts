/**
 * The Migrator seam without a database: the factory picks by
 * config.database.migrations.mode, DatabaseDeps.migrators registers a
 * throwaway migrator, and the activities add `mode` and duration around
 * whatever it answers. Migrators against PostgreSQL:
 * test/integration/database-migrations.test.ts.
 */
import * as path from 'node:path';
import {
  databaseActivities,
  type DatabaseDeps,
  type Migrator,
  type MigratorFactory,
} from '../../src/activities/database';
import { createMigrator, type MigratorDeps } from '../../src/activities/database/migrators';
import { BuiltinMigrator } from '../../src/activities/database/migrators/builtin';
import { CommandMigrator } from '../../src/activities/database/migrators/command';
import { loadConfig } from '../../src/load-config';
import { REPO_ROOT } from '../helpers/tools';

const base = loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), {});
const migratorDeps: MigratorDeps = {
  target: () => {
    throw new Error('no database in these tests');
  },
  env: {},
};

function activities(migrations: unknown, migrators?: DatabaseDeps['migrators']) {
  return databaseActivities({
    config: {
      database: { ...base.database, migrations: migrations as DatabaseDeps['config']['database']['migrations'] },
      backup: base.backup,
    },
    databaseUrl: 'postgres://app@127.0.0.1:5432/ai_saas_prod',
    s3: undefined as never, // migrations never touch the bucket
    releaseDir: (commit) => Promise.resolve(`/releases/${commit}`),
    ...(migrators ? { migrators } : {}),
  });
}

test('each mode of the schema has its migrator', () => {
  expect(createMigrator({ mode: 'builtin', directory: 'migrations' }, migratorDeps)).toBeInstanceOf(BuiltinMigrator);
  expect(
    createMigrator(
      { mode: 'command', command: ['true'], pendingExitCodes: [], env: {}, passEnv: [], timeout: 1000 },
      migratorDeps,
    ),
  ).toBeInstanceOf(CommandMigrator);
});

test('a mode without a migrator is ConfigInvalid, naming the known ones', () => {
  const config = { mode: 'flyway' } as unknown as Parameters<typeof createMigrator>[0];
  expect(() => createMigrator(config, migratorDeps)).toThrow(
    'database.migrations.mode "flyway" names no provider: use builtin or command',
  );
  expect(() => createMigrator(config, migratorDeps)).toThrow(
    expect.objectContaining({ type: 'ConfigInvalid', nonRetryable: true }),
  );
});

test('a throwaway migrator registered through DatabaseDeps.migrators runs status and apply', async () => {
  const seen: string[] = [];
  const fake: MigratorFactory = (config, deps) => {
    expect(deps.env).toBeDefined();
    const migrator: Migrator = {
      status: async (release) => {
        seen.push(`status ${config.mode} ${release.dir}`);
        return { applied: ['0001_a.sql'], pending: ['0002_b.sql'], known: true, missing: [], outOfOrder: [] };
      },
      apply: async (release) => {
        seen.push(`apply ${release.workflowId}`);
        return {
          applied: [{ file: '0002_b.sql', checksum: 'c'.repeat(64), durationMs: 1 }],
          alreadyApplied: 1,
          changed: true,
        };
      },
    };
    return migrator;
  };
  const acts = activities({ mode: 'fake' }, { fake });
  await expect(acts.migrationStatus({ workflowId: 'wf-1', commit: 'c0ffee' })).resolves.toEqual({
    mode: 'fake',
    applied: ['0001_a.sql'],
    pending: ['0002_b.sql'],
    known: true,
    missing: [],
    outOfOrder: [],
  });
  // `changed` is the migrator's answer to the saga, passed on in the activity's result.
  await expect(acts.applyMigrations({ workflowId: 'wf-1', commit: 'c0ffee' })).resolves.toEqual({
    mode: 'fake',
    applied: [{ file: '0002_b.sql', checksum: 'c'.repeat(64), durationMs: 1 }],
    alreadyApplied: 1,
    changed: true,
    durationMs: expect.any(Number),
  });
  expect(seen).toEqual(['status fake /releases/c0ffee', 'apply wf-1']);
});

test('an injected migrator replaces a built-in one of the same name', async () => {
  const replacement: MigratorFactory = () => ({
    status: async () => ({ applied: [], pending: [], known: true, missing: [], outOfOrder: [] }),
    apply: async () => ({ applied: [], alreadyApplied: 0, changed: false }),
  });
  const acts = activities({ mode: 'builtin', directory: 'does-not-exist' }, { builtin: replacement });
  await expect(acts.migrationStatus({ workflowId: 'wf-1', commit: 'c0ffee' })).resolves.toMatchObject({
    mode: 'builtin',
    known: true,
  });
});

test('command mode without a status command reports nothing pending and nothing known (as before the split)', async () => {
  const acts = activities({ mode: 'command', command: ['true'], timeout: 1000 });
  await expect(acts.migrationStatus({ workflowId: 'wf-1', commit: 'c0ffee' })).resolves.toEqual({
    mode: 'command',
    applied: [],
    pending: [],
    known: false,
    missing: [],
    outOfOrder: [],
  });
});

test('the request is checked before any migrator runs', async () => {
  const notReached: MigratorFactory = () => {
    throw new Error('not reached');
  };
  const acts = activities({ mode: 'fake' }, { fake: notReached });
  await expect(acts.migrationStatus({ workflowId: '', commit: 'c0ffee' })).rejects.toThrow('workflowId is required');
  await expect(acts.applyMigrations({ workflowId: 'wf-1', commit: '' })).rejects.toThrow('commit is required');
});
