/**
 * Stop the line on the time-skipping server, with typed fake activities whose
 * freezeState the test sets (the real one, against a real freeze workflow,
 * is in freeze-dev-server.test.ts):
 *  - a canary at 25% holds its weight while its environment is frozen, through
 *    many soak and check intervals, says who froze it, why, and the exact
 *    unfreeze command, and goes on to 100% once unfrozen;
 *  - an abort during the freeze goes to stable at once, not at the next check;
 *  - a pause during the freeze holds after the unfreeze until resumed;
 *  - a deployment's start waits in holdWhileFrozen, and an abort ends that wait.
 * Every test ends every workflow it starts: a workflow left running would
 * hold time skipping for the tests after it.
 */
import type { WorkflowHandle } from '@temporalio/client';
import type { Duration, SignalDefinition } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import * as path from 'node:path';
import type { Activities } from '../../src/activities/contracts';
import type { DeployPlan } from '../../src/domain/plan';
import type { DeploymentStatus } from '../../src/domain/status';
import { canaryWorkflow, type CanaryResult } from '../../src/workflows/canary';
import { abortSignal, pauseSignal, resumeSignal, statusQuery } from '../../src/workflows/messages';
import { resultOf } from '../../src/workflows/outcome';
import { CANARY_HOLDS_WHILE_FROZEN_PATCH } from '../../src/workflows/patches';
import { startAsChild } from '../helpers/child';
import { fakeActivities, type FakeOptions } from '../helpers/fake-activities';
import { testPlan } from '../helpers/plan';
import { timeSkippingEnv, uniqueQueue } from '../helpers/temporal';
import type { heldStartWorkflow, HeldStart } from './fixtures/held-start-workflow';

type Fake = ReturnType<typeof fakeActivities>;

/** One worker for the file: each activity call goes to the fakes of the test whose workflow made it. */
const fakes = new Map<string, Fake>();
const dispatch = Object.fromEntries(
  Object.keys(fakeActivities().activities).map((name) => [
    name,
    (...args: unknown[]) => {
      const id = Context.current().info.workflowExecution?.workflowId ?? '';
      const fake = fakes.get(id);
      if (!fake) throw new Error(`no fakes registered for ${id}`);
      return (fake.activities as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name](...args);
    },
  ]),
) as unknown as Activities;

let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
const taskQueue = uniqueQueue('freeze-hold');
beforeAll(async () => {
  env = await timeSkippingEnv();
  const noop = () => undefined;
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'fixtures/held-start-workflow.ts'),
    logger: { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop },
  });
  worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle, activities: dispatch });
  running = worker.run();
}, 120_000);
afterAll(async () => {
  if (worker) {
    worker.shutdown();
    await running;
  }
  await env?.teardown();
});

const CHECK_MS = 60_000;
let n = 0;
/** A canary plan (5 → 25 → 50 → 100, soak 5m, analysis every minute) in an environment of its own, checked every minute. */
function plan(extra: Partial<DeployPlan> = {}): DeployPlan {
  const p = testPlan({ version: '1.0.1', canary: { soak: '5m', analysisInterval: '1m' } });
  return {
    ...p,
    environment: `frozen-${++n}`,
    searchAttributes: false,
    freeze: { windows: [], mode: 'wait', checkIntervalMs: CHECK_MS },
    ...extra,
  };
}

const unfreezeLine = (environment: string) => `deployctl unfreeze --env ${environment} --by <name> --reason <text>`;

type Handle = WorkflowHandle;
type HistoryEvent = NonNullable<Awaited<ReturnType<Handle['fetchHistory']>>['events']>[number];
const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const protoMs = (v: { seconds?: { toString(): string } | null; nanos?: number | null } | null | undefined) =>
  Number(v?.seconds?.toString() ?? 0) * 1000 + Math.floor((v?.nanos ?? 0) / 1e6);
/** A timer due this soon is let fire before a signal is sent. */
const TIMER_GUARD_MS = 15_000;

/**
 * Waits until a signal cannot race a timer: the time-skipping server strands
 * a run whose workflow task cancels a timer that fired while the task was on
 * the worker (temporalio/sdk-java#3088), and an abort during a freeze cancels
 * the hold's timer. So: no workflow task or activity outstanding, and no
 * timer due within TIMER_GUARD_MS (one that is, is skipped past first).
 */
