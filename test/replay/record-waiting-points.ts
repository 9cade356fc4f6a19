/**
 * Records the replay histories of every point where a deployment waits: the
 * canary's approval gate (also where senders are verified, one of two
 * approvals counted), a pause (also with the environment's maxPause timer
 * running), a soak, a hold while the environment is frozen; the
 * stop-the-line freeze itself; the blue-green approval gate and
 * monitoring window; the rollback's database decision; a deploy holding its
 * environment lock while its child runs; the lock itself; the retired
 * colour's delay. Each is saved *while the workflow is parked there* (still
 * running), because that is the history an upgraded worker picks up and
 * replays; some scenarios then send the signal that ends the wait and save
 * the whole run as well. test/replay/replay.test.ts replays every file
 * against the current workflow code.
 *
 * It runs the real workflows (src/workflows, bundled as the worker bundles
 * them) with the typed fake activities of test/helpers/fake-activities.ts on
 * the time-skipping test server, which lets a history be read while server
 * time stands still (a soak's timer stays pending until the recorder skips
 * time on purpose).
 *
 *   export TEMPORAL_TEST_SERVER_PATH=...   # else scripts/tools/temporal.sh provides it
 *   npx tsx test/replay/record-waiting-points.ts                  # every scenario into test/replay/histories
 *   npx tsx test/replay/record-waiting-points.ts --list           # the file names it writes
 *   npx tsx test/replay/record-waiting-points.ts --only gate,paused   # scenarios writing a file whose name contains one
 *   npx tsx test/replay/record-waiting-points.ts --out <dir> --suffix --<label>
 *
 * Before changing workflow code, record from the version before the change
 * (docs/operations.md, "Upgrading the worker while deployments run"): check
 * it out beside this one, copy this file into it (it imports only helpers
 * every version has) and write into this checkout's histories with a suffix:
 *
 *   git worktree add /tmp/before <commit> && ln -s "$PWD/node_modules" /tmp/before/node_modules
 *   cp test/replay/record-waiting-points.ts /tmp/before/test/replay/
 *   (cd /tmp/before && npx tsx test/replay/record-waiting-points.ts --out "$OLDPWD/test/replay/histories" --suffix --<commit>)
 *
 * Workflows, signals and the status query are named by string, not imported,
 * so the same file drives older workflow code; the fakes and the plan come
 * from the checkout it runs in.
 *
 * Canary and blue-green run only as a deployment's children (they refuse to
 * run on their own), so the recorder starts them as the child of the tests'
 * parent (testParentWorkflow, test/helpers/test-workflows.ts, which the
 * checkout's workflowBundle() holds) and drives and saves the child; signals
 * go to the child itself. In an older checkout, whose bundle has no such
 * parent, they start on their own, as that code allowed.
 */
