/**
 * The rollback workflow on the time-skipping server with typed fake
 * activities: manual rollbacks to the previous version, a revision or a
 * version; automatic ones from the deploy saga (canary, blue-green, image
 * records); the database decision (approve restores with the confirmation
 * key, abort keeps, the timeout keeps) with its allow-list; failing steps and
 * signals that do not apply. Every test ends every workflow it starts.
 */
import { Context } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import type { SignalDefinition } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { ApplicationFailure } from '@temporalio/common';
import type { Activities, BlueGreenTarget, CanaryTarget } from '../../src/activities/contracts';
import type { DeployPlan } from '../../src/domain/plan';
import type { DeploymentStatus } from '../../src/domain/status';
import {
  abortSignal,
  approveSignal,
  pauseSignal,
  promoteSignal,
  resumeSignal,
  statusQuery,
} from '../../src/workflows/messages';
import {
  rollbackWorkflow,
  type AutomaticRollback,
  type RollbackResult,
  type RollbackWorkflowInput,
} from '../../src/workflows/rollback';
import { fakeActivities, fakeRestore, type FakeOptions } from '../helpers/fake-activities';
import { parentIdOf, startAsChild } from '../helpers/child';
import { testConfig, testPlan, withApprovals } from '../helpers/plan';
import { handoverActivities } from '../../src/activities/handover';
import { timeSkippingEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { deployWorkflow } from '../../src/workflows/deploy';
import { lockWorkflowId } from '../../src/workflows/environment-lock';
import { resultOf } from '../../src/workflows/outcome';

type Fake = ReturnType<typeof fakeActivities>;
type Handle = WorkflowHandle<typeof rollbackWorkflow>;

/** One worker for the whole file: each activity call goes to the fakes of the test whose workflow made it. */
const fakes = new Map<string, Fake>();
function fakeFor(workflowId: string): Fake {
  const fake = fakes.get(workflowId);
  if (!fake) throw new Error(`no fakes registered for ${workflowId}`);
  return fake;
}
/** Which task queue each restore ran on, by workflow id (the I/O workers' queue, or the workflows'). */
const restoredOn = new Map<string, string[]>();
const dispatch = Object.fromEntries(
  Object.keys(fakeActivities().activities).map((name) => [
    name,
    (...args: unknown[]) => {
      const info = Context.current().info;
      if (name === 'restoreDatabase') {
        const id = info.workflowExecution?.workflowId ?? '';
        restoredOn.set(id, [...(restoredOn.get(id) ?? []), info.taskQueue]);
      }
      // The environment locks' lease checks come from the locks' own ids: the holder is open.
      return (
        (name === 'lockHolderState' ? fakeActivities() : fakeFor(info.workflowExecution?.workflowId ?? ''))
          .activities as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>
      )[name](...args);
    },
  ]),
) as unknown as Activities;

let env: TestWorkflowEnvironment;
let worker: Worker;
let ioWorker: Worker;
let running: Promise<unknown>;
const taskQueue = uniqueQueue('rollback');
/** temporal.ioTaskQueue: an I/O worker without workflows that runs only the bulk-data steps. */
const ioTaskQueue = `${taskQueue}-io`;
beforeAll(async () => {
  env = await timeSkippingEnv();
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: dispatch,
  });
  ioWorker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: ioTaskQueue,
    activities: { restoreDatabase: dispatch.restoreDatabase },
  });
  running = Promise.all([worker.run(), ioWorker.run()]);
}, 60_000);
afterAll(async () => {
  if (worker) {
    worker.shutdown();
    ioWorker?.shutdown();
    await running;
  }
  await env?.teardown();
});

let envCounter = 0;
function plan(extra: Partial<DeployPlan> = {}): DeployPlan {
  return { ...testPlan({ version: '1.0.1' }), environment: `rb-${++envCounter}`, searchAttributes: false, ...extra };
}

let runs = 0;
/**
 * A rollback as it is started: an automatic one as a deployment's child, a manual one by hand
 * (`byHand` starts an automatic one by hand too, as a person with access to Temporal could).
 */
async function rollback(
  opts: FakeOptions & { byHand?: boolean },
  input: RollbackWorkflowInput,
  during?: (h: Handle, fake: Fake) => Promise<void>,
): Promise<{ result: RollbackResult; fake: Fake; workflowId: string; closedWith?: string }> {
  const fake = fakeActivities(opts);
  const workflowId = `${taskQueue}-rb-${++runs}`;
  fakes.set(workflowId, fake);
  const h =
    input.automatic && !opts.byHand
      ? await startAsChild(env.client, rollbackWorkflow, { taskQueue, workflowId, args: [input] })
      : await env.client.workflow.start(rollbackWorkflow, { taskQueue, workflowId, args: [input] });
  try {
    await during?.(h, fake);
  } catch (err) {
    // A failed expectation must not leave the workflow running for the tests after it.
    await h.terminate('test failed').catch(() => undefined);
    throw err;
  }
  const result = await resultWithin(h);
  // The failure type a run that did not roll back closed with (undefined: it completed).
  const closedWith = await h.result().then(
    () => undefined,
    (e: { cause?: { type?: string } }) => e.cause?.type,
  );
  return { result, fake, workflowId, ...(closedWith ? { closedWith } : {}) };
}

/** The workflow of the running test, for fakes that act while their activity is in flight. */
let current: Handle | undefined;
afterEach(() => (current = undefined));
function whileRunning<A extends unknown[], R>(
  act: (h: Handle) => Promise<void>,
  result: (...args: A) => R,
): (...args: A) => Promise<R> {
  let done = false;
  return async (...args: A) => {
    if (!current) throw new Error('no workflow handle: set `current` in the test');
    // Only the first call acts; the workflow waits for it, so no timer can race what it sends.
    if (!done) {
      done = true;
      await act(current);
    }
    return result(...args);
  };
}

/**
 * The workflow's result, or, when it does not come within `ms` of real time,
 * an error naming its last events, after terminating it: a stuck run must
 * not hold time skipping for the tests after it.
 */
async function resultWithin<R>(
  h: {
    workflowId: string;
    result: () => Promise<R>;
    terminate: (reason?: string) => Promise<unknown>;
    fetchHistory: Handle['fetchHistory'];
  },
  ms = 40_000,
): Promise<R> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms)));
  try {
    const r = await Promise.race([resultOf(h.result()), late]);
    if (r !== 'late') return r;
  } finally {
    clearTimeout(timer);
  }
  const events = (await h.fetchHistory().catch(() => ({ events: [] }))).events ?? [];
  const last = events
    .slice(-6)
    .map((e) => Object.keys(e).find((k) => k.endsWith('EventAttributes')) ?? String(e.eventType));
  await h.terminate('no result in time').catch(() => undefined);
  throw new Error(`${h.workflowId} gave no result within ${ms} ms of real time; last events: ${last.join(', ')}`);
}

