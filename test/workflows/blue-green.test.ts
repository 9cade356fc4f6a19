/**
 * The blue-green workflow on the time-skipping server with typed fake
 * activities: the new colour prepared, smoke-checked, switched, monitored and
 * the old colour scaled down, then deleted by a detached child after its
 * delay; the approval gate, aborts, failed analysis and smoke checks, each
 * switching traffic back to the colour that served before. Every test ends
 * every workflow it starts, the retire child included.
 */
import { Context } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, type SignalDefinition } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Activities, BlueGreenTarget, Colour } from '../../src/activities/contracts';
import type { DeployInput } from '../../src/domain/input';
import type { DeployPlan } from '../../src/domain/plan';
import type { DeploymentStatus } from '../../src/domain/status';
import { blueGreenWorkflow, retireColourWorkflow, type BlueGreenResult } from '../../src/workflows/blue-green';
import {
  abortSignal,
  approveSignal,
  pauseSignal,
  promoteSignal,
  resumeSignal,
  statusQuery,
} from '../../src/workflows/messages';
import { fakeActivities, type FakeOptions } from '../helpers/fake-activities';
import { parentIdOf, startAsChild } from '../helpers/child';
import { testPlan, withApprovals } from '../helpers/plan';
import { timeSkippingEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { resultOf } from '../../src/workflows/outcome';

type Fake = ReturnType<typeof fakeActivities>;
type Handle = WorkflowHandle<typeof blueGreenWorkflow>;

/**
 * One worker for the whole file: each activity call goes to the fakes of the
 * test whose workflow made it (the retire child's calls to its parent's).
 */
const fakes = new Map<string, Fake>();
function fakeFor(workflowId: string): Fake {
  for (const [id, fake] of fakes) if (workflowId === id || workflowId.startsWith(`${id}-`)) return fake;
  throw new Error(`no fakes registered for ${workflowId}`);
}
const dispatch = Object.fromEntries(
  Object.keys(fakeActivities().activities).map((name) => [
    name,
    (...args: unknown[]) =>
      (
        fakeFor(Context.current().info.workflowExecution?.workflowId ?? '').activities as unknown as Record<
          string,
          (...a: unknown[]) => Promise<unknown>
        >
      )[name](...args),
  ]),
) as unknown as Activities;

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
const taskQueue = uniqueQueue('blue-green');
beforeAll(async () => {
  env = await timeSkippingEnv();
  worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: dispatch,
  });
  running = worker.run();
}, 60_000);
afterAll(async () => {
  if (worker) {
    worker.shutdown();
    await running;
  }
  await env?.teardown();
});

let envCounter = 0;
/** Monitoring 5m with analysis every 1m (5 analyses) unless a test says otherwise; each test its own environment. */
function plan(blueGreen: DeployInput['blueGreen'] = {}, extra: Partial<DeployPlan> = {}): DeployPlan {
  const p = testPlan({
    version: '1.0.1',
    strategy: 'blue-green',
    canary: { analysisInterval: '1m' },
    blueGreen: { monitor: '5m', ...blueGreen },
  });
  return { ...p, environment: `bg-${++envCounter}`, searchAttributes: false, ...extra };
}

let runs = 0;
async function blueGreen(
  opts: FakeOptions & { plan: DeployPlan },
  during?: (h: Handle, fake: Fake) => Promise<void>,
): Promise<{ result: BlueGreenResult; fake: Fake; workflowId: string }> {
  const fake = fakeActivities(opts);
  const workflowId = `${taskQueue}-bg-${++runs}`;
  fakes.set(workflowId, fake);
  const h = await startAsChild(env.client, blueGreenWorkflow, {
    taskQueue,
    workflowId,
    args: [{ version: '1.0.1', plan: opts.plan, searchAttributes: false }],
  });
  try {
    await during?.(h, fake);
  } catch (err) {
    // A failed expectation must not leave the workflow running for the tests after it.
    await h.terminate('test failed').catch(() => undefined);
    throw err;
  }
  return { result: await resultWithin(h), fake, workflowId };
}

