/**
 * The deploy saga on the time-skipping server with typed fake activities:
 * every strategy, dry run, refusals, failures before and after the rollout
 * began, aborts, the database decision and a compensation that fails.
 */
import type { AuditAppendRequest } from '../../src/domain/audit';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, type Duration } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../src/activities/contracts';
import type { DeployInput } from '../../src/domain/input';
import { deployWorkflow, type DeployResult } from '../../src/workflows/deploy';
import { abortSignal, approveSignal, pauseSignal, statusQuery } from '../../src/workflows/messages';
import { fakeActivities, type FakeOptions } from '../helpers/fake-activities';
import { testPlan } from '../helpers/plan';
import { timeSkippingEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { resultOf } from '../../src/workflows/outcome';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
}, 60_000);
afterAll(async () => {
  await env?.teardown();
});

let envCounter = 0;
/** Each test deploys to its own environment, so the environment lock of one never refuses another. */
const plan = (input: DeployInput = { version: '1.0.1' }) => ({
  ...testPlan(input),
  environment: `env-${++envCounter}-${Date.now() % 100000}`,
  searchAttributes: false,
});

async function withWorker<T>(
  fake: ReturnType<typeof fakeActivities>,
  fn: (taskQueue: string) => Promise<T>,
): Promise<T> {
  const taskQueue = uniqueQueue('deploy');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: fake.activities,
  });
  return worker.runUntil(fn(taskQueue));
}

async function deploy(
  opts: FakeOptions,
  input: DeployInput = { version: '1.0.1' },
  during?: (h: Awaited<ReturnType<typeof env.client.workflow.start<typeof deployWorkflow>>>) => Promise<void>,
) {
  const fake = fakeActivities(opts);
  const result = await withWorker(fake, async (taskQueue) => {
    const h = await env.client.workflow.start(deployWorkflow, {
      taskQueue,
      workflowId: `deploy-${taskQueue}`,
      args: [input],
    });
    if (during) await during(h);
    // A deployment that did not succeed closes as Failed, its result in the failure (issue 16 item 9).
    return resultOf(h.result());
  });
  return { result, fake };
}

async function waitForPhase(
  h: { query: (q: typeof statusQuery) => Promise<{ phase: string }> },
  phase: string,
  step: Duration = '10s',
): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await h.query(statusQuery)).phase === phase) return;
    await env.sleep(step);
  }
  throw new Error(`never reached phase ${phase}`);
}

const stepNames = (r: DeployResult) => r.status.steps.map((s) => s.name);

test('rolling: the whole pipeline in order, images and backup side by side, then verification and summary', async () => {
  const { result, fake } = await deploy(
    {
      plan: plan({ version: '1.0.1', strategy: 'rolling' }),
      pendingMigrations: ['0002_add_email_verified_at_index.sql'],
    },
    { version: '1.0.1', strategy: 'rolling' },
  );
  expect(result.outcome).toBe('succeeded');
  expect(result.status.phase).toBe('succeeded');
  const names = fake.names();
  const order = [
    'resolvePlan',
    'preflight',
    'runPreDeploymentChecks',
    'createReleaseTag',
    'buildImages',
    'migrationStatus',
    'applyMigrations',
    'patchImages',
    'waitForRollout',
    'checkHealth',
    'writeSummary',
  ];
  const idx = order.map((n) => names.indexOf(n as keyof Activities));
  expect(idx.every((v, i) => v >= 0 && (i === 0 || v > idx[i - 1]))).toBe(true);
  // Backup ran between the tag and the migrations, beside the build.
  expect(names.indexOf('backupDatabase')).toBeGreaterThan(names.indexOf('createReleaseTag'));
  expect(names.indexOf('backupDatabase')).toBeLessThan(names.indexOf('migrationStatus'));
  // The rollout deploys the digest-pinned references from the build.
  const update = fake.argsOf<{ updates: { image: string }[] }>('patchImages')[0];
  expect(update.updates).toHaveLength(6);
  expect(update.updates.every((c) => c.image.includes('@sha256:'))).toBe(true);
  expect(fake.argsOf<{ kind: string }>('notify').map((n) => n.kind)).toEqual(['started', 'succeeded']);
  expect(stepNames(result)).toEqual(
    expect.arrayContaining([
      'pre-flight',
      'release tag',
      'build and push images',
      'database backup',
      'migrations',
      'metrics analysis',
      'summary',
    ]),
  );
  expect(result.summary).toContain('Deployment Summary');
  // The ledger's record comes last: the deployment, its digests, migrations, backup.
  expect(names.at(-1)).toBe('appendAudit');
  const audit = fake.argsOf<AuditAppendRequest>('appendAudit');
  expect(audit.map((a) => `${a.environment} ${a.event} ${a.eventId}`)).toEqual([
    `${result.environment} deployment deployment`,
  ]);
  expect(audit[0].facts).toMatchObject({
    outcome: 'succeeded',
    migrations: ['0002_add_email_verified_at_index.sql'],
    plan: { version: '1.0.1', strategy: 'rolling' },
  });
  expect(audit[0].facts.backupKey).toBeDefined();
  expect(Object.values(audit[0].facts.images ?? {}).every((i) => i.includes('@sha256:'))).toBe(true);
  // What DORA figures are made of: the commit's time, the rollout's start, live.
  expect(Object.keys(result.status.timeline ?? {}).sort()).toEqual(['liveAt', 'rolloutStartedAt']);
}, 60_000);