import '../helpers/setup-runtime';
import type { WorkflowHandle } from '@temporalio/client';
import type { Duration } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { DeployInput } from '../../src/domain/input';
import type { DeployPlan } from '../../src/domain/plan';
import type { DeploymentStatus } from '../../src/domain/status';
import { SEARCH_ATTRIBUTE_NAMES } from '../../src/search-attributes';
import { fakeActivities, type FakeOptions } from '../helpers/fake-activities';
import { HISTORIES_DIR } from '../helpers/histories';
import { testPlan, testReleasePlan } from '../helpers/plan';
import type { ReleasePlan } from '../../src/domain/release';
import { timeSkippingEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';

type Handle = WorkflowHandle;
type Fake = ReturnType<typeof fakeActivities>;
type HistoryEvent = NonNullable<Awaited<ReturnType<Handle['fetchHistory']>>['events']>[number];

/** What a scenario drives with: its workflows run on its own task queue against its own fakes. */
interface Ctx {
  env: TestWorkflowEnvironment;
  fake: Fake;
  /** The plan the fakes resolve (scenario.fake.plan). */
  plan: DeployPlan;
  /** Starts a workflow on this scenario's task queue (canary and blue-green as a parent's child: the child's handle). */
  start(type: string, workflowId: string, arg: unknown): Promise<Handle>;
  handle(workflowId: string): Handle;
  /** Saves the workflow's history as it is now, as `<name><suffix>.json`. */
  save(name: string, workflowId: string): Promise<void>;
}

interface Scenario {
  /** Every history it saves (file names without the suffix), in order. */
  writes: string[];
  fake: FakeOptions;
  run(c: Ctx): Promise<void>;
}

// --- plans ------------------------------------------------------------------------

/** The example config's plan for `input`, with Deploy* search attributes as production has them. */
function plan(input: DeployInput): DeployPlan {
  return { ...testPlan(input), searchAttributes: true };
}
const canaryInput = (p: DeployPlan) => ({ version: p.version, plan: p, searchAttributes: p.searchAttributes });
const by = { by: 'alice' };

/** An environment that verifies senders by SSH signature and needs two approvers (carol requested it). */
function verifiedPlan(input: DeployInput): DeployPlan {
  const p = plan(input);
  return {
    ...p,
    requestedBy: 'carol',
    requestedVia: 'ssh',
    approvals: { ...p.approvals, verify: 'ssh', approvers: ['alice', 'bob'], required: 2 },
  };
}
/** A release through staging and production, a day's soak and an approval between (this checkout's helper). */
function releasePlan(): ReleasePlan {
  const r = testReleasePlan(24 * 3_600_000);
  return { ...r, searchAttributes: true };
}
/** An environment frozen all day, every day: a deployment waits for the window's end. */
function frozenPlan(): DeployPlan {
  return {
    ...plan({ version: '1.0.1' }),
    freeze: {
      windows: [
        { days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '00:00', to: '24:00', timeZone: 'UTC' },
      ],
      mode: 'wait',
      checkIntervalMs: 60_000,
    },
  };
}
/** Production as two clusters, its services in two waves, with `pauseMs` and an approval between the clusters. */
function clustersPlan(pauseMs: number): DeployPlan {
  return {
    ...plan({ version: '1.0.1', strategy: 'rolling' }),
    waves: [['auth-service', 'chat-service', 'billing-service', 'analytics-service', 'frontend'], ['api-gateway']],
    clusters: ['region-a', 'region-b'],
    betweenClusters: { pauseMs, approval: true, approvalTimeoutMs: 3_600_000 },
  };
}
/** Approvals as the example config has them, with alice and bob the approvers (the freeze scenario's). */
const c0Approvals = () => ({ ...plan({ version: '1.0.1' }).approvals, approvers: ['alice', 'bob'] });
/** The plan with the environment's approvals.maxPause set to `ms`. */
const withMaxPause = (p: DeployPlan, ms: number): DeployPlan => ({
  ...p,
  approvals: { ...p.approvals, maxPauseMs: ms },
});
/** A signal's proof as deployctl attaches it; the recorder's verifySender accepts it without checking the signature. */
const sshProof = (gate: string, nonce: string) => ({
  type: 'ssh',
  gate,
  expires: '2030-01-01T00:00:00.000Z',
  nonce,
  signature: '-----BEGIN SSH SIGNATURE-----\n(not checked by the recorder)\n-----END SSH SIGNATURE-----',
});
/** verifySender that takes every proof's sender at its word: the identity `by`, the gate and nonce of the proof. */
const acceptProof: FakeOptions['verifySender'] = async (req) => {
  const proof = req.proof as { gate?: string; nonce?: string } | undefined;
  if (!proof?.nonce) return { ok: false, reason: 'no proof' };
  return {
    ok: true,
    sender: {
      identity: req.message.by,
      via: 'ssh',
      groups: [],
      gate: proof.gate ?? '-',
      replayKey: `ssh:${proof.nonce}`,
      credential: `SHA256:${req.message.by}-recorded`,
    },
  };
};

// --- waiting ------------------------------------------------------------------------

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Why the history is not at rest: a workflow task, an activity, a child start or a signal to another workflow still outstanding. */
function busy(events: HistoryEvent[]): string | undefined {
  let task = false;
  const open = new Map<string, string>();
  const id = (v: unknown) => String(v);
  for (const e of events) {
    if (e.workflowTaskScheduledEventAttributes) task = true;
    if (
      e.workflowTaskCompletedEventAttributes ||
      e.workflowTaskFailedEventAttributes ||
      e.workflowTaskTimedOutEventAttributes
    )
      task = false;
    if (e.activityTaskScheduledEventAttributes)
      open.set(id(e.eventId), `activity ${e.activityTaskScheduledEventAttributes.activityType?.name ?? '?'}`);
    const activityEnd =
      e.activityTaskCompletedEventAttributes ??
      e.activityTaskFailedEventAttributes ??
      e.activityTaskTimedOutEventAttributes ??
      e.activityTaskCanceledEventAttributes;
    if (activityEnd) open.delete(id(activityEnd.scheduledEventId));
    if (e.startChildWorkflowExecutionInitiatedEventAttributes) open.set(id(e.eventId), 'child start');
    const childStart =
      e.childWorkflowExecutionStartedEventAttributes ?? e.startChildWorkflowExecutionFailedEventAttributes;
    if (childStart) open.delete(id(childStart.initiatedEventId));
    if (e.signalExternalWorkflowExecutionInitiatedEventAttributes)
      open.set(id(e.eventId), 'signal to another workflow');
    const signalled =
      e.externalWorkflowExecutionSignaledEventAttributes ?? e.signalExternalWorkflowExecutionFailedEventAttributes;
    if (signalled) open.delete(id(signalled.initiatedEventId));
  }
  if (task) return 'workflow task';
  return open.size ? [...open.values()].join(', ') : undefined;
}

function closed(events: HistoryEvent[]): boolean {
  const last = events.at(-1);
  return !!(
    last?.workflowExecutionCompletedEventAttributes ||
    last?.workflowExecutionFailedEventAttributes ||
    last?.workflowExecutionTerminatedEventAttributes ||
    last?.workflowExecutionCanceledEventAttributes ||
    last?.workflowExecutionContinuedAsNewEventAttributes
  );
}

async function events(h: Handle): Promise<HistoryEvent[]> {
  return (await h.fetchHistory()).events ?? [];
}

/**
 * Waits until the workflow is parked where `pred` says (its status) with
 * nothing outstanding in its history, or has closed. With `skip`, server time
 * moves on by that much whenever the workflow is at rest elsewhere (a soak
 * ending, say); without, server time stands still and only the workflow's own
 * work moves it.
 */
async function until(
  h: Handle,
  what: string,
  pred: (s: DeploymentStatus) => boolean,
  opts: { env?: TestWorkflowEnvironment; skip?: Duration; orClosed?: boolean } = {},
): Promise<'parked' | 'closed'> {
  let last = '';
  for (let i = 0; i < 3000; i++) {
    const ev = await events(h);
    if (closed(ev)) {
      if (opts.orClosed) return 'closed';
      throw new Error(`${h.workflowId} closed before it parked at ${what}`);
    }
    const why = busy(ev);
    if (!why) {
      const s = await h.query<DeploymentStatus>('status');
      if (pred(s)) return 'parked';
      last = `phase ${s.phase}, waiting for ${s.waitingFor?.what ?? 'nothing'}`;
      if (opts.skip && opts.env) {
        await opts.env.sleep(opts.skip);
        continue;
      }
    } else last = `busy: ${why}`;
    await realSleep(20);
  }
  throw new Error(`${h.workflowId} never parked at ${what} (${last})`);
}

/** Sends a signal while the workflow is at rest (time standing still), and waits until it is at rest again. */
async function signal(h: Handle, name: string, payload: unknown, settleOn: Handle[] = [h]): Promise<void> {
  const before = (await events(h)).length;
  await h.signal(name, payload);
  for (let i = 0; i < 3000; i++) {
    const ev = await events(h);
    if (ev.length > before && !busy(ev)) {
      let rest = true;
      for (const other of settleOn.filter((o) => o !== h)) if (busy(await events(other))) rest = false;
      if (rest) return;
    }
    await realSleep(20);
  }
  throw new Error(`${h.workflowId} did not settle after ${name}`);
}

/**
 * The workflow's end. With `skip`, server time moves on a minute at a time
 * whenever the workflow is at rest (through soaks and monitoring windows;
 * every timer on the server due by then fires); without, it stands still, so
 * other workflows stay parked.
 */
async function finished(h: Handle, opts: { env?: TestWorkflowEnvironment; skip?: boolean } = {}): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    const ev = await events(h);
    if (closed(ev)) return;
    if (opts.skip && opts.env && !busy(ev)) await opts.env.sleep('1m');
    else await realSleep(20);
  }
  throw new Error(`${h.workflowId} did not finish`);
}