/** The workflow of the running test, for fakes that act while their activity is in flight. */
let current: Handle | undefined;
afterEach(() => (current = undefined));
/** A fake activity that runs `act` against the workflow while it waits for this activity (no timer can race it). */
function whileRunning<R>(act: (h: Handle) => Promise<void>, result: R): () => Promise<R> {
  return async () => {
    if (!current) throw new Error('no workflow handle: set `current` in the test');
    await act(current);
    return result;
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

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type HistoryEvent = NonNullable<Awaited<ReturnType<Handle['fetchHistory']>>['events']>[number];
const protoMs = (v: { seconds?: { toString(): string } | null; nanos?: number | null } | null | undefined) =>
  Number(v?.seconds?.toString() ?? 0) * 1000 + Math.floor((v?.nanos ?? 0) / 1e6);
const TIMER_GUARD_MS = 15_000;

/**
 * Waits until a signal cannot race a timer: the time-skipping server strands
 * a run whose workflow task cancels a timer that fired while the task was on
 * the worker (temporalio/sdk-java#3088), and a signal that ends a wait early
 * cancels its timer. No workflow task outstanding, no timer due within
 * TIMER_GUARD_MS (one that is, is skipped past first).
 */
async function settle(h: Handle): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const events: HistoryEvent[] = (await h.fetchHistory()).events ?? [];
    const last = events.at(-1);
    if (
      last?.workflowExecutionCompletedEventAttributes ||
      last?.workflowExecutionFailedEventAttributes ||
      last?.workflowExecutionTerminatedEventAttributes
    )
      return;
    let taskOutstanding = false;
    const timers = new Map<string, number>();
    for (const e of events) {
      if (e.workflowTaskScheduledEventAttributes) taskOutstanding = true;
      if (
        e.workflowTaskCompletedEventAttributes ||
        e.workflowTaskFailedEventAttributes ||
        e.workflowTaskTimedOutEventAttributes
      )
        taskOutstanding = false;
      const started = e.timerStartedEventAttributes;
      if (started?.timerId) timers.set(started.timerId, protoMs(e.eventTime) + protoMs(started.startToFireTimeout));
      const ended = e.timerFiredEventAttributes ?? e.timerCanceledEventAttributes;
      if (ended?.timerId) timers.delete(ended.timerId);
    }
    if (taskOutstanding) {
      await realSleep(5);
      continue;
    }
    const now = await env.currentTimeMs();
    const soon = [...timers.values()].map((at) => at - now).filter((d) => d < TIMER_GUARD_MS);
    if (!soon.length) return;
    await env.sleep(Math.max(0, ...soon) + 1);
  }
  throw new Error(`workflow ${h.workflowId} never settled`);
}

async function signal<T extends [unknown]>(h: Handle, def: SignalDefinition<T>, ...args: T): Promise<void> {
  await settle(h);
  await h.signal(def, ...args);
}

/** Queries (in real time: server time barely moves) until the status satisfies `pred`. */
async function until(h: Handle, pred: (s: DeploymentStatus) => boolean): Promise<DeploymentStatus> {
  for (let i = 0; i < 500; i++) {
    const s = await h.query(statusQuery);
    if (pred(s)) return s;
    await realSleep(10);
  }
  throw new Error(`status never matched: ${JSON.stringify(await h.query(statusQuery))}`);
}

const retireId = (workflowId: string, colour: Colour = 'blue') => `${workflowId}-retire-${colour}`;
const colourOf = (fake: Fake, name: 'switchBlueGreen' | 'abortBlueGreen' | 'scaleDownOldColour' | 'deleteOldColour') =>
  fake.argsOf<{ colour: Colour; target: BlueGreenTarget }>(name).map((a) => a.colour);
const stepTime = (s: DeploymentStatus, name: string) =>
  Date.parse(s.steps.find((x) => x.name === name)?.startedAt ?? 'NaN');