/** Activities that change the platform: notifications and audit records are not among them. */
const actsOnPlatform = (n: string) => n !== 'notify' && n !== 'appendAudit';

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Queries (in real time: server time barely moves) until the status satisfies `pred`. */
async function until(h: Handle, pred: (s: DeploymentStatus) => boolean): Promise<DeploymentStatus> {
  for (let i = 0; i < 500; i++) {
    const s = await h.query(statusQuery);
    if (pred(s)) return s;
    await realSleep(10);
  }
  throw new Error(`status never matched: ${JSON.stringify(await h.query(statusQuery))}`);
}

async function sendAndWaitIgnored(
  h: Handle,
  count: number,
  ...signals: [SignalDefinition<[unknown]>, unknown][]
): Promise<void> {
  for (const [def, payload] of signals) await h.signal(def, payload);
  await until(h, (s) => s.ignoredSignals.length === count);
}

const atDecision = (s: DeploymentStatus) => s.phase === 'awaiting-db-decision';
const ignored = (r: { status: DeploymentStatus }) =>
  r.status.ignoredSignals.map((i) => `${i.signal} by ${i.by}: ${i.ignoredBecause}`);
const stepNames = (r: { status: DeploymentStatus }) => r.status.steps.map((s) => `${s.name}: ${s.state}`);
const deploymentsOf = (p: DeployPlan) => p.services.map((s) => s.deployment);
const DEFAULT_KEY = 'postgres/ai_saas_prod_1.0.1_1.dump';

describe('manual', () => {
  test('to the previous version: traffic to stable, then each Deployment undone in turn', async () => {
    const p = plan();
    const { result, fake, workflowId } = await rollback({ plan: p }, { reason: 'bad release', requestedBy: 'ops' });
    expect(result).toMatchObject({ outcome: 'rolled-back', database: 'unchanged' });
    expect(result.workloads).toBe(
      deploymentsOf(p)
        .map((d) => `${d}@3`)
        .join(', '),
    );
    expect(fake.names().filter(actsOnPlatform)).toEqual([
      'resolveRollback',
      'abortCanary',
      // Which blue-green colour the Service selects (none here: the base Deployments serve).
      'readBlueGreen',
      ...deploymentsOf(p).map(() => 'undoRollout' as const),
    ]);
    const undos = fake.argsOf<{ deployment: string; toRevision?: number; namespace: string; workflowId: string }>(
      'undoRollout',
    );
    expect(undos.map((u) => u.deployment)).toEqual(deploymentsOf(p));
    expect(
      undos.every((u) => u.toRevision === undefined && u.namespace === p.namespace && u.workflowId === workflowId),
    ).toBe(true);
    expect(fake.argsOf<CanaryTarget>('abortCanary')[0]).toMatchObject({
      namespace: p.namespace,
      service: 'api-gateway',
      traffic: p.traffic,
    });
    expect(fake.argsOf<{ input: unknown }>('resolveRollback')[0].input).toEqual({
      reason: 'bad release',
      requestedBy: 'ops',
    });
    expect(result.status).toMatchObject({
      workflow: 'rollback',
      phase: 'rolled-back',
      version: '(previous)',
      environment: p.environment,
      requestedBy: 'ops',
    });
    expect(fake.count('restoreDatabase')).toBe(0);
    expect(fake.count('patchImages')).toBe(0);
    // A manual rollback is announced when it starts, as a deployment is, and when it ends.
    expect(fake.argsOf<{ kind: string }>('notify').map((n) => n.kind)).toEqual(['started', 'rolled-back']);
    expect(fake.argsOf<{ text: string }>('notify')[0].text).toBe(
      'rollback of rb-1 to (previous) started by ops: bad release',
    );
    // One audit record, the rollback's, in its environment's ledger, once the workloads are back.
    const audit = fake.argsOf<{ environment: string; event: string; eventId: string; facts: { outcome: string } }>(
      'appendAudit',
    );
    expect(audit.map((a) => [a.environment, a.event, a.eventId, a.facts.outcome])).toEqual([
      [result.status.environment, 'rollback', 'rollback', 'rolled-back'],
    ]);
    expect(fake.names().at(-1)).toBe('appendAudit');
  }, 60_000);

  test('to a revision: each Deployment undone to that revision', async () => {
    const p = plan();
    const { result, fake } = await rollback({ plan: p }, { toRevision: 4 });
    expect(result.outcome).toBe('rolled-back');
    expect(fake.argsOf<{ toRevision?: number }>('undoRollout').map((u) => u.toRevision)).toEqual(
      deploymentsOf(p).map(() => 4),
    );
    expect(stepNames(result)).toContain('undo api-gateway to revision 4: succeeded');
    expect(result.status.version).toBe('revision 4');
  }, 60_000);

  test('to a version: the images patched to that version, then the rollout awaited', async () => {
    const p = plan();
    const { result, fake, workflowId } = await rollback({ plan: p }, { toVersion: '1.0.0' });
    expect(result.outcome).toBe('rolled-back');
    expect(fake.count('undoRollout')).toBe(0);
    const patch = fake.argsOf<{
      workflowId: string;
      version: string;
      updates: { deployment: string; container: string; image: string }[];
    }>('patchImages');
    expect(patch).toHaveLength(1);
    expect(patch[0]).toMatchObject({ workflowId, version: '1.0.0', namespace: p.namespace });
    expect(patch[0].updates).toEqual(
      p.services.map((s) => ({
        deployment: s.deployment,
        container: s.container,
        image: `${p.registry}/${s.image}:1.0.0`,
      })),
    );
    expect(fake.argsOf<{ deployments: string[]; timeoutMs: number }>('waitForRollout')).toEqual([
      expect.objectContaining({ deployments: deploymentsOf(p), timeoutMs: p.rolloutTimeoutMs }),
    ]);
    expect(fake.names().indexOf('patchImages')).toBeLessThan(fake.names().indexOf('waitForRollout'));
    expect(result.status.version).toBe('1.0.0');
  }, 60_000);

  test('services without the traffic service: no canary traffic to move', async () => {
    const p = plan();
    const services = p.services.filter((s) => s.name !== p.traffic.service);
    const { result, fake } = await rollback(
      { plan: p, rollbackPlan: { services } },
      { services: services.map((s) => s.name) },
    );
    expect(result.outcome).toBe('rolled-back');
    expect(fake.count('abortCanary')).toBe(0);
    expect(fake.count('undoRollout')).toBe(services.length);
  }, 60_000);
});