async function settle(h: Handle): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const events: HistoryEvent[] = (await h.fetchHistory()).events ?? [];
    let busy = false;
    const activities = new Set<string>();
    const timers = new Map<string, number>();
    for (const e of events) {
      if (e.workflowTaskScheduledEventAttributes) busy = true;
      if (
        e.workflowTaskCompletedEventAttributes ||
        e.workflowTaskFailedEventAttributes ||
        e.workflowTaskTimedOutEventAttributes
      )
        busy = false;
      if (e.activityTaskScheduledEventAttributes) activities.add(String(e.eventId));
      const ended = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes;
      if (ended) activities.delete(String(ended.scheduledEventId));
      const started = e.timerStartedEventAttributes;
      if (started?.timerId) timers.set(started.timerId, protoMs(e.eventTime) + protoMs(started.startToFireTimeout));
      const fired = e.timerFiredEventAttributes ?? e.timerCanceledEventAttributes;
      if (fired?.timerId) timers.delete(fired.timerId);
    }
    if (busy || activities.size) {
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

async function signal(h: Handle, def: SignalDefinition<[unknown]>, payload: unknown): Promise<void> {
  await settle(h);
  await h.signal(def, payload);
}

/** Queries until the status satisfies `pred`; with `skip`, server time moves on by that much between polls. */
async function until(h: Handle, pred: (s: DeploymentStatus) => boolean, skip?: Duration): Promise<DeploymentStatus> {
  for (let i = 0; i < 400; i++) {
    const s = await h.query(statusQuery);
    if (pred(s)) return s;
    if (skip) await env.sleep(skip);
    else await realSleep(10);
  }
  throw new Error(`status never matched: ${JSON.stringify(await h.query(statusQuery))}`);
}

/** The result, or after 40 s of real time the workflow terminated and an error (a stuck run holds time skipping). */
async function resultWithin<R>(h: Handle, ms = 40_000): Promise<R> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), ms)));
  try {
    const r = await Promise.race([resultOf(h.result() as Promise<R>), late]);
    if (r !== 'late') return r;
  } finally {
    clearTimeout(timer);
  }
  await h.terminate('no result in time').catch(() => undefined);
  throw new Error(`${h.workflowId} gave no result within ${ms} ms of real time`);
}

let runs = 0;
async function canary(
  opts: FakeOptions & { plan: DeployPlan },
  during: (h: Handle, fake: Fake) => Promise<void>,
): Promise<{ result: CanaryResult; fake: Fake; history: HistoryEvent[] }> {
  const fake = fakeActivities(opts);
  const workflowId = `canary-${++runs}-${taskQueue}`;
  fakes.set(workflowId, fake);
  const h = await startAsChild(env.client, canaryWorkflow, {
    taskQueue,
    workflowId,
    args: [{ version: '1.0.1', plan: opts.plan, searchAttributes: false }],
  });
  try {
    await during(h, fake);
  } catch (err) {
    await h.terminate('test failed').catch(() => undefined);
    throw err;
  }
  const result = await resultWithin<CanaryResult>(h);
  return { result, fake, history: (await h.fetchHistory()).events ?? [] };
}

const soakingAt = (weight: number) => (s: DeploymentStatus) =>
  s.phase === 'soaking' && s.canary?.weight === weight && !s.canary.paused;
const frozenAt = (weight: number) => (s: DeploymentStatus) => s.phase === 'frozen' && s.canary?.weight === weight;
/** What the history's markers hold (the SDK records each patched() a run passes as one). */
const markerTexts = (history: HistoryEvent[]) =>
  history.flatMap((e) =>
    Object.values(e.markerRecordedEventAttributes?.details ?? {}).flatMap((d) =>
      (d.payloads ?? []).map((x) => Buffer.from(x.data ?? []).toString('utf8')),
    ),
  );

