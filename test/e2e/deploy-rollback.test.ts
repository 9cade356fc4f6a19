/**
 * Failure and recovery end to end: a canary that goes bad at 25% (sandbox
 * fault injection) is rolled back — traffic to stable 100, images back to
 * v1.0.0 — and the database is restored from the pre-deploy backup only
 * after a person approves. Then a blue-green release and a manual rollback.
 */
import { Client } from 'pg';
import { approveSignal, statusQuery } from '../../src/workflows/messages';
import { deployWorkflow } from '../../src/workflows/deploy';
import { rollbackWorkflow } from '../../src/workflows/rollback';
import { recordHistory } from '../helpers/histories';
import { sandboxVar } from '../helpers/sandbox';
import { adminKube, deploymentImages, sandboxCli, startE2E, virtualServiceWeights, type E2E } from '../helpers/e2e';
import { waitFor } from '../helpers/wait';
import { resultOf } from '../../src/workflows/outcome';

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E();
}, 180_000);
afterAll(async () => {
  await sandboxCli('fault', '--clear').catch(() => undefined);
  await e2e?.stop();
  // Other suites start from v1.0.0 everywhere.
  await sandboxCli('reset');
}, 180_000);

async function migrations(): Promise<string[]> {
  const db = new Client({ connectionString: sandboxVar('DATABASE_URL') });
  await db.connect();
  try {
    return (await db.query<{ filename: string }>('SELECT filename FROM schema_migrations ORDER BY filename')).rows.map(
      (r) => r.filename,
    );
  } finally {
    await db.end();
  }
}

const V100 = (s: string) => `${sandboxVar('REGISTRY')}/ai-saas-${s}:1.0.0`;

test('a canary that fails analysis at 25% rolls back traffic and images; approve restores the database', async () => {
  await sandboxCli('reset');
  const workflowId = `deploy-production-bad-${Date.now()}`;
  const handle = await e2e.env.client.workflow.start(deployWorkflow, {
    taskQueue: e2e.taskQueue,
    workflowId,
    args: [{ version: '1.0.1', requestedBy: 'e2e', canary: { soak: '20s', analysisInterval: '4s' } }],
  });
  const canary = e2e.env.client.workflow.getHandle(`${workflowId}-canary`);
  await waitFor(
    async () => (await canary.query(statusQuery).catch(() => undefined))?.canary?.weight === 25,
    180_000,
    500,
  );
  await sandboxCli('fault', '--track', 'canary', '--error-rate', '0.5');
  // The rollback child waits for the database decision: migrations ran.
  const rollback = e2e.env.client.workflow.getHandle(`${workflowId}-rollback`);
  const waiting = await waitFor(
    async () => {
      const s = await rollback.query(statusQuery).catch(() => undefined);
      return s?.phase === 'awaiting-db-decision' ? s : undefined;
    },
    180_000,
    500,
  );
  expect(waiting.waitingFor?.commands?.[0]).toContain(`deployctl approve ${workflowId}`);
  // Nothing is restored before the decision.
  expect(await migrations()).toContain('0002_add_email_verified_at_index.sql');
  expect(await virtualServiceWeights()).toEqual({ stable: 100, canary: 0 });
  const images = await deploymentImages();
  for (const s of ['auth-service', 'chat-service', 'billing-service', 'analytics-service', 'api-gateway', 'frontend'])
    expect(images[s]).toBe(V100(s));
  expect(images['api-gateway-canary']).toBeDefined();
  const canaryDeployment = await adminKube().apps.readNamespacedDeployment({
    name: 'api-gateway-canary',
    namespace: 'ai-saas',
  });
  expect(canaryDeployment.spec?.replicas).toBe(0);

  await handle.signal(approveSignal, { by: 'oncall', note: 'restore the pre-deploy backup' });
  const result = await resultOf(handle.result());
  await sandboxCli('fault', '--clear');
  expect(result.outcome).toBe('rolled-back');
  expect(result.reason).toMatch(/analysis failed/);
  expect(await migrations()).toEqual(['0001_baseline.sql']);
  const rb = await rollback.result();
  expect(rb.database).toBe('restored');
  expect(rb.status.approvals[0]).toMatchObject({ by: 'oncall' });
  await recordHistory(e2e.env.client, workflowId, 'deployWorkflow--canary-rolled-back');
  await recordHistory(e2e.env.client, `${workflowId}-canary`, 'canaryWorkflow--analysis-failed');
  await recordHistory(e2e.env.client, `${workflowId}-rollback`, 'rollbackWorkflow--automatic-restore-approved');
}, 600_000);

