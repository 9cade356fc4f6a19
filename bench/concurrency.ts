/**
 * Concurrency: N canary workflows soaking at once on one worker process,
 * each started as the product starts it: the child of a parent workflow
 * (the tests' testParentWorkflow, a parent that only waits for its child;
 * a canary refuses to run without one).
 * For each N (a fresh dev server and a fresh worker process each time):
 * the worker's RSS once all N soak and its peak, the time from the first
 * start request until every canary is soaking at its first step, and the
 * latency from a `promote` signal (sent by the benchmark) to the start of
 * the next activity (setCanaryWeight to the second step) in the worker.
 *
 * Signals go to a random sample of the soaking workflows at a steady rate,
 * as people and CI would send them, not as one burst. The soaks are an hour
 * long with the example config's 1-minute analysis, so analysis activities
 * run in the background while the benchmark measures, as in production.
 */
import { promoteSignal } from '../src/workflows/messages';
import type { CanaryInput } from '../src/workflows/canary';
import { parentIdOf } from '../test/helpers/child';
import { testPlan } from '../test/helpers/plan';
import { devServerEnv, uniqueQueue, WORKFLOWS_PATH } from '../test/helpers/temporal';
import {
  bundleToFile,
  forkChild,
  inPool,
  loadAverage,
  nowMs,
  procStatus,
  runId,
  RssSampler,
  sleep,
  type BenchOptions,
} from './common';
import type { ConcurrencyWorkerIn, ConcurrencyWorkerOut } from './concurrency-types';
import { mib, ms, percentile, ratio, type BenchReport, type Target } from './report';

const SIZES = {
  small: { counts: [20], signals: 20, signalGapMs: 50 },
  full: { counts: [100, 500, 1000], signals: 200, signalGapMs: 50 },
};
const START_CONCURRENCY = 32;