describe('issue 16 item 5: the environment lock', () => {
  test('a manual rollback is refused while a deployment holds the environment, naming it; nothing is undone', async () => {
    const p = plan();
    // A deployment holds the environment: it stops in its image build until the test ends.
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    const holderId = `${taskQueue}-holder-${++runs}`;
    fakes.set(
      holderId,
      fakeActivities({
        plan: p,
        override: {
          buildImages: async () => {
            await blocked;
            throw ApplicationFailure.create({ type: 'BuildFailed', message: 'test done', nonRetryable: true });
          },
        },
      }),
    );
    const holder = await env.client.workflow.start(deployWorkflow, {
      taskQueue,
      workflowId: holderId,
      args: [{ version: '1.0.1', environment: p.environment }],
    });
    const lock = env.client.workflow.getHandle(lockWorkflowId(p.environment));
    for (let i = 0; i < 100 && (await holder.query(statusQuery)).phase !== 'building'; i++) await env.sleep('1s');
    try {
      const { result, fake } = await rollback({ plan: p }, { reason: 'bad release', requestedBy: 'ops' });
      expect(result.outcome).toBe('failed');
      expect(result.reason).toContain(`another deployment is running on ${p.environment}: deploy-holder`);
      expect(fake.count('undoRollout')).toBe(0);
      expect(fake.count('abortCanary')).toBe(0);
    } finally {
      // The holder fails its build and releases the environment, as a deployment does.
      release();
      await holder.result().catch(() => undefined);
      expect((await lock.describe()).status.name).toBe('COMPLETED');
    }
  }, 60_000);

  test('a manual rollback holds the environment while it runs and releases it at the end', async () => {
    const p = plan();
    let heldDuringUndo = false;
    const undoRollout = whileRunning(
      async () => {
        const d = await env.client.workflow.getHandle(lockWorkflowId(p.environment)).describe();
        heldDuringUndo = d.status.name === 'RUNNING';
      },
      (req: { deployment: string }) => ({
        deployment: req.deployment,
        toRevision: 2,
        skipped: false,
        images: {},
        revision: 3,
      }),
    );
    const { result } = await rollback({ plan: p, override: { undoRollout } }, { reason: 'x' }, async (h) => {
      current = h;
    });
    expect(result.outcome).toBe('rolled-back');
    expect(heldDuringUndo).toBe(true);
    const after = await env.client.workflow.getHandle(lockWorkflowId(p.environment)).describe();
    expect(after.status.name).toBe('COMPLETED');
  }, 60_000);
});

describe('issue 16 item 5: manual rollback of a service served by a blue-green colour', () => {
  /** A Service that selects `live`; `abortBlueGreen` moves it, as the real activity does. */
  function colours(start: { live: 'blue' | 'green'; other?: boolean; versions?: { blue: string; green: string } }) {
    let live = start.live;
    const versions = start.versions ?? { blue: '1.0.0', green: '1.0.1' };
    const name = (c: 'blue' | 'green') => (c === 'blue' ? 'api-gateway' : 'api-gateway-green');
    const other = (c: 'blue' | 'green'): 'blue' | 'green' => (c === 'blue' ? 'green' : 'blue');
    const readBlueGreen = async () => ({
      service: 'api-gateway',
      selector: { app: 'api-gateway', version: live },
      live: {
        colour: live,
        deployment: name(live),
        version: versions[live],
        replicas: 4,
        readyReplicas: 4,
        images: {},
      },
      ...(start.other === false
        ? {}
        : {
            other: {
              colour: other(live),
              deployment: name(other(live)),
              version: versions[other(live)],
              replicas: 0,
              readyReplicas: 0,
              images: {},
            },
          }),
    });
    const abortBlueGreen = async (req: { target: { service: string }; colour: 'blue' | 'green' }) => {
      live = req.colour;
      return { colour: req.colour, selector: { app: req.target.service, version: req.colour } };
    };
    return { readBlueGreen, abortBlueGreen };
  }

  test('to the previous version: the Service switches back to the colour that runs it, verified, instead of undoing the idle base Deployment', async () => {
    const p = plan();
    const { result, fake } = await rollback({ plan: p, override: colours({ live: 'green' }) }, { reason: 'bad' });
    expect(result.outcome).toBe('rolled-back');
    const others = deploymentsOf(p).filter((d) => d !== 'api-gateway');
    expect(fake.names().filter(actsOnPlatform)).toEqual([
      'resolveRollback',
      'abortCanary',
      'readBlueGreen',
      'abortBlueGreen',
      'readBlueGreen',
      ...others.map(() => 'undoRollout' as const),
    ]);
    expect(fake.argsOf<{ target: { service: string; namespace: string }; colour: string }>('abortBlueGreen')).toEqual([
      { target: expect.objectContaining({ service: 'api-gateway', namespace: p.namespace }), colour: 'blue' },
    ]);
    expect(fake.argsOf<{ deployment: string }>('undoRollout').map((u) => u.deployment)).toEqual(others);
    expect(result.blueGreen).toEqual({
      service: 'api-gateway',
      from: 'green',
      to: 'blue',
      deployment: 'api-gateway',
      version: '1.0.0',
    });
    expect(result.workloads).toBe(
      ['api-gateway: traffic back on blue (api-gateway, 1.0.0)', ...others.map((d) => `${d}@3`)].join(', '),
    );
    expect(stepNames(result)).toEqual(
      expect.arrayContaining([
        'read blue-green colours: succeeded',
        'switch traffic back to blue: succeeded',
        'verify traffic on blue: succeeded',
      ]),
    );
    expect(stepNames(result)).not.toContain('undo api-gateway: succeeded');
    expect(fake.argsOf<{ text: string }>('notify').at(-1)?.text).toContain('traffic back on blue (api-gateway, 1.0.0)');
  }, 60_000);

  test('a switch back that does not read back fails the rollback and says where traffic is', async () => {
    const c = colours({ live: 'green' });
    const stuck = async (req: { target: { service: string }; colour: 'blue' | 'green' }) => ({
      colour: req.colour,
      selector: { app: req.target.service, version: req.colour },
    });
    const { result } = await rollback(
      { plan: plan(), override: { readBlueGreen: c.readBlueGreen, abortBlueGreen: stuck } },
      { reason: 'bad' },
    );
    expect(result.outcome).toBe('failed');
    expect(result.reason).toBe(
      'service api-gateway still sends traffic to green (api-gateway-green, 1.0.1) after switching back to blue',
    );
  }, 60_000);

  test('no other colour to go back to: the Deployment that serves (green) is undone, not the base; a version goes to it too', async () => {
    const p = plan();
    const prev = await rollback({ plan: p, override: colours({ live: 'green', other: false }) }, { reason: 'bad' });
    expect(prev.result.outcome).toBe('rolled-back');
    expect(prev.fake.count('abortBlueGreen')).toBe(0);
    expect(prev.fake.argsOf<{ deployment: string }>('undoRollout').map((u) => u.deployment)).toEqual(
      deploymentsOf(p).map((d) => (d === 'api-gateway' ? 'api-gateway-green' : d)),
    );

    const version = await rollback(
      { plan: p, override: colours({ live: 'green', other: false }) },
      { toVersion: '1.0.0' },
    );
    expect(version.result.outcome).toBe('rolled-back');
    const [patch] = version.fake.argsOf<{ updates: { deployment: string }[] }>('patchImages');
    expect(patch.updates.map((u) => u.deployment)).toEqual(
      deploymentsOf(p).map((d) => (d === 'api-gateway' ? 'api-gateway-green' : d)),
    );
    const [wait] = version.fake.argsOf<{ deployments: string[] }>('waitForRollout');
    expect(wait.deployments).toContain('api-gateway-green');
  }, 60_000);

  test('a Service that selects no colour is rolled back as before', async () => {
    const p = plan();
    const { result, fake } = await rollback({ plan: p }, { reason: 'bad' });
    expect(result.outcome).toBe('rolled-back');
    expect(result.blueGreen).toBeUndefined();
    expect(fake.count('readBlueGreen')).toBe(1);
    expect(fake.argsOf<{ deployment: string }>('undoRollout').map((u) => u.deployment)).toEqual(deploymentsOf(p));
  }, 60_000);
});

