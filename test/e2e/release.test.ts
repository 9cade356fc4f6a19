/**
 * One release promoted from staging to production on the two-cluster
 * sandbox: two control planes, two databases, two Prometheus servers, two
 * demo platforms. The release builds once, staging runs the digests and
 * soaks with its analysis, a person approves, production runs the same
 * digests; each stage migrates only its own database. Then a production
 * canary that goes bad: production rolls back, 1.0.1 is quarantined, and a
 * new release of it and a rollback to it are refused.
 */
import { Client } from 'pg';
import { abortSignal, approveSignal, statusQuery } from '../../src/workflows/messages';
import { resultOf } from '../../src/workflows/outcome';
import { quarantineWorkflow } from '../../src/workflows/quarantine';
import { releaseWorkflow } from '../../src/workflows/release';
import { rollbackWorkflow } from '../../src/workflows/rollback';
import { environmentConfig } from '../../src/domain/environment-config';
import type { DeployConfig } from '../../src/domain/config';
import { sandboxVarOf, type SandboxEnvironmentName } from '../helpers/sandbox';
import { deploymentImages, sandboxCli, startE2E, type E2E } from '../helpers/e2e';
import { waitFor } from '../helpers/wait';

const SERVICES = ['auth-service', 'chat-service', 'billing-service', 'analytics-service', 'api-gateway', 'frontend'];

/** Staging rolls out by a rolling update (quicker); production by its canary; a 15 s soak with analysis every 5 s between. */
function releaseConfig(c: DeployConfig): DeployConfig {
  const staging = c.environments.staging;
  const production = c.environments.production;
  return {
    ...c,
    release: { ...c.release, quarantinePrefix: `e2e-quarantine/${process.pid}-${Date.now()}/` },
    environments: {
      staging: {
        ...staging,
        overrides: { ...staging.overrides, rollout: { ...staging.overrides?.rollout, strategy: 'rolling' } },
      },
      production: {
        ...production,
        promotion: { soak: 15_000, analysisInterval: 5_000, approval: true, approvalTimeout: 10 * 60_000 },
      },
    },
  };
}

let e2e: E2E;
let config: DeployConfig;
beforeAll(async () => {
  e2e = await startE2E({
    config: (c) => {
      config = releaseConfig(c);
      return config;
    },
  });
}, 180_000);
afterAll(async () => {
  await sandboxCli('fault', '--env', 'production', '--clear').catch(() => undefined);
  await e2e?.stop();
  await sandboxCli('reset');
}, 180_000);

async function migrationsOf(environment: SandboxEnvironmentName): Promise<string[]> {
  const db = new Client({ connectionString: sandboxVarOf(environment, 'DATABASE_URL') });
  await db.connect();
  try {
    const r = await db.query<{ filename: string }>('SELECT filename FROM schema_migrations ORDER BY filename');
    return r.rows.map((x) => x.filename);
  } finally {
    await db.end();
  }
}

const INDEX_MIGRATION = '0002_add_email_verified_at_index.sql';

function startRelease(id: string) {
  return e2e.env.client.workflow.start(releaseWorkflow, {
    taskQueue: e2e.taskQueue,
    workflowId: id,
    args: [{ version: '1.0.1', requestedBy: 'e2e' }],
  });
}