test('blue-green: green comes up, the Service switches, blue scales down; a manual rollback returns to the previous revision', async () => {
  await sandboxCli('reset');
  const bgId = `deploy-production-bg-${Date.now()}`;
  const result = await e2e.env.client.workflow.execute(deployWorkflow, {
    taskQueue: e2e.taskQueue,
    workflowId: bgId,
    args: [
      {
        version: '1.0.1',
        strategy: 'blue-green',
        requestedBy: 'e2e',
        migrate: false,
        blueGreen: { monitor: '8s' },
        canary: { analysisInterval: '4s' },
      },
    ],
  });
  if (result.outcome !== 'succeeded') console.error(JSON.stringify(result.status.steps, null, 2));
  expect(result.outcome).toBe('succeeded');
  const { core, apps } = adminKube();
  const svc = await core.readNamespacedService({ name: 'api-gateway', namespace: 'ai-saas' });
  expect(svc.spec?.selector).toEqual({ app: 'api-gateway', version: 'green' });
  const green = await apps.readNamespacedDeployment({ name: 'api-gateway-green', namespace: 'ai-saas' });
  expect(green.spec?.template.spec?.containers[0].image).toMatch(/ai-saas-api-gateway@sha256:/);
  const blue = await apps.readNamespacedDeployment({ name: 'api-gateway', namespace: 'ai-saas' });
  expect(blue.spec?.replicas).toBe(0);

  // Manual rollback of the rolling services to their previous revision (kubectl rollout undo).
  await recordHistory(e2e.env.client, bgId, 'deployWorkflow--blue-green-succeeded');
  await recordHistory(e2e.env.client, `${bgId}-blue-green`, 'blueGreenWorkflow--switched');
  const rollbackId = `rollback-production-${Date.now()}`;
  const rb = await e2e.env.client.workflow.execute(rollbackWorkflow, {
    taskQueue: e2e.taskQueue,
    workflowId: rollbackId,
    args: [{ environment: 'production', services: ['auth-service', 'frontend'], reason: 'e2e', requestedBy: 'e2e' }],
  });
  expect(rb.outcome).toBe('rolled-back');
  const images = await deploymentImages();
  expect(images['auth-service']).toBe(V100('auth-service'));
  expect(images.frontend).toBe(V100('frontend'));
  expect(images['chat-service']).toMatch(/@sha256:/);
  await recordHistory(e2e.env.client, rollbackId, 'rollbackWorkflow--manual-previous');
}, 600_000);

test('issue 16 pod logs: a fault that makes auth-service log errors fails post-deploy verification through pods/log, and the deployment rolls back', async () => {
  await sandboxCli('reset');
  await sandboxCli('fault', '--log-errors', 'auth-service');
  const workflowId = `deploy-production-logs-${Date.now()}`;
  const result = await resultOf(
    e2e.env.client.workflow.execute(deployWorkflow, {
      taskQueue: e2e.taskQueue,
      workflowId,
      args: [{ version: '1.0.1', strategy: 'rolling', requestedBy: 'e2e', migrate: false }],
    }),
  );
  await sandboxCli('fault', '--clear');
  expect(result.outcome).toBe('rolled-back');
  // The new auth-service pods' logs, read from the apiserver (kwok serves the demo's container logs).
  expect(result.reason).toMatch(
    /auth-service: \d+ error lines? in the new pods' logs \(limit \d+\): auth-service-\S+ \d+ \(e\.g\. "ERROR connection to postgres reset by peer \(fault injected\)"\)/,
  );
  expect(result.reason).not.toMatch(/logs unavailable/);
  expect((await deploymentImages())['auth-service']).toBe(V100('auth-service'));
}, 600_000);

test('issue 16 item 3: blue-green smoke-tests the new colour through its preview before the switch; a broken preview never gets traffic', async () => {
  await sandboxCli('reset');
  await sandboxCli('fault', '--preview-fail', 'green signs nobody in');
  const workflowId = `deploy-production-bg-preview-${Date.now()}`;
  const result = await resultOf(
    e2e.env.client.workflow.execute(deployWorkflow, {
      taskQueue: e2e.taskQueue,
      workflowId,
      args: [
        { version: '1.0.1', strategy: 'blue-green', requestedBy: 'e2e', migrate: false, blueGreen: { monitor: '8s' } },
      ],
    }),
  );
  await sandboxCli('fault', '--clear');
  expect(result.outcome).toBe('rolled-back');
  expect(result.reason).toMatch(/smoke checks failed on green: .*503/);
  const { core } = adminKube();
  // The live Service never left blue; the preview Service is what pointed at green.
  expect((await core.readNamespacedService({ name: 'api-gateway', namespace: 'ai-saas' })).spec?.selector).toEqual({
    app: 'api-gateway',
    version: 'blue',
  });
  expect(
    (await core.readNamespacedService({ name: 'api-gateway-preview', namespace: 'ai-saas' })).spec?.selector,
  ).toEqual({ app: 'api-gateway', version: 'green' });
}, 600_000);
