/**
 * deployctl stats' data path on the real dev server (issue 23 item 2): real
 * deployWorkflow executions (fake activities) in an environment of this
 * test's own, started as people start them: a success, one that rolls back,
 * a later fix, and a dry run that is no deployment. Then `stats --json` lists
 * them through visibility, reads each result (the rollback's from its Failed
 * close) and its timeline, and prints the four figures with their counts,
 * which must match the deployments' own recorded milestones.
 *
 * Then `status` and `watch` of finished deployments whose workers have
 * stopped, as after a worker upgrade drained the build they ran on: both read
 * the status the result carries from the history, no query needed.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { main } from '../../src/client';
import { ExitCode } from '../../src/cli/exit-codes';
import type { DoraReport } from '../../src/domain/dora';
import type { DeploymentTimeline } from '../../src/domain/status';
import type { DeployResult } from '../../src/workflows/deploy';
import { resultOf } from '../../src/workflows/outcome';
import { fakeActivities, type FakeOptions } from '../helpers/fake-activities';
import { testPlan } from '../helpers/plan';
import { devServerEnv, terminateLeftovers, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

let env: TestWorkflowEnvironment;
const taskQueue = uniqueQueue('stats');
beforeAll(async () => {
  env = await devServerEnv();
}, 60_000);
afterAll(async () => {
  if (env) await terminateLeftovers(env.client, taskQueue);
  await env?.teardown();
});

async function deployctl(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'deployctl', ...args], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: {
      TEMPORAL_ADDRESS: env.connection.options.address,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: taskQueue,
    },
    isTTY: false,
    pollMs: 200,
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const environment = `dora-${Date.now() % 100000}`;
const HOUR = 3_600_000;

/** One deployment of `version` through deployctl, on a worker whose fake activities behave as `fake` says. */
async function deploy(
  version: string,
  committedAt: string,
  fake: Omit<FakeOptions, 'plan'> = {},
  dryRun = false,
  where = environment,
) {
  const plan = {
    ...testPlan({ version, strategy: 'rolling' }),
    environment: where,
    searchAttributes: true,
    committedAt,
    ...(dryRun ? { dryRun: true } : {}),
  };
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: fakeActivities({ plan, ...fake }).activities,
  });
  const args = ['deploy', '--version', version, '--env', where, '--strategy', 'rolling', '--wait', '--json'];
  return worker.runUntil(deployctl(...args, ...(dryRun ? ['--dry-run'] : [])));
}

async function timelineOf(version: string): Promise<DeploymentTimeline> {
  const handle = env.client.workflow.getHandle(`deploy-${environment}-${version}`);
  const r = await resultOf(handle.result() as Promise<DeployResult>);
  expect(r.status.timeline).toBeDefined();
  return r.status.timeline!;
}

/** What `stats --json` prints. */
type StatsJson = Omit<DoraReport, 'window'> & {
  environment: string | null;
  deployments: { listed: number; running: number } & Record<string, unknown>;
};

const ms = (iso: string | undefined) => Date.parse(iso ?? '');