const ignored = (r: { status: DeploymentStatus }) =>
  r.status.ignoredSignals.map((i) => `${i.signal} by ${i.by}: ${i.ignoredBecause}`);

/**
 * Waits for the retire child to finish (it must not outlive the test) and
 * returns how long it slept.
 *
 * The time-skipping server leaks a time-skipping lock when a child closes
 * after its parent did (ABANDON, as the retire child does): it locks time
 * while it reports the child's end to the parent and unlocks only in the
 * parent's update, which fails on a closed parent. Every later test in the
 * file then waits in real time (found here: the test after this one hung on a
 * 20-minute timer). So the lock is given back, and the balance checked.
 */
async function retire(workflowId: string): Promise<number> {
  const h = env.client.workflow.getHandle(retireId(workflowId));
  await resultWithin(h);
  await env.connection.testService!.unlockTimeSkipping({});
  await balanceTimeSkipping();
  const d = await h.describe();
  return d.closeTime!.getTime() - d.startTime.getTime();
}

let probes = 0;
/**
 * Checks with a probe (a top-level retire workflow: a 1-hour timer, no parent)
 * that time skips while a result is awaited and only then, and corrects the
 * server's lock count when it does not: a probe that ends while nobody awaits
 * it means one unlock too many; one that does not end while awaited, one lock
 * too many.
 */
async function balanceTimeSkipping(): Promise<void> {
  const ts = env.connection.testService!;
  for (let attempt = 0; attempt < 3; attempt++) {
    const workflowId = `${taskQueue}-probe-${++probes}`;
    fakes.set(workflowId, fakeActivities());
    const target: BlueGreenTarget = {
      workflowId,
      namespace: 'probe',
      service: 'probe',
      container: 'probe',
      image: 'probe',
      version: '0.0.0',
    };
    const probe = await env.client.workflow.start(retireColourWorkflow, {
      taskQueue,
      workflowId,
      args: [{ target, colour: 'green', afterMs: 3_600_000 }],
    });
    await realSleep(300);
    if ((await probe.describe()).status.name !== 'RUNNING') {
      await ts.lockTimeSkipping({});
      continue;
    }
    const ended = probe.result().then(() => true);
    if (await Promise.race([ended, realSleep(5_000).then(() => false)])) return;
    await ts.unlockTimeSkipping({});
    await ended;
  }
  throw new Error('the time-skipping lock could not be balanced');
}

/** A switched release's monitoring workflow can only be proved absent: describe fails for a workflow never started. */
async function expectNoRetire(workflowId: string): Promise<void> {
  await expect(env.client.workflow.getHandle(retireId(workflowId)).describe()).rejects.toThrow(/not found/i);
}