describe('a running canary while its environment is frozen', () => {
  test('holds at 25% through many soak and check intervals, says who froze it, why and how to unfreeze, then goes on to 100%', async () => {
    const p = plan();
    let frozenStatus: DeploymentStatus | undefined;
    let weightsWhileFrozen: number[] = [];
    let checksWhileFrozen = 0;
    let heldForMs = 0;
    const { result, fake, history } = await canary({ plan: p }, async (h, f) => {
      await until(h, soakingAt(25), '1m');
      f.freeze({ by: 'alice', reason: 'incident 4711: payments are failing' });
      const frozenSince = await env.currentTimeMs();
      // The soak at 25% ends (5 minutes), then the canary holds: an hour of server time is many checks.
      frozenStatus = await until(h, frozenAt(25), '1m');
      await env.sleep('1h');
      const s = await h.query(statusQuery);
      expect(s).toMatchObject({ phase: 'frozen', canary: { weight: 25, stepIndex: 1 } });
      weightsWhileFrozen = [...f.weights];
      checksWhileFrozen = f.freezeChecks.filter((c) => c !== undefined).length;
      heldForMs = (await env.currentTimeMs()) - frozenSince;
      f.unfreeze();
    });
    expect(result.outcome).toBe('promoted');
    // Never past 25% during the freeze, although the soak at 25% ended about an hour before the unfreeze.
    expect(weightsWhileFrozen).toEqual([5, 25]);
    expect(heldForMs).toBeGreaterThan(60 * 60_000);
    // One look per minute of the hold, give or take the first and the last.
    expect(checksWhileFrozen).toBeGreaterThanOrEqual(55);
    expect(checksWhileFrozen).toBeLessThanOrEqual(70);
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    // The status while frozen: who, why, and the exact command that ends it (and that abort still works).
    expect(frozenStatus?.waitingFor?.what).toBe(
      `${p.environment} is frozen by alice: incident 4711: payments are failing; the canary holds at 25% until ${unfreezeLine(p.environment)}`,
    );
    expect(frozenStatus?.waitingFor?.commands).toEqual([
      unfreezeLine(p.environment),
      `deployctl abort ${frozenStatus?.workflowId}-parent --by <name> --reason <text>`,
    ]);
    // After the unfreeze the canary moved on and the hold left nothing behind in the status.
    expect(result.status.phase).toBe('succeeded');
    expect(result.status.waitingFor).toBeUndefined();
    expect(markerTexts(history).join('\n')).toContain(CANARY_HOLDS_WHILE_FROZEN_PATCH);
  }, 90_000);

  test('an abort during the freeze goes to stable at once, without waiting for the unfreeze or the next check', async () => {
    const p = plan({ freeze: { windows: [], mode: 'wait', checkIntervalMs: 60 * 60_000 } });
    let abortedAt = 0;
    const { result, fake } = await canary({ plan: p }, async (h, f) => {
      await until(h, soakingAt(25), '1m');
      f.freeze({ by: 'alice', reason: 'incident 4711' });
      await until(h, frozenAt(25), '1m');
      abortedAt = await env.currentTimeMs();
      await signal(h, abortSignal, { by: 'bob', reason: 'errors at 25%' });
    });
    expect(result.outcome).toBe('aborted');
    expect(result.reason).toBe('aborted by bob: errors at 25%');
    expect(fake.weights).toEqual([5, 25, 0]);
    expect(fake.count('abortCanary')).toBe(1);
    // Still frozen the whole time: the abort did not wait for the hour-long check interval.
    expect(fake.freezeChecks.at(-1)).toBeDefined();
    const end = Date.parse(result.status.endedAt ?? '');
    expect(end - abortedAt).toBeLessThan(TIMER_GUARD_MS + 5_000);
  }, 90_000);

  test('a pause during the freeze keeps holding after the unfreeze, until resumed', async () => {
    const p = plan();
    const { result, fake } = await canary({ plan: p }, async (h, f) => {
      await until(h, soakingAt(25), '1m');
      f.freeze({ by: 'alice', reason: 'incident 4711' });
      await until(h, frozenAt(25), '1m');
      await signal(h, pauseSignal, { by: 'bob' });
      await until(h, (s) => s.canary?.paused === true);
      f.unfreeze();
      const paused = await until(h, (s) => s.waitingFor?.what === 'resume before moving to 50%', '1m');
      expect(paused.phase).not.toBe('frozen');
      await env.sleep('30m');
      expect(f.weights).toEqual([5, 25]);
      await signal(h, resumeSignal, { by: 'bob' });
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
  }, 90_000);

  test('frozen from the start: the first step goes, the canary holds at 5%; a clear line is looked at before each later step', async () => {
    const p = plan();
    const { result, fake } = await canary({ plan: p, frozen: undefined }, async (h, f) => {
      f.freeze({ by: 'alice', reason: 'release freeze' });
      const s = await until(h, frozenAt(5), '1m');
      expect(s.waitingFor?.what).toContain('the canary holds at 5% until');
      expect(f.weights).toEqual([5]);
      f.unfreeze();
    });
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    // Before 25%, 50% and 100%: several looks while frozen before 25%, then one clear look before each later step.
    expect(fake.freezeChecks.slice(-3)).toEqual([undefined, undefined, undefined]);
  }, 90_000);
});

describe("a deployment's start while its environment is frozen (holdWhileFrozen)", () => {
  async function held(opts: FakeOptions & { plan: DeployPlan }, during: (h: Handle, f: Fake) => Promise<void>) {
    const fake = fakeActivities(opts);
    const workflowId = `held-${++runs}-${taskQueue}`;
    fakes.set(workflowId, fake);
    const h = await env.client.workflow.start<typeof heldStartWorkflow>('heldStartWorkflow', {
      taskQueue,
      workflowId,
      args: [opts.plan],
    });
    try {
      await during(h, fake);
    } catch (err) {
      await h.terminate('test failed').catch(() => undefined);
      throw err;
    }
    return { result: await resultWithin<HeldStart>(h), fake };
  }

  test('a clear line: one look, and the deployment goes on', async () => {
    const { result, fake } = await held({ plan: plan() }, async () => undefined);
    expect(result.outcome).toBe('clear');
    expect(fake.freezeChecks).toEqual([undefined]);
    expect(result.status.waitingFor).toBeUndefined();
  }, 60_000);

  test('waits in phase frozen, naming who, why and the unfreeze command, looking again every checkIntervalMs; then goes on', async () => {
    const p = plan();
    const frozen = { by: 'alice', reason: 'Black Friday: no changes (ask #ops)', via: 'ssh' as const };
    const { result, fake } = await held(
      { plan: p, frozen: { ...frozen, at: '2026-11-27T08:00:00.000Z', workflowId: `deploy-freeze-${p.environment}` } },
      async (h, f) => {
        const s = await until(h, (x) => x.phase === 'frozen');
        expect(s.waitingFor?.what).toBe(
          `${p.environment} is frozen by alice: Black Friday: no changes (ask #ops); the deployment waits until ${unfreezeLine(p.environment)}`,
        );
        expect(s.waitingFor?.commands?.[0]).toBe(unfreezeLine(p.environment));
        await env.sleep('10m');
        expect(f.freezeChecks.length).toBeGreaterThanOrEqual(10);
        expect((await h.query(statusQuery)).phase).toBe('frozen');
        f.unfreeze();
      },
    );
    expect(result.outcome).toBe('clear');
    expect(fake.freezeChecks.at(-1)).toBeUndefined();
    expect(result.status.waitingFor).toBeUndefined();
  }, 60_000);

  test('the proof flags the environment needs are in the unfreeze command', async () => {
    const base = plan();
    const p = { ...base, approvals: { ...base.approvals, verify: 'ssh' as const } };
    const { result } = await held(
      {
        plan: p,
        frozen: { by: 'alice', via: 'ssh', reason: 'incident', at: '2026-01-01T00:00:00.000Z', workflowId: 'x' },
      },
      async (h, f) => {
        const s = await until(h, (x) => x.phase === 'frozen');
        expect(s.waitingFor?.commands?.[0]).toBe(
          `${unfreezeLine(p.environment)} --ssh-key <your private key or .pub with an agent>`,
        );
        f.unfreeze();
      },
    );
    expect(result.outcome).toBe('clear');
  }, 60_000);

  test('an abort ends the wait at once, the environment still frozen', async () => {
    const p = plan({ freeze: { windows: [], mode: 'wait', checkIntervalMs: 60 * 60_000 } });
    let abortedAt = 0;
    const { result, fake } = await held(
      {
        plan: p,
        frozen: { by: 'alice', via: 'none', reason: 'incident', at: '2026-01-01T00:00:00.000Z', workflowId: 'x' },
      },
      async (h) => {
        await until(h, (x) => x.phase === 'frozen');
        abortedAt = await env.currentTimeMs();
        await signal(h, abortSignal, { by: 'bob', reason: 'not today' });
      },
    );
    expect(result.outcome).toBe('aborted');
    expect(result.status.aborts.map((a) => a.by)).toEqual(['bob']);
    expect(fake.freezeChecks.every((c) => c !== undefined)).toBe(true);
    expect(Date.parse(result.status.endedAt ?? '') - abortedAt).toBeLessThan(TIMER_GUARD_MS + 5_000);
  }, 60_000);
});