test('canary: rolling for the other services, a canary child for the traffic service, promoted', async () => {
  const p = plan({ version: '1.0.1', canary: { soak: '5m', analysisInterval: '1m' } });
  const { result, fake } = await deploy({ plan: p });
  expect(result.outcome).toBe('succeeded');
  expect(fake.weights).toEqual([5, 25, 50, 100]);
  expect(
    fake.argsOf<{ updates: { deployment: string }[] }>('patchImages')[0].updates.map((c) => c.deployment),
  ).not.toContain('api-gateway');
  expect(fake.count('promoteCanary')).toBe(1);
  expect(result.status.children).toEqual([`${result.workflowId}-canary`]);
}, 60_000);

test('dry run: returns the plan and changes nothing', async () => {
  const { result, fake } = await deploy(
    { plan: { ...plan({ version: '1.0.1', dryRun: true }), dryRun: true }, pendingMigrations: ['0002_x.sql'] },
    { version: '1.0.1', dryRun: true },
  );
  expect(result.outcome).toBe('planned');
  expect(result.preview?.migrations).toEqual({ pending: ['0002_x.sql'], applied: 1 });
  expect(result.preview?.traffic.steps).toEqual([5, 25, 50, 100]);
  expect(fake.names()).toEqual(['resolvePlan', 'previewDeployment']);
}, 60_000);

test('invalid input is refused before any side effect', async () => {
  const { result, fake } = await deploy({ fail: { resolvePlan: 'InvalidInput' } }, { version: '1.0' });
  expect(result).toMatchObject({ outcome: 'failed', refused: 'invalid-input' });
  expect(fake.names()).toEqual(['resolvePlan']);
}, 60_000);

test.each([
  ['preflight', 'PreflightFailed'],
  ['runPreDeploymentChecks', 'PreDeploymentCheckFailed'],
  ['createReleaseTag', 'TagConflict'],
  ['buildImages', 'BuildFailed'],
  ['backupDatabase', 'BackupFailed'],
  ['applyMigrations', 'MigrationFailed'],
] as const)(
  'a failure of %s before the rollout fails the deployment without touching workloads',
  async (name, type) => {
    const { result, fake } = await deploy(
      {
        plan: plan({ version: '1.0.1', strategy: 'rolling' }),
        pendingMigrations: ['0002.sql'],
        fail: { [name]: type },
      },
      { version: '1.0.1', strategy: 'rolling' },
    );
    expect(result.outcome).toBe('failed');
    expect(result.reason).toContain(type);
    expect(fake.count('patchImages')).toBe(0);
    expect(fake.count('restoreDatabase')).toBe(0);
    expect(result.status.children).toEqual([]);
    expect(fake.argsOf<{ kind: string }>('notify').map((n) => n.kind)).toEqual(['started', 'failed']);
  },
  60_000,
);

test.each([
  ['waitForRollout', 'RolloutFailed'],
  ['checkHealth', 'VerificationFailed'],
] as const)(
  'a failure of %s after the rollout began rolls back to the previous images',
  async (name, type) => {
    // Fails once: the rollback's own wait for the rollout succeeds.
    let failed = false;
    const failOnce = async (req: never) => {
      if (!failed) {
        failed = true;
        throw ApplicationFailure.create({ type, message: `${name} failed (fake)`, nonRetryable: true });
      }
      return name === 'waitForRollout'
        ? { deployments: [{ deployment: 'x', revision: 3, images: {}, readyReplicas: 1, message: 'ok' }] }
        : { ok: true, lines: [String(req)] };
    };
    const { result, fake } = await deploy(
      { plan: plan({ version: '1.0.1', strategy: 'rolling' }), override: { [name]: failOnce } },
      { version: '1.0.1', strategy: 'rolling' },
    );
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toContain(type);
    const rollback = fake.argsOf<{ records: { previousImages: Record<string, string> }[] }>('rollbackImages');
    expect(rollback).toHaveLength(1);
    expect(rollback[0].records).toHaveLength(6);
    expect(rollback[0].records.every((r) => Object.values(r.previousImages).every((i) => i.endsWith(':1.0.0')))).toBe(
      true,
    );
    // No migrations ran, so there is no database decision to wait for.
    expect(fake.count('restoreDatabase')).toBe(0);
    expect(result.status.children).toEqual([`${result.workflowId}-rollback`]);
  },
  60_000,
);

