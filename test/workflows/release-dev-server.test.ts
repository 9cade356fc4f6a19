/**
 * A release's 3-day staging soak on the real dev server (no time skipping):
 * the worker stops mid-soak and another starts; the release is rebuilt from
 * its history and goes on waiting for the same moment, then still answers
 * its people.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { DeploymentStatus } from '../../src/domain/status';
import { abortSignal, statusQuery } from '../../src/workflows/messages';
import { resultOf } from '../../src/workflows/outcome';
import { releaseWorkflow } from '../../src/workflows/release';
import { fakeActivities } from '../helpers/fake-activities';
import { testPlan, testReleasePlan } from '../helpers/plan';
import { devServerEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await devServerEnv();
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

test('a 3-day soak survives a worker restart: the same deadline, the same stages, and the release still answers', async () => {
  const plan = testReleasePlan(3 * 24 * 3_600_000);
  const fake = fakeActivities({
    plan: { ...testPlan({ version: '1.0.1', strategy: 'rolling' }), searchAttributes: false },
    releasePlan: plan,
  });
  const taskQueue = uniqueQueue('release-restart');
  const startWorker = async () => {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: fake.activities,
      // Each workflow task replays from history: no cached state survives the restart by accident.
      maxCachedWorkflows: 0,
    });
    return { worker, running: worker.run() };
  };

  let w = await startWorker();
  const h = await env.client.workflow.start(releaseWorkflow, {
    taskQueue,
    workflowId: `release-restart-${Date.now()}`,
    args: [{ version: '1.0.1' }],
  });
  const soaking = await waitFor(
    async () => {
      const s = await h.query(statusQuery).catch(() => undefined);
      return s?.phase === 'soaking' ? s : undefined;
    },
    60_000,
    200,
  );
  w.worker.shutdown();
  await w.running;

  // While no worker runs, the release is only its history.
  const describe = await h.describe();
  expect(describe.status.name).toBe('RUNNING');

  w = await startWorker();
  try {
    const after: DeploymentStatus = await h.query(statusQuery);
    expect(after.phase).toBe('soaking');
    expect(after.stages).toEqual(soaking.stages);
    expect(after.waitingFor?.what).toBe(soaking.waitingFor?.what);
    expect(after.waitingFor?.what).toMatch(/a 3d soak in staging-\S+ with its analysis passing, until /);
    // The staging stage ran once: nothing was redone by the restart.
    expect(fake.count('patchImages')).toBe(1);
    expect(fake.count('buildImages')).toBe(1);
    await h.signal(abortSignal, { by: 'bob', reason: 'end of the test' });
    const r = await resultOf(h.result());
    expect(r.outcome).toBe('aborted');
    expect(r.stages.map((s) => s.state)).toEqual(['succeeded', 'aborted']);
  } finally {
    w.worker.shutdown();
    await w.running;
  }
}, 180_000);