test('release 1.0.1: staging, a soak with passing analysis, an approval, production with the same digests', async () => {
  await sandboxCli('reset');
  expect(environmentConfig(config, 'staging').database.name).toBe('ai_saas_staging');
  const id = `release-e2e-${Date.now()}`;
  const h = await startRelease(id);

  // Between the stages: staging runs 1.0.1 and is migrated; production is untouched.
  const gate = await waitFor(
    async () => {
      const s = await h.query(statusQuery).catch(() => undefined);
      return s?.phase === 'awaiting-approval' ? s : undefined;
    },
    300_000,
    500,
  );
  const images = gate.release!.images;
  expect(Object.keys(images).sort()).toEqual([...SERVICES].sort());
  for (const ref of Object.values(images)) expect(ref).toMatch(/@sha256:[0-9a-f]{64}$/);
  const staging = await deploymentImages('staging');
  for (const s of SERVICES) expect(staging[s]).toBe(images[s]);
  expect(await migrationsOf('staging')).toContain(INDEX_MIGRATION);
  expect(await migrationsOf('production')).not.toContain(INDEX_MIGRATION);
  const production = await deploymentImages('production');
  for (const s of SERVICES) expect(production[s]).toMatch(/:1\.0\.0$/);
  expect(gate.steps.find((s) => s.name === 'soak')?.detail).toMatch(/in staging, \d+ analysis runs passed/);
  expect(gate.waitingFor?.gate).toBe('promote-production');

  await h.signal(approveSignal, { by: 'alice', note: 'staging soaked clean' });
  const r = await resultOf(h.result());
  expect({ outcome: r.outcome, reason: r.reason }).toEqual({ outcome: 'succeeded' });
  expect(r.stages.map((s) => [s.environment, s.state])).toEqual([
    ['staging', 'succeeded'],
    ['production', 'succeeded'],
  ]);
  // The same digests in both clusters, checked in each apiserver.
  const after = await deploymentImages('production');
  for (const s of SERVICES) expect(after[s]).toBe(images[s]);
  expect(await migrationsOf('production')).toContain(INDEX_MIGRATION);
  // Each stage skipped the tag and the build: the release made them once.
  const stage = await e2e.env.client.workflow.getHandle(`${id}-production`).query(statusQuery);
  expect(stage.steps.find((s) => s.name === 'build and push images')).toMatchObject({ state: 'skipped' });
  expect(stage.steps.find((s) => s.name === 'release tag')).toMatchObject({ state: 'skipped' });
}, 600_000);

test('a bad production canary rolls production back, quarantines 1.0.1, and refuses a new release of it and a rollback to it', async () => {
  await sandboxCli('reset');
  // Only production's canary track goes bad; staging (rolling, no canary) is healthy.
  await sandboxCli('fault', '--env', 'production', '--track', 'canary', '--error-rate', '0.5');
  const id = `release-e2e-bad-${Date.now()}`;
  const h = await startRelease(id);
  await waitFor(
    async () => (await h.query(statusQuery).catch(() => undefined))?.phase === 'awaiting-approval',
    300_000,
    500,
  );
  await h.signal(approveSignal, { by: 'alice' });
  // Production's rollback waits for the database decision; the release forwards the answer to it.
  const rollback = e2e.env.client.workflow.getHandle(`${id}-production-rollback`);
  await waitFor(
    async () => (await rollback.query(statusQuery).catch(() => undefined))?.phase === 'awaiting-db-decision',
    300_000,
    500,
  );
  await h.signal(abortSignal, { by: 'alice', reason: 'keep the database' });
  const r = await resultOf(h.result());
  expect(r.outcome).toBe('rolled-back');
  expect(r.stages.map((s) => [s.environment, s.state])).toEqual([
    ['staging', 'succeeded'],
    ['production', 'rolled-back'],
  ]);
  const production = await deploymentImages('production');
  for (const s of SERVICES) expect(production[s]).toMatch(/:1\.0\.0$/);

  const list = await e2e.env.client.workflow.execute(quarantineWorkflow, {
    taskQueue: e2e.taskQueue,
    workflowId: `quarantine-list-${Date.now()}`,
    args: [{ action: 'list' }],
  });
  expect(list.records).toMatchObject([{ version: '1.0.1', environment: 'production', workflowId: `${id}-production` }]);

  const again = await resultOf(startRelease(`release-e2e-again-${Date.now()}`).then((x) => x.result()));
  expect(again.refused).toBe('invalid-input');
  expect(again.reason).toMatch(
    new RegExp(`1\\.0\\.1 is quarantined: .*\\(in production, by workflow ${id}-production\\)`),
  );

  const back = await resultOf(
    e2e.env.client.workflow
      .start(rollbackWorkflow, {
        taskQueue: e2e.taskQueue,
        workflowId: `rollback-e2e-${Date.now()}`,
        args: [{ environment: 'staging', toVersion: '1.0.1', requestedBy: 'e2e', reason: 'try' }],
      })
      .then((x) => x.result()),
  );
  expect(back.outcome).toBe('failed');
  expect(back.reason).toMatch(/toVersion: 1\.0\.1 is quarantined/);
}, 900_000);
