/**
 * The canary workflow on the time-skipping server with typed fake activities:
 * exact weights and analysis counts, every signal in every phase it can meet
 * (approve, abort, pause, resume, promote, promote {full}), the analysis
 * limits, bad payloads, failures of each traffic step and a compensation that
 * itself fails. Every test ends every workflow it starts: a workflow left
 * running would hold time skipping for the tests after it.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, type Duration, type SignalDefinition } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Context } from '@temporalio/activity';
import { Worker } from '@temporalio/worker';
import type { Activities } from '../../src/activities/contracts';
import type { CanaryOverrides } from '../../src/domain/input';
import type { CanarySettings, DeployPlan } from '../../src/domain/plan';
import type { AnalysisRun, DeploymentStatus } from '../../src/domain/status';
import { canaryWorkflow, type CanaryResult } from '../../src/workflows/canary';
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
import { MAX_SIGNALS } from '../../src/workflows/support/steering';
import { timeSkippingEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { resultOf } from '../../src/workflows/outcome';

type Fake = ReturnType<typeof fakeActivities>;

/**
 * One worker for the whole file (creating one costs about 400 ms): each
 * activity call goes to the fakes of the test whose workflow made it.
 */
const fakes = new Map<string, Fake>();
function fakeFor(workflowId: string): Fake {
  const fake = fakes.get(workflowId);
  if (!fake) throw new Error(`no fakes registered for ${workflowId}`);
  return fake;
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
const taskQueue = uniqueQueue('canary');
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

type Handle = WorkflowHandle<typeof canaryWorkflow>;

let envCounter = 0;
/** Soak 5m and analysis every 1m (5 analyses per soak) unless a test says otherwise; each test its own environment. */
function plan(
  canary: CanaryOverrides = {},
  extra: Partial<Omit<DeployPlan, 'canary'>> & { canary?: Partial<CanarySettings> } = {},
): DeployPlan {
  const p = testPlan({ version: '1.0.1', canary: { soak: '5m', analysisInterval: '1m', ...canary } });
  return {
    ...p,
    environment: `canary-${++envCounter}`,
    searchAttributes: false,
    ...extra,
    canary: { ...p.canary, ...extra.canary },
  };
}

/** The workflow of the running test, for fakes that act while their activity is in flight. */
let current: Handle | undefined;
afterEach(() => (current = undefined));

/**
 * A fake activity that, while the workflow waits for it, runs `act` against
 * the workflow. Signals sent from here land in a known phase, and no timer
 * can race them: the workflow waits for this activity only.
 */
function whileRunning(act: (h: Handle) => Promise<void>): () => Promise<void> {
  return async () => {
    if (!current) throw new Error('no workflow handle: set `current` in the test');
    await act(current);
  };
}

/** Sends signals and waits until the status shows `count` ignored signals. */
async function sendAndWaitIgnored(
  h: Handle,
  count: number,
  ...signals: [SignalDefinition<[unknown]>, unknown][]
): Promise<void> {
  for (const [def, payload] of signals) await h.signal(def, payload);
  await until(h, (s) => s.ignoredSignals.length === count);
}

let runs = 0;
async function canary(
  opts: FakeOptions & { plan: DeployPlan },
  during?: (h: Handle, fake: Fake) => Promise<void>,
): Promise<{ result: CanaryResult; fake: Fake; workflowId: string; realMs: number }> {
  const fake = fakeActivities(opts);
  const workflowId = `canary-${++runs}-${taskQueue}`;
  fakes.set(workflowId, fake);
  const started = Date.now();
  const h = await startAsChild(env.client, canaryWorkflow, {
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
  const result = await resultWithin(h);
  return { result, fake, workflowId, realMs: Date.now() - started };
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
/** A timer due this soon is let fire before a signal is sent. */
const TIMER_GUARD_MS = 15_000;

/**
 * Waits until a signal cannot race a timer. The time-skipping server strands
 * a run whose workflow task cancels a timer that fired while the task was on
 * the worker ("invalid history builder state for action",
 * temporalio/sdk-java#3088), and a signal that ends a soak or a gate early
 * cancels that wait's timer. So: no workflow task outstanding, and no timer
 * due within TIMER_GUARD_MS (one that is, is skipped past first).
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

/** Sends a signal once it cannot race a timer (see settle). */
async function signal<T extends [unknown]>(h: Handle, def: SignalDefinition<T>, ...args: T): Promise<void> {
  await settle(h);
  await h.signal(def, ...args);
}

/**
 * Queries until the status satisfies `pred`. Without `skip` it polls in real
 * time (server time barely moves: activities are fakes); with `skip` it
 * advances server time by that much between polls.
 */
async function until(h: Handle, pred: (s: DeploymentStatus) => boolean, skip?: Duration): Promise<DeploymentStatus> {
  for (let i = 0; i < 400; i++) {
    const s = await h.query(statusQuery);
    if (pred(s)) return s;
    if (skip) await env.sleep(skip);
    else await realSleep(10);
  }
  throw new Error(`status never matched: ${JSON.stringify(await h.query(statusQuery))}`);
}

const soakingAt = (weight: number) => (s: DeploymentStatus) =>
  s.phase === 'soaking' && s.canary?.weight === weight && !s.canary.paused;
const atGate = (s: DeploymentStatus) => s.phase === 'awaiting-approval';
const analysisWeights = (fake: Fake) => fake.argsOf<{ weight: number }>('analyzeCanary').map((a) => a.weight);
const ignored = (r: { status: DeploymentStatus }) =>
  r.status.ignoredSignals.map((i) => `${i.signal} by ${i.by}: ${i.ignoredBecause}`);
const stepTime = (s: DeploymentStatus, name: string) =>
  Date.parse(s.steps.find((x) => x.name === name)?.startedAt ?? 'NaN');

describe('promotion without signals', () => {
  test('5 → 25 → 50 → 100 with five analyses per 5-minute soak, in milliseconds of real time', async () => {
    const p = plan();
    const serverStart = await env.currentTimeMs();
    const { result, fake, realMs } = await canary({ plan: p });
    const serverMs = (await env.currentTimeMs()) - serverStart;

    expect(result.outcome).toBe('promoted');
    expect(result.weight).toBe(100);
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    expect(analysisWeights(fake)).toEqual([5, 5, 5, 5, 5, 25, 25, 25, 25, 25, 50, 50, 50, 50, 50]);
    // The plan is confirmed with the configuration before anything changes.
    expect(fake.names().filter((n) => n !== 'notify' && n !== 'analyzeCanary' && n !== 'setCanaryWeight')).toEqual([
      'confirmPlan',
      'startCanary',
      'promoteCanary',
    ]);
    expect(fake.count('abortCanary')).toBe(0);
    expect(fake.argsOf<{ kind: string; weight: number }>('notify').map((n) => `${n.kind}@${n.weight}`)).toEqual([
      'step-promoted@5',
      'step-promoted@25',
      'step-promoted@50',
      'step-promoted@100',
    ]);
    // Three soaks of 5 minutes each passed on the server's clock, not on ours.
    expect(serverMs).toBeGreaterThanOrEqual(15 * 60_000);
    expect(realMs).toBeLessThan(5_000);
    // Each soak lasted its 5 minutes of workflow time between two weight changes.
    expect(stepTime(result.status, 'traffic 25%') - stepTime(result.status, 'traffic 5%')).toBeGreaterThanOrEqual(
      5 * 60_000,
    );
    expect(stepTime(result.status, 'traffic 25%') - stepTime(result.status, 'traffic 5%')).toBeLessThan(
      5 * 60_000 + 5_000,
    );
    expect(result.status).toMatchObject({
      phase: 'succeeded',
      canary: { weight: 100, stepIndex: 3, failedMeasurements: 0, consecutiveInconclusive: 0 },
      ignoredSignals: [],
      aborts: [],
    });
    expect(result.status.canary?.soakEndsAt).toBeUndefined();
    expect(result.status.waitingFor).toBeUndefined();
  }, 60_000);

  test('custom steps and a soak that is not a multiple of the interval: analyses at 2m, 4m and the end', async () => {
    const { result, fake } = await canary({ plan: plan({ steps: [10, 100], soak: '5m', analysisInterval: '2m' }) });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([10, 100]);
    expect(analysisWeights(fake)).toEqual([10, 10, 10]);
  }, 60_000);

  test('notifications that fail are counted and never fail the canary', async () => {
    const { result } = await canary({ plan: plan(), fail: { notify: 'WebhookFailed' } });
    expect(result.outcome).toBe('promoted');
    expect(result.status.notificationFailures).toBe(4);
  }, 60_000);
});

describe('status query', () => {
  test('shows phase, weight, soak end, last analysis, the gate with its commands and ignored signals', async () => {
    const p = plan({ approval: 'before-full', approvalTimeout: '30m' });
    const { result } = await canary({ plan: p, analysis: ['pass', 'inconclusive', 'pass'] }, async (h) => {
      const first = await until(h, soakingAt(5));
      const now = await env.currentTimeMs();
      expect(first.workflow).toBe('canary');
      expect(first.canary).toMatchObject({
        steps: [5, 25, 50, 100],
        stepIndex: 0,
        weight: 5,
        paused: false,
        soakRemainingMs: 5 * 60_000,
      });
      const endsAt = Date.parse(first.canary!.soakEndsAt!);
      expect(endsAt - now).toBeGreaterThan(5 * 60_000 - 2_000);
      expect(endsAt - now).toBeLessThanOrEqual(5 * 60_000);
      expect(first.waitingFor?.what).toBe(`soak at 5% until ${first.canary!.soakEndsAt}`);
      expect(Date.parse(first.waitingFor!.timeoutAt!)).toBe(endsAt);
      expect(first.lastAnalysis).toBeUndefined();

      // After two analyses: the last one and the inconclusive count are visible.
      await env.sleep('150s');
      const later = await h.query(statusQuery);
      expect(later.lastAnalysis).toMatchObject({ outcome: 'inconclusive', weight: 5 });
      expect(later.canary).toMatchObject({ consecutiveInconclusive: 1, failedMeasurements: 0, weight: 5 });
      // Same end (give or take the few milliseconds the analyses took: analysis time is not soak time).
      expect(Math.abs(Date.parse(later.canary!.soakEndsAt!) - endsAt)).toBeLessThan(2_000);

      await signal(h, approveSignal, { by: 'alice' });
      const gate = await until(h, atGate, '1m');
      expect(gate.canary?.weight).toBe(50);
      expect(gate.canary?.soakEndsAt).toBeUndefined();
      expect(gate.waitingFor?.what).toBe('approval to move traffic to 100%');
      expect(gate.waitingFor?.commands).toEqual([
        `deployctl approve ${parentIdOf(h.workflowId)} --by <name>`,
        `deployctl abort ${parentIdOf(h.workflowId)} --by <name> --reason <text>`,
      ]);
      expect(Date.parse(gate.waitingFor!.timeoutAt!) - Date.parse(gate.waitingFor!.since)).toBe(30 * 60_000);
      expect(gate.ignoredSignals).toEqual([
        expect.objectContaining({
          signal: 'approve',
          by: 'alice',
          ignoredBecause: 'nothing is awaiting approval (phase soaking)',
        }),
      ]);
      await signal(h, approveSignal, { by: 'alice' });
    });
    expect(result.outcome).toBe('promoted');
    expect(result.status.lastAnalysis).toMatchObject({ outcome: 'pass', weight: 50 });
  }, 60_000);
});

describe('approve', () => {
  test('with nothing awaiting approval it is recorded as ignored with the reason, and the canary goes on', async () => {
    const { result, fake } = await canary({ plan: plan() }, async (h) => {
      await until(h, soakingAt(25), '1m');
      await signal(h, approveSignal, { by: 'alice', note: 'looks fine' });
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    expect(result.status.approvals).toEqual([]);
    expect(result.status.ignoredSignals).toEqual([
      expect.objectContaining({
        signal: 'approve',
        by: 'alice',
        note: 'looks fine',
        ignoredBecause: 'nothing is awaiting approval (phase soaking)',
      }),
    ]);
  }, 60_000);

  test('before-full: traffic waits at 50% until approved, then moves to 100%', async () => {
    const { result, fake } = await canary({ plan: plan({ approval: 'before-full' }) }, async (h, f) => {
      const gate = await until(h, atGate, '1m');
      expect(gate.canary?.weight).toBe(50);
      expect(f.weights).toEqual([5, 25, 50]);
      // Time passes at the gate without any movement (well within the 1h timeout).
      await env.sleep('20m');
      expect((await h.query(statusQuery)).phase).toBe('awaiting-approval');
      expect(f.weights).toEqual([5, 25, 50]);
      expect(f.count('analyzeCanary')).toBe(15);
      await signal(h, approveSignal, { by: 'alice', note: 'dashboards are green' });
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    expect(result.status.approvals).toEqual([
      expect.objectContaining({
        signal: 'approve',
        by: 'alice',
        note: 'dashboards are green',
        reason: 'approval to move traffic to 100%',
      }),
    ]);
    expect(fake.argsOf<{ kind: string }>('notify').filter((n) => n.kind === 'awaiting-approval')).toHaveLength(1);
  }, 60_000);

  test('every-step: each weight, the first included, waits for its own approval', async () => {
    const { result, fake } = await canary({ plan: plan({ approval: 'every-step' }) }, async (h, f) => {
      for (const [i, weight] of [5, 25, 50, 100].entries()) {
        const gate = await until(h, atGate, '1m');
        expect(gate.waitingFor?.what).toBe(`approval to move traffic to ${weight}%`);
        expect(f.weights).toEqual([5, 25, 50, 100].slice(0, i));
        await signal(h, approveSignal, { by: `approver-${i}` });
        await until(h, (s) => s.approvals.length === i + 1 && s.phase !== 'awaiting-approval');
      }
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    expect(result.status.approvals.map((a) => `${a.by}: ${a.reason}`)).toEqual([
      'approver-0: approval to move traffic to 5%',
      'approver-1: approval to move traffic to 25%',
      'approver-2: approval to move traffic to 50%',
      'approver-3: approval to move traffic to 100%',
    ]);
  }, 60_000);

  test('an approval gate that times out aborts the canary: traffic back to stable, timedOut set', async () => {
    const p = plan({ approval: 'before-full', approvalTimeout: '45m' });
    const { result, fake } = await canary({ plan: p });
    expect(result).toMatchObject({ outcome: 'aborted', timedOut: true, weight: 0 });
    expect(result.reason).toBe('approval timed out after 2700s: approval to move traffic to 100%');
    expect(fake.weights).toEqual([5, 25, 50, 0]);
    expect(fake.count('abortCanary')).toBe(1);
    expect(fake.count('promoteCanary')).toBe(0);
    expect(result.status.phase).toBe('aborted');
    expect(result.status.error).toBe(result.reason);
    // The gate opened after the third soak and closed 45 minutes later.
    expect(Date.parse(result.status.endedAt!) - stepTime(result.status, 'traffic 50%')).toBeGreaterThanOrEqual(
      5 * 60_000 + 45 * 60_000,
    );
    expect(fake.argsOf<{ kind: string }>('notify').map((n) => n.kind)).toEqual([
      'step-promoted',
      'step-promoted',
      'step-promoted',
      'awaiting-approval',
      'aborted',
    ]);
  }, 60_000);

  test('two approvals needed: the same person twice is ignored, a second person opens the gate', async () => {
    const p = plan({ approval: 'before-full' }, withApprovals({ required: 2 }));
    const { result, fake } = await canary({ plan: p }, async (h, f) => {
      await until(h, atGate, '1m');
      await signal(h, approveSignal, { by: 'alice' });
      await signal(h, approveSignal, { by: 'alice', note: 'really' });
      const s = await until(h, (x) => x.ignoredSignals.length === 1);
      expect(s.phase).toBe('awaiting-approval');
      expect(s.approvals.map((a) => a.by)).toEqual(['alice']);
      await env.sleep('5m');
      expect(f.weights).toEqual([5, 25, 50]);
      await signal(h, approveSignal, { by: 'bob' });
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    expect(result.status.approvals.map((a) => a.by)).toEqual(['alice', 'bob']);
    expect(ignored(result)).toEqual([
      'approve by alice: alice already approved this step; a different person must approve',
    ]);
  }, 60_000);

  test('the allow-list: approve and abort from someone else are ignored and recorded; an approver approves', async () => {
    const p = plan({ approval: 'before-full' }, withApprovals({ approvers: ['alice', 'bob'] }));
    const { result, fake } = await canary({ plan: p }, async (h) => {
      await until(h, soakingAt(5));
      await signal(h, abortSignal, { by: 'mallory', reason: 'just because' });
      await signal(h, promoteSignal, { by: 'mallory' });
      await until(h, atGate, '1m');
      await signal(h, approveSignal, { by: 'mallory' });
      await until(h, (s) => s.ignoredSignals.length === 3);
      expect((await h.query(statusQuery)).phase).toBe('awaiting-approval');
      await signal(h, approveSignal, { by: 'bob' });
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    expect(fake.count('abortCanary')).toBe(0);
    expect(result.status.aborts).toEqual([]);
    expect(result.status.approvals.map((a) => a.by)).toEqual(['bob']);
    expect(ignored(result)).toEqual([
      `abort by mallory: mallory is not an approver for ${p.environment}`,
      `promote by mallory: mallory is not an approver for ${p.environment}`,
      `approve by mallory: mallory is not an approver for ${p.environment}`,
    ]);
    expect(result.status.ignoredSignals[0].reason).toBe('just because');
  }, 60_000);
});

describe('abort', () => {
  test('during a soak: canary aborted at once, weight back to 0, who and why recorded', async () => {
    let abortedAt = 0;
    let analysesBefore = 0;
    const { result, fake } = await canary({ plan: plan() }, async (h, f) => {
      await until(h, soakingAt(25), '1m');
      await env.sleep('90s');
      await settle(h);
      analysesBefore = f.count('analyzeCanary');
      abortedAt = await env.currentTimeMs();
      await h.signal(abortSignal, { by: 'erin', reason: 'p99 looks bad' });
    });
    expect(result).toMatchObject({ outcome: 'aborted', reason: 'aborted by erin: p99 looks bad', weight: 0 });
    expect(result.timedOut).toBeUndefined();
    expect(fake.weights).toEqual([5, 25, 0]);
    expect(fake.count('abortCanary')).toBe(1);
    expect(fake.count('promoteCanary')).toBe(0);
    // 5 analyses at 5%, one or two at 25% (the soak was 90 to 150 seconds in), none after the abort.
    expect(fake.count('analyzeCanary')).toBe(analysesBefore);
    expect(analysisWeights(fake).slice(0, 5)).toEqual([5, 5, 5, 5, 5]);
    expect(analysisWeights(fake).slice(5)).toEqual(analysesBefore === 6 ? [25] : [25, 25]);
    expect(result.status.aborts).toEqual([
      expect.objectContaining({ signal: 'abort', by: 'erin', reason: 'p99 looks bad' }),
    ]);
    expect(result.status).toMatchObject({
      phase: 'aborted',
      error: 'aborted by erin: p99 looks bad',
      canary: { weight: 0 },
    });
    // The abort did not wait for the soak to end.
    expect(Date.parse(result.status.endedAt!) - abortedAt).toBeLessThan(10_000);
    expect(result.status.steps.find((s) => s.name === 'abort canary')?.state).toBe('succeeded');
    expect(fake.argsOf<{ kind: string; weight: number }>('notify').at(-1)).toMatchObject({
      kind: 'aborted',
      weight: 0,
    });
  }, 60_000);

  test('at an approval gate: aborted without timedOut', async () => {
    const { result, fake } = await canary({ plan: plan({ approval: 'every-step' }) }, async (h) => {
      await until(h, atGate);
      await signal(h, abortSignal, { by: 'erin', reason: 'not today' });
    });
    expect(result).toMatchObject({ outcome: 'aborted', reason: 'aborted by erin: not today', weight: 0 });
    expect(result.timedOut).toBeUndefined();
    // The canary Deployment was started (no traffic yet): it is still scaled back to zero.
    expect(fake.weights).toEqual([0]);
    expect(fake.count('abortCanary')).toBe(1);
  }, 60_000);

  test('twice: the second abort is ignored with the first one named', async () => {
    const { result, fake } = await canary(
      {
        plan: plan(),
        // The second abort lands while the first one's abortCanary is still running.
        override: {
          abortCanary: whileRunning(async (h) =>
            sendAndWaitIgnored(h, 1, [abortSignal, { by: 'frank', reason: 'second' }]),
          ),
        },
      },
      async (h) => {
        current = h;
        await until(h, soakingAt(5));
        await signal(h, abortSignal, { by: 'erin', reason: 'first' });
      },
    );
    expect(result).toMatchObject({ outcome: 'aborted', reason: 'aborted by erin: first' });
    expect(fake.count('abortCanary')).toBe(1);
    expect(result.status.aborts.map((a) => a.by)).toEqual(['erin']);
    expect(result.status.ignoredSignals).toEqual([
      expect.objectContaining({
        signal: 'abort',
        by: 'frank',
        reason: 'second',
        ignoredBecause: 'already aborting (requested by erin)',
      }),
    ]);
  }, 60_000);

  test('while promoting it is ignored; once the canary completed no signal can reach it', async () => {
    const { result, fake, workflowId } = await canary(
      {
        plan: plan({ steps: [50, 100], soak: '1m' }),
        override: {
          promoteCanary: whileRunning(async (h) => {
            expect((await h.query(statusQuery)).phase).toBe('promoting');
            await sendAndWaitIgnored(
              h,
              2,
              [abortSignal, { by: 'erin', reason: 'too late' }],
              [pauseSignal, { by: 'erin' }],
            );
          }),
        },
      },
      async (h) => {
        current = h;
      },
    );
    expect(result.outcome).toBe('promoted');
    expect(fake.count('abortCanary')).toBe(0);
    expect(result.status.aborts).toEqual([]);
    expect(result.status.pauses).toEqual([]);
    expect(ignored(result)).toEqual([
      'abort by erin: the canary is already promoting',
      'pause by erin: nothing to pause in phase promoting',
    ]);
    // A completed workflow cannot receive signals: the server refuses them, so there is nothing to ignore.
    await expect(
      env.client.workflow.getHandle(workflowId).signal(abortSignal, { by: 'erin', reason: 'after the end' }),
    ).rejects.toThrow(/completed|not found/i);
  }, 60_000);

  test('an abort that arrives while the canary is already rolling back after a failure is ignored', async () => {
    const { result, fake } = await canary(
      {
        plan: plan(),
        analysis: ['fail'],
        override: {
          abortCanary: whileRunning(async (h) =>
            sendAndWaitIgnored(h, 1, [abortSignal, { by: 'erin', reason: 'me too' }]),
          ),
        },
      },
      async (h) => {
        current = h;
      },
    );
    expect(result.outcome).toBe('failed');
    expect(fake.count('abortCanary')).toBe(1);
    expect(result.status.aborts).toEqual([]);
    expect(ignored(result)).toEqual(['abort by erin: the canary is already rolling-back']);
  }, 60_000);
});

describe('a flood of signals', () => {
  test('past MAX_SIGNALS a workflow drops signals unread, with one record; an approval after the flood does not count', async () => {
    const { result } = await canary({ plan: plan({ approval: 'before-full', approvalTimeout: '30m' }) }, async (h) => {
      await until(h, atGate, '1m');
      await Promise.all(Array.from({ length: MAX_SIGNALS }, (_, i) => h.signal(pauseSignal, { by: `flood ${i}` })));
      await h.signal(approveSignal, { by: 'alice' });
      await until(h, (s) => s.ignoredSignals.at(-1)?.by === '(any)');
      await env.sleep('31m');
    });
    expect(result.outcome).toBe('aborted');
    expect(result.timedOut).toBe(true);
    expect(result.status.approvals).toEqual([]);
    expect(result.status.ignoredSignals.at(-1)?.ignoredBecause).toBe(
      `more than ${MAX_SIGNALS} signals reached this workflow; later ones are dropped unread`,
    );
    // The status stays bounded too.
    expect(result.status.ignoredSignals.length).toBeLessThanOrEqual(200);
  }, 120_000);
});

describe('pause and resume', () => {
  test('pause at 2m30s of a 5m soak holds the clock for 30 minutes; after resume the soak ends 2m30s later', async () => {
    let resumedAt = 0;
    let remaining = 0;
    const { result, fake } = await canary({ plan: plan() }, async (h, f) => {
      const soak = await until(h, soakingAt(5));
      const soakStart = Date.parse(soak.canary!.soakEndsAt!) - 5 * 60_000;
      await env.sleep('150s');
      await signal(h, pauseSignal, { by: 'grace' });
      const paused = await until(h, (s) => s.canary?.paused === true);
      const pausedAt = await env.currentTimeMs();
      remaining = paused.canary!.soakRemainingMs!;
      // About 2m30s were left when the pause landed (the server's clock runs a little between our calls).
      expect(pausedAt - soakStart).toBeGreaterThanOrEqual(150_000);
      expect(Math.abs(remaining - 150_000)).toBeLessThan(3_000);
      expect(paused.canary!.soakEndsAt).toBeUndefined();
      expect(paused.phase).toBe('soaking');
      expect(paused.waitingFor?.what).toBe(`resume (paused with ${Math.round(remaining / 1000)}s of soak left)`);
      expect(paused.waitingFor?.timeoutAt).toBeUndefined();
      expect(f.count('analyzeCanary')).toBe(2);

      await env.sleep('30m');
      const still = await h.query(statusQuery);
      expect(still.canary).toMatchObject({ paused: true, weight: 5, soakRemainingMs: remaining });
      expect(f.count('analyzeCanary')).toBe(2);
      expect(f.weights).toEqual([5]);

      resumedAt = await env.currentTimeMs();
      await signal(h, resumeSignal, { by: 'grace' });
      const resumed = await until(h, (s) => s.canary?.paused === false);
      const endsAt = Date.parse(resumed.canary!.soakEndsAt!);
      expect(resumed.canary!.soakRemainingMs).toBe(remaining);
      expect(endsAt - resumedAt).toBeGreaterThanOrEqual(remaining);
      expect(endsAt - resumedAt).toBeLessThan(remaining + 2_000);
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    // The paused soak still ran exactly its five analyses.
    expect(analysisWeights(fake)).toEqual([5, 5, 5, 5, 5, 25, 25, 25, 25, 25, 50, 50, 50, 50, 50]);
    const movedTo25 = stepTime(result.status, 'traffic 25%');
    expect(movedTo25 - resumedAt).toBeGreaterThanOrEqual(remaining);
    expect(movedTo25 - resumedAt).toBeLessThan(remaining + 2_000);
    // 5 minutes of soak plus 30 minutes paused.
    expect(movedTo25 - stepTime(result.status, 'traffic 5%')).toBeGreaterThanOrEqual(35 * 60_000);
    expect(result.status.pauses.map((x) => `${x.signal} by ${x.by}`)).toEqual(['pause by grace', 'resume by grace']);
    expect(result.status.canary?.paused).toBe(false);
  }, 60_000);

  test('a pause longer than the environment maxPause aborts the canary to stable', async () => {
    const { result, fake } = await canary({ plan: plan({}, withApprovals({ maxPauseMs: 10 * 60_000 })) }, async (h) => {
      await until(h, soakingAt(5));
      await signal(h, pauseSignal, { by: 'grace' });
      await until(h, (s) => s.canary?.paused === true);
      await env.sleep('11m');
    });
    expect(result.outcome).toBe('aborted');
    expect(result.reason).toMatch(/paused longer than 10m \(approvals.maxPause of canary-\d+\)/);
    expect(fake.count('abortCanary')).toBe(1);
    expect(result.weight).toBe(0);
    expect(result.status.aborts.map((a) => a.by)).toEqual(['deploy-pipelines']);
  }, 60_000);

  test('pause and resume from someone who is not an approver are ignored', async () => {
    const { result, fake } = await canary({ plan: plan({}, withApprovals({ approvers: ['grace'] })) }, async (h) => {
      await until(h, soakingAt(5));
      await signal(h, pauseSignal, { by: 'mallory' });
      await signal(h, pauseSignal, { by: 'grace' });
      await signal(h, resumeSignal, { by: 'mallory' });
      await until(h, (s) => s.ignoredSignals.length === 2);
      await signal(h, resumeSignal, { by: 'grace' });
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    expect(ignored(result)).toEqual([
      'pause by mallory: mallory is not an approver for ' + result.status.environment,
      'resume by mallory: mallory is not an approver for ' + result.status.environment,
    ]);
  }, 60_000);

  test('pause twice and resume when not paused are ignored with the reason', async () => {
    const { result, fake } = await canary({ plan: plan() }, async (h) => {
      await until(h, soakingAt(5));
      await signal(h, resumeSignal, { by: 'grace' });
      await signal(h, pauseSignal, { by: 'grace' });
      await signal(h, pauseSignal, { by: 'heidi' });
      await signal(h, resumeSignal, { by: 'grace' });
      await signal(h, resumeSignal, { by: 'heidi' });
      await until(h, (s) => s.ignoredSignals.length === 3);
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    expect(ignored(result)).toEqual([
      'resume by grace: not paused',
      'pause by heidi: already paused',
      'resume by heidi: not paused',
    ]);
    expect(result.status.pauses.map((x) => `${x.signal} by ${x.by}`)).toEqual(['pause by grace', 'resume by grace']);
  }, 60_000);

  test('a pause at an approval gate holds traffic after the approval until resume', async () => {
    const { result, fake } = await canary({ plan: plan({ approval: 'before-full' }) }, async (h, f) => {
      await until(h, atGate, '1m');
      await signal(h, pauseSignal, { by: 'grace' });
      await signal(h, approveSignal, { by: 'alice' });
      const held = await until(h, (s) => s.waitingFor?.what === 'resume before moving to 100%');
      expect(held.canary).toMatchObject({ paused: true, weight: 50 });
      await env.sleep('2h');
      expect(f.weights).toEqual([5, 25, 50]);
      expect((await h.query(statusQuery)).waitingFor?.what).toBe('resume before moving to 100%');
      await signal(h, resumeSignal, { by: 'grace' });
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
  }, 60_000);

  test('abort while paused aborts at once', async () => {
    const { result, fake } = await canary({ plan: plan() }, async (h) => {
      await until(h, soakingAt(5));
      await signal(h, pauseSignal, { by: 'grace' });
      await until(h, (s) => s.canary?.paused === true);
      await env.sleep('10m');
      await signal(h, abortSignal, { by: 'grace', reason: 'found the bug' });
    });
    expect(result).toMatchObject({ outcome: 'aborted', reason: 'aborted by grace: found the bug', weight: 0 });
    expect(fake.weights).toEqual([5, 0]);
  }, 60_000);
});

describe('promote', () => {
  test('ends the current soak early; the next soaks run in full', async () => {
    let promotedAt = 0;
    const { result, fake } = await canary({ plan: plan() }, async (h) => {
      await until(h, soakingAt(5));
      await env.sleep('90s');
      promotedAt = await env.currentTimeMs();
      await signal(h, promoteSignal, { by: 'ivan' });
      await until(h, soakingAt(25));
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    // One analysis at 5% (at 1m), then the soak ended; 25% and 50% soaked in full.
    expect(analysisWeights(fake)).toEqual([5, 25, 25, 25, 25, 25, 50, 50, 50, 50, 50]);
    expect(stepTime(result.status, 'traffic 25%') - promotedAt).toBeLessThan(5_000);
    expect(result.status.approvals).toEqual([
      expect.objectContaining({ signal: 'promote', by: 'ivan', reason: 'end soak at 5%' }),
    ]);
  }, 60_000);

  test('{full: true} runs one final analysis, then sets 100% directly', async () => {
    let before = 0;
    const { result, fake } = await canary({ plan: plan() }, async (h, f) => {
      await until(h, soakingAt(25), '1m');
      await settle(h);
      before = f.count('analyzeCanary');
      await h.signal(promoteSignal, { by: 'ivan', full: true });
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 100]);
    // Five at 5%, those at 25% before the promote, then exactly one final analysis at 25%.
    expect(fake.count('analyzeCanary')).toBe(before + 1);
    expect(analysisWeights(fake)).toEqual([5, 5, 5, 5, 5, ...Array<number>(before - 5 + 1).fill(25)]);
    expect(fake.count('promoteCanary')).toBe(1);
    expect(result.status.canary).toMatchObject({ weight: 100, stepIndex: 3 });
    expect(result.status.approvals).toEqual([
      expect.objectContaining({ signal: 'promote', by: 'ivan', reason: 'promote to 100%' }),
    ]);
  }, 60_000);

  test('{full: true} whose final analysis fails aborts instead of going to 100%', async () => {
    const { result, fake } = await canary({ plan: plan(), analysis: ['pass', 'fail'] }, async (h) => {
      await until(h, soakingAt(5));
      await env.sleep('90s');
      await signal(h, promoteSignal, { by: 'ivan', full: true });
    });
    expect(result.outcome).toBe('failed');
    expect(result.reason).toMatch(/^analysis failed \(1 failed, limit 0\): error-rate\[canary\] 0.3 > 0.01/);
    expect(fake.weights).toEqual([5, 0]);
    expect(fake.count('promoteCanary')).toBe(0);
  }, 60_000);

  test('{full: true} with an abort during the final analysis aborts without ever moving to 100%', async () => {
    const { result, fake } = await canary(
      {
        plan: plan({ steps: [5, 100] }),
        override: {
          // The final analysis is the first one: promote {full} lands before the first interval ends.
          analyzeCanary: async (req): Promise<AnalysisRun> => {
            await current!.signal(abortSignal, { by: 'erin', reason: 'changed my mind' });
            await until(current!, (s) => s.aborts.length === 1);
            return {
              at: new Date().toISOString(),
              outcome: 'pass',
              weight: req.weight,
              measurements: [{ metric: 'error-rate', track: 'canary', value: 0, outcome: 'pass' }],
            };
          },
        },
      },
      async (h) => {
        current = h;
        await until(h, soakingAt(5));
        await signal(h, promoteSignal, { by: 'ivan', full: true });
      },
    );
    expect(result).toMatchObject({ outcome: 'aborted', reason: 'aborted by erin: changed my mind', weight: 0 });
    expect(fake.count('analyzeCanary')).toBe(1);
    expect(fake.weights).toEqual([5, 0]);
    expect(fake.count('promoteCanary')).toBe(0);
  }, 60_000);

  test.each(['before-full', 'every-step'] as const)(
    '{full: true} with approval %s still waits for the approval before 100%%',
    async (approval) => {
      const { result, fake } = await canary({ plan: plan({ approval }) }, async (h, f) => {
        if (approval === 'every-step') {
          await until(h, atGate);
          await signal(h, approveSignal, { by: 'alice' });
        }
        await until(h, soakingAt(5));
        await signal(h, promoteSignal, { by: 'ivan', full: true });
        const gate = await until(h, atGate);
        expect(gate.waitingFor?.what).toBe('approval to move traffic to 100%');
        expect(f.weights).toEqual([5]);
        await signal(h, approveSignal, { by: 'alice' });
      });
      expect(result.outcome).toBe('promoted');
      expect(fake.weights).toEqual([5, 100]);
      expect(result.status.approvals.map((a) => `${a.signal}: ${a.reason}`)).toEqual([
        ...(approval === 'every-step' ? ['approve: approval to move traffic to 5%'] : []),
        'promote: promote to 100%',
        'approve: approval to move traffic to 100%',
      ]);
    },
    60_000,
  );

  test('when no soak is running it is ignored', async () => {
    const { result, fake } = await canary({ plan: plan({ approval: 'before-full' }) }, async (h) => {
      await until(h, atGate, '1m');
      await signal(h, promoteSignal, { by: 'ivan', full: true });
      await until(h, (s) => s.ignoredSignals.length === 1);
      await signal(h, approveSignal, { by: 'alice' });
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    expect(ignored(result)).toEqual(['promote by ivan: no soak is running (phase awaiting-approval)']);
    expect(result.status.approvals.map((a) => a.signal)).toEqual(['approve']);
  }, 60_000);

  test('while paused it resumes and ends the soak, for promote and promote {full} alike', async () => {
    const { result, fake } = await canary({ plan: plan() }, async (h) => {
      await until(h, soakingAt(5));
      await signal(h, pauseSignal, { by: 'grace' });
      await until(h, (s) => s.canary?.paused === true);
      await signal(h, promoteSignal, { by: 'ivan' });
      await until(h, soakingAt(25));
      await signal(h, pauseSignal, { by: 'grace' });
      await until(h, (s) => s.canary?.paused === true);
      await signal(h, promoteSignal, { by: 'ivan', full: true });
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 100]);
    expect(result.status.canary?.paused).toBe(false);
    expect(result.status.pauses.map((x) => `${x.signal} by ${x.by}`)).toEqual([
      'pause by grace',
      'resume by ivan',
      'pause by grace',
      'resume by ivan',
    ]);
  }, 60_000);
});

describe('analysis', () => {
  test.each([
    [5, 0],
    [25, 1],
    [50, 2],
  ])(
    'a failed analysis at %i%% aborts at once with the reason',
    async (weight, stepIndex) => {
      // The third analysis of that step fails.
      const failAt = stepIndex * 5 + 2;
      const outcomes = [...Array<'pass'>(failAt).fill('pass'), 'fail' as const, 'pass' as const];
      const { result, fake } = await canary({ plan: plan(), analysis: outcomes });
      expect(result.outcome).toBe('failed');
      expect(result.reason).toBe('analysis failed (1 failed, limit 0): error-rate[canary] 0.3 > 0.01');
      expect(fake.count('analyzeCanary')).toBe(failAt + 1);
      expect(analysisWeights(fake).at(-1)).toBe(weight);
      expect(fake.weights).toEqual([...[5, 25, 50].slice(0, stepIndex + 1), 0]);
      expect(fake.count('abortCanary')).toBe(1);
      expect(fake.count('promoteCanary')).toBe(0);
      expect(result.status).toMatchObject({
        phase: 'failed',
        lastAnalysis: { outcome: 'fail', weight },
        canary: { failedMeasurements: 1, weight: 0 },
      });
      // At once: right after the step's third analysis (3 minutes in), not at the end of its 5-minute soak.
      const soakedFor = Date.parse(result.status.endedAt!) - stepTime(result.status, `traffic ${weight}%`);
      expect(soakedFor).toBeGreaterThanOrEqual(3 * 60_000);
      expect(soakedFor).toBeLessThan(3 * 60_000 + 5_000);
    },
    60_000,
  );

  test('failureLimit from the plan: one failed run within the limit goes on, the second fails', async () => {
    const p = plan({}, { canary: { failureLimit: 1 } });
    const tolerated = await canary({ plan: p, analysis: ['pass', 'fail', 'pass'] });
    expect(tolerated.result.outcome).toBe('promoted');
    expect(tolerated.result.status.canary?.failedMeasurements).toBe(1);

    const failing = await canary({
      plan: { ...p, environment: `${p.environment}-b` },
      analysis: ['pass', 'fail', 'pass', 'pass', 'pass', 'pass', 'fail', 'pass'],
    });
    expect(failing.result.outcome).toBe('failed');
    expect(failing.result.reason).toMatch(/^analysis failed \(2 failed, limit 1\)/);
    expect(failing.fake.count('analyzeCanary')).toBe(7);
    expect(failing.fake.weights).toEqual([5, 25, 0]);
  }, 60_000);

  test('inconclusiveLimit 2: three inconclusive runs in a row fail the canary', async () => {
    const p = plan();
    expect(p.canary.inconclusiveLimit).toBe(2);
    const { result, fake } = await canary({
      plan: p,
      analysis: ['pass', 'inconclusive', 'inconclusive', 'inconclusive', 'pass'],
    });
    expect(result.outcome).toBe('failed');
    expect(result.reason).toBe('analysis inconclusive 3 times in a row (limit 2): error-rate[canary] no data');
    expect(fake.count('analyzeCanary')).toBe(4);
    expect(fake.weights).toEqual([5, 0]);
    expect(result.status.canary?.consecutiveInconclusive).toBe(3);
  }, 60_000);

  test('inconclusiveLimit 0 from the plan: the first inconclusive run fails it', async () => {
    const { result, fake } = await canary({
      plan: plan({}, { canary: { inconclusiveLimit: 0 } }),
      analysis: ['pass', 'inconclusive', 'pass'],
    });
    expect(result.outcome).toBe('failed');
    expect(result.reason).toBe('analysis inconclusive 1 times in a row (limit 0): error-rate[canary] no data');
    expect(fake.count('analyzeCanary')).toBe(2);
  }, 60_000);

  test('inconclusive runs that never reach the limit in a row do not fail it', async () => {
    const outcomes = ['inconclusive', 'inconclusive', 'pass', 'inconclusive', 'inconclusive', 'pass'] as const;
    const { result } = await canary({ plan: plan(), analysis: [...outcomes] });
    expect(result.outcome).toBe('promoted');
    expect(result.status.canary?.consecutiveInconclusive).toBe(0);
  }, 60_000);

  test('an analysis activity that throws counts as inconclusive, never as a pass', async () => {
    const { result, fake } = await canary({ plan: plan(), fail: { analyzeCanary: 'PrometheusUnavailable' } });
    expect(result.outcome).toBe('failed');
    expect(result.reason).toBe(
      'analysis inconclusive 3 times in a row (limit 2): analysis[canary] PrometheusUnavailable: analyzeCanary failed (fake)',
    );
    expect(fake.count('analyzeCanary')).toBe(3);
    expect(fake.weights).toEqual([5, 0]);
    expect(result.status.lastAnalysis).toMatchObject({
      outcome: 'inconclusive',
      weight: 5,
      measurements: [{ value: null, outcome: 'inconclusive' }],
    });
  }, 60_000);

  test('a single analysis error between passes is tolerated and reset by the next pass', async () => {
    let n = 0;
    const { result } = await canary({
      plan: plan({ steps: [50, 100] }),
      override: {
        analyzeCanary: async (req): Promise<AnalysisRun> => {
          if (++n === 2)
            throw ApplicationFailure.create({ type: 'PrometheusUnavailable', message: 'down', nonRetryable: true });
          return {
            at: new Date().toISOString(),
            outcome: 'pass',
            weight: req.weight,
            measurements: [{ metric: 'error-rate', track: 'canary', value: 0, outcome: 'pass' }],
          };
        },
      },
    });
    expect(result.outcome).toBe('promoted');
    expect(n).toBe(5);
    expect(result.status.canary?.consecutiveInconclusive).toBe(0);
  }, 60_000);
});

describe('bad signal payloads', () => {
  test('are recorded as ignored and never wedge the workflow', async () => {
    const { result, fake } = await canary({ plan: plan({ approval: 'before-full' }) }, async (h) => {
      await until(h, soakingAt(5));
      await signal(h, approveSignal, { note: 'no by' });
      await signal(h, abortSignal, 'not an object');
      await signal(h, promoteSignal, { by: 'ivan', full: 'yes' });
      await signal(h, pauseSignal, null);
      await signal(h, resumeSignal, [{ by: 'x' }]);
      await signal(h, abortSignal, { by: 'rm -rf /;', reason: 'x' });
      await signal(h, abortSignal, { by: 'erin', reason: 42 });
      await until(h, (s) => s.ignoredSignals.length === 7);
      const gate = await until(h, atGate, '1m');
      expect(gate.canary?.weight).toBe(50);
      await signal(h, approveSignal, { by: 'alice' });
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    expect(fake.count('abortCanary')).toBe(0);
    expect(result.status.aborts).toEqual([]);
    expect(result.status.pauses).toEqual([]);
    expect(ignored(result)).toEqual([
      'approve by (unknown): approve needs "by": the name of the person (letters, digits, . _ @ + -, at most 128)',
      'abort by (unknown): abort needs a JSON object such as {"by":"alice"}',
      'promote by ivan: promote: "full" must be true or false',
      'pause by (unknown): pause needs a JSON object such as {"by":"alice"}',
      'resume by (unknown): resume needs a JSON object such as {"by":"alice"}',
      'abort by rm -rf /;: abort needs "by": the name of the person (letters, digits, . _ @ + -, at most 128)',
      'abort by erin: abort: "reason" must be text of at most 1000 characters',
    ]);
  }, 60_000);
});

describe('traffic steps that fail', () => {
  test.each([
    ['startCanary', 'KubernetesForbidden', [0]],
    ['setCanaryWeight', 'TrafficNotApplied', [0]],
    ['promoteCanary', 'RolloutFailed', [5, 25, 50, 100, 0]],
  ] as const)(
    'a failure of %s fails the canary and still aborts it',
    async (name, type, weights) => {
      const { result, fake } = await canary({ plan: plan(), fail: { [name]: type } });
      expect(result.outcome).toBe('failed');
      expect(result.reason).toBe(`${type}: ${name} failed (fake)`);
      expect(fake.count('abortCanary')).toBe(1);
      expect(fake.weights).toEqual(weights);
      expect(result.status.phase).toBe('failed');
      expect(result.status.steps.find((s) => s.state === 'failed')?.error).toBe(`${type}: ${name} failed (fake)`);
      expect(fake.argsOf<{ kind: string }>('notify').at(-1)?.kind).toBe('failed');
    },
    60_000,
  );

  test('an abortCanary that fails during an abort is logged and recorded; the workflow still ends', async () => {
    const { result, fake } = await canary({ plan: plan(), fail: { abortCanary: 'KubernetesForbidden' } }, async (h) => {
      await until(h, soakingAt(25), '1m');
      await signal(h, abortSignal, { by: 'erin', reason: 'p99' });
    });
    expect(result.outcome).toBe('aborted');
    expect(fake.count('abortCanary')).toBe(1);
    // Traffic could not be moved back: the result says where it still is, and why.
    expect(result.weight).toBe(25);
    expect(result.reason).toBe(
      'aborted by erin: p99; aborting the canary failed: KubernetesForbidden: abortCanary failed (fake)',
    );
    expect(result.status.error).toBe(result.reason);
    expect(result.status.steps.find((s) => s.name === 'abort canary')).toMatchObject({
      state: 'failed',
      error: 'KubernetesForbidden: abortCanary failed (fake)',
    });
    expect(result.status.phase).toBe('aborted');
    expect(fake.argsOf<{ kind: string }>('notify').at(-1)?.kind).toBe('aborted');
  }, 60_000);

  test('cancelling the workflow during a soak still sends traffic back to stable', async () => {
    const { result, fake } = await canary({ plan: plan() }, async (h) => {
      await until(h, soakingAt(5));
      await settle(h);
      await h.cancel();
    });
    expect(result).toMatchObject({ outcome: 'failed', reason: 'cancelled', weight: 0 });
    expect(fake.weights).toEqual([5, 0]);
    expect(result.status.steps.find((s) => s.name === 'abort canary')?.state).toBe('succeeded');
  }, 60_000);

  test('a failing abortCanary after a failed step leaves the outcome failed', async () => {
    const { result, fake } = await canary({
      plan: plan(),
      analysis: ['fail'],
      fail: { abortCanary: 'KubernetesForbidden' },
    });
    expect(result.outcome).toBe('failed');
    expect(result.reason).toMatch(/^analysis failed .*; aborting the canary failed: KubernetesForbidden/);
    expect(fake.count('abortCanary')).toBe(1);
  }, 60_000);
});

describe('nothing trusted from a hand-started canary', () => {
  /** The failure a workflow closed with: its type and message. */
  const closedWith = async (h: { result: () => Promise<unknown> }) => {
    const err = (await h.result().then(
      () => undefined,
      (e: unknown) => e,
    )) as { cause?: { type?: string; message?: string; nonRetryable?: boolean } } | undefined;
    return err?.cause;
  };

  test('started by hand, it is refused before anything happens, saying to start deployWorkflow with the strategy', async () => {
    const fake = fakeActivities({ plan: plan() });
    const workflowId = `canary-by-hand-${++runs}-${taskQueue}`;
    fakes.set(workflowId, fake);
    const h = await env.client.workflow.start(canaryWorkflow, {
      taskQueue,
      workflowId,
      args: [{ version: '1.0.1', plan: plan({}, { namespace: 'kube-system' }), image: 'evil.example/miner:1' }],
    });
    expect(await closedWith(h)).toMatchObject({
      type: 'ParentRequired',
      nonRetryable: true,
      message: expect.stringContaining('start deployWorkflow with {"version":"1.0.1","strategy":"canary"}'),
    });
    expect(fake.calls).toEqual([]);
  }, 60_000);

  test('as a child, it confirms its plan and image with the configuration before any side effect', async () => {
    const { fake } = await canary({ plan: plan({ steps: [100] }) });
    expect(fake.names()[0]).toBe('confirmPlan');
    expect(fake.argsOf('confirmPlan')).toEqual([{ plan: expect.objectContaining({ version: '1.0.1' }) }]);
  }, 60_000);

  test('a plan the configuration does not confirm fails the canary with PlanMismatch, and changes nothing', async () => {
    const p = plan();
    const fake = fakeActivities({
      plan: p,
      override: {
        confirmPlan: async () => {
          throw ApplicationFailure.create({
            type: 'PlanMismatch',
            message: 'the plan handed over is not what the configuration decides: namespace is "kube-system"',
            nonRetryable: true,
          });
        },
      },
    });
    const workflowId = `canary-forged-${++runs}-${taskQueue}`;
    fakes.set(workflowId, fake);
    const h = await startAsChild(env.client, canaryWorkflow, {
      taskQueue,
      workflowId,
      args: [{ version: '1.0.1', plan: p, searchAttributes: false }],
    });
    expect(await closedWith(h)).toMatchObject({
      type: 'PlanMismatch',
      message: expect.stringContaining('namespace is "kube-system"'),
    });
    expect(fake.names().filter((n) => n !== 'notify')).toEqual(['confirmPlan']);
    expect(fake.weights).toEqual([]);
  }, 60_000);
});

describe('per-metric analysis rules (count, interval, dryRun, consecutiveErrorLimit)', () => {
  const rule = { failureLimit: 0, inconclusiveLimit: 2, consecutiveErrorLimit: 4, dryRun: false };

  /** runAnalysis answering each requested metric: `answer` decides each measurement; the requests are kept. */
  function perMetric(answer: (metric: string, run: number) => Partial<AnalysisRun['measurements'][number]>) {
    const asked: string[][] = [];
    const runAnalysis: Activities['runAnalysis'] = async (req) => {
      const metrics = req.metrics ?? ['all'];
      asked.push(metrics);
      const measurements = metrics.map((metric) => ({
        metric,
        track: 'canary',
        value: 1,
        outcome: 'pass' as const,
        ...answer(metric, asked.length),
      }));
      return { at: new Date().toISOString(), outcome: 'pass', weight: req.weight, measurements };
    };
    return { asked, runAnalysis };
  }

  test('only the metrics due are asked for; a dry-run metric that always fails never stops the canary', async () => {
    const { asked, runAnalysis } = perMetric((metric) =>
      metric === 'shadow' ? { outcome: 'fail', value: 9, reason: '9 > 1', dryRun: true } : {},
    );
    const p = plan(
      { steps: [10, 100], soak: '5m', analysisInterval: '1m' },
      {
        canary: {
          metricRules: {
            latency: { ...rule, count: 2 },
            errors: { ...rule, intervalMs: 2 * 60_000 },
            shadow: { ...rule, dryRun: true },
          },
        },
      },
    );
    const { result } = await canary({ plan: p, override: { runAnalysis } });
    expect(result.outcome).toBe('promoted');
    // Analyses at 1m..5m: latency twice (count 2), errors every 2 minutes, shadow every time.
    expect(asked).toEqual([
      ['latency', 'errors', 'shadow'],
      ['latency', 'shadow'],
      ['errors', 'shadow'],
      ['shadow'],
      ['errors', 'shadow'],
    ]);
    expect(result.status.canary).toMatchObject({ failedMeasurements: 0 });
  }, 60_000);

  test('query errors in a row past consecutiveErrorLimit fail the analysis and abort the canary, naming the metric', async () => {
    const { asked, runAnalysis } = perMetric((metric) =>
      metric === 'latency'
        ? { outcome: 'inconclusive', value: null, error: true, reason: 'Prometheus unreachable: connection refused' }
        : {},
    );
    const p = plan(
      { steps: [10, 100], soak: '5m', analysisInterval: '1m' },
      { canary: { metricRules: { latency: { ...rule, consecutiveErrorLimit: 1 }, errors: rule } } },
    );
    const { result, fake } = await canary({ plan: p, override: { runAnalysis } });
    expect(result.outcome).toBe('failed');
    expect(result.reason).toContain('latency could not be queried 2 times in a row (limit 1)');
    expect(asked).toHaveLength(2);
    expect(fake.count('abortCanary')).toBe(1);
  }, 60_000);

  test('an analysis activity that fails outright counts as a query error of each metric asked for', async () => {
    const p = plan(
      { steps: [10, 100], soak: '5m', analysisInterval: '1m' },
      { canary: { metricRules: { latency: { ...rule, consecutiveErrorLimit: 2 } } } },
    );
    const { result } = await canary({ plan: p, fail: { analyzeCanary: 'MetricsUnavailable' } });
    expect(result.outcome).toBe('failed');
    expect(result.reason).toContain('latency could not be queried 3 times in a row (limit 2)');
  }, 60_000);
});
