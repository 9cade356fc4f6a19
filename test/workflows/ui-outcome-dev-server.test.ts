/**
 * Issue 16 item 9, on the real dev server (the `temporal` CLI the project
 * fetched, or TEMPORAL_ADDRESS), started by deployctl as people and CI start
 * deployments: a rolled-back deployment closes as Failed, so the UI's list
 * and `temporal workflow list --query 'ExecutionStatus="Failed"'` find it,
 * while deployctl still exits 3 with the same JSON; the user metadata the UI
 * shows in its own panels is there: the static summary set at start, the
 * current details the workflow keeps up to date (what it waits for, how it
 * ended), and summaries on the activities and timers of its history.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { execFileSync } from 'node:child_process';
import { main } from '../../src/client';
import { ExitCode } from '../../src/cli/exit-codes';
import { statusQuery } from '../../src/workflows/messages';
import { fakeActivities } from '../helpers/fake-activities';
import { testPlan } from '../helpers/plan';
import { devServerEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { toolPath } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await devServerEnv();
}, 60_000);
afterAll(async () => {
  await env?.teardown();
});

async function deployctl(taskQueue: string, ...args: string[]) {
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

/** The ids `temporal workflow list --query <query>` prints, as a person would run it. */
function listed(query: string): string[] {
  const json = execFileSync(
    toolPath('cli'),
    [
      'workflow',
      'list',
      '--address',
      env.connection.options.address,
      '--namespace',
      'default',
      '--query',
      query,
      '--output',
      'json',
    ],
    { encoding: 'utf8' },
  );
  const rows = (json.trim() ? (JSON.parse(json) as unknown) : []) as { execution?: { workflowId?: string } }[];
  return rows.map((r) => r.execution?.workflowId ?? '');
}

/** The summaries the history's activities and timers carry (the UI shows them on its timeline). */
async function summariesIn(workflowId: string): Promise<{ activities: string[]; timers: string[] }> {
  const h = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const text = (p?: { data?: Uint8Array | null } | null) =>
    p?.data ? (JSON.parse(Buffer.from(p.data).toString('utf8')) as string) : '';
  const activities: string[] = [];
  const timers: string[] = [];
  for (const e of h.events ?? []) {
    if (e.activityTaskScheduledEventAttributes) activities.push(text(e.userMetadata?.summary));
    if (e.timerStartedEventAttributes) timers.push(text(e.userMetadata?.summary));
  }
  return { activities, timers };
}

const metadata = (workflowId: string) =>
  env.client.workflow.getHandle(workflowId).query<{ currentDetails?: string }>('__temporal_workflow_metadata');

