/**
 * Issue 21 item 4, on a real dev server: a worker whose workflow code changed
 * rolls out while a canary waits at its gate and a rollback waits for its
 * database decision. Build A (the product's workflows) takes two deployments
 * to those waits and holds a freeze; build B (fixtures/build-b-workflows.ts:
 * deploy, canary and rollback changed so that A's histories do not replay)
 * joins the same worker deployment and becomes current. A new deployment
 * starts on B; A's two deployments finish on A (pinned) with no workflow task
 * failed; A drains though the freeze is still open there, and stops; the
 * freeze (auto-upgrade) moves to B at its next task, and B goes on.
 *
 * Its own dev server, not a shared one: the server checks a version's
 * drainage every second here instead of every few minutes.
 * `WORKER_VERSIONING_TEMPORAL=cluster` runs it on the sandbox's Temporal
 * cluster instead (`npm run sandbox -- up --temporal cluster`): the server
 * version and configuration the compose file ships, with the server's own
 * drainage timing, so the wait for "drained" takes minutes there.
 */
import { Worker, bundleWorkflowCode } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { temporal } from '@temporalio/proto';
import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { workerVersioningFromEnv } from '../../src/worker-versioning';
import { deployWorkflow } from '../../src/workflows/deploy';
import { freezeWorkflow, freezeWorkflowId } from '../../src/workflows/freeze';
import {
  approveSignal,
  abortSignal,
  freezeStatusQuery,
  statusQuery,
  unfreezeSignal,
} from '../../src/workflows/messages';
import { resultOf } from '../../src/workflows/outcome';
import { fakeActivities } from '../helpers/fake-activities';
import { testPlan } from '../helpers/plan';
import { sandboxEnv } from '../helpers/sandbox';
import { devServerEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { toolPath } from '../helpers/tools';
import { waitFor } from '../helpers/wait';
import { BUILD_B_TIMER } from './fixtures/build-b-workflows';

const { VersionDrainageStatus, VersioningBehavior } = temporal.api.enums.v1;

const onCluster = process.env.WORKER_VERSIONING_TEMPORAL === 'cluster';
/** The server's drainage check: every second on this test's dev server, its defaults (minutes) on the cluster. */
const DRAINED_WITHIN_MS = onCluster ? 12 * 60_000 : 60_000;
jest.setTimeout(DRAINED_WITHIN_MS + 180_000);

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = onCluster
    ? await TestWorkflowEnvironment.createFromExistingServer(sandboxTemporal())
    : await devServerEnv({
        'matching.wv.VersionDrainageStatusRefreshInterval': '1s',
        'matching.wv.VersionDrainageStatusVisibilityGracePeriod': '1s',
      });
}, 120_000);

/** The sandbox's cluster frontend; a one-line error when the sandbox runs none. */
function sandboxTemporal(): { address: string; namespace: string } {
  const e = sandboxEnv();
  if (!e.TEMPORAL_ADDRESS)
    throw new Error('WORKER_VERSIONING_TEMPORAL=cluster needs `npm run sandbox -- up --temporal cluster`');
  return { address: e.TEMPORAL_ADDRESS, namespace: e.TEMPORAL_NAMESPACE || 'default' };
}
afterAll(async () => {
  await env?.teardown();
});

const quiet = { log: () => undefined, trace: () => undefined, debug: () => undefined };
const logger = { ...quiet, info: () => undefined, warn: () => undefined, error: () => undefined };

