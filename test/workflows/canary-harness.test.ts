/**
 * The harness on the time-skipping server: a canary with three 5-minute soaks
 * and an approval gate before 100% finishes in a moment of real time, and
 * the approve signal opens the gate.
 */
import { Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { canaryWorkflow } from '../../src/workflows/canary';
import { parentIdOf, startAsChild } from '../helpers/child';
import { statusQuery, approveSignal } from '../../src/workflows/messages';
import { fakeActivities } from '../helpers/fake-activities';
import { testPlan } from '../helpers/plan';
import { timeSkippingEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
}, 60_000);
afterAll(async () => {
  await env?.teardown();
});

test('soak timers are skipped and the approve signal opens the gate before 100%', async () => {
  const plan = testPlan({ version: '1.0.1', canary: { approval: 'before-full' } });
  const fake = fakeActivities({ plan });
  const taskQueue = uniqueQueue();
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: fake.activities,
  });
  const realStart = Date.now();
  await worker.runUntil(async () => {
    const handle = await startAsChild(env.client, canaryWorkflow, {
      taskQueue,
      workflowId: `canary-${taskQueue}`,
      args: [{ version: '1.0.1', plan, searchAttributes: false }],
    });
    const workflowStart = await env.currentTimeMs();
    // Three 5-minute soaks (5%, 25%, 50%) pass in skipped time, then the gate waits.
    await env.sleep('16m');
    const waiting = await handle.query(statusQuery);
    expect(waiting.phase).toBe('awaiting-approval');
    expect(waiting.canary?.weight).toBe(50);
    expect(waiting.waitingFor?.commands?.[0]).toContain(`deployctl approve ${parentIdOf(`canary-${taskQueue}`)}`);
    await handle.signal(approveSignal, { by: 'alice', note: 'dashboards are green' });
    const result = await handle.result();
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    expect(result.status.approvals).toEqual([expect.objectContaining({ by: 'alice', note: 'dashboards are green' })]);
    expect((await env.currentTimeMs()) - workflowStart).toBeGreaterThanOrEqual(15 * 60_000);
  });
  expect(Date.now() - realStart).toBeLessThan(60_000);
  expect(fake.count('promoteCanary')).toBe(1);
  expect(fake.count('abortCanary')).toBe(0);
}, 120_000);