describe('database decision', () => {
  test('approve restores the backup with confirmKey equal to the key; nothing is restored before it', async () => {
    const p = plan();
    const { result, fake, workflowId } = await rollback(
      { plan: p },
      { restoreDatabase: true, toVersion: '1.0.0' },
      async (h, f) => {
        const waiting = await until(h, atDecision);
        expect(waiting.waitingFor?.what).toBe(
          `a decision on the database: approve restores ${DEFAULT_KEY}, abort keeps it as it is`,
        );
        expect(waiting.waitingFor?.commands).toEqual([
          `deployctl approve ${h.workflowId} --by <name> --note 'restore ${DEFAULT_KEY}'`,
          `deployctl abort ${h.workflowId} --by <name> --reason 'keep the database'`,
        ]);
        expect(Date.parse(waiting.waitingFor!.timeoutAt!) - Date.parse(waiting.waitingFor!.since)).toBe(
          p.databaseDecisionTimeoutMs,
        );
        // The workloads are already back; the database waits for a person.
        expect(f.count('waitForRollout')).toBe(1);
        await env.sleep('30m');
        expect(f.count('restoreDatabase')).toBe(0);
        await h.signal(approveSignal, { by: 'dba', note: 'restore it' });
      },
    );
    expect(result).toMatchObject({ outcome: 'rolled-back', database: 'restored' });
    const restore = fake.argsOf<{ workflowId: string; key: string; confirmKey: string }>('restoreDatabase');
    expect(restore).toEqual([
      { workflowId, environment: expect.any(String), key: DEFAULT_KEY, confirmKey: DEFAULT_KEY },
    ]);
    expect(result.status.approvals).toEqual([
      expect.objectContaining({
        signal: 'approve',
        by: 'dba',
        note: 'restore it',
        reason: 'restore the database from the backup',
      }),
    ]);
    expect(stepNames(result)).toContain('database restore: succeeded');
    expect(fake.argsOf<{ kind: string; text: string }>('notify').map((n) => n.kind)).toEqual([
      'started',
      'rolled-back',
      'rolled-back',
    ]);
    expect(fake.argsOf<{ text: string }>('notify')[1].text).toContain(
      `approve to restore ${DEFAULT_KEY}, abort to keep it (keeps it after 60 min)`,
    );
  }, 60_000);

  test('abort keeps the database as it is', async () => {
    const { result, fake } = await rollback(
      { plan: plan() },
      { restoreDatabase: true, backupKey: 'postgres/ai_saas_prod_1.0.0_7.dump' },
      async (h) => {
        await until(h, atDecision);
        await h.signal(abortSignal, { by: 'dba', reason: 'the data written since is worth more' });
      },
    );
    expect(result).toMatchObject({ outcome: 'rolled-back', database: 'kept' });
    expect(fake.count('restoreDatabase')).toBe(0);
    expect(result.status.aborts).toEqual([
      expect.objectContaining({
        signal: 'abort',
        by: 'dba',
        reason: 'keep the database: the data written since is worth more',
      }),
    ]);
    expect(result.status.steps.find((s) => s.name === 'database restore')).toMatchObject({
      state: 'skipped',
      detail: 'kept as it is by dba',
    });
    expect(result.status.approvals).toEqual([]);
  }, 60_000);

  test("with temporal.ioTaskQueue in the plan the restore runs on the I/O workers' queue; without, on the workflows'", async () => {
    const approved = async (h: Handle) => {
      await until(h, atDecision);
      await h.signal(approveSignal, { by: 'dba', note: 'restore it' });
    };
    const io = await rollback({ plan: plan({ ioTaskQueue }) }, { restoreDatabase: true, toVersion: '1.0.0' }, approved);
    expect(io.result).toMatchObject({ outcome: 'rolled-back', database: 'restored' });
    expect(restoredOn.get(io.workflowId)).toEqual([ioTaskQueue]);
    const plain = await rollback({ plan: plan() }, { restoreDatabase: true, toVersion: '1.0.0' }, approved);
    expect(plain.result).toMatchObject({ outcome: 'rolled-back', database: 'restored' });
    expect(restoredOn.get(plain.workflowId)).toEqual([taskQueue]);
  }, 60_000);

  test('no decision before the timeout keeps the database (never restored)', async () => {
    const p = plan({ databaseDecisionTimeoutMs: 30 * 60_000 });
    const { result, fake } = await rollback({ plan: p }, { restoreDatabase: true });
    expect(result).toMatchObject({ outcome: 'rolled-back', database: 'kept (decision timed out)' });
    expect(fake.count('restoreDatabase')).toBe(0);
    expect(result.status.steps.find((s) => s.name === 'database restore')).toMatchObject({
      state: 'skipped',
      detail: 'no decision before the timeout: the database is kept as it is',
    });
    const waited =
      Date.parse(result.status.endedAt!) -
      Date.parse(result.status.steps.filter((s) => s.name.startsWith('undo')).at(-1)!.endedAt!);
    expect(waited).toBeGreaterThanOrEqual(30 * 60_000);
    expect(waited).toBeLessThan(31 * 60_000);
  }, 60_000);

  test('approve and abort from people outside the allow-list are ignored and recorded; an approver decides', async () => {
    const p = plan(withApprovals({ approvers: ['dba', 'cto'] }));
    const { result, fake } = await rollback({ plan: p }, { restoreDatabase: true }, async (h) => {
      await until(h, atDecision);
      await h.signal(approveSignal, { by: 'mallory' });
      await h.signal(abortSignal, { by: 'mallory', reason: 'keep' });
      const s = await until(h, (x) => x.ignoredSignals.length === 2);
      expect(s.phase).toBe('awaiting-db-decision');
      await h.signal(approveSignal, { by: 'cto' });
    });
    expect(result).toMatchObject({ outcome: 'rolled-back', database: 'restored' });
    expect(fake.count('restoreDatabase')).toBe(1);
    expect(result.status.approvals.map((a) => a.by)).toEqual(['cto']);
    expect(result.status.aborts).toEqual([]);
    expect(ignored(result)).toEqual([
      `approve by mallory: mallory is not an approver for ${p.environment}`,
      `abort by mallory: mallory is not an approver for ${p.environment}`,
    ]);
  }, 60_000);

  test('issue 16 item 6: a restore waits for as many distinct approvers as the environment requires', async () => {
    const p = plan(withApprovals({ approvers: ['dba', 'cto'], required: 2 }));
    const { result, fake } = await rollback({ plan: p }, { restoreDatabase: true }, async (h, f) => {
      await until(h, atDecision);
      await h.signal(approveSignal, { by: 'dba' });
      await h.signal(approveSignal, { by: 'dba' });
      const s = await until(h, (x) => x.ignoredSignals.length === 1);
      // One person, twice: still waiting, nothing restored.
      expect(s.phase).toBe('awaiting-db-decision');
      expect(f.count('restoreDatabase')).toBe(0);
      await h.signal(approveSignal, { by: 'cto' });
    });
    expect(result).toMatchObject({ outcome: 'rolled-back', database: 'restored' });
    expect(fake.count('restoreDatabase')).toBe(1);
    expect(result.status.approvals.map((a) => a.by)).toEqual(['dba', 'cto']);
    expect(ignored(result)).toEqual(['approve by dba: dba already approved; a different person must approve']);
  }, 60_000);

  test('a restore that fails leaves the rollback failed and says why', async () => {
    const { result, fake } = await rollback(
      { plan: plan(), fail: { restoreDatabase: 'RestoreFailed' } },
      { restoreDatabase: true },
      async (h) => {
        await until(h, atDecision);
        await h.signal(approveSignal, { by: 'dba' });
      },
    );
    expect(result).toMatchObject({
      outcome: 'failed',
      database: 'restore failed',
      reason: 'database restore failed: RestoreFailed: restoreDatabase failed (fake)',
    });
    expect(fake.count('restoreDatabase')).toBe(1);
    expect(result.status.phase).toBe('failed');
    expect(fake.argsOf<{ kind: string }>('notify').at(-1)?.kind).toBe('failed');
  }, 60_000);

  test("issue 16 item 8: a restore whose row counts differ from the backup's is rolled back, restored but not verified, and says so loudly", async () => {
    const mismatch = (req: { key: string }) =>
      Promise.resolve({
        ...fakeRestore(req.key),
        tables: { users: 998 },
        expectedTables: { users: 1000 },
        verified: false,
        differences: ['users 1000 → 998'],
      });
    const { result, fake } = await rollback(
      { plan: plan(), override: { restoreDatabase: mismatch } },
      { restoreDatabase: true },
      async (h) => {
        await until(h, atDecision);
        await h.signal(approveSignal, { by: 'dba' });
      },
    );
    const loud = `database restored from ${DEFAULT_KEY}; row counts differ from the backup's: users 1000 → 998; check before reopening traffic`;
    // The data was replaced, so the rollback happened; the mismatch is in the result, the status and the notification.
    expect(result).toMatchObject({
      outcome: 'rolled-back',
      database: 'restored, row counts differ',
      restore: { key: DEFAULT_KEY, verified: false, differences: ['users 1000 → 998'] },
      attention: loud,
    });
    expect(result.status.phase).toBe('rolled-back');
    expect(result.status.error).toBeUndefined();
    expect(result.status.steps.find((s) => s.name === 'database restore')).toMatchObject({
      state: 'succeeded',
      detail: 'users=998 (backup: users=1000)',
      attention: loud,
    });
    const last = fake.argsOf<{ kind: string; text: string; attention?: string }>('notify').at(-1)!;
    expect(last.kind).toBe('rolled-back');
    expect(last.attention).toBe(loud);
    expect(last.text).toContain(loud);
    expect(last.text).not.toMatch(/restore failed/);

    // Restored and verified: no attention, and the result says so.
    const ok = await rollback({ plan: plan() }, { restoreDatabase: true }, async (h) => {
      await until(h, atDecision);
      await h.signal(approveSignal, { by: 'dba' });
    });
    expect(ok.result).toMatchObject({
      outcome: 'rolled-back',
      database: 'restored',
      restore: { key: DEFAULT_KEY, verified: true, differences: [] },
    });
    expect(ok.result.attention).toBeUndefined();
    expect(ok.result.status.steps.find((s) => s.name === 'database restore')?.attention).toBeUndefined();
    expect(ok.fake.argsOf<{ attention?: string }>('notify').at(-1)?.attention).toBeUndefined();
  }, 60_000);

  test('a restore asked for without any backup is skipped, with no wait', async () => {
    const { result, fake } = await rollback(
      { plan: plan(), rollbackPlan: { backupKey: undefined } },
      { restoreDatabase: true },
    );
    expect(result).toMatchObject({ outcome: 'rolled-back', database: 'unchanged' });
    expect(fake.count('restoreDatabase')).toBe(0);
    expect(result.status.steps.find((s) => s.name === 'database restore')).toMatchObject({
      state: 'skipped',
      detail: 'no backup found to restore from',
    });
  }, 60_000);
});