describe('switch', () => {
  test('prepare → smoke → switch → five monitoring analyses → scale down; the retire child deletes the old colour after its delay', async () => {
    const { result, fake, workflowId } = await blueGreen({
      plan: plan(),
      override: {
        scaleDownOldColour: async (req) => ({
          deployment: req.target.service,
          previousReplicas: 4,
          deleteAfterMs: 30 * 60_000,
        }),
      },
    });
    expect(result).toMatchObject({
      outcome: 'switched',
      live: 'green',
      previous: 'blue',
      liveDeployment: 'api-gateway-green',
    });
    expect(result.status.phase).toBe('succeeded');
    expect(fake.names().filter((n) => n !== 'notify')).toEqual([
      'confirmPlan',
      'prepareBlueGreen',
      'runSmokeChecks',
      'switchBlueGreen',
      'analyzeCanary',
      'analyzeCanary',
      'analyzeCanary',
      'analyzeCanary',
      'analyzeCanary',
      'scaleDownOldColour',
    ]);
    expect(fake.argsOf<BlueGreenTarget>('prepareBlueGreen')[0]).toMatchObject({
      workflowId: parentIdOf(workflowId),
      service: 'api-gateway',
      deployment: 'api-gateway',
      version: '1.0.1',
    });
    expect(colourOf(fake, 'switchBlueGreen')).toEqual(['green']);
    expect(colourOf(fake, 'scaleDownOldColour')).toEqual(['blue']);
    expect(
      fake
        .argsOf<{ weight: number; tracks: string[] }>('analyzeCanary')
        .every((a) => a.weight === 100 && a.tracks.join() === 'stable'),
    ).toBe(true);
    expect(fake.count('abortBlueGreen')).toBe(0);
    // The monitoring window lasted its 5 minutes of workflow time.
    const monitored = stepTime(result.status, 'scale down blue') - stepTime(result.status, 'switch traffic to green');
    expect(monitored).toBeGreaterThanOrEqual(5 * 60_000);
    expect(monitored).toBeLessThan(5 * 60_000 + 5_000);
    expect(fake.argsOf<{ kind: string }>('notify').map((n) => n.kind)).toEqual(['step-promoted']);

    // Detached: the old colour is deleted 30 minutes (what scaleDownOldColour said) after the release ended.
    expect(fake.count('deleteOldColour')).toBe(0);
    const slept = await retire(workflowId);
    expect(slept).toBeGreaterThanOrEqual(30 * 60_000);
    expect(slept).toBeLessThan(31 * 60_000);
    expect(colourOf(fake, 'deleteOldColour')).toEqual(['blue']);
    expect(fake.argsOf<{ target: BlueGreenTarget }>('deleteOldColour')[0].target).toMatchObject({
      service: 'api-gateway',
      version: '1.0.1',
    });
  }, 60_000);

  test('the new colour is already live: nothing to switch, nothing to retire', async () => {
    const { result, fake, workflowId } = await blueGreen({
      plan: plan(),
      override: {
        prepareBlueGreen: async (t) => ({
          active: { colour: 'green', deployment: `${t.service}-green`, replicas: 4, images: {}, version: '1.0.1' },
          target: { colour: 'green', deployment: `${t.service}-green` },
          alreadyActive: true,
        }),
      },
    });
    expect(result).toMatchObject({
      outcome: 'switched',
      live: 'green',
      previous: 'green',
      liveDeployment: 'api-gateway-green',
    });
    expect(result.status.phase).toBe('succeeded');
    expect(fake.names()).toEqual(['confirmPlan', 'prepareBlueGreen']);
    await expectNoRetire(workflowId);
  }, 60_000);

  test('promote during monitoring ends the window early; pause and resume are ignored', async () => {
    let promotedAt = 0;
    const { result, fake, workflowId } = await blueGreen({ plan: plan() }, async (h) => {
      await until(h, (s) => s.phase === 'monitoring');
      await h.signal(pauseSignal, { by: 'grace' });
      await h.signal(resumeSignal, { by: 'grace' });
      await env.sleep('90s');
      await settle(h);
      promotedAt = await env.currentTimeMs();
      await h.signal(promoteSignal, { by: 'ivan' });
    });
    expect(result.outcome).toBe('switched');
    expect(fake.count('analyzeCanary')).toBe(1);
    expect(stepTime(result.status, 'scale down blue') - promotedAt).toBeLessThan(5_000);
    expect(result.status.approvals).toEqual([
      expect.objectContaining({ signal: 'promote', by: 'ivan', reason: 'end the monitoring window' }),
    ]);
    expect(ignored(result)).toEqual([
      'pause by grace: blue-green has no soak to pause',
      'resume by grace: blue-green has no soak to pause',
    ]);
    await retire(workflowId);
  }, 60_000);
});