test('canary analysis fails at 25%: traffic back to stable, images rolled back, and approve restores the database', async () => {
  const p = plan({ version: '1.0.1', canary: { soak: '5m', analysisInterval: '1m' } });
  const { result, fake } = await deploy(
    { plan: p, pendingMigrations: ['0002.sql'], analysis: ['pass', 'pass', 'pass', 'pass', 'pass', 'fail'] },
    { version: '1.0.1' },
    async (h) => {
      await waitForPhase(h, 'rolling-back', '1m');
      // The rollback child waits for the database decision; the deploy workflow forwards the signal.
      for (let i = 0; i < 100; i++) {
        const s = await h.query(statusQuery);
        if (s.children.length === 2) break;
        await env.sleep('1s');
      }
      const rollback = env.client.workflow.getHandle(`${h.workflowId}-rollback`);
      for (let i = 0; i < 100 && (await rollback.query(statusQuery)).phase !== 'awaiting-db-decision'; i++)
        await env.sleep('1s');
      const waiting = await rollback.query(statusQuery);
      expect(waiting.waitingFor?.commands?.[0]).toContain(`deployctl approve ${h.workflowId}`);
      await h.signal(approveSignal, { by: 'carol', note: 'restore it' });
    },
  );
  expect(result.outcome).toBe('rolled-back');
  expect(result.reason).toMatch(/analysis failed/);
  expect(fake.weights.slice(0, 2)).toEqual([5, 25]);
  expect(fake.weights).not.toContain(50);
  expect(fake.weights.at(-1)).toBe(0);
  expect(fake.count('abortCanary')).toBeGreaterThanOrEqual(1);
  const restore = fake.argsOf<{ key: string; confirmKey: string }>('restoreDatabase');
  expect(restore).toHaveLength(1);
  expect(restore[0].confirmKey).toBe(restore[0].key);
  // Every call that reaches a back end names the deployment's environment, the saga's and its children's alike:
  // the worker routes it to that environment's cluster, database, bucket and metrics (activities/routing.ts).
  const scoped = fake.calls.filter((c) => !UNSCOPED.has(c.name));
  expect(scoped.length).toBeGreaterThan(20);
  const environments = scoped.map((c) => {
    const r = c.args[0] as { environment?: string; target?: { environment?: string }; plan?: { environment?: string } };
    return `${c.name}: ${r?.environment ?? r?.target?.environment ?? r?.plan?.environment ?? '(none)'}`;
  });
  expect(environments.filter((e) => !e.endsWith(`: ${p.environment}`))).toEqual([]);
}, 120_000);

/** Calls that touch no environment's back ends (the release's tag, images and checks; people; notifications). */
const UNSCOPED = new Set<keyof Activities>([
  'resolvePlan',
  'verifySender',
  'lockHolder',
  'lockHolderState',
  'runPreDeploymentChecks',
  'createReleaseTag',
  'buildImages',
  'notify',
]);

test('the database decision times out into keeping the database', async () => {
  const p = { ...plan({ version: '1.0.1', strategy: 'rolling' }), databaseDecisionTimeoutMs: 30 * 60_000 };
  const { result, fake } = await deploy(
    { plan: p, pendingMigrations: ['0002.sql'], fail: { checkHealth: 'VerificationFailed' } },
    { version: '1.0.1', strategy: 'rolling' },
  );
  expect(result.outcome).toBe('rolled-back');
  expect(fake.count('restoreDatabase')).toBe(0);
  const rollback = await resultOf(env.client.workflow.getHandle(`${result.workflowId}-rollback`).result());
  expect(rollback.database).toBe('kept (decision timed out)');
}, 60_000);

test('abort during the build stops before the rollout: nothing to roll back', async () => {
  let release!: () => void;
  const blocked = new Promise<void>((r) => (release = r));
  const { result, fake } = await deploy(
    {
      plan: plan({ version: '1.0.1', strategy: 'rolling' }),
      override: {
        buildImages: async () => {
          await blocked;
          throw new Error('cancelled');
        },
      },
    },
    { version: '1.0.1', strategy: 'rolling' },
    async (h) => {
      await waitForPhase(h, 'building', '1s');
      await h.signal(abortSignal, { by: 'dave', reason: 'wrong branch' });
      release();
    },
  );
  expect(result.outcome).toBe('aborted');
  expect(result.reason).toBe('aborted by dave: wrong branch');
  expect(result.status.aborts).toEqual([expect.objectContaining({ by: 'dave', reason: 'wrong branch' })]);
  expect(fake.count('patchImages')).toBe(0);
}, 60_000);

test('abort during a canary soak is forwarded: canary aborted, saga rolls back, outcome aborted', async () => {
  const p = plan({ version: '1.0.1', canary: { soak: '5m', analysisInterval: '1m' } });
  const { result, fake } = await deploy({ plan: p }, { version: '1.0.1' }, async (h) => {
    const child = env.client.workflow.getHandle(`${h.workflowId}-canary`);
    for (let i = 0; i < 200; i++) {
      const s = await child.query(statusQuery).catch(() => undefined);
      if (s?.phase === 'soaking' && s.canary?.weight === 25) break;
      await env.sleep('30s');
    }
    await h.signal(abortSignal, { by: 'erin', reason: 'p99 looks bad' });
  });
  expect(result.outcome).toBe('aborted');
  expect(fake.weights.at(-1)).toBe(0);
  const canary = await resultOf(env.client.workflow.getHandle(`${result.workflowId}-canary`).result());
  expect(canary.status.aborts[0]).toMatchObject({ by: 'erin', reason: 'p99 looks bad' });
  expect(fake.count('promoteCanary')).toBe(0);
}, 120_000);

test('a compensation that fails leaves the deployment failed and says so', async () => {
  const { result } = await deploy(
    {
      plan: plan({ version: '1.0.1', strategy: 'rolling' }),
      fail: { checkHealth: 'VerificationFailed', rollbackImages: 'KubernetesForbidden' },
    },
    { version: '1.0.1', strategy: 'rolling' },
  );
  expect(result.outcome).toBe('failed');
  expect(result.reason).toMatch(/VerificationFailed.*rollback/);
}, 120_000);