describe('signals that do not apply', () => {
  test('are recorded as ignored in every phase: while rolling back, while restoring, and bad payloads', async () => {
    const undo = whileRunning(
      (h) =>
        sendAndWaitIgnored(
          h,
          5,
          [approveSignal, { by: 'dba' }],
          [abortSignal, { by: 'dba', reason: 'stop it' }],
          [pauseSignal, { by: 'dba' }],
          [resumeSignal, { by: 'dba' }],
          [promoteSignal, { by: 'dba', full: true }],
        ),
      (req: { deployment: string }) => ({
        deployment: req.deployment,
        fromRevision: 2,
        toRevision: 1,
        skipped: false,
        images: {},
        revision: 3,
      }),
    );
    const restore = whileRunning(
      (h) =>
        sendAndWaitIgnored(
          h,
          9,
          [approveSignal, { by: 'dba' }],
          [abortSignal, { by: 'dba', reason: 'too late' }],
          [approveSignal, { note: 'no by' }],
          [abortSignal, 'keep'],
        ),
      (req: { key: string }) => fakeRestore(req.key),
    );
    const { result, fake } = await rollback(
      { plan: plan(), override: { undoRollout: undo, restoreDatabase: restore } },
      { restoreDatabase: true },
      async (h) => {
        current = h;
        await until(h, atDecision);
        await h.signal(approveSignal, { by: 'dba' });
      },
    );
    expect(result).toMatchObject({ outcome: 'rolled-back', database: 'restored' });
    expect(fake.count('restoreDatabase')).toBe(1);
    expect(result.status.approvals.map((a) => a.by)).toEqual(['dba']);
    expect(result.status.aborts).toEqual([]);
    expect(ignored(result)).toEqual([
      'approve by dba: nothing is awaiting approval (phase rolling-back)',
      'abort by dba: a rollback runs to completion; abort only answers the database decision (phase rolling-back)',
      'pause by dba: a rollback has nothing to pause',
      'resume by dba: a rollback has nothing to resume',
      'promote by dba: a rollback has nothing to promote',
      'approve by dba: nothing is awaiting approval (phase restoring)',
      'abort by dba: a rollback runs to completion; abort only answers the database decision (phase restoring)',
      'approve by (unknown): approve needs "by": the name of the person (letters, digits, . _ @ + -, at most 128)',
      'abort by (unknown): abort needs a JSON object such as {"by":"alice"}',
    ]);
  }, 60_000);
});