const isPhase = (phase: string) => (s: DeploymentStatus) => s.phase === phase;
const soakingAt = (weight: number) => (s: DeploymentStatus) =>
  s.phase === 'soaking' && s.canary?.weight === weight && !s.canary.paused;
const atGateAt = (weight: number) => (s: DeploymentStatus) =>
  s.phase === 'awaiting-approval' && s.canary?.weight === weight;

// --- scenarios -------------------------------------------------------------------------

const SCENARIOS: Scenario[] = [
  {
    // Every step gated: the first gate approved, a whole soak at 5% with its analyses, parked at the gate before 25%.
    writes: ['canaryWorkflow--parked-at-gate', 'canaryWorkflow--approved-at-every-gate'],
    fake: { plan: plan({ version: '1.0.1', canary: { approval: 'every-step' } }) },
    async run(c) {
      const h = await c.start('canaryWorkflow', 'rec-canary-gate', canaryInput(c.plan));
      await until(h, 'the gate before 5%', atGateAt(0));
      await signal(h, 'approve', by);
      await until(h, 'the gate before 25%', atGateAt(5), { env: c.env, skip: '1m' });
      await c.save('canaryWorkflow--parked-at-gate', h.workflowId);
      for (const w of [5, 25, 50]) {
        await until(h, `the gate after ${w}%`, atGateAt(w), { env: c.env, skip: '1m' });
        await signal(h, 'approve', by);
      }
      await finished(h);
      await c.save('canaryWorkflow--approved-at-every-gate', h.workflowId);
    },
  },
  {
    // Soaking at 5% with two of its five analyses done; the soak's timer pending.
    writes: ['canaryWorkflow--parked-soaking', 'canaryWorkflow--promoted-full-from-soak'],
    fake: { plan: plan({ version: '1.0.1' }) },
    async run(c) {
      const h = await c.start('canaryWorkflow', 'rec-canary-soak', canaryInput(c.plan));
      await until(h, 'the soak at 5%', soakingAt(5));
      await c.env.sleep(150_000);
      await until(h, 'the soak at 5% after two analyses', soakingAt(5));
      await c.save('canaryWorkflow--parked-soaking', h.workflowId);
      await signal(h, 'promote', { ...by, full: true });
      await finished(h);
      await c.save('canaryWorkflow--promoted-full-from-soak', h.workflowId);
    },
  },
  {
    // Paused during the soak at 5% (the soak clock stopped with time left).
    writes: ['canaryWorkflow--parked-paused', 'canaryWorkflow--resumed-after-pause'],
    fake: { plan: plan({ version: '1.0.1' }) },
    async run(c) {
      const h = await c.start('canaryWorkflow', 'rec-canary-paused', canaryInput(c.plan));
      await until(h, 'the soak at 5%', soakingAt(5));
      await c.env.sleep(90_000);
      await until(h, 'the soak at 5% after one analysis', soakingAt(5));
      await signal(h, 'pause', by);
      await until(h, 'the pause', (s) => s.phase === 'soaking' && s.canary?.paused === true);
      await c.save('canaryWorkflow--parked-paused', h.workflowId);
      await signal(h, 'resume', by);
      await finished(h, { env: c.env, skip: true });
      await c.save('canaryWorkflow--resumed-after-pause', h.workflowId);
    },
  },
  {
    // Paused at the gate before 5%, then approved: it holds traffic where it is until resumed.
    writes: ['canaryWorkflow--parked-paused-before-step'],
    fake: { plan: plan({ version: '1.0.1', canary: { approval: 'every-step' } }) },
    async run(c) {
      const h = await c.start('canaryWorkflow', 'rec-canary-paused-step', canaryInput(c.plan));
      await until(h, 'the gate before 5%', atGateAt(0));
      await signal(h, 'pause', by);
      await signal(h, 'approve', by);
      await until(h, 'the pause before 5%', (s) => !!s.waitingFor?.what.startsWith('resume before moving to 5%'));
      await c.save('canaryWorkflow--parked-paused-before-step', h.workflowId);
    },
  },
  {
    // Senders verified by SSH signature, two approvers needed: one verified approval counted at the gate before 100%;
    // then the second opens it and the canary goes to the end.
    writes: ['canaryWorkflow--parked-at-verified-gate', 'canaryWorkflow--verified-approved-at-gate'],
    fake: {
      plan: verifiedPlan({ version: '1.0.1', canary: { approval: 'before-full', soak: '2m' } }),
      verifySender: acceptProof,
    },
    async run(c) {
      const h = await c.start('canaryWorkflow', 'rec-canary-verified-gate', canaryInput(c.plan));
      await until(h, 'the gate before 100%', atGateAt(50), { env: c.env, skip: '1m' });
      await signal(h, 'approve', { by: 'alice', proof: sshProof('traffic-100', 'nonce-alice') });
      await until(
        h,
        "alice's verified approval",
        (s) => atGateAt(50)(s) && s.approvals.some((a) => a.by === 'alice' && a.via === 'ssh'),
      );
      await c.save('canaryWorkflow--parked-at-verified-gate', h.workflowId);
      await signal(h, 'approve', { by: 'bob', proof: sshProof('traffic-100', 'nonce-bob') });
      await finished(h);
      await c.save('canaryWorkflow--verified-approved-at-gate', h.workflowId);
    },
  },
  {
    // Paused during the soak at 5% where the environment's maxPause is 10 minutes: parked with the pause's limit
    // pending; then the pause outlasts it and the canary aborts to stable.
    writes: ['canaryWorkflow--parked-paused-max-pause', 'canaryWorkflow--aborted-max-pause-exceeded'],
    fake: { plan: withMaxPause(plan({ version: '1.0.1' }), 600_000) },
    async run(c) {
      const h = await c.start('canaryWorkflow', 'rec-canary-max-pause', canaryInput(c.plan));
      await until(h, 'the soak at 5%', soakingAt(5));
      await c.env.sleep(90_000);
      await until(h, 'the soak at 5% after one analysis', soakingAt(5));
      await signal(h, 'pause', by);
      await until(h, 'the pause', (s) => s.phase === 'soaking' && s.canary?.paused === true);
      await c.save('canaryWorkflow--parked-paused-max-pause', h.workflowId);
      await finished(h, { env: c.env, skip: true });
      const s = await h.query<DeploymentStatus>('status');
      if (!s.aborts.some((a) => a.reason?.startsWith('paused longer than')))
        throw new Error(`${h.workflowId} ended without the maxPause abort (phase ${s.phase})`);
      await c.save('canaryWorkflow--aborted-max-pause-exceeded', h.workflowId);
    },
  },
  {
    // The environment's line stopped (deployctl freeze) during the soak at 5%: parked holding at 5% with the next
    // look pending; then the line runs again and the canary goes to the end. The freeze is the fake's freezeState,
    // replaced while the canary runs.
    writes: ['canaryWorkflow--parked-frozen', 'canaryWorkflow--unfrozen-after-hold'],
    fake: { plan: plan({ version: '1.0.1' }) },
    async run(c) {
      const h = await c.start('canaryWorkflow', 'rec-canary-frozen', canaryInput(c.plan));
      await until(h, 'the soak at 5%', soakingAt(5));
      const frozen = { by: 'alice', via: 'none' as const, reason: 'incident 4711', at: '2026-11-27T08:00:00.000Z' };
      c.fake.activities.freezeState = async () => ({ frozen: { ...frozen, workflowId: 'deploy-freeze-production' } });
      await until(h, 'the hold at 5%', (s) => s.phase === 'frozen' && s.canary?.weight === 5, {
        env: c.env,
        skip: '1m',
      });
      await c.env.sleep('3m');
      await until(h, 'the hold at 5% after three looks', (s) => s.phase === 'frozen');
      await c.save('canaryWorkflow--parked-frozen', h.workflowId);
      c.fake.activities.freezeState = async () => ({});
      await finished(h, { env: c.env, skip: true });
      await c.save('canaryWorkflow--unfrozen-after-hold', h.workflowId);
    },
  },
  {
    // Frozen at 5%, then aborted: the abort ends the hold at once and the canary goes back to stable.
    writes: ['canaryWorkflow--aborted-while-frozen'],
    fake: { plan: plan({ version: '1.0.1' }) },
    async run(c) {
      const h = await c.start('canaryWorkflow', 'rec-canary-frozen-abort', canaryInput(c.plan));
      await until(h, 'the soak at 5%', soakingAt(5));
      const frozen = { by: 'alice', via: 'none' as const, reason: 'incident 4711', at: '2026-11-27T08:00:00.000Z' };
      c.fake.activities.freezeState = async () => ({ frozen: { ...frozen, workflowId: 'deploy-freeze-production' } });
      await until(h, 'the hold at 5%', (s) => s.phase === 'frozen', { env: c.env, skip: '1m' });
      await signal(h, 'abort', { ...by, reason: 'errors during the freeze' });
      await finished(h);
      await c.save('canaryWorkflow--aborted-while-frozen', h.workflowId);
    },
  },
  {
    // A stop-the-line freeze of production, verified and holding, an unfreeze from someone who may not send one
    // recorded as ignored; then an approver's unfreeze ends it.
    writes: ['freezeWorkflow--parked-frozen', 'freezeWorkflow--unfrozen'],
    fake: {
      plan: plan({ version: '1.0.1' }),
      verifyFreezer: async (req) =>
        ['alice', 'bob'].includes(req.input.by)
          ? { ok: true, by: req.input.by, via: 'none', approvals: c0Approvals() }
          : { ok: false, reason: `${req.input.by} is not an approver for production`, approvals: c0Approvals() },
    },
    async run(c) {
      const h = await c.start('freezeWorkflow', `deploy-freeze-${c.plan.environment}`, {
        environment: c.plan.environment,
        by: 'alice',
        reason: 'incident 4711',
      });
      await until(h, 'the freeze', isPhase('frozen'));
      await signal(h, 'unfreeze', { by: 'mallory', reason: 'looks fine' });
      await c.save('freezeWorkflow--parked-frozen', h.workflowId);
      await signal(h, 'unfreeze', { by: 'bob', reason: 'incident 4711 resolved' });
      await finished(h);
      await c.save('freezeWorkflow--unfrozen', h.workflowId);
    },
  },
  {
    // Paused during the soak at 5%, then promoted: where the canary waits next is the version's own rule
    // (before 4841158 it waits for a resume before 25%; since then promote ends the pause and it soaks at 25%).
    writes: ['canaryWorkflow--parked-after-promote-while-paused', 'canaryWorkflow--resumed-after-promote-while-paused'],
    fake: { plan: plan({ version: '1.0.1' }) },
    async run(c) {
      const h = await c.start('canaryWorkflow', 'rec-canary-promote-paused', canaryInput(c.plan));
      await until(h, 'the soak at 5%', soakingAt(5));
      await signal(h, 'pause', by);
      await until(h, 'the pause', (s) => s.phase === 'soaking' && s.canary?.paused === true);
      await signal(h, 'promote', by);
      await until(
        h,
        'the next wait',
        (s) => soakingAt(25)(s) || !!s.waitingFor?.what.startsWith('resume before moving to 25%'),
      );
      await c.save('canaryWorkflow--parked-after-promote-while-paused', h.workflowId);
      await signal(h, 'resume', by);
      await finished(h, { env: c.env, skip: true });
      await c.save('canaryWorkflow--resumed-after-promote-while-paused', h.workflowId);
    },
  },
  {
    // Every step gated and promote {full} during the first soak: is there a gate before 100%?
    writes: ['canaryWorkflow--promoted-full-at-every-step'],
    fake: { plan: plan({ version: '1.0.1', canary: { approval: 'every-step' } }) },
    async run(c) {
      const h = await c.start('canaryWorkflow', 'rec-canary-full-every-step', canaryInput(c.plan));
      await until(h, 'the gate before 5%', atGateAt(0));
      await signal(h, 'approve', by);
      await until(h, 'the soak at 5%', soakingAt(5));
      await signal(h, 'promote', { ...by, full: true });
      if ((await until(h, 'a gate before 100%', atGateAt(5), { orClosed: true })) === 'parked')
        await signal(h, 'approve', by);
      await finished(h);
      await c.save('canaryWorkflow--promoted-full-at-every-step', h.workflowId);
    },
  },
  {
    // promote {full}, and an abort arrives while the final analysis runs.
    writes: ['canaryWorkflow--aborted-during-final-analysis'],
    fake: { plan: plan({ version: '1.0.1' }) },
    async run(c) {
      const h = await c.start('canaryWorkflow', 'rec-canary-abort-final', canaryInput(c.plan));
      await until(h, 'the soak at 5%', soakingAt(5));
      const analyse = c.fake.activities.analyzeCanary;
      c.fake.activities.analyzeCanary = async (req) => {
        await h.signal('abort', { ...by, reason: 'error budget' });
        return analyse(req);
      };
      await signal(h, 'promote', { ...by, full: true });
      await finished(h);
      await c.save('canaryWorkflow--aborted-during-final-analysis', h.workflowId);
    },
  },
  {
    // The canary Deployment cannot be created: is the half-made canary aborted?
    writes: ['canaryWorkflow--start-failed'],
    fake: { plan: plan({ version: '1.0.1' }), fail: { startCanary: 'KubernetesApiError' } },
    async run(c) {
      const h = await c.start('canaryWorkflow', 'rec-canary-start-failed', canaryInput(c.plan));
      await finished(h);
      await c.save('canaryWorkflow--start-failed', h.workflowId);
    },
  },
  {
    // Switched to green, one analysis of the monitoring window done, its timer pending; then promote ends it,
    // and the retired colour waits for its deletion.
    writes: [
      'blueGreenWorkflow--parked-monitoring',
      'blueGreenWorkflow--promoted-from-monitoring',
      'retireColourWorkflow--parked-before-delete',
    ],
    fake: { plan: plan({ version: '1.0.1', strategy: 'blue-green' }) },
    async run(c) {
      const h = await c.start('blueGreenWorkflow', 'rec-bg-monitor', canaryInput(c.plan));
      await until(h, 'the monitoring window', isPhase('monitoring'));
      await c.env.sleep(90_000);
      await until(h, 'the monitoring window after one analysis', isPhase('monitoring'));
      await c.save('blueGreenWorkflow--parked-monitoring', h.workflowId);
      await signal(h, 'promote', by);
      await finished(h);
      await c.save('blueGreenWorkflow--promoted-from-monitoring', h.workflowId);
      const retire = c.handle(`${h.workflowId}-retire-blue`);
      for (let i = 0; i < 3000 && (busy(await events(retire)) || !(await events(retire)).length); i++)
        await realSleep(20);
      await c.save('retireColourWorkflow--parked-before-delete', retire.workflowId);
    },
  },
  {
    // Green ready and smoke-checked, parked at the approval to switch traffic.
    writes: ['blueGreenWorkflow--parked-at-gate', 'blueGreenWorkflow--approved-at-gate'],
    fake: { plan: plan({ version: '1.0.1', strategy: 'blue-green', blueGreen: { approval: true } }) },
    async run(c) {
      const h = await c.start('blueGreenWorkflow', 'rec-bg-gate', canaryInput(c.plan));
      await until(h, 'the approval to switch', isPhase('awaiting-approval'));
      await c.save('blueGreenWorkflow--parked-at-gate', h.workflowId);
      await signal(h, 'approve', by);
      await finished(h, { env: c.env, skip: true });
      await c.save('blueGreenWorkflow--approved-at-gate', h.workflowId);
    },
  },
  {
    // A deploy whose canary fails after migrations: its rollback child parked at the database decision,
    // the deploy parked with it (holding its lock); then abort keeps the database.
    writes: [
      'rollbackWorkflow--parked-at-db-decision',
      'deployWorkflow--parked-rollback-at-db-decision',
      'rollbackWorkflow--db-decision-kept',
      'deployWorkflow--canary-rolled-back-database-kept',
    ],
    fake: {
      plan: plan({ version: '1.0.1' }),
      analysis: ['fail'],
      pendingMigrations: ['0002_add_email_verified_at_index.sql'],
    },
    async run(c) {
      const h = await c.start('deployWorkflow', 'rec-deploy-db-decision', { version: '1.0.1' });
      const rollback = c.handle(`${h.workflowId}-rollback`);
      await until(h, 'the rollback', isPhase('rolling-back'), { env: c.env, skip: '1m' });
      await until(rollback, 'the database decision', isPhase('awaiting-db-decision'));
      await until(h, 'the rollback', isPhase('rolling-back'));
      await c.save('rollbackWorkflow--parked-at-db-decision', rollback.workflowId);
      await c.save('deployWorkflow--parked-rollback-at-db-decision', h.workflowId);
      await signal(h, 'abort', { ...by, reason: 'keep the database' }, [h, rollback]);
      await finished(h);
      await c.save('rollbackWorkflow--db-decision-kept', rollback.workflowId);
      await c.save('deployWorkflow--canary-rolled-back-database-kept', h.workflowId);
    },
  },
  {
    // A manual rollback asked to restore the database, parked at the decision; then approved.
    writes: ['rollbackWorkflow--manual-parked-at-db-decision', 'rollbackWorkflow--manual-restore-approved'],
    fake: { plan: plan({ version: '1.0.1' }) },
    async run(c) {
      const h = await c.start('rollbackWorkflow', 'rec-rollback-manual', {
        environment: 'production',
        restoreDatabase: true,
        requestedBy: 'alice',
        reason: 'bad release',
      });
      await until(h, 'the database decision', isPhase('awaiting-db-decision'));
      await c.save('rollbackWorkflow--manual-parked-at-db-decision', h.workflowId);
      await signal(h, 'approve', { ...by, note: 'restore' });
      await finished(h);
      await c.save('rollbackWorkflow--manual-restore-approved', h.workflowId);
    },
  },
  {
    // A deploy holding production's lock while its canary child waits at a gate; the lock itself; a second
    // deploy refused by the lock; then every gate approved through the deploy and the lock released.
    writes: [
      'deployWorkflow--parked-canary-at-gate',
      'environmentLockWorkflow--parked-holding',
      'deployWorkflow--refused-environment-locked',
      'deployWorkflow--canary-approved-at-every-gate',
      'environmentLockWorkflow--released',
    ],
    fake: { plan: plan({ version: '1.0.1', canary: { approval: 'every-step' } }) },
    async run(c) {
      const input = { version: '1.0.1', canary: { approval: 'every-step' } };
      const h = await c.start('deployWorkflow', 'rec-deploy-lock', input);
      const child = c.handle(`${h.workflowId}-canary`);
      const lock = c.handle(`deploy-lock-${c.plan.environment}`);
      await until(h, 'the canary', isPhase('rolling-out'));
      await until(child, 'the gate before 5%', atGateAt(0));
      await until(h, 'the canary', isPhase('rolling-out'));
      await c.save('deployWorkflow--parked-canary-at-gate', h.workflowId);
      await c.save('environmentLockWorkflow--parked-holding', lock.workflowId);
      const second = await c.start('deployWorkflow', 'rec-deploy-refused', input);
      await finished(second);
      await c.save('deployWorkflow--refused-environment-locked', second.workflowId);
      for (const w of [0, 5, 25, 50]) {
        await until(child, `the gate after ${w}%`, atGateAt(w), { env: c.env, skip: '1m' });
        await signal(h, 'approve', by, [h, child]);
      }
      await finished(h);
      await c.save('deployWorkflow--canary-approved-at-every-gate', h.workflowId);
      await c.save('environmentLockWorkflow--released', lock.workflowId);
    },
  },
  {
    // A deploy parked while its blue-green child monitors green.
    writes: ['deployWorkflow--parked-blue-green-monitoring'],
    fake: { plan: plan({ version: '1.0.1', strategy: 'blue-green' }) },
    async run(c) {
      const h = await c.start('deployWorkflow', 'rec-deploy-bg', { version: '1.0.1', strategy: 'blue-green' });
      const child = c.handle(`${h.workflowId}-blue-green`);
      await until(h, 'the blue-green child', isPhase('rolling-out'));
      await until(child, 'the monitoring window', isPhase('monitoring'));
      await until(h, 'the blue-green child', isPhase('rolling-out'));
      await c.save('deployWorkflow--parked-blue-green-monitoring', h.workflowId);
    },
  },
  {
    // The canary fails and aborting it keeps failing: does the rollback still restore the images?
    writes: ['rollbackWorkflow--abort-canary-failed', 'deployWorkflow--rollback-abort-canary-failed'],
    fake: { plan: plan({ version: '1.0.1' }), analysis: ['fail'], fail: { abortCanary: 'TrafficUpdateFailed' } },
    async run(c) {
      const h = await c.start('deployWorkflow', 'rec-deploy-abort-failed', { version: '1.0.1' });
      await finished(h, { env: c.env, skip: true });
      await c.save('rollbackWorkflow--abort-canary-failed', `${h.workflowId}-rollback`);
      await c.save('deployWorkflow--rollback-abort-canary-failed', h.workflowId);
    },
  },
  {
    // A release soaking in staging (its analysis timer pending), then at the promotion gate into production.
    writes: ['releaseWorkflow--parked-soaking', 'releaseWorkflow--parked-at-promotion-gate'],
    fake: { plan: plan({ version: '1.0.1', strategy: 'rolling' }), releasePlan: releasePlan() },
    async run(c) {
      const h = await c.start('releaseWorkflow', 'rec-release', { version: '1.0.1' });
      await until(h, 'the soak in staging', isPhase('soaking'), { env: c.env, skip: '1m' });
      await c.save('releaseWorkflow--parked-soaking', h.workflowId);
      await until(h, 'the promotion gate', isPhase('awaiting-approval'), { env: c.env, skip: '1h' });
      await c.save('releaseWorkflow--parked-at-promotion-gate', h.workflowId);
    },
  },
  {
    // A deployment inside its environment's freeze window: parked until the window ends.
    writes: ['deployWorkflow--parked-in-freeze-window'],
    fake: { plan: frozenPlan() },
    async run(c) {
      const h = await c.start('deployWorkflow', 'rec-deploy-freeze-window', { version: '1.0.1' });
      await until(h, 'the freeze window', isPhase('frozen'));
      await c.save('deployWorkflow--parked-in-freeze-window', h.workflowId);
    },
  },
  {
    // Region-a rolled out wave by wave and checked: the pause before region-b.
    writes: ['deployWorkflow--parked-between-clusters'],
    fake: { plan: clustersPlan(10 * 60_000) },
    async run(c) {
      const h = await c.start('deployWorkflow', 'rec-deploy-between-clusters', {
        version: '1.0.1',
        strategy: 'rolling',
      });
      await until(h, 'the pause between clusters', isPhase('soaking'));
      await c.save('deployWorkflow--parked-between-clusters', h.workflowId);
    },
  },
  {
    // ...and the approval to roll out to region-b.
    writes: ['deployWorkflow--parked-at-cluster-gate'],
    fake: { plan: clustersPlan(0) },
    async run(c) {
      const h = await c.start('deployWorkflow', 'rec-deploy-cluster-gate', { version: '1.0.1', strategy: 'rolling' });
      await until(h, 'the approval between clusters', isPhase('awaiting-approval'));
      await c.save('deployWorkflow--parked-at-cluster-gate', h.workflowId);
    },
  },
];