describe('approval gate', () => {
  test('waits before the switch; a non-approver and promote are ignored; an approver opens it', async () => {
    const p = plan({ approval: true }, withApprovals({ approvers: ['alice'] }));
    const { result, fake, workflowId } = await blueGreen({ plan: p }, async (h, f) => {
      const gate = await until(h, (s) => s.phase === 'awaiting-approval');
      expect(gate.waitingFor?.what).toBe('approval to switch traffic to green');
      expect(gate.waitingFor?.commands).toEqual([
        `deployctl approve ${parentIdOf(h.workflowId)} --by <name>`,
        `deployctl abort ${parentIdOf(h.workflowId)} --by <name> --reason <text>`,
      ]);
      expect(Date.parse(gate.waitingFor!.timeoutAt!) - Date.parse(gate.waitingFor!.since)).toBe(
        p.blueGreen.approvalTimeoutMs,
      );
      await env.sleep('20m');
      expect(f.count('switchBlueGreen')).toBe(0);
      await signal(h, approveSignal, { by: 'mallory' });
      await signal(h, promoteSignal, { by: 'alice' });
      await signal(h, approveSignal, { by: 'alice', note: 'green is good' });
    });
    expect(result).toMatchObject({ outcome: 'switched', live: 'green' });
    expect(colourOf(fake, 'switchBlueGreen')).toEqual(['green']);
    expect(result.status.approvals).toEqual([
      expect.objectContaining({ signal: 'approve', by: 'alice', note: 'green is good', reason: 'switch traffic' }),
    ]);
    expect(ignored(result)).toEqual([
      `approve by mallory: mallory is not an approver for ${p.environment}`,
      'promote by alice: no monitoring window is running (phase awaiting-approval)',
    ]);
    expect(fake.argsOf<{ kind: string }>('notify').map((n) => n.kind)).toEqual(['awaiting-approval', 'step-promoted']);
    await retire(workflowId);
  }, 60_000);

  test('an approval that times out aborts: the new colour is removed, traffic never moved', async () => {
    const { result, fake, workflowId } = await blueGreen({ plan: plan({ approval: true, approvalTimeout: '20m' }) });
    expect(result).toMatchObject({
      outcome: 'aborted',
      timedOut: true,
      live: 'blue',
      previous: 'blue',
      reason: 'approval to switch traffic timed out after 1200s',
    });
    expect(fake.count('switchBlueGreen')).toBe(0);
    expect(colourOf(fake, 'abortBlueGreen')).toEqual(['blue']);
    expect(fake.count('scaleDownOldColour')).toBe(0);
    expect(result.status.phase).toBe('aborted');
    expect(
      Date.parse(result.status.endedAt!) - stepTime(result.status, 'smoke checks on green'),
    ).toBeGreaterThanOrEqual(20 * 60_000);
    await expectNoRetire(workflowId);
  }, 60_000);

  test('abort at the gate aborts without timedOut', async () => {
    const { result, fake } = await blueGreen({ plan: plan({ approval: true }) }, async (h) => {
      await until(h, (s) => s.phase === 'awaiting-approval');
      await signal(h, abortSignal, { by: 'erin', reason: 'wrong build' });
    });
    expect(result).toMatchObject({ outcome: 'aborted', live: 'blue', reason: 'aborted by erin: wrong build' });
    expect(result.timedOut).toBeUndefined();
    expect(fake.count('switchBlueGreen')).toBe(0);
    expect(colourOf(fake, 'abortBlueGreen')).toEqual(['blue']);
  }, 60_000);
});