test('a second deployment to the same environment is refused with the running one named', async () => {
  const p = plan({ version: '1.0.1', canary: { approval: 'before-full', soak: '5m' } });
  let holder = '';
  const fake = fakeActivities({ plan: p, override: { lockHolder: async () => ({ workflowId: holder }) } });
  await withWorker(fake, async (taskQueue) => {
    const first = await env.client.workflow.start(deployWorkflow, {
      taskQueue,
      workflowId: `first-${taskQueue}`,
      args: [{ version: '1.0.1' }],
    });
    await waitForPhase(first, 'rolling-out', '10s');
    holder = first.workflowId;
    const second = await resultOf(
      env.client.workflow.execute(deployWorkflow, {
        taskQueue,
        workflowId: `second-${taskQueue}`,
        args: [{ version: '1.0.2' }],
      }),
    );
    expect(second).toMatchObject({ outcome: 'failed', refused: 'deployment-in-progress' });
    expect(second.reason).toContain(first.workflowId);
    await first.signal(abortSignal, { by: 'ops', reason: 'test over' });
    await resultOf(first.result());
  });
}, 120_000);

test('signals that do not apply are recorded as ignored and never wedge the workflow', async () => {
  const { result } = await deploy(
    { plan: plan({ version: '1.0.1', strategy: 'rolling' }) },
    { version: '1.0.1', strategy: 'rolling' },
    async (h) => {
      await h.signal(approveSignal, { by: 'frank' });
      await h.signal(pauseSignal, { by: 'frank' });
      await h.signal(approveSignal, { note: 'no by' });
      await h.signal(abortSignal, 'not an object');
    },
  );
  expect(result.outcome === 'succeeded' || result.outcome === 'aborted').toBe(true);
  const reasons = result.status.ignoredSignals.map((i) => `${i.signal}: ${i.ignoredBecause}`);
  expect(reasons).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^approve: nothing is awaiting approval/),
      expect.stringMatching(/^approve: approve needs "by"/),
      expect.stringMatching(/^abort: abort needs a JSON object/),
    ]),
  );
}, 60_000);

test('the workflow never throws on bad input from the UI', async () => {
  // It ends with its refusal (closed as Failed since issue 16 item 9, the result in the failure), never a crash.
  const { result } = await deploy({ fail: { resolvePlan: 'InvalidInput' } }, null as unknown as DeployInput);
  expect(result).toMatchObject({ outcome: 'failed', refused: 'invalid-input' });
  expect(result.status.phase).toBe('failed');
}, 60_000);

test('issue 16 item 2: a successful deployment writes a summary that says succeeded', async () => {
  const { result, fake } = await deploy({ plan: plan() });
  expect(result.outcome).toBe('succeeded');
  const [summary] = fake.argsOf<{ status: { phase: string } }>('writeSummary');
  expect(summary.status.phase).toBe('succeeded');
}, 60_000);

test('issue 16 item 4: an image update that failed half-way undoes the Deployments it changed', async () => {
  const p = plan({ version: '1.0.1', strategy: 'rolling' });
  const [first, second] = p.services;
  const changed = {
    deployment: first.deployment,
    revision: 2,
    previousImages: { [first.container]: `${p.registry}/${first.image}:1.0.0` },
    previousVersion: '1.0.0',
    images: { [first.container]: `${p.registry}/${first.image}:1.0.1` },
    changed: true,
  };
  const patchImages = async (): Promise<never> => {
    throw ApplicationFailure.create({
      type: 'KubernetesForbidden',
      message: `forbidden: the worker may not patch deployments "${second.deployment}"`,
      nonRetryable: true,
      details: [{ verb: 'patch' }, { changedBeforeFailure: [changed] }],
    });
  };
  const { result, fake } = await deploy(
    { plan: p, override: { patchImages } },
    { version: '1.0.1', strategy: 'rolling' },
  );
  // Rolled back means rolled back: the one Deployment that did change gets its previous images again.
  expect(result.outcome).toBe('rolled-back');
  const rollback = fake.argsOf<{ records: { deployment: string }[] }>('rollbackImages');
  expect(rollback.map((r) => r.records.map((x) => x.deployment))).toEqual([[first.deployment]]);
}, 60_000);

describe('issue 16 item 1: command-mode migrations', () => {
  const unknownStatus: Activities['migrationStatus'] = async () => ({
    mode: 'command',
    applied: [],
    pending: [],
    known: false,
    missing: [],
    outOfOrder: [],
  });

  test('run when their status is not known, and a failure after them offers the database decision', async () => {
    const p = { ...plan({ version: '1.0.1', strategy: 'rolling' }), databaseDecisionTimeoutMs: 30 * 60_000 };
    const applyMigrations: Activities['applyMigrations'] = async () => ({
      mode: 'command',
      applied: [],
      alreadyApplied: 0,
      durationMs: 40,
      output: 'All migrations have been successfully applied.',
      changed: true,
    });
    const { result, fake } = await deploy(
      {
        plan: p,
        override: { migrationStatus: unknownStatus, applyMigrations },
        fail: { checkHealth: 'VerificationFailed' },
      },
      { version: '1.0.1', strategy: 'rolling' },
    );
    expect(fake.count('applyMigrations')).toBe(1);
    expect(result.outcome).toBe('rolled-back');
    const rollback = await env.client.workflow.getHandle(`${result.workflowId}-rollback`).result();
    // The decision was offered (and, with nobody answering, timed out into keeping the database).
    expect(rollback.database).toBe('kept (decision timed out)');
  }, 60_000);

  test('a migration command that failed part-way offers the database decision though nothing rolled out', async () => {
    const p = { ...plan({ version: '1.0.1', strategy: 'rolling' }), databaseDecisionTimeoutMs: 30 * 60_000 };
    const applyMigrations = async (): Promise<never> => {
      throw ApplicationFailure.create({
        type: 'MigrationFailed',
        message: 'migration command prisma migrate deploy exited with 1: ERROR: division by zero',
        nonRetryable: true,
        details: [{ output: 'ERROR: division by zero' }, { changed: true }],
      });
    };
    const { result, fake } = await deploy(
      { plan: p, pendingMigrations: ['20261102000000_half'], override: { applyMigrations } },
      { version: '1.0.1', strategy: 'rolling' },
    );
    expect(fake.count('patchImages')).toBe(0);
    expect(result.reason).toMatch(/division by zero/);
    const rollback = await env.client.workflow.getHandle(`${result.workflowId}-rollback`).result();
    expect(rollback.database).toBe('kept (decision timed out)');
    expect(fake.count('rollbackImages')).toBe(0);
  }, 60_000);
});

