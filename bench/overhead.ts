/**
 * Orchestration overhead: the whole deploy workflow (canary strategy, so the
 * environment lock and canary children run too) on the dev server with
 * instant fake activities, against the same activity functions called
 * directly, one after another, in the order the workflow called them.
 *
 * Per step, the overhead is the time between the end of the activity before
 * it (the latest one to have ended, or the workflow's start) and its start:
 * what the orchestration adds (workflow task, scheduling, the poll, result
 * delivery, child workflows started in between). The last gap is from the
 * last activity's end to the result at the client. Soaks are zero so no
 * timer is measured; the timings come from one clock (worker in-process).
 */
import { Worker } from '@temporalio/worker';
import type { Activities } from '../src/activities/contracts';
import type { DeployInput } from '../src/domain/input';
import type { DeployResult } from '../src/workflows/deploy';
import { fakeActivities } from '../test/helpers/fake-activities';
import { testPlan } from '../test/helpers/plan';
import { devServerEnv, uniqueQueue, workflowBundle } from '../test/helpers/temporal';
import { loadAverage, runId, type BenchOptions } from './common';
import { median, ms, percentile, ratio, type BenchReport, type Target } from './report';

const SIZES = { small: { runs: 3, warmup: 1 }, full: { runs: 30, warmup: 3 } };

interface Span {
  name: keyof Activities;
  args: unknown[];
  start: number;
  end: number;
}

/** The fake activities, each wrapped to record when it started and ended. */
function timedActivities(activities: Activities, spans: Span[]): Activities {
  const out = {} as Record<string, unknown>;
  for (const [name, fn] of Object.entries(activities) as [keyof Activities, (...a: unknown[]) => Promise<unknown>][]) {
    out[name] = async (...args: unknown[]) => {
      const start = performance.now();
      try {
        return await fn(...args);
      } finally {
        spans.push({ name, args, start, end: performance.now() });
      }
    };
  }
  return out as unknown as Activities;
}

/**
 * Gap before each activity (from the latest end before its start), plus the
 * gap to the result. `child` marks the gaps with a child workflow in between:
 * the environment lock started after resolvePlan, the canary child started
 * before startCanary and awaited after promoteCanary, the lock released
 * before the result.
 */
function gaps(spans: Span[], t0: number, tEnd: number): { ms: number; child: boolean }[] {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  const out = sorted.map((s) => {
    const before = spans
      .filter((o) => o.end <= s.start)
      .reduce<Span | undefined>((m, o) => (!m || o.end > m.end ? o : m), undefined);
    const child = s.name === 'startCanary' || before?.name === 'resolvePlan' || before?.name === 'promoteCanary';
    return { ms: s.start - (before?.end ?? t0), child };
  });
  out.push({ ms: tEnd - Math.max(...spans.map((s) => s.end)), child: true });
  return out;
}

type HistoryEvent = { eventId?: unknown; eventTime?: { seconds?: unknown; nanos?: number | null } | null } & Record<
  string,
  unknown
>;

/**
 * Where the server's history says the time went: each workflow task from
 * scheduled to started (waiting for the worker to pick it up) and from
 * started to completed (the worker running the workflow code), and each
 * activity from scheduled to completed.
 */
function historyBreakdown(events: HistoryEvent[]): { wftWait: number[]; wftRun: number[]; activity: number[] } {
  const at = new Map<number, number>();
  const out = { wftWait: [] as number[], wftRun: [] as number[], activity: [] as number[] };
  for (const e of events) {
    const t = Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;
    at.set(Number(e.eventId), t);
    const started = e.workflowTaskStartedEventAttributes as { scheduledEventId?: unknown } | undefined;
    const completed = e.workflowTaskCompletedEventAttributes as { startedEventId?: unknown } | undefined;
    const activity = e.activityTaskCompletedEventAttributes as { scheduledEventId?: unknown } | undefined;
    if (started) out.wftWait.push(t - (at.get(Number(started.scheduledEventId)) ?? t));
    if (completed) out.wftRun.push(t - (at.get(Number(completed.startedEventId)) ?? t));
    if (activity) out.activity.push(t - (at.get(Number(activity.scheduledEventId)) ?? t));
  }
  return out;
}