describe('failures', () => {
  test.each([
    ['resolveRollback', 'InvalidInput', {}, 'not restored'],
    ['abortCanary', 'TrafficNotApplied', {}, 'not restored'],
    ['undoRollout', 'RolloutFailed', {}, 'not restored'],
    ['patchImages', 'KubernetesForbidden', { toVersion: '1.0.0' }, 'not restored'],
    ['waitForRollout', 'RolloutFailed', { toVersion: '1.0.0' }, 'not restored'],
  ] as const)(
    'a failure of %s fails the rollback; the database decision is never asked',
    async (name, type, input, workloads) => {
      const { result, fake } = await rollback(
        { plan: plan(), fail: { [name]: type } },
        { ...input, restoreDatabase: true },
      );
      expect(result).toMatchObject({
        outcome: 'failed',
        database: 'unchanged',
        workloads,
        reason: `${type}: ${name} failed (fake)`,
      });
      expect(result.status).toMatchObject({ phase: 'failed', error: result.reason });
      expect(fake.count('restoreDatabase')).toBe(0);
      expect(result.status.steps.find((s) => s.state === 'failed')?.error).toBe(`${type}: ${name} failed (fake)`);
      // A rollback that could not even resolve never started.
      expect(fake.argsOf<{ kind: string }>('notify').map((n) => n.kind)).toEqual(
        name === 'resolveRollback' ? ['failed'] : ['started', 'failed'],
      );
    },
    60_000,
  );

  test('the first failing undo stops the ones after it', async () => {
    const p = plan();
    const third = deploymentsOf(p)[2];
    const { result, fake } = await rollback(
      {
        plan: p,
        override: {
          undoRollout: async (req) => {
            if (req.deployment === third)
              throw ApplicationFailure.create({
                type: 'RolloutFailed',
                message: `${third} is being deleted`,
                nonRetryable: true,
              });
            return {
              deployment: req.deployment,
              fromRevision: 2,
              toRevision: 1,
              skipped: false,
              images: {},
              revision: 3,
            };
          },
        },
      },
      {},
    );
    expect(result).toMatchObject({
      outcome: 'failed',
      workloads: 'not restored',
      reason: `RolloutFailed: ${third} is being deleted`,
    });
    expect(fake.argsOf<{ deployment: string }>('undoRollout').map((u) => u.deployment)).toEqual(
      deploymentsOf(p).slice(0, 3),
    );
    expect(stepNames(result).filter((n) => n.startsWith('undo'))).toEqual([
      ...deploymentsOf(p)
        .slice(0, 2)
        .map((d) => `undo ${d}: succeeded`),
      `undo ${third}: failed`,
    ]);
  }, 60_000);
});