describe('issue 16 item 9: a deployment that did not succeed closes as Failed, its result still readable', () => {
  /** Starts a deployment and waits for it to close, whatever its close status; returns what the server says. */
  async function closed(opts: FakeOptions, input: DeployInput = { version: '1.0.1', strategy: 'rolling' }) {
    const fake = fakeActivities(opts);
    return withWorker(fake, async (taskQueue) => {
      const h = await env.client.workflow.start(deployWorkflow, {
        taskQueue,
        workflowId: `deploy-${taskQueue}`,
        args: [input],
      });
      const ended = await h.result().then(
        (value) => ({ value, error: undefined }),
        (error: unknown) => ({ value: undefined, error }),
      );
      const metadata = await h.query<{ currentDetails?: string }>('__temporal_workflow_metadata');
      return { ...ended, closeStatus: (await h.describe()).status.name, details: metadata.currentDetails ?? '' };
    });
  }

  /** The failure a failed run closed with: its type, its message and the DeployResult it carries. */
  function failureOf(error: unknown): { type?: string; message: string; result?: DeployResult } {
    expect(error).toBeInstanceOf(WorkflowFailedError);
    const cause = (error as WorkflowFailedError).cause;
    expect(cause).toBeInstanceOf(ApplicationFailure);
    const f = cause as ApplicationFailure;
    return { type: f.type ?? undefined, message: f.message, result: f.details?.[0] as DeployResult | undefined };
  }

  test.each([
    [
      'rolled back',
      { fail: { checkHealth: 'VerificationFailed' } },
      'DeploymentRolledBack',
      'rolled-back',
      /VerificationFailed/,
    ],
    [
      'failed before the rollout',
      { fail: { preflight: 'PreflightFailed' } },
      'DeploymentFailed',
      'failed',
      /Preflight/,
    ],
    [
      'refused (invalid input)',
      { fail: { resolvePlan: 'InvalidInput' } },
      'DeploymentRefused',
      'failed',
      /InvalidInput/,
    ],
  ] as const)(
    '%s: close status Failed, a failure named after the outcome, the DeployResult in its details',
    async (_name, opts, type, outcome, reason) => {
      const r = await closed({ plan: plan({ version: '1.0.1', strategy: 'rolling' }), ...opts });
      expect(r.closeStatus).toBe('FAILED');
      const f = failureOf(r.error);
      expect(f.type).toBe(type);
      expect(f.message).toMatch(reason);
      expect(f.result).toMatchObject({ outcome, workflowId: expect.stringMatching(/^deploy-/) });
      expect(f.message).toBe(f.result?.reason);
      expect(f.result?.status.phase).toBe(outcome);
      // The workflow's page shows the outcome in its current details.
      expect(r.details).toContain(outcome);
      expect(r.details).toMatch(reason);
    },
    60_000,
  );

  test('a successful deployment still completes, and its current details say succeeded', async () => {
    const r = await closed({ plan: plan({ version: '1.0.1', strategy: 'rolling' }) });
    expect(r.closeStatus).toBe('COMPLETED');
    expect(r.value?.outcome).toBe('succeeded');
    expect(r.details).toContain('succeeded');
  }, 60_000);
});

test("issue 16 item 8: a restore whose row counts differ from the backup's is rolled back, and the deployment's status and summary say the database was restored but not verified", async () => {
  const p = plan({ version: '1.0.1', strategy: 'rolling' });
  const key = 'postgres/ai_saas_prod_1.0.1_1.dump';
  const { result, fake } = await deploy(
    {
      plan: p,
      pendingMigrations: ['0002.sql'],
      fail: { checkHealth: 'VerificationFailed' },
      override: {
        restoreDatabase: async (req) => ({
          key: req.key,
          database: 'ai_saas_prod',
          bytes: 1000,
          sha256: 'b'.repeat(64),
          tables: { users: 998 },
          expectedTables: { users: 1000 },
          verified: false,
          differences: ['users 1000 → 998'],
          durationMs: 10,
        }),
      },
    },
    { version: '1.0.1', strategy: 'rolling' },
    async (h) => {
      await waitForPhase(h, 'rolling-back', '1s');
      const rollback = env.client.workflow.getHandle(`${h.workflowId}-rollback`);
      for (let i = 0; i < 100; i++) {
        const s = await rollback.query(statusQuery).catch(() => undefined);
        if (s?.phase === 'awaiting-db-decision') break;
        await env.sleep('1s');
      }
      await h.signal(approveSignal, { by: 'carol' });
    },
  );
  const loud = `database restored from ${key}; row counts differ from the backup's: users 1000 → 998; check before reopening traffic`;
  expect(result.outcome).toBe('rolled-back');
  expect(fake.count('restoreDatabase')).toBe(1);
  const step = result.status.steps.find((s) => s.name === 'rollback');
  expect(step).toMatchObject({ state: 'succeeded', attention: loud });
  expect(step?.detail).toMatch(/; database restored, row counts differ$/);
  // The summary is written from this status: the step carries the differences to it.
  const [summary] = fake.argsOf<{ status: DeployResult['status'] }>('writeSummary');
  expect(summary.status.phase).toBe('rolled-back');
  expect(summary.status.steps.find((s) => s.name === 'rollback')?.attention).toBe(loud);
}, 60_000);

