/**
 * The release workflow on the time-skipping server with typed fake
 * activities: one build, the same digests in every stage, a 3-day staging soak
 * with its analysis, the promotion gate, signals reaching the stage that runs,
 * and the stops: a failed stage, a failed soak, an abort between stages.
 */
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { DeploymentStatus } from '../../src/domain/status';
import { approveSignal, abortSignal, statusQuery } from '../../src/workflows/messages';
import { resultOf } from '../../src/workflows/outcome';
import { releaseWorkflow, type ReleaseResult } from '../../src/workflows/release';
import { fakeActivities, type FakeOptions } from '../helpers/fake-activities';
import { testPlan, testReleasePlan } from '../helpers/plan';
import { timeSkippingEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
}, 60_000);
afterAll(async () => {
  await env?.teardown();
});

const DAY = 24 * 3_600_000;

const releasePlan = (soakMs = 3 * DAY, approval = true) => testReleasePlan(soakMs, approval);

async function release(
  opts: FakeOptions,
  during?: (h: Awaited<ReturnType<typeof env.client.workflow.start<typeof releaseWorkflow>>>) => Promise<void>,
  ioWorker?: (fake: ReturnType<typeof fakeActivities>) => Promise<Worker>,
) {
  const fake = fakeActivities({
    plan: { ...testPlan({ version: '1.0.1', strategy: 'rolling' }), searchAttributes: false },
    ...opts,
  });
  const taskQueue = uniqueQueue('release');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: fake.activities,
  });
  const io = await ioWorker?.(fake);
  const run = async () => {
    const h = await env.client.workflow.start(releaseWorkflow, {
      taskQueue,
      workflowId: `release-${taskQueue}`,
      args: [{ version: '1.0.1' }],
    });
    if (during) await during(h);
    return resultOf(h.result());
  };
  const result = await worker.runUntil(io ? io.runUntil(run) : run);
  return { result, fake };
}

async function waitFor(
  h: { query: (q: typeof statusQuery) => Promise<DeploymentStatus> },
  ok: (s: DeploymentStatus) => boolean,
  step: Duration = '1h',
): Promise<DeploymentStatus> {
  for (let i = 0; i < 500; i++) {
    const s = await h.query(statusQuery);
    if (ok(s)) return s;
    await env.sleep(step);
  }
  throw new Error('the release never got there');
}

test('one build, the same digests in both stages, a 3-day soak with analysis, then an approval promotes to production', async () => {
  const plan = releasePlan();
  const [staging, production] = plan.stages.map((s) => s.environment);
  const started = Date.now();
  const { result, fake } = await release({ releasePlan: plan }, async (h) => {
    const soaking = await waitFor(h, (s) => s.phase === 'soaking', '1m');
    expect(soaking.stages?.map((s) => s.state)).toEqual(['succeeded', 'waiting']);
    expect(soaking.stages?.[1].waitingFor).toMatch(new RegExp(`a 3d soak in ${staging} with its analysis passing`));
    const gate = await waitFor(h, (s) => s.phase === 'awaiting-approval');
    expect(gate.waitingFor?.gate).toBe(`promote-${production}`);
    expect(gate.waitingFor?.commands?.[0]).toContain(`deployctl approve ${h.workflowId}`);
    await h.signal(approveSignal, { by: 'alice', note: 'staging looks good' });
  });
  expect(result.outcome).toBe('succeeded');
  expect(result.stages.map((s) => [s.environment, s.state])).toEqual([
    [staging, 'succeeded'],
    [production, 'succeeded'],
  ]);
  // Three days of soak took the time-skipping server, not the test: it ran in well under a minute.
  expect(Date.now() - started).toBeLessThan(60_000);
  // Built and tagged once, by the release; each stage deployed those digests.
  expect(fake.count('buildImages')).toBe(1);
  expect(fake.count('createReleaseTag')).toBe(1);
  expect(fake.count('runPreDeploymentChecks')).toBe(1);
  const built = result.status.release!.images;
  const patched = fake.argsOf<{ environment: string; updates: { deployment: string; image: string }[] }>('patchImages');
  expect(patched.map((p) => p.environment)).toEqual([staging, production]);
  for (const p of patched) for (const u of p.updates) expect(u.image).toBe(built[u.deployment]);
  // The soak analysed staging, at the configured interval, for the whole soak.
  const soakRuns = fake
    .argsOf<{ environment: string; weight: number }>('analyzeCanary')
    .filter((a) => a.environment === staging);
  expect(soakRuns.length).toBeGreaterThanOrEqual(72);
  // Each stage backed up and migrated its own database.
  expect(fake.argsOf<{ environment: string }>('backupDatabase').map((a) => a.environment)).toEqual([
    staging,
    production,
  ]);
  expect(fake.argsOf<{ environment: string }>('migrationStatus').map((a) => a.environment)).toEqual([
    staging,
    production,
  ]);
  expect(result.status.approvals.map((a) => [a.by, a.reason])).toEqual([['alice', `promote 1.0.1 to ${production}`]]);
  expect(fake.quarantine).toEqual([]);
}, 120_000);