// --- running ---------------------------------------------------------------------------

/** The workflow types the product runs only as a deployment's children. */
const CHILDREN_ONLY = ['canaryWorkflow', 'blueGreenWorkflow'];

function args(argv: string[]): { out: string; suffix: string; only?: string[]; list: boolean } {
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    out: path.resolve(value('--out') ?? HISTORIES_DIR),
    suffix: value('--suffix') ?? '',
    only: value('--only')?.split(','),
    list: argv.includes('--list'),
  };
}

async function main(): Promise<void> {
  const opts = args(process.argv.slice(2));
  const chosen = SCENARIOS.filter((s) => !opts.only || s.writes.some((w) => opts.only!.some((o) => w.includes(o))));
  if (opts.list) {
    for (const s of chosen) for (const w of s.writes) console.log(`${w}${opts.suffix}.json`);
    return;
  }
  mkdirSync(opts.out, { recursive: true });
  const env = await timeSkippingEnv();
  try {
    // Registered as docs/operations.md asks of a real server: production histories hold their upserts.
    const keyword = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
    await env.connection.operatorService.addSearchAttributes({
      namespace: env.namespace ?? 'default',
      searchAttributes: Object.fromEntries(SEARCH_ATTRIBUTE_NAMES.map((name) => [name, keyword])),
    });
    const bundle = await workflowBundle();
    // This checkout's tests start children under testParentWorkflow; older ones started them on their own.
    const withParent = bundle.code.includes('testParentWorkflow');
    for (const scenario of chosen) {
      const fake = fakeActivities(scenario.fake);
      const plan = scenario.fake.plan!;
      // Looked up at each call, so a scenario may replace one fake while its workflow runs.
      const activities = Object.fromEntries(
        Object.keys(fake.activities).map((name) => [
          name,
          (...a: unknown[]) => (fake.activities as unknown as Record<string, (...x: unknown[]) => unknown>)[name](...a),
        ]),
      );
      const taskQueue = uniqueQueue('record');
      const worker = await Worker.create({
        connection: env.nativeConnection,
        taskQueue,
        workflowBundle: bundle,
        activities,
      });
      const started: Handle[] = [];
      const ctx: Ctx = {
        env,
        fake,
        plan,
        async start(type, workflowId, arg) {
          if (!withParent || !CHILDREN_ONLY.includes(type)) {
            const h = await env.client.workflow.start(type, { taskQueue, workflowId, args: [arg] });
            started.push(h);
            return h;
          }
          const parent = await env.client.workflow.start('testParentWorkflow', {
            taskQueue,
            workflowId: `${workflowId}-parent`,
            args: [{ workflowType: type, workflowId, args: [arg] }],
          });
          const h = env.client.workflow.getHandle(workflowId);
          started.push(parent, h);
          // The child exists once the parent's first workflow task has run.
          for (let i = 0; ; i++) {
            try {
              await h.describe();
              return h;
            } catch (err) {
              if (i > 500) throw err;
              await realSleep(20);
            }
          }
        },
        handle(workflowId) {
          const h = env.client.workflow.getHandle(workflowId);
          started.push(h);
          return h;
        },
        async save(name, workflowId) {
          const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
          const events = (JSON.parse(historyToJSON(history)) as { events: unknown[] }).events;
          const file = path.join(opts.out, `${name}${opts.suffix}.json`);
          // The workflow id goes beside the events: replay needs it, and the history does not hold it.
          writeFileSync(file, JSON.stringify({ workflowId, events }, null, 1));
          console.log(`${path.relative(process.cwd(), file)}: ${events.length} events`);
        },
      };
      const began = Date.now();
      await worker.runUntil(async () => {
        try {
          await scenario.run(ctx);
        } finally {
          // Nothing the scenario started or looked at stays running on the server, the environment's lock
          // included (its parent's close policy ends it too, but not before the next scenario may need it).
          started.push(env.client.workflow.getHandle(`deploy-lock-${plan.environment}`));
          for (const h of started) await h.terminate('recorded').catch(() => undefined);
        }
      });
      console.log(`  (${scenario.writes[0]} and what follows it: ${Math.round((Date.now() - began) / 1000)} s)`);
    }
  } finally {
    await env.teardown();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