describe('freeze windows', () => {
  const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);
  const ALL_DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
  /** A window from a minute ago to two hours from now (the server's clock, which time skipping moves), UTC, every day. */
  const frozen = async (mode: 'wait' | 'refuse') => {
    const now = await env.currentTimeMs();
    return {
      ...plan({ version: '1.0.1', strategy: 'rolling' }),
      freeze: {
        windows: [{ days: [...ALL_DAYS], from: hhmm(now - 60_000), to: hhmm(now + 2 * 3_600_000), timeZone: 'UTC' }],
        mode,
        checkIntervalMs: 60_000,
      },
    };
  };

  test('a deployment started inside a window waits for its end, then deploys', async () => {
    const p = await frozen('wait');
    let heldAt = 0;
    const { result } = await deploy({ plan: p }, { version: '1.0.1' }, async (h) => {
      await waitForPhase(h, 'frozen', '1s');
      const s = await h.query(statusQuery);
      expect(s.waitingFor?.what).toMatch(
        /is frozen until .* UTC \(freeze window daily .*\): the deployment starts then/,
      );
      expect(s.steps.map((x) => x.name)).toEqual(['resolve plan']);
      heldAt = Date.now();
    });
    expect(result.outcome).toBe('succeeded');
    // Nothing ran before the window's end: the first step after the plan started about two hours later (workflow time).
    const preflight = result.status.steps.find((s) => s.name === 'pre-flight')!;
    const planned = result.status.steps.find((s) => s.name === 'resolve plan')!;
    const waited = Date.parse(preflight.startedAt!) - Date.parse(planned.startedAt!);
    expect(waited).toBeGreaterThan(115 * 60_000);
    expect(heldAt).toBeGreaterThan(0);
  }, 120_000);

  test('with mode refuse, a deployment inside a window is refused and changes nothing', async () => {
    const { result, fake } = await deploy({ plan: await frozen('refuse') });
    expect(result.outcome).toBe('failed');
    expect(result.refused).toBe('frozen');
    expect(result.reason).toMatch(/is frozen until .*: deployments are refused meanwhile/);
    expect(fake.count('preflight')).toBe(0);
    expect(fake.count('patchImages')).toBe(0);
  }, 60_000);

  test('an abort ends the wait at once', async () => {
    const { result, fake } = await deploy({ plan: await frozen('wait') }, { version: '1.0.1' }, async (h) => {
      await waitForPhase(h, 'frozen', '1s');
      await h.signal(abortSignal, { by: 'bob', reason: 'not today' });
    });
    expect(result.outcome).toBe('aborted');
    expect(fake.count('preflight')).toBe(0);
  }, 60_000);
});

describe('issue 19: waves from dependsOn', () => {
  const WAVES = [
    ['auth-service'],
    ['chat-service', 'billing-service', 'analytics-service', 'frontend'],
    ['api-gateway'],
  ];
  const waved = (input: DeployInput) => ({ ...plan(input), waves: WAVES });
  const patched = (fake: ReturnType<typeof fakeActivities>) =>
    fake.argsOf<{ updates: { deployment: string }[] }>('patchImages').map((r) => r.updates.map((u) => u.deployment));

  test('each wave rolls out and passes its checks before the next; the traffic service canaries in its wave', async () => {
    const { result, fake } = await deploy({ plan: waved({ version: '1.0.1', canary: { soak: '1m' } }) });
    expect(result.outcome).toBe('succeeded');
    expect(patched(fake)).toEqual([WAVES[0], WAVES[1]]);
    // Wave 1's checks ran on wave 1's pods between its rollout and wave 2's images.
    const names = fake.calls.map((c) => c.name);
    const health = fake.calls.filter((c) => c.name === 'checkKubernetesHealth');
    expect((health[0].args[0] as { deployments: string[] }).deployments).toEqual(['auth-service']);
    const firstCheck = names.indexOf('checkKubernetesHealth');
    expect(firstCheck).toBeGreaterThan(names.indexOf('waitForRollout'));
    expect(firstCheck).toBeLessThan(names.lastIndexOf('patchImages'));
    // The canary of the last wave starts after wave 2 passed its checks.
    expect(names.indexOf('setCanaryWeight')).toBeGreaterThan(names.indexOf('checkKubernetesHealth', firstCheck + 1));
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    expect(result.status.waves?.map((w) => `${w.wave}:${w.state}`)).toEqual(['1:done', '2:done', '3:done']);
    expect(stepNames(result)).toEqual(
      expect.arrayContaining(['update images (wave 1 of 3)', 'kubernetes health (wave 2 of 3)', 'canary']),
    );
  }, 60_000);

  test('a failure in wave 2 rolls back wave 2, then wave 1; wave 3 never starts', async () => {
    const checked: string[][] = [];
    const { result, fake } = await deploy(
      {
        plan: waved({ version: '1.0.1', strategy: 'rolling' }),
        override: {
          async checkKubernetesHealth(req) {
            checked.push(req.deployments);
            return req.deployments.includes('chat-service')
              ? { ok: false, lines: ["chat-service: 3 error lines in the new pods' logs"] }
              : { ok: true, lines: ['all Ready'] };
          },
        },
      },
      { version: '1.0.1', strategy: 'rolling' },
    );
    expect(checked).toEqual([WAVES[0], WAVES[1]]);
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toMatch(
      /wave 2 of 3: chat-service, billing-service, analytics-service, frontend.*chat-service: 3 error lines/,
    );
    expect(patched(fake)).toEqual([WAVES[0], WAVES[1]]);
    const restored = fake
      .argsOf<{ records: { deployment: string }[] }>('rollbackImages')
      .map((r) => r.records.map((x) => x.deployment));
    expect(restored).toEqual([WAVES[1], WAVES[0]]);
    expect(result.status.waves?.map((w) => `${w.wave}:${w.state}`)).toEqual([
      '1:rolled-back',
      '2:rolled-back',
      '3:pending',
    ]);
  }, 60_000);
});

