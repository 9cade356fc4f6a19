/**
 * The harness on the real dev server (the `temporal` CLI the project fetched
 * itself, or TEMPORAL_ADDRESS): real durable timers of a second, a query while
 * the workflow waits, and the approve signal that lets it finish.
 */
import { Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { canaryWorkflow } from '../../src/workflows/canary';
import { startAsChild } from '../helpers/child';
import { approveSignal, statusQuery } from '../../src/workflows/messages';
import { fakeActivities } from '../helpers/fake-activities';
import { testPlan } from '../helpers/plan';
import { devServerEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await devServerEnv();
}, 60_000);
afterAll(async () => {
  await env?.teardown();
});

test('real timers soak, the status query answers while waiting, and approve finishes the canary', async () => {
  const plan = testPlan({ version: '1.0.1', canary: { approval: 'before-full', soak: '1s', analysisInterval: '1s' } });
  const fake = fakeActivities({ plan });
  const taskQueue = uniqueQueue();
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: fake.activities,
  });
  await worker.runUntil(async () => {
    const started = Date.now();
    const handle = await startAsChild(env.client, canaryWorkflow, {
      taskQueue,
      workflowId: `canary-${taskQueue}`,
      args: [{ version: '1.0.1', plan }],
    });
    const waiting = await waitFor(async () => {
      const s = await handle.query(statusQuery);
      return s.phase === 'awaiting-approval' ? s : undefined;
    }, 30_000);
    // Three soaks of one second each really elapsed before the gate.
    expect(Date.now() - started).toBeGreaterThanOrEqual(3000);
    expect(waiting.canary?.weight).toBe(50);
    expect(fake.count('analyzeCanary')).toBe(3);
    await handle.signal(approveSignal, { by: 'bob' });
    const result = await handle.result();
    expect(result.outcome).toBe('promoted');
    expect(result.status.approvals.map((a) => a.by)).toEqual(['bob']);
    // The search attributes registered by the harness were upserted.
    const described = await handle.describe();
    expect(described.typedSearchAttributes.getAll().map((p) => [p.key.name, p.value])).toEqual(
      expect.arrayContaining([
        ['DeployVersion', '1.0.1'],
        ['DeployPhase', 'succeeded'],
        ['DeployStrategy', 'canary'],
      ]),
    );
  });
  expect(fake.weights).toEqual([5, 25, 50, 100]);
}, 90_000);