export async function overheadBench(opts: BenchOptions, log: (s: string) => void): Promise<BenchReport> {
  const startedAt = new Date();
  const loadStart = loadAverage();
  const size = SIZES[opts.size];
  const run = runId();
  const env = await devServerEnv();
  const taskQueue = uniqueQueue('bench-overhead');
  const base = testPlan({ version: '1.0.1' });
  const perRun: { wall: number; direct: number; steps: number; gaps: { ms: number; child: boolean }[] }[] = [];
  const history = { wftWait: [] as number[], wftRun: [] as number[], activity: [] as number[] };
  let firstRunGaps: number[] = [];
  let childGaps = 0;
  let current: { spans: Span[]; activities: Activities } = { spans: [], activities: fakeActivities().activities };
  // One worker for every run; each run swaps in fresh fakes (the worker calls through this indirection).
  const indirect = {} as Record<string, unknown>;
  for (const name of Object.keys(current.activities))
    indirect[name] = (...args: unknown[]) =>
      (current.activities as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name](...args);
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: indirect,
  });
  const running = worker.run();
  let steps = 0;
  try {
    for (let i = 0; i < size.warmup + size.runs; i++) {
      const plan = {
        ...base,
        environment: `bench-${run}-${i}`,
        searchAttributes: false,
        canary: { ...base.canary, soakMs: 0 },
      };
      const spans: Span[] = [];
      current = { spans, activities: timedActivities(fakeActivities({ plan }).activities, spans) };
      const t0 = performance.now();
      const result = await env.client.workflow.execute<(input: DeployInput) => Promise<DeployResult>>(
        'deployWorkflow',
        { taskQueue, workflowId: `bench-overhead-${run}-${i}`, args: [{ version: '1.0.1' }] },
      );
      const wall = performance.now() - t0;
      if (result.outcome !== 'succeeded')
        throw new Error(`deploy run ${i}: ${result.outcome} (${result.reason ?? ''})`);

      // The same functions, directly, in the order the workflow started them, with the arguments it gave them.
      const direct = fakeActivities({ plan }).activities as unknown as Record<
        string,
        (...a: unknown[]) => Promise<unknown>
      >;
      const order = [...spans].sort((a, b) => a.start - b.start);
      const d0 = performance.now();
      for (const s of order) await direct[s.name](...s.args);
      const directMs = performance.now() - d0;

      const g = gaps(spans, t0, t0 + wall);
      if (i === 0) firstRunGaps = g.map((x) => x.ms);
      childGaps = g.filter((x) => x.child).length;
      if (i >= size.warmup) {
        const h = historyBreakdown(
          (await env.client.workflow.getHandle(`bench-overhead-${run}-${i}`).fetchHistory()).events as HistoryEvent[],
        );
        history.wftWait.push(...h.wftWait);
        history.wftRun.push(...h.wftRun);
        history.activity.push(...h.activity);
        if (process.env.BENCH_DEBUG) {
          // Every step of every measured run, for looking into a surprising figure.
          const sorted = [...spans].sort((a, b) => a.start - b.start);
          console.log(
            sorted
              .map(
                (s, k) =>
                  `${s.name}@${(s.start - t0).toFixed(1)} gap ${g[k].ms.toFixed(1)}${g[k].child ? ' (child)' : ''}`,
              )
              .join('\n'),
          );
        }
        perRun.push({ wall, direct: directMs, steps: spans.length, gaps: g });
        steps = spans.length;
        log(
          `run ${i - size.warmup + 1}/${size.runs}: ${ms(wall)} for ${spans.length} activities (direct ${ms(directMs)}); gap p50 ${ms(median(g.map((x) => x.ms)))}, max ${ms(Math.max(...g.map((x) => x.ms)))}`,
        );
      }
    }
  } finally {
    worker.shutdown();
    await running.catch(() => undefined);
    await env.teardown().catch(() => undefined);
  }

  const allGaps = perRun.flatMap((r) => r.gaps.map((x) => x.ms));
  const plainGaps = perRun.flatMap((r) => r.gaps.filter((x) => !x.child).map((x) => x.ms));
  const perStepMean = perRun.map((r) => (r.wall - r.direct) / r.steps);
  const p50 = median(allGaps);
  const p95 = percentile(allGaps, 95);
  const targets: Target[] = [
    {
      name: 'added per step, p95',
      measured: ms(p95),
      wanted: '< 25 ms',
      pass: p95 < 25,
      ...(p95 >= 25
        ? {
            why: `every step waits for a workflow task: ${ms(median(history.wftWait))} p50 between scheduled and started on the dev server, ${ms(median(history.wftRun))} running it; steps around a child workflow cost ${ms(
              percentile(
                perRun.flatMap((r) => r.gaps.filter((x) => x.child).map((x) => x.ms)),
                50,
              ),
            )} p50`,
          }
        : {}),
    },
  ];
  return {
    name: 'overhead',
    title: 'Orchestration overhead',
    size: opts.size,
    startedAt,
    durationMs: Date.now() - startedAt.getTime(),
    load: { start: loadStart, end: loadAverage() },
    setup: [
      `${size.runs} measured runs after ${size.warmup} warm-up run(s) of deployWorkflow (canary strategy, steps ${base.canary.steps.join('/')}, soak 0, backup and verification on) with instant fake activities, on the dev server, worker in the same process`,
      `${steps} activity calls per run, plus the environment-lock and canary child workflows`,
    ],
    tables: [
      {
        title: 'Per run',
        columns: ['figure', 'p50', 'p95', 'max'],
        rows: [
          [
            'workflow wall time (start -> result)',
            ms(median(perRun.map((r) => r.wall))),
            ms(
              percentile(
                perRun.map((r) => r.wall),
                95,
              ),
            ),
            ms(Math.max(...perRun.map((r) => r.wall))),
          ],
          [
            'same activities called directly',
            ms(median(perRun.map((r) => r.direct))),
            ms(
              percentile(
                perRun.map((r) => r.direct),
                95,
              ),
            ),
            ms(Math.max(...perRun.map((r) => r.direct))),
          ],
          [
            '(wall - direct) / activity calls',
            ms(median(perStepMean)),
            ms(percentile(perStepMean, 95)),
            ms(Math.max(...perStepMean)),
          ],
          [
            'ratio wall / direct',
            ratio(median(perRun.map((r) => r.wall / r.direct))),
            ratio(
              percentile(
                perRun.map((r) => r.wall / r.direct),
                95,
              ),
            ),
            '',
          ],
        ],
      },
      {
        title: `Added per step (gap before each activity and before the result), over ${allGaps.length} steps`,
        columns: ['runs', 'p50', 'p95', 'p99', 'max'],
        rows: [
          [
            `${size.runs} measured runs, every step`,
            ms(p50),
            ms(p95),
            ms(percentile(allGaps, 99)),
            ms(Math.max(...allGaps)),
          ],
          [
            `the same, without the ${childGaps} steps per run that wait on a child workflow`,
            ms(median(plainGaps)),
            ms(percentile(plainGaps, 95)),
            ms(percentile(plainGaps, 99)),
            ms(Math.max(...plainGaps)),
          ],
          [
            'first run on a fresh worker (warm-up, not in the target)',
            ms(median(firstRunGaps)),
            ms(percentile(firstRunGaps, 95)),
            ms(percentile(firstRunGaps, 99)),
            ms(Math.max(...firstRunGaps)),
          ],
        ],
      },
      {
        title: "Where the time goes, from the deploy workflow's history (server timestamps, measured runs)",
        columns: ['interval', 'count', 'p50', 'p95'],
        rows: [
          [
            'workflow task scheduled -> started (waiting for the worker)',
            history.wftWait.length,
            ms(median(history.wftWait)),
            ms(percentile(history.wftWait, 95)),
          ],
          [
            'workflow task started -> completed (workflow code in the worker)',
            history.wftRun.length,
            ms(median(history.wftRun)),
            ms(percentile(history.wftRun, 95)),
          ],
          [
            'activity scheduled -> completed (dispatch, instant fake, result)',
            history.activity.length,
            ms(median(history.activity)),
            ms(percentile(history.activity, 95)),
          ],
        ],
      },
    ],
    targets,
    notes: [
      'Activities the workflow starts side by side (images and backup; restarts and baseline; the five verification checks) are dispatched together and show gaps of a few milliseconds; the per-step figures count each of them, as the (wall - direct) / calls row does.',
      'Steps with a child workflow in between (the environment lock started after resolvePlan, the canary child started before startCanary and awaited after promoteCanary, the lock released before the result) cost a child start or result on top of a step; they are in the target figure and shown apart above.',
      `The same ${steps} calls made directly take ${ms(median(perRun.map((r) => r.direct)))} in all: the workflow's time is almost all orchestration (durable history: every step is a workflow task, an activity task and their results recorded by the server).`,
    ],
  };
}