test('issue 16 item 9: a rolled-back deployment is Failed in the list, deployctl still exits 3, and the UI panels say why', async () => {
  const environment = `ui-${Date.now() % 100000}`;
  const plan = { ...testPlan({ version: '1.0.1', strategy: 'rolling' }), environment, searchAttributes: true };
  const fake = fakeActivities({ plan, fail: { checkHealth: 'VerificationFailed' } });
  const taskQueue = uniqueQueue('ui');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: fake.activities,
  });
  const workflowId = `deploy-${environment}-1.0.1`;
  await worker.runUntil(async () => {
    const r = await deployctl(
      taskQueue,
      'deploy',
      '--version',
      '1.0.1',
      '--env',
      environment,
      '--strategy',
      'rolling',
      '--wait',
      '--json',
    );
    // deployctl: the same exit code and the same JSON as before.
    expect(r.err).toBe('');
    expect(r.code).toBe(ExitCode.RolledBack);
    const json = JSON.parse(r.out) as Record<string, unknown>;
    expect(json).toMatchObject({ outcome: 'rolled-back', workflowId, phase: 'rolled-back' });
    expect(Object.keys(json).sort()).toEqual(
      ['outcome', 'workflowId', 'version', 'environment', 'reason', 'phase', 'steps'].sort(),
    );
    expect((await deployctl(taskQueue, 'watch', workflowId)).code).toBe(ExitCode.RolledBack);

    // The close status follows the outcome: what the UI's list and its Failures filter show.
    const handle = env.client.workflow.getHandle(workflowId);
    const described = await handle.describe();
    expect(described.status.name).toBe('FAILED');
    await waitFor(
      async () => listed(`ExecutionStatus="Failed" AND DeployEnvironment="${environment}"`).length > 0,
      10_000,
    );
    expect(listed(`ExecutionStatus="Failed" AND DeployEnvironment="${environment}"`)).toEqual([workflowId]);
    expect(
      listed(`WorkflowType="deployWorkflow" AND DeployPhase="rolled-back" AND DeployEnvironment="${environment}"`),
    ).toEqual([workflowId]);
    // The rollback itself succeeded: it completes.
    expect((await env.client.workflow.getHandle(`${workflowId}-rollback`).describe()).status.name).toBe('COMPLETED');

    // The static summary deployctl set at start: what was asked for.
    expect(await described.staticSummary()).toBe(`deploy 1.0.1 to ${environment} (rolling)`);
    // Current details: the outcome and its reason, on the workflow's page.
    const details = (await metadata(workflowId)).currentDetails ?? '';
    expect(details).toContain('rolled-back');
    expect(details).toContain('VerificationFailed');
    // Summaries on the activities: the step each one runs.
    const { activities } = await summariesIn(workflowId);
    expect(activities).toEqual(expect.arrayContaining(['resolve plan', 'pre-flight', 'release tag', 'summary']));
  });
}, 120_000);

test('issue 16 item 9: a canary parked at its gate says what it waits for in its current details and timer summary', async () => {
  const environment = `ui-gate-${Date.now() % 100000}`;
  const plan = {
    ...testPlan({ version: '1.0.2', canary: { approval: 'before-full', soak: '1s', analysisInterval: '1s' } }),
    environment,
    searchAttributes: true,
  };
  const fake = fakeActivities({ plan });
  const taskQueue = uniqueQueue('ui');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: fake.activities,
  });
  const workflowId = `deploy-${environment}-1.0.2`;
  const canaryId = `${workflowId}-canary`;
  await worker.runUntil(async () => {
    const started = await deployctl(taskQueue, 'deploy', '--version', '1.0.2', '--env', environment);
    expect(started.code).toBe(ExitCode.Ok);
    const canary = env.client.workflow.getHandle(canaryId);
    await waitFor(
      async () => (await canary.query(statusQuery).catch(() => undefined))?.phase === 'awaiting-approval',
      60_000,
      300,
    );
    const waiting = (await metadata(canaryId)).currentDetails ?? '';
    expect(waiting).toContain('awaiting-approval');
    expect(waiting).toContain('approval to move traffic to 100%');
    expect(waiting).toContain(`deployctl approve ${workflowId} --by <name>`);
    // The deployment's own page names the child its signals go to.
    expect((await metadata(workflowId)).currentDetails ?? '').toContain(canaryId);
    // The parent gave its child a static summary.
    expect(await (await canary.describe()).staticSummary()).toMatch(/canary of .* 1\.0\.2/);
    // The soaks and the gate are timers with a summary.
    const { timers } = await summariesIn(canaryId);
    expect(timers.length).toBeGreaterThan(0);
    expect(timers.every((s) => s.length > 0)).toBe(true);
    expect(timers.at(-1)).toMatch(/approval to move traffic to 100%/);

    const aborted = await deployctl(taskQueue, 'abort', workflowId, '--by', 'bob', '--reason', 'seen enough');
    expect(aborted.code).toBe(ExitCode.Ok);
    expect((await deployctl(taskQueue, 'watch', workflowId)).code).toBe(ExitCode.Aborted);
    expect((await env.client.workflow.getHandle(workflowId).describe()).status.name).toBe('FAILED');
    expect((await env.client.workflow.getHandle(canaryId).describe()).status.name).toBe('FAILED');
    // (The metadata query of a closed workflow is answered by a worker, as the UI's is.)
    expect((await metadata(workflowId)).currentDetails ?? '').toContain('aborted by bob: seen enough');
  });
}, 120_000);