describe('automatic (from the deploy saga)', () => {
  const canaryTarget = (p: DeployPlan, workflowId: string): CanaryTarget => ({
    workflowId,
    namespace: p.namespace,
    version: p.version,
    service: p.traffic.service,
    container: 'api-gateway',
    image: `${p.registry}/ai-saas-api-gateway:1.0.1`,
    traffic: p.traffic,
  });
  const records = (p: DeployPlan): AutomaticRollback['records'] =>
    p.services
      .filter((s) => s.name !== p.traffic.service)
      .map((s) => ({
        deployment: s.deployment,
        previousImages: { [s.container]: `${p.registry}/${s.image}:1.0.0` },
        previousVersion: '1.0.0',
      }));

  test('canary: traffic back to stable first, then the recorded images; migrations ran, so approve restores the backup', async () => {
    const p = plan(withApprovals({ approvers: ['dba'] }));
    const auto: AutomaticRollback = {
      plan: p,
      records: records(p),
      canary: canaryTarget(p, 'deploy-1'),
      backupKey: 'postgres/ai_saas_prod_1.0.1_9.dump',
      migrationsApplied: ['0002.sql'],
      reason: 'analysis failed',
    };
    const { result, fake, workflowId } = await rollback(
      {},
      { automatic: auto, requestedBy: 'deploy-pipelines', reason: 'analysis failed' },
      async (h) => {
        await until(h, atDecision);
        await h.signal(approveSignal, { by: 'mallory' });
        await until(h, (s) => s.ignoredSignals.length === 1);
        await h.signal(approveSignal, { by: 'dba' });
      },
    );
    expect(result).toMatchObject({
      outcome: 'rolled-back',
      database: 'restored',
      workloads: '5 deployments back to their previous images, canary aborted',
    });
    expect(fake.names().filter(actsOnPlatform)).toEqual([
      'confirmRollback',
      'abortCanary',
      'rollbackImages',
      'restoreDatabase',
    ]);
    expect(fake.argsOf<CanaryTarget>('abortCanary')).toEqual([auto.canary]);
    expect(fake.argsOf('rollbackImages')).toEqual([
      {
        workflowId: parentIdOf(workflowId),
        environment: p.environment,
        namespace: p.namespace,
        records: auto.records,
        timeoutMs: p.rolloutTimeoutMs,
      },
    ]);
    expect(fake.argsOf('restoreDatabase')).toEqual([
      {
        workflowId: parentIdOf(workflowId),
        environment: p.environment,
        key: auto.backupKey,
        confirmKey: auto.backupKey,
      },
    ]);
    expect(ignored(result)).toEqual([`approve by mallory: mallory is not an approver for ${p.environment}`]);
    expect(result.status).toMatchObject({
      version: p.previousVersion,
      environment: p.environment,
      phase: 'rolled-back',
    });
    expect(fake.count('resolveRollback')).toBe(0);
  }, 60_000);

  test("issue 16 item 8: the restore carries the backup's sha256 as the deployment recorded it", async () => {
    const p = plan(withApprovals({ approvers: ['dba'] }));
    const sha256 = 'b'.repeat(64);
    const auto: AutomaticRollback = {
      plan: p,
      records: records(p),
      backupKey: 'postgres/ai_saas_prod_1.0.1_9.dump',
      backupSha256: sha256,
      migrationsApplied: ['0002.sql'],
      reason: 'analysis failed',
    };
    const { result, fake, workflowId } = await rollback({}, { automatic: auto, reason: 'x' }, async (h) => {
      await until(h, atDecision);
      await h.signal(approveSignal, { by: 'dba' });
    });
    expect(result.database).toBe('restored');
    expect(fake.argsOf('restoreDatabase')).toEqual([
      {
        workflowId: parentIdOf(workflowId),
        environment: p.environment,
        key: auto.backupKey,
        confirmKey: auto.backupKey,
        sha256,
      },
    ]);
  }, 60_000);

  test('blue-green: traffic switched back to the colour that served before; no migrations, no decision', async () => {
    const p = plan();
    const target: BlueGreenTarget = {
      workflowId: 'deploy-2',
      namespace: p.namespace,
      service: p.traffic.service,
      container: 'api-gateway',
      image: `${p.registry}/ai-saas-api-gateway:1.0.1`,
      version: p.version,
    };
    const { result, fake } = await rollback(
      {},
      {
        automatic: {
          plan: p,
          records: [],
          blueGreen: { target, back: 'blue' },
          backupKey: 'postgres/x.dump',
          migrationsApplied: [],
          reason: 'verification failed',
        },
      },
    );
    expect(result).toMatchObject({
      outcome: 'rolled-back',
      database: 'unchanged',
      workloads: '0 deployments back to their previous images, traffic back on blue',
    });
    expect(fake.names().filter(actsOnPlatform)).toEqual(['confirmRollback', 'abortBlueGreen']);
    expect(fake.argsOf('abortBlueGreen')).toEqual([{ target, colour: 'blue' }]);
    expect(stepNames(result)).toEqual(['confirm hand-over: succeeded', 'switch traffic back to blue: succeeded']);
  }, 60_000);

  test('records only: images back; migrations without a backup cannot be restored, so no decision is asked', async () => {
    const p = plan();
    const { result, fake } = await rollback(
      {},
      { automatic: { plan: p, records: records(p), migrationsApplied: ['0002.sql'], reason: 'health check failed' } },
    );
    expect(result).toMatchObject({
      outcome: 'rolled-back',
      database: 'unchanged',
      workloads: '5 deployments back to their previous images',
    });
    expect(fake.names().filter(actsOnPlatform)).toEqual(['confirmRollback', 'rollbackImages']);
    expect(fake.count('restoreDatabase')).toBe(0);
  }, 60_000);

  test('the database decision times out into keeping it', async () => {
    const p = plan({ databaseDecisionTimeoutMs: 10 * 60_000 });
    const { result, fake } = await rollback(
      {},
      {
        automatic: {
          plan: p,
          records: records(p),
          backupKey: 'postgres/k.dump',
          migrationsApplied: ['0002.sql'],
          reason: 'x',
        },
      },
    );
    expect(result).toMatchObject({ outcome: 'rolled-back', database: 'kept (decision timed out)' });
    expect(fake.count('restoreDatabase')).toBe(0);
  }, 60_000);

  test.each([
    ['abortCanary', 'TrafficNotApplied', 'abort canary'],
    ['rollbackImages', 'RolloutFailed', 'restore previous images'],
  ] as const)(
    'a failure of %s does not stop the other steps; the rollback fails without asking about the database',
    async (name, type, step) => {
      const p = plan();
      const auto: AutomaticRollback = {
        plan: p,
        records: records(p),
        canary: canaryTarget(p, 'deploy-3'),
        backupKey: 'postgres/k.dump',
        migrationsApplied: ['0002.sql'],
        reason: 'x',
      };
      const { result, fake } = await rollback({ fail: { [name]: type } }, { automatic: auto });
      expect(result).toMatchObject({
        outcome: 'failed',
        database: 'unchanged',
        workloads: 'not fully restored',
        reason: `${step}: ${type}: ${name} failed (fake)`,
      });
      // Both steps ran: a traffic API that fails does not leave the other services on the new images.
      expect(fake.names().filter(actsOnPlatform)).toEqual(['confirmRollback', 'abortCanary', 'rollbackImages']);
      expect(stepNames(result)).toEqual(
        ['confirm hand-over', 'abort canary', 'restore previous images'].map(
          (n) => `${n}: ${n === step ? 'failed' : 'succeeded'}`,
        ),
      );
      expect(fake.count('restoreDatabase')).toBe(0);
    },
    60_000,
  );

  test('every step failing: each failure is in the reason', async () => {
    const p = plan();
    const target: BlueGreenTarget = {
      workflowId: 'deploy-4',
      namespace: p.namespace,
      service: p.traffic.service,
      container: 'api-gateway',
      image: 'x',
      version: p.version,
    };
    const { result } = await rollback(
      { fail: { abortBlueGreen: 'TrafficNotApplied', rollbackImages: 'RolloutFailed' } },
      {
        automatic: {
          plan: p,
          records: records(p),
          blueGreen: { target, back: 'blue' },
          migrationsApplied: [],
          reason: 'x',
        },
      },
    );
    expect(result.outcome).toBe('failed');
    expect(result.reason).toBe(
      'switch traffic back to blue: TrafficNotApplied: abortBlueGreen failed (fake); restore previous images: RolloutFailed: rollbackImages failed (fake)',
    );
  }, 60_000);
});