describe('abort and failures', () => {
  test('abort during monitoring switches traffic back to the colour that served before', async () => {
    let analysesBefore = 0;
    const { result, fake, workflowId } = await blueGreen({ plan: plan() }, async (h, f) => {
      await until(h, (s) => s.phase === 'monitoring');
      await env.sleep('150s');
      await settle(h);
      analysesBefore = f.count('analyzeCanary');
      await h.signal(abortSignal, { by: 'erin', reason: 'p99 regressed' });
    });
    expect(result).toMatchObject({
      outcome: 'aborted',
      live: 'blue',
      previous: 'blue',
      reason: 'aborted by erin: p99 regressed',
    });
    expect(analysesBefore).toBe(2);
    expect(fake.count('analyzeCanary')).toBe(2);
    expect(colourOf(fake, 'switchBlueGreen')).toEqual(['green']);
    expect(colourOf(fake, 'abortBlueGreen')).toEqual(['blue']);
    expect(fake.count('scaleDownOldColour')).toBe(0);
    expect(result.status.aborts).toEqual([expect.objectContaining({ by: 'erin', reason: 'p99 regressed' })]);
    expect(result.status).toMatchObject({ phase: 'aborted', error: 'aborted by erin: p99 regressed' });
    expect(result.status.steps.find((s) => s.name === 'switch traffic back to blue')?.state).toBe('succeeded');
    expect(fake.argsOf<{ kind: string }>('notify').map((n) => n.kind)).toEqual(['step-promoted', 'aborted']);
    await expectNoRetire(workflowId);
  }, 60_000);

  test('abort before the switch (during the smoke checks) never moves traffic', async () => {
    const { result, fake } = await blueGreen(
      {
        plan: plan(),
        override: {
          runSmokeChecks: whileRunning(async (h) => h.signal(abortSignal, { by: 'erin', reason: 'stop' }), {
            ok: true,
            lines: ['sign in: 200'],
          }),
        },
      },
      async (h) => {
        current = h;
      },
    );
    expect(result).toMatchObject({ outcome: 'aborted', live: 'blue', reason: 'aborted by erin: stop' });
    expect(fake.count('switchBlueGreen')).toBe(0);
    expect(colourOf(fake, 'abortBlueGreen')).toEqual(['blue']);
  }, 60_000);

  test('a failed analysis during monitoring switches traffic back', async () => {
    const { result, fake, workflowId } = await blueGreen({ plan: plan(), analysis: ['pass', 'pass', 'fail'] });
    expect(result).toMatchObject({ outcome: 'failed', live: 'blue', previous: 'blue' });
    expect(result.reason).toBe('analysis failed (1 failed, limit 0): error-rate[stable] 0.3 > 0.01');
    expect(fake.count('analyzeCanary')).toBe(3);
    expect(colourOf(fake, 'abortBlueGreen')).toEqual(['blue']);
    expect(fake.count('scaleDownOldColour')).toBe(0);
    expect(result.status.lastAnalysis?.outcome).toBe('fail');
    await expectNoRetire(workflowId);
  }, 60_000);

  test('analysis that keeps erroring is inconclusive, never a pass: the limit fails it', async () => {
    const { result, fake } = await blueGreen({ plan: plan(), fail: { analyzeCanary: 'PrometheusUnavailable' } });
    expect(result.outcome).toBe('failed');
    expect(result.reason).toMatch(
      /^analysis inconclusive 3 times in a row \(limit 2\): analysis\[stable\] PrometheusUnavailable/,
    );
    expect(fake.count('analyzeCanary')).toBe(3);
    expect(colourOf(fake, 'abortBlueGreen')).toEqual(['blue']);
  }, 60_000);

  test.each([
    [
      'the smoke check activity fails',
      { fail: { runSmokeChecks: 'VerificationFailed' } },
      'VerificationFailed: runSmokeChecks failed (fake)',
    ],
    [
      'the smoke checks report a failure',
      { override: { runSmokeChecks: async () => ({ ok: false, lines: ['sign in: 500'] }) } },
      'smoke checks failed on green: sign in: 500',
    ],
    [
      'the switch fails',
      { fail: { switchBlueGreen: 'TrafficNotApplied' } },
      'TrafficNotApplied: switchBlueGreen failed (fake)',
    ],
  ] as [string, FakeOptions, string][])(
    '%s: failed, the new colour removed, traffic on blue',
    async (_what, opts, reason) => {
      const { result, fake, workflowId } = await blueGreen({ plan: plan(), ...opts });
      expect(result).toMatchObject({ outcome: 'failed', live: 'blue', previous: 'blue', reason });
      expect(colourOf(fake, 'abortBlueGreen')).toEqual(['blue']);
      expect(fake.count('analyzeCanary')).toBe(0);
      expect(fake.count('scaleDownOldColour')).toBe(0);
      expect(fake.argsOf<{ kind: string }>('notify').at(-1)?.kind).toBe('failed');
      await expectNoRetire(workflowId);
    },
    60_000,
  );

  test('prepare fails: nothing to switch back, failed', async () => {
    const { result, fake } = await blueGreen({ plan: plan(), fail: { prepareBlueGreen: 'RolloutFailed' } });
    expect(result).toMatchObject({ outcome: 'failed', reason: 'RolloutFailed: prepareBlueGreen failed (fake)' });
    expect(result.live).toBeUndefined();
    expect(fake.count('abortBlueGreen')).toBe(0);
  }, 60_000);

  test('a switch back that itself fails is reported in the reason and the status', async () => {
    const { result, fake } = await blueGreen({
      plan: plan(),
      analysis: ['fail'],
      fail: { abortBlueGreen: 'KubernetesForbidden' },
    });
    expect(result.outcome).toBe('failed');
    expect(result.reason).toBe(
      'analysis failed (1 failed, limit 0): error-rate[stable] 0.3 > 0.01; switching back to blue failed: KubernetesForbidden: abortBlueGreen failed (fake)',
    );
    expect(result.status.error).toBe(result.reason);
    // Traffic is still on green: the result says so.
    expect(result.live).toBe('green');
    expect(fake.count('abortBlueGreen')).toBe(1);
  }, 60_000);

  test('an abort while the old colour is scaled down is ignored: the release is through its window', async () => {
    const { result, fake, workflowId } = await blueGreen(
      {
        plan: plan({ monitor: '1m' }),
        override: {
          scaleDownOldColour: whileRunning(
            async (h) => {
              await h.signal(abortSignal, { by: 'erin', reason: 'too late' });
              await until(h, (s) => s.ignoredSignals.length === 1);
            },
            { deployment: 'api-gateway', previousReplicas: 4, deleteAfterMs: 60_000 },
          ),
        },
      },
      async (h) => {
        current = h;
      },
    );
    expect(result).toMatchObject({ outcome: 'switched', live: 'green' });
    expect(result.status.aborts).toEqual([]);
    expect(ignored(result)).toEqual(['abort by erin: the blue-green deployment is already promoting']);
    expect(fake.count('abortBlueGreen')).toBe(0);
    await retire(workflowId);
  }, 60_000);

  test('cancelling the workflow during monitoring still switches traffic back', async () => {
    const { result, fake } = await blueGreen({ plan: plan() }, async (h) => {
      await until(h, (s) => s.phase === 'monitoring');
      await settle(h);
      await h.cancel();
    });
    expect(result).toMatchObject({ outcome: 'failed', live: 'blue', reason: 'cancelled' });
    expect(colourOf(fake, 'abortBlueGreen')).toEqual(['blue']);
    expect(result.status.steps.find((s) => s.name === 'switch traffic back to blue')?.state).toBe('succeeded');
  }, 60_000);

  test('bad payloads and signals after the end of a wait are ignored, never thrown', async () => {
    const { result, workflowId } = await blueGreen({ plan: plan({ monitor: '1m' }) }, async (h) => {
      await until(h, (s) => s.phase === 'monitoring');
      await signal(h, approveSignal, { by: 'alice' });
      await signal(h, abortSignal, 'stop');
      await signal(h, promoteSignal, { by: 'ivan', full: 'yes' });
      await until(h, (s) => s.ignoredSignals.length === 3);
    });
    expect(result.outcome).toBe('switched');
    expect(ignored(result)).toEqual([
      'approve by alice: nothing is awaiting approval (phase monitoring)',
      'abort by (unknown): abort needs a JSON object such as {"by":"alice"}',
      'promote by ivan: promote: "full" must be true or false',
    ]);
    await retire(workflowId);
  }, 60_000);
});

