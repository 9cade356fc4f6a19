/**
 * Scale out: two worker processes on one task queue share the canaries'
 * activities, and when one is killed (SIGKILL) in the middle of an activity
 * the other takes that activity over once its heartbeat timeout has passed,
 * and finishes every workflow. On the sandbox's Temporal cluster when
 * TEMPORAL_ADDRESS is set, else on the dev server. Who ran an activity is read
 * from the workflow's history (ActivityTaskStarted.identity), as a person
 * would in the UI; the workers' own reports give the time it took to move.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { canaryWorkflow } from '../../src/workflows/canary';
import { parentIdOf, startAsChild } from '../helpers/child';
import { ipcChild, type Child } from '../helpers/ipc-child';
import { testPlan } from '../helpers/plan';
import type { AttemptEvent, ScaleOutWorkerIn, ScaleOutWorkerOut } from '../helpers/scale-out-worker';
import { devServerEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { REPO_ROOT } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

const EventType = temporal.api.enums.v1.EventType;
const now = (): number => performance.timeOrigin + performance.now();
const msOf = (d?: { seconds?: unknown; nanos?: number | null } | null): number =>
  Number(d?.seconds ?? 0) * 1000 + Math.round((d?.nanos ?? 0) / 1e6);

type Canary = WorkflowHandle<typeof canaryWorkflow>;
interface Seen extends AttemptEvent {
  worker: number;
}

test('two worker processes share the work, and a killed one’s activity moves to the other within its heartbeat timeout', async () => {
  const taskQueue = uniqueQueue('scale-out');
  const plan = testPlan({ version: '1.0.1', canary: { approval: 'none', soak: '1s', analysisInterval: '1s' } });
  const victim = `canary-${taskQueue}-victim`;
  const dir = mkdtempSync(path.join(tmpdir(), 'scale-out-'));
  const bundle = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundle, (await workflowBundle()).code);
  const env = await devServerEnv();

  const seen: Seen[] = [];
  const workers: Child<ScaleOutWorkerIn, ScaleOutWorkerOut>[] = [];
  const handles: Canary[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const child = ipcChild<ScaleOutWorkerIn, ScaleOutWorkerOut>(
        fork(path.join(REPO_ROOT, 'test/helpers/scale-out-worker.ts'), [], {
          cwd: REPO_ROOT,
          execArgv: ['--import', 'tsx'],
          env: {
            ...process.env,
            TEMPORAL_ADDRESS: env.address,
            SCALE_OUT_TASK_QUEUE: taskQueue,
            SCALE_OUT_BUNDLE: bundle,
            SCALE_OUT_PLAN: JSON.stringify(plan),
            SCALE_OUT_HOLD: `startCanary:${victim}`,
          },
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        }),
        `scale-out worker ${i}`,
      );
      child.on((m) => m.type === 'attempt' && seen.push({ ...m, worker: i }));
      workers.push(child);
    }
    const identities = await Promise.all(
      workers.map(async (w) => {
        const ready = await w.next((m): m is ScaleOutWorkerOut => m.type !== 'attempt', 60_000);
        if (ready.type !== 'ready') throw new Error(`worker: ${ready.type === 'failed' ? ready.message : ready.type}`);
        return ready.identity;
      }),
    );
    expect(new Set(identities).size).toBe(2);

    const start = (workflowId: string) =>
      startAsChild(env.client, canaryWorkflow, {
        taskQueue,
        workflowId,
        args: [{ version: '1.0.1', plan: { ...plan, workflowId } }],
      });
    /** Whether process `i` has completed activities of two workflows or more. */
    const worked = (i: number) =>
      new Set(seen.filter((e) => e.worker === i && e.phase === 'completed').map((e) => e.workflowId)).size >= 2;

    // Canaries in batches until both processes have run activities of several (a batch almost always suffices).
    for (let batch = 0; batch < 4 && !(worked(0) && worked(1)); batch++) {
      const ids = Array.from({ length: 4 }, (_, k) => `canary-${taskQueue}-${batch}-${k}`);
      handles.push(...(await Promise.all(ids.map(start))));
      await waitFor(
        async () =>
          (worked(0) && worked(1)) ||
          ids.every((id) => seen.some((e) => e.workflowId === id && e.activity === 'startCanary')),
        60_000,
      );
    }

    // The victim's startCanary is held by whichever process took it; more canaries are in flight beside it.
    const inFlight = Array.from({ length: 3 }, (_, k) => `canary-${taskQueue}-late-${k}`);
    handles.push(...(await Promise.all([victim, ...inFlight].map(start))));
    const held = await waitFor(async () => seen.find((e) => e.phase === 'held'), 60_000);
    const dead = held.worker;
    const survivor = 1 - dead;
    // The held attempt is alive as long as its process is: the server has recorded a keep-alive heartbeat of it.
    await waitFor(async () => {
      const { raw } = await env.client.workflow.getHandle(victim).describe();
      return raw.pendingActivities?.some((a) => a.activityType?.name === 'startCanary' && a.lastHeartbeatTime);
    }, 30_000);
    const killedAt = now();
    process.kill(workers[dead].pid, 'SIGKILL');
    await workers[dead].exited;

    const moved = await waitFor(
      async () =>
        seen.find(
          (e) => e.workflowId === victim && e.activity === 'startCanary' && e.phase === 'started' && e.attempt > 1,
        ),
      120_000,
    );
    const results = await Promise.all(handles.map((h) => h.result()));
    expect(results.map((r) => r.outcome)).toEqual(handles.map(() => 'promoted'));

    // Who ran what, from the histories.
    const ranBy = new Map<string, Set<string>>();
    for (const h of handles) {
      const { events } = await h.fetchHistory();
      ranBy.set(
        h.workflowId,
        new Set(
          (events ?? [])
            .filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
            .map((e) => e.activityTaskStartedEventAttributes?.identity ?? ''),
        ),
      );
    }
    const workflowsOn = (identity: string) => [...ranBy.values()].filter((s) => s.has(identity)).length;
    expect(workflowsOn(identities[0])).toBeGreaterThanOrEqual(2);
    expect(workflowsOn(identities[1])).toBeGreaterThanOrEqual(2);

    const { events } = await handles.find((h) => h.workflowId === victim)!.fetchHistory();
    const scheduled = (events ?? []).find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'startCanary',
    )!;
    const heartbeatTimeoutMs = msOf(scheduled.activityTaskScheduledEventAttributes?.heartbeatTimeout);
    const started = (events ?? []).find(
      (e) =>
        e.activityTaskStartedEventAttributes &&
        Number(e.activityTaskStartedEventAttributes.scheduledEventId) === Number(scheduled.eventId),
    )!.activityTaskStartedEventAttributes!;
    const completed = (events ?? []).find(
      (e) =>
        e.activityTaskCompletedEventAttributes &&
        Number(e.activityTaskCompletedEventAttributes.scheduledEventId) === Number(scheduled.eventId),
    );
    expect(started.identity).toBe(identities[survivor]);
    expect(started.attempt).toBeGreaterThan(1);
    expect(completed).toBeDefined();
    expect(
      seen.some(
        (e) =>
          e.workflowId === victim && e.activity === 'startCanary' && e.phase === 'completed' && e.worker === survivor,
      ),
    ).toBe(true);

    const moveMs = moved.t - killedAt;
    console.log(
      [
        `scale-out on ${process.env.TEMPORAL_ADDRESS ? `the cluster at ${env.address}` : 'the dev server'}: ${handles.length} canaries, activities ran by`,
        ...identities.map(
          (id, i) =>
            `  ${id}${i === dead ? ' (killed)' : ''}: ${workflowsOn(id)} workflows, ${seen.filter((e) => e.worker === i && e.phase === 'completed').length} activity attempts`,
        ),
        `startCanary of ${victim} moved from ${identities[dead]} to ${identities[survivor]} (attempt ${started.attempt}) ${(moveMs / 1000).toFixed(1)} s after the kill; heartbeat timeout ${heartbeatTimeoutMs / 1000} s`,
      ].join('\n'),
    );
    // Generous: the heartbeat timeout counts from the last heartbeat before the kill, then the retry's backoff and a poll.
    expect(heartbeatTimeoutMs).toBeGreaterThan(0);
    expect(moveMs).toBeLessThan(3 * heartbeatTimeoutMs);
  } finally {
    for (const h of handles) {
      await env.client.workflow
        .getHandle(parentIdOf(h.workflowId))
        .terminate('scale-out test cleanup')
        .catch(() => undefined);
    }
    await Promise.all(workers.map((w) => w.stop({ type: 'stop' })));
    rmSync(dir, { recursive: true, force: true });
    await env.teardown();
  }
}, 240_000);