test('stats --json: the four figures with their counts over a success, a rollback and the fix', async () => {
  const now = Date.now();
  // Each release commit was made two hours before its deployment.
  const committed = (h: number) => new Date(now - h * HOUR).toISOString();

  expect((await deploy('1.0.1', committed(2))).code).toBe(ExitCode.Ok);
  const broken = await deploy('1.0.2', committed(2), { fail: { checkHealth: 'VerificationFailed' } });
  expect(broken.code).toBe(ExitCode.RolledBack);
  expect((await deploy('1.0.3', committed(2))).code).toBe(ExitCode.Ok);
  // A dry run is listed by visibility but is no deployment.
  expect((await deploy('1.0.4', committed(2), {}, true)).code).toBe(ExitCode.Ok);

  // The deployments' own milestones, as the workflows recorded them.
  const ok1 = await timelineOf('1.0.1');
  const bad = await timelineOf('1.0.2');
  const fix = await timelineOf('1.0.3');
  expect(bad.failedAt).toBeDefined();
  expect(bad.stableAt).toBeDefined();
  expect(bad.liveAt).toBeUndefined();

  // Visibility may lag the close of the last run a moment.
  const stats = await waitFor(async () => {
    const r = await deployctl('stats', '--env', environment, '--json');
    if (r.code !== ExitCode.Ok) throw new Error(r.err);
    const json = JSON.parse(r.out) as StatsJson;
    return json.deployments.listed === 4 && json.deployments.running === 0 ? json : undefined;
  }, 15_000);

  expect(stats.environment).toBe(environment);
  expect(stats.deployments).toEqual({
    listed: 4,
    running: 0,
    notDeployments: { refused: 0, planned: 1 },
    withoutResult: [],
    counted: 3,
  });
  expect(Object.keys(stats.environments)).toEqual([environment]);
  const f = stats.environments[environment];
  expect(stats.overall).toEqual(f);
  // Every fact came from a recorded timeline, none from the steps.
  expect(f).toMatchObject({ deployments: 3, fromSteps: 0 });

  expect(f.deploymentFrequency).toMatchObject({ successes: 2, band: 'monthly' });
  expect(f.deploymentFrequency.perDay).toBeCloseTo(2 / 30);

  // Lead time: commit → live of both successes.
  const leads = [ms(ok1.liveAt) - ms(ok1.committedAt), ms(fix.liveAt) - ms(fix.committedAt)];
  expect(f.leadTime).toEqual({
    measured: 2,
    missing: 0,
    medianMs: (leads[0] + leads[1]) / 2,
    p90Ms: Math.min(...leads) + 0.9 * Math.abs(leads[1] - leads[0]),
  });
  expect(f.leadTime.medianMs).toBeGreaterThan(2 * HOUR);

  expect(f.changeFailureRate).toEqual({
    began: 3,
    failures: { rolledBack: 1, aborted: 0, failed: 0, total: 1 },
    rate: 1 / 3,
    failedBeforeRollout: 0,
  });

  // Time to restore: the rollback's failure → its workloads back, and → the fix live.
  const toStable = ms(bad.stableAt) - ms(bad.failedAt);
  const toFix = ms(fix.liveAt) - ms(bad.failedAt);
  expect(toFix).toBeGreaterThan(toStable);
  expect(f.timeToRestore).toEqual({
    failures: 1,
    toStable: { restored: 1, notRestored: 0, unmeasured: 0, medianMs: toStable, p90Ms: toStable },
    toNextSuccess: { restored: 1, notRestored: 0, unmeasured: 0, medianMs: toFix, p90Ms: toFix },
  });
  expect(stats.definitions).toHaveLength(7);

  // The same figures for people, with the definitions under them.
  const text = await deployctl('stats', '--env', environment);
  expect(text.code).toBe(ExitCode.Ok);
  expect(text.out).toContain('3 deployments counted of 4 listed; not counted: 0 running, 0 refused, 1 dry runs');
  expect(text.out).toContain('change failure rate            33.3% (1 of 3 begun: 1 rolled back, 0 aborted, 0 failed)');
  expect(text.out).toMatch(/Definitions:\n {2}- Window: /);
}, 180_000);

test('status and watch of finished deployments read their history: no worker needs to poll their queue', async () => {
  // After a worker upgrade the build a deployment ran on may have no worker left (docs/operations.md).
  const where = `closed-${Date.now() % 100000}`;
  const committedAt = new Date().toISOString();
  expect((await deploy('1.0.1', committedAt, {}, false, where)).code).toBe(ExitCode.Ok);
  const broken = await deploy('1.0.2', committedAt, { fail: { checkHealth: 'VerificationFailed' } }, false, where);
  expect(broken.code).toBe(ExitCode.RolledBack);

  // Both deployments' workers have stopped: nothing polls the task queue now.
  for (const [version, outcome] of [
    ['1.0.1', 'succeeded'],
    ['1.0.2', 'rolled-back'],
  ] as const) {
    const workflowId = `deploy-${where}-${version}`;
    const recorded = await resultOf(env.client.workflow.getHandle(workflowId).result() as Promise<DeployResult>);
    expect(recorded.outcome).toBe(outcome);

    const json = await deployctl('status', workflowId, '--json');
    expect(json.err).toBe('');
    expect(json.code).toBe(ExitCode.Ok);
    expect(JSON.parse(json.out)).toEqual(recorded.status);

    const text = await deployctl('status', workflowId);
    expect(text.code).toBe(ExitCode.Ok);
    expect(text.out).toContain(`version ${version}  environment ${where}  strategy rolling  phase ${outcome}`);

    const watched = await deployctl('watch', workflowId);
    expect(watched.code).toBe(version === '1.0.1' ? ExitCode.Ok : ExitCode.RolledBack);
    expect(watched.out.split('\n').at(-1)).toMatch(new RegExp(`^${outcome}`));
  }
}, 120_000);