describe('issue 16 item 3: the new colour is smoke-tested through its preview, before the switch', () => {
  test('with a preview configured, prepare points the preview Service at the new colour and the smoke checks run against it', async () => {
    const p = plan({}, { blueGreen: { ...plan().blueGreen, previewService: 'api-gateway-preview' } });
    const { result, fake, workflowId } = await blueGreen({ plan: p });
    // The retire child must not outlive the test (see retire()).
    await retire(workflowId);
    expect(result.outcome).toBe('switched');
    expect(fake.argsOf<BlueGreenTarget>('prepareBlueGreen')[0]).toMatchObject({
      previewService: 'api-gateway-preview',
    });
    const names = fake.names();
    expect(names.indexOf('runSmokeChecks')).toBeLessThan(names.indexOf('switchBlueGreen'));
    expect(fake.argsOf<{ preview?: boolean }>('runSmokeChecks')[0]).toMatchObject({ preview: true });
  }, 60_000);

  test('without one, the pre-switch smoke checks are skipped and say why (they run on the live colour after the switch)', async () => {
    const p = plan({}, { blueGreen: { ...plan().blueGreen, previewService: undefined } });
    const { result, fake, workflowId } = await blueGreen({ plan: p });
    await retire(workflowId);
    expect(result.outcome).toBe('switched');
    expect(fake.count('runSmokeChecks')).toBe(0);
    expect(result.status.steps.find((s) => s.name === 'smoke checks on green')).toMatchObject({
      state: 'skipped',
      detail: expect.stringContaining('rollout.blueGreen.preview'),
    });
  }, 60_000);
});