test('a stage that rolls back ends the release rolled back, the next stage skipped, and the version quarantined', async () => {
  const plan = releasePlan(3_600_000, false);
  const [staging, production] = plan.stages.map((s) => s.environment);
  const base = fakeActivities();
  const { result, fake } = await release({
    releasePlan: plan,
    // Production's health check fails: its verification fails and its deployment rolls back.
    override: {
      checkHealth: async (req) =>
        req.environment === production ? { ok: false, lines: ['GET /health: 503'] } : base.activities.checkHealth(req),
    },
  });
  expect(result.outcome).toBe('rolled-back');
  expect(result.reason).toMatch(new RegExp(`^${production}: .*503`));
  expect(result.stages.map((s) => [s.environment, s.state])).toEqual([
    [staging, 'succeeded'],
    [production, 'rolled-back'],
  ]);
  // The stage's deployment quarantined the version it rolled back.
  expect(fake.quarantine).toMatchObject([
    {
      version: '1.0.1',
      environment: production,
      workflowId: plan.stages[1].workflowId || expect.stringMatching(new RegExp(`-${production}$`)),
    },
  ]);
}, 120_000);

test('a soak whose analysis fails stops the release before production and quarantines the version', async () => {
  const plan = releasePlan(DAY, true);
  const [staging, production] = plan.stages.map((s) => s.environment);
  let err: unknown;
  const fake = fakeActivities({
    plan: { ...testPlan({ version: '1.0.1', strategy: 'rolling' }), searchAttributes: false },
    releasePlan: plan,
    // Staging's deployment verifies with one analysis run that passes; the soak's next run fails.
    analysis: ['pass', 'pass', 'fail'],
  });
  const taskQueue = uniqueQueue('release');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: fake.activities,
  });
  const result = await worker.runUntil(async () => {
    const h = await env.client.workflow.start(releaseWorkflow, {
      taskQueue,
      workflowId: `release-${taskQueue}`,
      args: [{ version: '1.0.1' }],
    });
    try {
      await h.result();
    } catch (e) {
      err = e;
    }
    return resultOf<ReleaseResult>(h.result());
  });
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect(result.outcome).toBe('failed');
  expect(result.reason).toMatch(/analysis failed/);
  expect(result.stages.map((s) => [s.environment, s.state])).toEqual([
    [staging, 'succeeded'],
    [production, 'failed'],
  ]);
  expect(fake.argsOf<{ environment: string }>('patchImages').map((p) => p.environment)).toEqual([staging]);
  expect(fake.quarantine).toMatchObject([{ version: '1.0.1', environment: staging }]);
}, 120_000);

test('an abort between stages stops the release, the next stage skipped', async () => {
  const plan = releasePlan(DAY, true);
  const { result, fake } = await release({ releasePlan: plan }, async (h) => {
    await waitFor(h, (s) => s.phase === 'soaking', '1m');
    await h.signal(abortSignal, { by: 'bob', reason: 'holiday' });
  });
  expect(result.outcome).toBe('aborted');
  expect(result.reason).toMatch(/bob/);
  expect(result.stages.map((s) => s.state)).toEqual(['succeeded', 'aborted']);
  expect(fake.count('patchImages')).toBe(1);
  expect(fake.quarantine).toEqual([]);
}, 120_000);

test("temporal.ioTaskQueue: the release's one image build runs on the I/O workers' queue", async () => {
  const ioTaskQueue = uniqueQueue('release-io');
  const builtOn: string[] = [];
  const plan = { ...releasePlan(0, false), ioTaskQueue };
  const { result, fake } = await release({ releasePlan: plan }, undefined, (f) =>
    Worker.create({
      connection: env.nativeConnection,
      taskQueue: ioTaskQueue,
      activities: {
        buildImages: (req: never) => {
          builtOn.push(Context.current().info.taskQueue);
          return (f.activities.buildImages as (r: never) => Promise<unknown>)(req);
        },
      },
    }),
  );
  expect(result.outcome).toBe('succeeded');
  expect(builtOn).toEqual([ioTaskQueue]);
  // Built once, by the I/O worker only (the fake counts every call, wherever it ran).
  expect(fake.count('buildImages')).toBe(1);
});