describe('issue 19: clusters as waves', () => {
  const clustered = (input: DeployInput) => ({
    ...plan(input),
    waves: [['auth-service', 'chat-service', 'billing-service', 'analytics-service', 'frontend'], ['api-gateway']],
    clusters: ['region-a', 'region-b'],
    betweenClusters: { pauseMs: 10 * 60_000, approval: true, approvalTimeoutMs: 3_600_000 },
  });
  const clusterOf = (fake: ReturnType<typeof fakeActivities>, name: keyof Activities) =>
    fake.argsOf<{ cluster?: string; target?: { cluster?: string } }>(name).map((r) => r.cluster ?? r.target?.cluster);

  test('region-a in waves, a pause and an approval, then region-b; each cluster canaries in its own child', async () => {
    const { result, fake } = await deploy(
      { plan: clustered({ version: '1.0.1', canary: { soak: '1m' } }) },
      { version: '1.0.1' },
      async (h) => {
        await waitForPhase(h, 'awaiting-approval', '1m');
        const s = await h.query(statusQuery);
        expect(s.waitingFor?.gate).toBe('cluster-region-b');
        expect(s.waitingFor?.commands?.[0]).toContain(`deployctl approve ${h.workflowId}`);
        // Nothing has changed in region-b yet: it was only checked before anything changed anywhere.
        expect(s.steps.filter((x) => x.name.includes('(region-b')).map((x) => x.name)).toEqual([
          'pre-flight (region-b)',
        ]);
        await h.signal(approveSignal, { by: 'carol', note: 'region-a looks good' });
      },
    );
    expect(result.outcome).toBe('succeeded');
    expect(clusterOf(fake, 'patchImages')).toEqual(['region-a', 'region-b']);
    expect(clusterOf(fake, 'setCanaryWeight')).toEqual([...Array(4).fill('region-a'), ...Array(4).fill('region-b')]);
    expect(result.status.children).toEqual([
      `${result.workflowId}-canary-region-a`,
      `${result.workflowId}-canary-region-b`,
    ]);
    expect(result.status.approvals.map((a) => `${a.by}: ${a.reason}`)).toEqual(['carol: roll out to region-b']);
    // Carol's approval is a record of its own, before the deployment's.
    const audit = fake.argsOf<AuditAppendRequest>('appendAudit');
    expect(audit.map((a) => a.eventId)).toEqual(['approval-1', 'deployment']);
    expect(audit[0].facts.approvals).toEqual([expect.objectContaining({ by: 'carol' })]);
    expect(result.status.waves?.map((w) => `${w.cluster}/${w.wave}:${w.state}`)).toEqual([
      'region-a/1:done',
      'region-a/2:done',
      'region-b/1:done',
      'region-b/2:done',
    ]);
    expect(stepNames(result)).toEqual(
      expect.arrayContaining(['pause before region-b', 'kubernetes health (region-a, wave 2 of 2)']),
    );
  }, 60_000);

  test('a failure in region-b rolls back region-b, then region-a, each wave last first', async () => {
    const { result, fake } = await deploy(
      {
        plan: clustered({ version: '1.0.1', canary: { soak: '1m' } }),
        override: {
          async checkKubernetesHealth(req) {
            return req.cluster === 'region-b'
              ? { ok: false, lines: ['auth-service: 2 pods not Ready'] }
              : { ok: true, lines: ['all Ready'] };
          },
        },
      },
      { version: '1.0.1' },
      async (h) => {
        await waitForPhase(h, 'awaiting-approval', '1m');
        await h.signal(approveSignal, { by: 'carol' });
      },
    );
    expect(result.outcome).toBe('rolled-back');
    expect(result.reason).toMatch(/region-b, wave 1 of 2: auth-service.*2 pods not Ready/);
    // region-b's traffic service never started its canary.
    expect(result.status.children).toEqual([`${result.workflowId}-canary-region-a`, `${result.workflowId}-rollback`]);
    const restored = fake
      .argsOf<{ cluster?: string; records: { deployment: string }[] }>('rollbackImages')
      .map((r) => `${r.cluster}: ${r.records.map((x) => x.deployment).join(',')}`);
    expect(restored).toEqual([
      'region-b: auth-service,chat-service,billing-service,analytics-service,frontend',
      'region-a: api-gateway',
      'region-a: auth-service,chat-service,billing-service,analytics-service,frontend',
    ]);
  }, 60_000);

  test('no approval between clusters within the timeout: region-b is never touched and region-a rolls back', async () => {
    const { result, fake } = await deploy({ plan: clustered({ version: '1.0.1', canary: { soak: '1m' } }) });
    expect(result.outcome).toBe('aborted');
    expect(result.timedOut).toBe(true);
    expect(clusterOf(fake, 'patchImages')).toEqual(['region-a']);
    expect(new Set(clusterOf(fake, 'rollbackImages'))).toEqual(new Set(['region-a']));
  }, 60_000);
});