describe('nothing trusted from a hand-started blue-green', () => {
  const closedWith = async (h: { result: () => Promise<unknown> }) => {
    const err = (await h.result().then(
      () => undefined,
      (e: unknown) => e,
    )) as { cause?: { type?: string; message?: string; nonRetryable?: boolean } } | undefined;
    return err?.cause;
  };

  test('started by hand, it is refused before anything happens, saying to start deployWorkflow with the strategy', async () => {
    const fake = fakeActivities({ plan: plan() });
    const workflowId = `${taskQueue}-bg-by-hand-${++runs}`;
    fakes.set(workflowId, fake);
    const h = await env.client.workflow.start(blueGreenWorkflow, {
      taskQueue,
      workflowId,
      args: [{ version: '1.0.1', plan: plan({}, { namespace: 'kube-system' }), image: 'evil.example/miner:1' }],
    });
    expect(await closedWith(h)).toMatchObject({
      type: 'ParentRequired',
      nonRetryable: true,
      message: expect.stringContaining('start deployWorkflow with {"version":"1.0.1","strategy":"blue-green"}'),
    });
    expect(fake.calls).toEqual([]);
  }, 60_000);

  test('a plan or image the configuration does not confirm fails it with PlanMismatch before any colour is prepared', async () => {
    const p = plan();
    const fake = fakeActivities({
      plan: p,
      override: {
        confirmPlan: async () => {
          throw ApplicationFailure.create({
            type: 'PlanMismatch',
            message: 'the image handed over is not what the configuration decides: image evil.example/miner:1',
            nonRetryable: true,
          });
        },
      },
    });
    const workflowId = `${taskQueue}-bg-forged-${++runs}`;
    fakes.set(workflowId, fake);
    const h = await startAsChild(env.client, blueGreenWorkflow, {
      taskQueue,
      workflowId,
      args: [{ version: '1.0.1', plan: p, image: 'evil.example/miner:1', searchAttributes: false }],
    });
    expect(await closedWith(h)).toMatchObject({
      type: 'PlanMismatch',
      message: expect.stringContaining('evil.example'),
    });
    expect(fake.names().filter((n) => n !== 'notify')).toEqual(['confirmPlan']);
    expect(fake.argsOf('confirmPlan')).toEqual([{ plan: p, image: 'evil.example/miner:1' }]);
  }, 60_000);
});
