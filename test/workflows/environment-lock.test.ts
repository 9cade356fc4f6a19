/**
 * The environment lock cannot be squatted and does not outlive its holder
 * (time-skipping server, fake activities but the real lockHolderState
 * activity, which asks this server about the holder):
 *  - a deployment or rollback under an id outside the charset, or under the
 *    reserved lock prefix, is refused before any side effect;
 *  - a lock started by hand (no parent, or a parent that is not its holder)
 *    ends at once holding nothing, and the environment stays free;
 *  - a lock whose holder was terminated is released by its lease check,
 *    while a lock whose holder still runs is kept however long it waits.
 */
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { lockActivities } from '../../src/activities/lock';
import { deployWorkflow } from '../../src/workflows/deploy';
import { environmentLockWorkflow, lockWorkflowId } from '../../src/workflows/environment-lock';
import { rollbackWorkflow } from '../../src/workflows/rollback';
import { fakeActivities } from '../helpers/fake-activities';
import { testPlan } from '../helpers/plan';
import { timeSkippingEnv, uniqueQueue } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
let bundle: Awaited<ReturnType<typeof bundleWorkflowCode>>;
beforeAll(async () => {
  env = await timeSkippingEnv();
  const noop = () => undefined;
  bundle = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'fixtures/abandoning-holder.ts'),
    logger: { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop },
  });
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

const environmentName = () => `envl-${randomBytes(4).toString('hex')}`;

function fakesFor(environment: string) {
  const plan = { ...testPlan({ version: '1.0.1', strategy: 'rolling' }), environment, searchAttributes: false };
  const fake = fakeActivities({ plan, rollbackPlan: { environment } });
  const lease = lockActivities({ temporal: env.client.workflow });
  return { fake, activities: { ...fake.activities, ...lease } };
}

async function run<T>(activities: object, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = uniqueQueue('lock');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: bundle,
    activities,
  });
  return worker.runUntil(fn(taskQueue));
}

async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

describe('ids', () => {
  test.each([
    ['the reserved lock prefix', (e: string) => lockWorkflowId(e), /"deploy-lock-" is reserved for environment locks/],
    ['a shell command', () => 'deploy-$(touch /tmp/pwned)', /letters, digits, "\." and "-"/],
    ['Slack markup', () => 'deploy <!channel> *now*', /letters, digits, "\." and "-"/],
  ])(
    'a deployment under %s is refused before any side effect',
    async (_what, id, message) => {
      const environment = environmentName();
      const { fake, activities } = fakesFor(environment);
      const failure = await run(activities, (taskQueue) =>
        failureOf(
          env.client.workflow.execute(deployWorkflow, {
            taskQueue,
            workflowId: id(environment),
            args: [{ version: '1.0.1', environment }],
          }),
        ),
      );
      expect(failure.type).toBe('InvalidWorkflowId');
      expect(failure.nonRetryable).toBe(true);
      expect(failure.message).toMatch(message);
      expect(fake.names()).toEqual([]);
    },
    60_000,
  );

  test('a manual rollback under the reserved lock prefix is refused before any side effect', async () => {
    const environment = environmentName();
    const { fake, activities } = fakesFor(environment);
    const failure = await run(activities, (taskQueue) =>
      failureOf(
        env.client.workflow.execute(rollbackWorkflow, {
          taskQueue,
          workflowId: `${lockWorkflowId(environment)}-x`,
          args: [{ environment, reason: 'squat' }],
        }),
      ),
    );
    expect(failure.type).toBe('InvalidWorkflowId');
    expect(fake.names()).toEqual([]);
  }, 60_000);
});

describe('the lock', () => {
  test('started by hand, it ends at once holding nothing, and a deployment then takes the environment', async () => {
    const environment = environmentName();
    const { fake, activities } = fakesFor(environment);
    const { squat, deployed } = await run(activities, async (taskQueue) => {
      const squat = await env.client.workflow.execute(environmentLockWorkflow, {
        taskQueue,
        workflowId: lockWorkflowId(environment),
        args: [{ environment, holder: 'deploy-production-9.9.9' }],
      });
      const deployed = await env.client.workflow.execute(deployWorkflow, {
        taskQueue,
        workflowId: `deploy-${environment}-1.0.1`,
        args: [{ version: '1.0.1', environment, strategy: 'rolling' }],
      });
      return { squat, deployed };
    });
    expect(squat).toMatch(/^refused: .*not started by its holder deploy-production-9\.9\.9.*holds nothing/);
    expect(deployed.outcome).toBe('succeeded');
    expect(fake.count('patchImages')).toBe(1);
  }, 60_000);

  test('its lease keeps it while the holder runs and releases it once the holder was terminated', async () => {
    const environment = environmentName();
    const { activities } = fakesFor(environment);
    const end = await run(activities, async (taskQueue) => {
      const holder = await env.client.workflow.start('abandoningHolderWorkflow', {
        taskQueue,
        workflowId: `holder-${environment}`,
        args: [environment],
      });
      const lock = env.client.workflow.getHandle(lockWorkflowId(environment));
      for (let i = 0; i < 50; i++) {
        if ((await lock.describe().catch(() => undefined))?.status.name === 'RUNNING') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // Hours of waiting (an approval gate) with a running holder: still held.
      await env.sleep('3h');
      expect((await lock.describe()).status.name).toBe('RUNNING');
      await holder.terminate('the worker lost it');
      // Time skips while the result is awaited: the next lease check finds the holder terminated.
      return lock.result();
    });
    expect(end).toMatch(/^released: its holder holder-envl-\w+ has ended \(TERMINATED\)/);
  }, 120_000);
});