describe('issue 19: configuration versioned with the release', () => {
  const HASH = 'abcdef0123456789'.repeat(4);
  const snapshots: Partial<Activities> = {
    async snapshotConfiguration(req) {
      return {
        deployments: req.deployments.map((d) => ({
          deployment: d.deployment,
          references:
            d.deployment === 'auth-service'
              ? [
                  {
                    kind: 'ConfigMap' as const,
                    base: 'auth-config',
                    from: 'auth-config',
                    to: 'auth-config-abcdef0123',
                    hash: HASH,
                  },
                  {
                    kind: 'Secret' as const,
                    base: 'auth-creds',
                    from: 'auth-creds',
                    to: 'auth-creds-abcdef0123',
                    hash: HASH,
                  },
                ]
              : [],
        })),
      };
    },
  };

  test("the snapshots' references go in the image's write; the status names them, never their values", async () => {
    const { result, fake } = await deploy({
      plan: plan({ version: '1.0.1', strategy: 'rolling' }),
      override: snapshots,
    });
    expect(result.outcome).toBe('succeeded');
    const update = fake
      .argsOf<{ updates: { deployment: string; references?: unknown }[] }>('patchImages')[0]
      .updates.find((u) => u.deployment === 'auth-service');
    expect(update?.references).toEqual([
      { kind: 'ConfigMap', from: 'auth-config', to: 'auth-config-abcdef0123' },
      { kind: 'Secret', from: 'auth-creds', to: 'auth-creds-abcdef0123' },
    ]);
    expect(result.status.configuration?.map((c) => `${c.deployment} ${c.kind} ${c.from}→${c.to}`)).toEqual([
      'auth-service ConfigMap auth-config→auth-config-abcdef0123',
      'auth-service Secret auth-creds→auth-creds-abcdef0123',
    ]);
    // Pruned after the success, under the environment lock.
    expect(fake.names().indexOf('pruneConfigSnapshots')).toBeGreaterThan(fake.names().indexOf('checkHealth'));
  }, 60_000);

  test('a rollback puts the previous references back in the same write as the previous images', async () => {
    const { result, fake } = await deploy(
      {
        plan: plan({ version: '1.0.1', strategy: 'rolling' }),
        override: snapshots,
        fail: { checkHealth: 'HealthCheckFailed' },
      },
      { version: '1.0.1', strategy: 'rolling' },
    );
    expect(result.outcome).toBe('rolled-back');
    const records = fake.argsOf<{ records: { deployment: string; previousReferences?: unknown }[] }>(
      'rollbackImages',
    )[0].records;
    expect(records.find((r) => r.deployment === 'auth-service')?.previousReferences).toEqual([
      { kind: 'ConfigMap', from: 'auth-config-abcdef0123', to: 'auth-config' },
      { kind: 'Secret', from: 'auth-creds-abcdef0123', to: 'auth-creds' },
    ]);
    expect(fake.count('pruneConfigSnapshots')).toBe(0);
  }, 60_000);
});

test("temporal.ioTaskQueue: image builds and the backup run on the I/O workers' queue, in a worker without workflows; the rest on the workflows'", async () => {
  const taskQueue = uniqueQueue('deploy');
  const ioTaskQueue = `${taskQueue}-io`;
  const withIo = fakeActivities({ plan: { ...plan(), ioTaskQueue } });
  /** The fake, recording the task queue it ran on. */
  const ranOn = (name: 'buildImages' | 'backupDatabase') => {
    const queues: string[] = [];
    const fn = (req: never) => {
      queues.push(Context.current().info.taskQueue);
      return (withIo.activities[name] as (r: never) => Promise<unknown>)(req);
    };
    return { queues, fn };
  };
  const build = ranOn('buildImages');
  const backup = ranOn('backupDatabase');
  const workflows = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: { ...withIo.activities, buildImages: build.fn, backupDatabase: backup.fn },
  });
  const io = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: ioTaskQueue,
    activities: { buildImages: build.fn, backupDatabase: backup.fn },
  });
  const result = await workflows.runUntil(
    io.runUntil(
      resultOf(
        env.client.workflow.execute(deployWorkflow, {
          taskQueue,
          workflowId: `deploy-${taskQueue}`,
          args: [{ version: '1.0.1' }],
        }),
      ),
    ),
  );
  expect(result.outcome).toBe('succeeded');
  expect(build.queues).toEqual([ioTaskQueue]);
  expect(backup.queues).toEqual([ioTaskQueue]);
  // Everything else stayed with the workflows' worker.
  expect(withIo.count('writeSummary')).toBe(1);
  expect(withIo.count('runPreDeploymentChecks')).toBe(1);
});