test('issue 21 item 4: deployments started on build A finish on A while build B takes the new ones, then A drains and stops', async () => {
  const namespace = onCluster ? sandboxTemporal().namespace : 'default';
  const svc = env.connection.workflowService;
  const deploymentName = `deploy-pipelines-${randomUUID().slice(0, 8)}`;
  // The worker's own reading of its environment: the Dockerfile's GIT_COMMIT of two commits.
  const a = workerVersioningFromEnv(
    { TEMPORAL_DEPLOYMENT_NAME: deploymentName, DEPLOY_GIT_COMMIT: 'a'.repeat(40) },
    '0.1.0',
  );
  const b = workerVersioningFromEnv(
    { TEMPORAL_DEPLOYMENT_NAME: deploymentName, DEPLOY_GIT_COMMIT: 'b'.repeat(40) },
    '0.1.0',
  );
  const [buildA, buildB] = [a.buildId!, b.buildId!];
  expect([buildA, buildB]).toEqual(['0.1.0+aaaaaaaaaaaa', '0.1.0+bbbbbbbbbbbb']);

  // One environment per deployment (each takes its own lock); the rollback one's canary fails its analysis.
  const n = Date.now() % 100000;
  const [gateEnv, dbEnv, newEnv, frozenEnv] = [`gate-${n}`, `db-${n}`, `new-${n}`, `frozen-${n}`];
  const plan = testPlan({ version: '1.0.1', canary: { approval: 'before-full', soak: '1s', analysisInterval: '1s' } });
  const failing = fakeActivities({ plan, analysis: ['fail'] });
  const passing = fakeActivities({ plan });
  const fake = fakeActivities({
    plan,
    pendingMigrations: ['0002_add_email_verified_at_index.sql'],
    override: {
      resolvePlan: async (req) => ({
        ...plan,
        workflowId: req.workflowId,
        environment: (req.input as { environment: string }).environment,
      }),
      analyzeCanary: (req) =>
        req.environment === dbEnv ? failing.activities.analyzeCanary(req) : passing.activities.analyzeCanary(req),
    },
  });

  const taskQueue = uniqueQueue('versioning');
  const [bundleA, bundleB] = [
    await workflowBundle(),
    await bundleWorkflowCode({ workflowsPath: path.join(__dirname, 'fixtures/build-b-workflows.ts'), logger }),
  ];
  const startWorker = async (bundle: typeof bundleA, options: typeof a) => {
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: bundle,
      activities: fake.activities,
      workerDeploymentOptions: options.deployment,
      // Every workflow task replays the history on the build that takes it: no cached state hides a mismatch.
      maxCachedWorkflows: 0,
    });
    return { worker, running: worker.run() };
  };
  /** As `temporal worker deployment set-current-version` does; the version exists once its worker polls. */
  const setCurrent = (buildId: string) =>
    waitFor(
      () => svc.setWorkerDeploymentCurrentVersion({ namespace, deploymentName, buildId }).then(() => true),
      30_000,
    );
  const versionOf = async (workflowId: string) => {
    const d = await svc.describeWorkflowExecution({ namespace, execution: { workflowId } });
    const v = d.workflowExecutionInfo?.versioningInfo;
    return { buildId: v?.deploymentVersion?.buildId, behavior: v?.behavior };
  };
  /** The build of every workflow task completed, and whether any failed (a non-determinism error would). */
  const tasksOf = async (workflowId: string) => {
    const { events } = await env.client.workflow.getHandle(workflowId).fetchHistory();
    return {
      builds: [
        ...new Set(events!.flatMap((e) => e.workflowTaskCompletedEventAttributes?.deploymentVersion?.buildId ?? [])),
      ],
      failed: events!.filter((e) => e.workflowTaskFailedEventAttributes).length,
      buildBTimers: events!.filter((e) => e.timerStartedEventAttributes && summary(e) === BUILD_B_TIMER).length,
    };
  };
  const drainage = async (buildId: string) => {
    const v = await svc.describeWorkerDeploymentVersion({ namespace, deploymentVersion: { deploymentName, buildId } });
    return v.workerDeploymentVersionInfo?.drainageInfo?.status;
  };
  const phaseOf = async (workflowId: string) =>
    (
      await env.client.workflow
        .getHandle(workflowId)
        .query(statusQuery)
        .catch(() => undefined)
    )?.phase;
  const start = (environment: string) =>
    env.client.workflow.start(deployWorkflow, {
      taskQueue,
      workflowId: `deploy-${environment}-1.0.1`,
      args: [{ version: '1.0.1', environment }],
    });

  const workerA = await startWorker(bundleA, a);
  let workerB: Awaited<ReturnType<typeof startWorker>> | undefined;
  try {
    await setCurrent(buildA);
    // Build A: one canary parks at its approval gate, one deployment's rollback at the database decision.
    const [gate, db] = [await start(gateEnv), await start(dbEnv)];
    await waitFor(async () => (await phaseOf(`${gate.workflowId}-canary`)) === 'awaiting-approval', 60_000);
    await waitFor(async () => (await phaseOf(`${db.workflowId}-rollback`)) === 'awaiting-db-decision', 60_000);
    // And a freeze of another environment, open until a person unfreezes it.
    const freeze = await env.client.workflow.start(freezeWorkflow, {
      taskQueue,
      workflowId: freezeWorkflowId(frozenEnv),
      args: [{ environment: frozenEnv, by: 'carol', reason: 'holiday' }],
    });
    await waitFor(async () => (await freeze.query(freezeStatusQuery)).phase === 'frozen', 30_000);

    // Build B beside A, made current: A still has open pinned runs, so it is draining.
    workerB = await startWorker(bundleB, b);
    await setCurrent(buildB);
    await waitFor(
      async () => (await drainage(buildA)) === VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINING,
      10_000,
    );
    const fresh = await start(newEnv);
    await waitFor(async () => (await phaseOf(`${fresh.workflowId}-canary`)) === 'awaiting-approval', 60_000);
    // The new deployment, its canary and its lock run on B, B's changed code included.
    const pinnedB = { buildId: buildB, behavior: VersioningBehavior.VERSIONING_BEHAVIOR_PINNED };
    for (const id of [fresh.workflowId, `${fresh.workflowId}-canary`, `deploy-lock-${newEnv}`])
      expect(await versionOf(id)).toEqual(pinnedB);
    expect((await tasksOf(fresh.workflowId)).buildBTimers).toBe(1);
    expect((await tasksOf(`${fresh.workflowId}-canary`)).buildBTimers).toBe(1);

    // A's deployments go on past their waits, on A: the gate approved, the database kept.
    await gate.signal(approveSignal, { by: 'bob' });
    await db.signal(abortSignal, { by: 'alice', reason: 'keep the database' });
    expect((await resultOf(gate.result())).outcome).toBe('succeeded');
    expect((await resultOf(db.result())).outcome).toBe('rolled-back');
    const ranOnA = [
      gate.workflowId,
      `${gate.workflowId}-canary`,
      db.workflowId,
      `${db.workflowId}-canary`,
      `${db.workflowId}-rollback`,
    ];
    for (const id of ranOnA) {
      expect(await versionOf(id)).toEqual({ buildId: buildA, behavior: VersioningBehavior.VERSIONING_BEHAVIOR_PINNED });
      expect(await tasksOf(id)).toEqual({ builds: [buildA], failed: 0, buildBTimers: 0 });
    }
    // What B's change would have done to them: A's histories do not replay through B's code.
    for (const id of [gate.workflowId, `${gate.workflowId}-canary`, `${db.workflowId}-rollback`]) {
      const history = await env.client.workflow.getHandle(id).fetchHistory();
      await expect(Worker.runReplayHistory({ workflowBundle: bundleB }, history, id)).rejects.toThrow(
        DeterminismViolationError,
      );
      await expect(Worker.runReplayHistory({ workflowBundle: bundleA }, history, id)).resolves.toBeUndefined();
    }

    // No pinned run is left on A: the server reports it drained, and its workers stop. The freeze's last
    // task ran on A, but it is auto-upgrade: it does not hold A up, and moves to B at its next task.
    await waitFor(
      async () => (await drainage(buildA)) === VersionDrainageStatus.VERSION_DRAINAGE_STATUS_DRAINED,
      DRAINED_WITHIN_MS,
      500,
    );
    expect(runningOn(deploymentName, buildA)).toEqual([freeze.workflowId]);
    expect(runningOn(deploymentName, buildA, 'Pinned')).toEqual([]);
    expect(await versionOf(freeze.workflowId)).toEqual({
      buildId: buildA,
      behavior: VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE,
    });
    expect(runningOn(deploymentName, buildB).sort()).toEqual(
      [fresh.workflowId, `${fresh.workflowId}-canary`, `deploy-lock-${newEnv}`].sort(),
    );
    workerA.worker.shutdown();
    await workerA.running;

    // B alone finishes what it started, and the freeze A held.
    await fresh.signal(approveSignal, { by: 'bob' });
    expect((await resultOf(fresh.result())).outcome).toBe('succeeded');
    expect(await tasksOf(fresh.workflowId)).toEqual({ builds: [buildB], failed: 0, buildBTimers: 1 });
    await freeze.signal(unfreezeSignal, { by: 'carol', reason: 'back to work' });
    expect((await freeze.result()).outcome).toBe('unfrozen');
    expect(await versionOf(freeze.workflowId)).toEqual({
      buildId: buildB,
      behavior: VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE,
    });
    expect(await tasksOf(freeze.workflowId)).toEqual({ builds: [buildA, buildB], failed: 0, buildBTimers: 0 });
  } finally {
    if (workerA.worker.getState() === 'RUNNING') workerA.worker.shutdown();
    await workerA.running.catch(() => undefined);
    if (workerB) {
      workerB.worker.shutdown();
      await workerB.running.catch(() => undefined);
    }
  }
});

function summary(e: temporal.api.history.v1.IHistoryEvent): string | undefined {
  const data = e.userMetadata?.summary?.data;
  return data ? (JSON.parse(Buffer.from(data).toString('utf8')) as string) : undefined;
}

/** The open workflows on one build (only the pinned ones: `behavior`), as `temporal workflow list` finds them (docs/operations.md). */
function runningOn(deploymentName: string, buildId: string, behavior?: 'Pinned'): string[] {
  const json = execFileSync(
    toolPath('cli'),
    [
      'workflow',
      'list',
      '--address',
      env.connection.options.address,
      '--query',
      `TemporalWorkerDeploymentVersion="${deploymentName}:${buildId}" AND ExecutionStatus="Running"` +
        (behavior ? ` AND TemporalWorkflowVersioningBehavior="${behavior}"` : ''),
      '--output',
      'json',
    ],
    { encoding: 'utf8' },
  );
  const rows = (json.trim() ? (JSON.parse(json) as unknown) : []) as { execution?: { workflowId?: string } }[];
  return rows.map((r) => r.execution?.workflowId ?? '');
}