function shuffle<T>(xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

interface Result {
  n: number;
  idleRss: number;
  soakRss: number;
  peakRss: number;
  startAllMs: number;
  startCallsMs: number;
  latencies: number[];
  missing: number;
  maxCachedWorkflows: number;
}

export async function concurrencyBench(opts: BenchOptions, log: (s: string) => void): Promise<BenchReport> {
  const startedAt = new Date();
  const loadStart = loadAverage();
  const size = SIZES[opts.size];
  const run = runId();
  const base = testPlan({ version: '1.0.1' });
  const plan = {
    ...base,
    environment: `bench-${run}`,
    searchAttributes: false,
    canary: { ...base.canary, soakMs: 3_600_000, approval: 'none' as const },
  };
  // The product's workflows and the tests' parent (test/helpers/test-workflows.ts).
  const bundle = await bundleToFile(WORKFLOWS_PATH);
  const results: Result[] = [];
  try {
    for (const n of size.counts) {
      const env = await devServerEnv();
      const taskQueue = uniqueQueue('bench-concurrency');
      const child = await forkChild<ConcurrencyWorkerIn, ConcurrencyWorkerOut>('concurrency-worker.ts', {
        ...process.env,
        TEMPORAL_ADDRESS: env.address,
        BENCH_TASK_QUEUE: taskQueue,
        BENCH_BUNDLE: bundle.codePath,
      });
      const soaking = new Map<string, number>();
      const weight2 = new Map<string, number>();
      const second = plan.canary.steps[1];
      const first = plan.canary.steps[0];
      child.on((m) => {
        if (m.type !== 'events') return;
        for (const e of m.events) {
          if (e.what === 'soaking' && e.weight === first && !soaking.has(e.workflowId)) soaking.set(e.workflowId, e.t);
          if (e.what === 'weight' && e.weight === second && !weight2.has(e.workflowId)) weight2.set(e.workflowId, e.t);
        }
      });
      try {
        const ready = await child.next((m): m is ConcurrencyWorkerOut => m.type !== 'events');
        if (ready.type !== 'ready')
          throw new Error(`concurrency worker: ${ready.type === 'failed' ? ready.message : ready.type}`);
        const sampler = new RssSampler(child.pid, 200).start();
        const ids = Array.from({ length: n }, (_, i) => `bench-conc-${run}-${n}-${i}`);

        // Start all N, each under its parent (one start request; the parent starts the canary).
        const t0 = nowMs();
        await inPool(ids, START_CONCURRENCY, async (workflowId) => {
          const input: CanaryInput = { version: '1.0.1', plan: { ...plan, workflowId }, searchAttributes: false };
          await env.client.workflow.start('testParentWorkflow', {
            taskQueue,
            workflowId: parentIdOf(workflowId),
            args: [{ workflowType: 'canaryWorkflow', workflowId, args: [input] }],
          });
        });
        const startCallsMs = nowMs() - t0;
        const deadline = Date.now() + 300_000 + n * 200;
        while (soaking.size < n) {
          if (Date.now() > deadline)
            throw new Error(`only ${soaking.size} of ${n} canaries soaking after ${ms(Date.now() - t0)}`);
          await sleep(50);
        }
        const startAllMs = Math.max(...soaking.values()) - t0;
        await sleep(2000); // let the last workflow tasks (timers set) finish before reading the steady RSS
        const soakRss = procStatus(child.pid, 'VmRSS');
        log(
          `N=${n}: all soaking after ${ms(startAllMs)} (start calls ${ms(startCallsMs)}); worker RSS ${mib(soakRss)}`,
        );

        // Signals at a steady rate to a random sample; latency to the next activity's start in the worker.
        const sample = shuffle(ids).slice(0, Math.min(size.signals, n));
        const sentAt = new Map<string, number>();
        const s0 = nowMs();
        await Promise.all(
          sample.map(async (workflowId, k) => {
            await sleep(Math.max(0, s0 + k * size.signalGapMs - nowMs()));
            sentAt.set(workflowId, nowMs());
            await env.client.workflow.getHandle(workflowId).signal(promoteSignal, { by: 'bench' });
          }),
        );
        const waitUntil = Date.now() + 60_000;
        while (sample.some((id) => !weight2.has(id)) && Date.now() < waitUntil) await sleep(50);
        const latencies = sample.filter((id) => weight2.has(id)).map((id) => weight2.get(id)! - sentAt.get(id)!);
        const missing = sample.length - latencies.length;
        sampler.stop();
        const hwm = procStatus(child.pid, 'VmHWM');
        const peakRss = Math.max(sampler.peak, Number.isFinite(hwm) ? hwm : 0);
        results.push({
          n,
          idleRss: ready.rss,
          soakRss,
          peakRss,
          startAllMs,
          startCallsMs,
          latencies,
          missing,
          maxCachedWorkflows: ready.maxCachedWorkflows,
        });
        log(
          `N=${n}: signal -> next activity p50 ${ms(percentile(latencies, 50))}, p99 ${ms(percentile(latencies, 99))}${missing ? `, ${missing} never arrived` : ''}; peak RSS ${mib(peakRss)}`,
        );
      } finally {
        await child.stop({ type: 'stop' });
        await env.teardown().catch(() => undefined);
      }
    }
  } finally {
    bundle.remove();
  }

  const largest = results[results.length - 1];
  const smallest = results[0];
  const p99 = (r: Result) => (r.missing ? Infinity : percentile(r.latencies, 99));
  const at = `N=${largest.n}${largest.n < 1000 ? ' (the target is for 1000)' : ''}`;
  const perWorkflow = results.length > 1 ? (largest.soakRss - smallest.soakRss) / (largest.n - smallest.n) : NaN;
  const memoryWhy = `an idle worker holds ${mib(largest.idleRss)}${Number.isFinite(perWorkflow) ? `, each soaking workflow adds about ${(perWorkflow / 1024).toFixed(0)} KiB` : ''}`;
  const targets: Target[] = [
    {
      name: `${at}: worker RSS with all soaking`,
      measured: mib(largest.soakRss),
      wanted: '< 512 MiB',
      pass: largest.soakRss < 512 * 1024 * 1024,
      ...(largest.soakRss >= 512 * 1024 * 1024 ? { why: memoryWhy } : {}),
    },
    {
      name: `${at}: worker peak RSS (starting them included)`,
      measured: mib(largest.peakRss),
      wanted: '< 512 MiB',
      pass: largest.peakRss < 512 * 1024 * 1024,
      ...(largest.peakRss >= 512 * 1024 * 1024
        ? {
            why: `${memoryWhy}; the peak is reached while they start, ${mib(largest.peakRss - largest.soakRss)} above the steady state`,
          }
        : {}),
    },
    {
      name: `${at}: signal -> next activity p99`,
      measured: Number.isFinite(p99(largest)) ? ms(p99(largest)) : `${largest.missing} signals never reached it`,
      wanted: '< 1 s',
      pass: p99(largest) < 1000,
    },
  ];
  return {
    name: 'concurrency',
    title: 'Concurrency: canaries soaking at once on one worker',
    size: opts.size,
    startedAt,
    durationMs: Date.now() - startedAt.getTime(),
    load: { start: loadStart, end: loadAverage() },
    setup: [
      `N = ${size.counts.join(', ')} canary workflows (steps ${plan.canary.steps.join('/')}, soak 1 h, analysis every ${ms(plan.canary.analysisIntervalMs)}), each the child of a parent workflow that only waits for it (test/helpers/test-workflows.ts; canaries run only as children), the parents started ${START_CONCURRENCY} requests at a time; instant fake activities; one worker process per N running parents and canaries (real Temporal worker, prebuilt bundle of src/workflows and the parent, every adapter module loaded, SDK default options: maxCachedWorkflows ${largest.maxCachedWorkflows}); a fresh dev server per N`,
      `promote signals to ${size.signals} random soaking canaries (all of them when N is smaller), one every ${size.signalGapMs} ms, sent to the canary itself (not through a deployment's forwarding); latency = start of setCanaryWeight(${plan.canary.steps[1]}%) in the worker - signal sent by the client (same clock)`,
      'the dev server, the benchmark (the client) and the worker share the same CPUs',
    ],
    tables: [
      {
        columns: [
          'N',
          'worker RSS idle',
          'RSS all soaking',
          'peak RSS',
          'time to start all',
          'per workflow',
          'signal p50',
          'signal p99',
          'signal max',
        ],
        rows: results.map((r) => [
          r.n,
          mib(r.idleRss),
          mib(r.soakRss),
          mib(r.peakRss),
          ms(r.startAllMs),
          ms(r.startAllMs / r.n),
          ms(percentile(r.latencies, 50)),
          Number.isFinite(p99(r)) ? ms(p99(r)) : `${r.missing} missing`,
          ms(Math.max(...r.latencies)),
        ]),
      },
      {
        title: `Ratios against N=${smallest.n}`,
        columns: ['N', 'N ratio', 'RSS growth ratio (soaking - idle)', 'time to start all ratio', 'signal p99 ratio'],
        rows: results.map((r) => [
          r.n,
          ratio(r.n / smallest.n),
          ratio((r.soakRss - r.idleRss) / Math.max(1, smallest.soakRss - smallest.idleRss)),
          ratio(r.startAllMs / smallest.startAllMs),
          ratio(p99(r) / p99(smallest)),
        ]),
      },
    ],
    targets,
    notes: [
      results.length > 1
        ? `Worker memory per additional soaking workflow, from N=${smallest.n} to N=${largest.n}: ${((largest.soakRss - smallest.soakRss) / (largest.n - smallest.n) / 1024).toFixed(0)} KiB (RSS all soaking); the first workflows also pay for the workflow sandbox itself (${mib(smallest.soakRss - smallest.idleRss)} over idle at N=${smallest.n}).`
        : `RSS all soaking - idle at N=${smallest.n}: ${mib(smallest.soakRss - smallest.idleRss)}, mostly the workflow sandbox that the first workflow loads, not per workflow.`,
      'The worker holds 2N workflows: N canaries and their N parents (a deployment would be the parent in production, and holds more state than this parent).',
      'The time to start all is bounded by the dev server (one process, SQLite in memory) as much as by the worker: each canary takes five workflow tasks and four activities (confirmPlan, startCanary, setCanaryWeight, notify) before its soak, and its parent two workflow tasks.',
    ],
  };
}