describe('nothing trusted from a hand-started rollback', () => {
  const config = testConfig();
  // The test server has no Deploy* search attributes: plans here turn them off, as config would.
  const cfg = { ...config, temporal: { ...config.temporal, searchAttributes: false } };
  const KEY = 'postgres/ai_saas_prod_1.0.1_20261126T030811Z.dump';
  /** The real checks, over a bucket that holds KEY only. */
  const realConfirm = handoverActivities({
    config: cfg,
    imageDigest: async () => undefined,
    backupExists: async (key) => key === KEY,
  }).confirmRollback;
  /** A deployment's plan as the planner makes it from the example config. */
  const deployPlan = (): DeployPlan => ({ ...testPlan({ version: '1.0.1' }), searchAttributes: false });
  const genuine = (p: DeployPlan): AutomaticRollback => ({
    plan: p,
    records: p.services
      .filter((s) => s.name !== p.traffic.service)
      .map((s) => ({ deployment: s.deployment, previousImages: { [s.container]: `${p.registry}/${s.image}:1.0.0` } })),
    backupKey: KEY,
    migrationsApplied: ['0002.sql'],
    reason: 'analysis failed',
  });
  const rolledBack = (names: string[]) =>
    names.filter((n) => ['abortCanary', 'abortBlueGreen', 'rollbackImages', 'restoreDatabase'].includes(n));

  test('automatic input on a rollback started by hand is refused before anything is rolled back (exit 2)', async () => {
    const p = deployPlan();
    const { result, fake, closedWith } = await rollback(
      { byHand: true },
      {
        automatic: {
          ...genuine(p),
          records: [{ deployment: 'api-gateway', previousImages: { 'api-gateway': 'evil.example/miner:1' } }],
        },
      },
    );
    expect(result).toMatchObject({
      outcome: 'failed',
      refused: 'invalid-input',
      workloads: 'not restored',
      database: 'unchanged',
      reason: expect.stringContaining("runs only as a deployment's child"),
    });
    expect(closedWith).toBe('RollbackRefused');
    expect(fake.names().filter(actsOnPlatform)).toEqual([]);
  }, 60_000);

  test("a deployment's own hand-over is confirmed by the configuration, then rolled back", async () => {
    const p = deployPlan();
    const auto = genuine(p);
    const { result, fake } = await rollback(
      { override: { confirmRollback: realConfirm } },
      { automatic: auto },
      async (h) => {
        await until(h, atDecision);
        await h.signal(abortSignal, { by: 'dba', reason: 'keep it' });
      },
    );
    expect(result).toMatchObject({ outcome: 'rolled-back', database: 'kept' });
    expect(fake.names().filter(actsOnPlatform)).toEqual(['confirmRollback', 'rollbackImages']);
  }, 60_000);

  test.each([
    [
      'an image of another registry',
      (a: AutomaticRollback) => {
        a.records[0].previousImages = { [Object.keys(a.records[0].previousImages)[0]]: 'evil.example/miner:1' };
      },
      'evil.example/miner:1',
    ],
    [
      'a Deployment the plan does not change',
      (a: AutomaticRollback) => {
        a.records.push({ deployment: 'kube-dns', previousImages: { dns: 'x' } });
      },
      'kube-dns',
    ],
    [
      "another database's backup",
      (a: AutomaticRollback) => {
        a.backupKey = 'postgres/billing_1.0.1_20261126T030811Z.dump';
      },
      'a backup of billing',
    ],
    [
      'a key with ..',
      (a: AutomaticRollback) => {
        a.backupKey = 'postgres/../ai_saas_prod_1.0.1_20261126T030811Z.dump';
      },
      '".."',
    ],
    [
      'a missing backup object',
      (a: AutomaticRollback) => {
        a.backupKey = 'postgres/ai_saas_prod_1.0.1_20261126T040000Z.dump';
      },
      'is not in s3://',
    ],
    [
      'a plan with another namespace',
      (a: AutomaticRollback) => {
        a.plan = { ...a.plan, namespace: 'kube-system' };
      },
      'namespace is "kube-system"',
    ],
  ])(
    'from a parent, %s is refused before anything is rolled back (exit 2)',
    async (_name, forge, named) => {
      const auto = genuine(deployPlan());
      forge(auto);
      const { result, fake, closedWith } = await rollback(
        { override: { confirmRollback: realConfirm } },
        { automatic: auto },
      );
      expect(result).toMatchObject({
        outcome: 'failed',
        refused: 'invalid-input',
        database: 'unchanged',
        reason: expect.stringContaining(named),
      });
      expect(closedWith).toBe('RollbackRefused');
      expect(rolledBack(fake.names())).toEqual([]);
    },
    60_000,
  );

  test('a manual rollback refused by its resolution (a bad backup key) is exit 2 and changes nothing', async () => {
    const { result, fake, closedWith } = await rollback(
      {
        plan: plan(),
        override: {
          resolveRollback: async () => {
            throw ApplicationFailure.create({
              type: 'InvalidInput',
              message: 'backupKey "postgres/../x.dump" contains ".." or "."',
              nonRetryable: true,
            });
          },
        },
      },
      { restoreDatabase: true, backupKey: 'postgres/../x.dump' },
    );
    expect(result).toMatchObject({
      outcome: 'failed',
      refused: 'invalid-input',
      reason: expect.stringContaining('..'),
    });
    expect(closedWith).toBe('RollbackRefused');
    expect(rolledBack(fake.names())).toEqual([]);
  }, 60_000);
});
