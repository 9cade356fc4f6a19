/**
 * Concurrency: N canary workflows soaking at once on one worker process
 * (bench/soak.ts runs each round), a fresh dev server and a fresh worker
 * process for each N: the worker's RSS once all N soak and its peak, the
 * time until every canary soaks at its first step, and the latency from a
 * `promote` signal to the start of the next activity in the worker.
 */
import { MAX_CACHED_WORKFLOWS } from '../src/domain/config';
import { devServerEnv, uniqueQueue, WORKFLOWS_PATH } from '../test/helpers/temporal';
import { bundleToFile, loadAverage, runId, type BenchOptions } from './common';
import { mib, ms, percentile, ratio, runInfo, type BenchReport, type Target } from './report';
import { p99Of, signalTarget, soakPlan, soakRound, START_CONCURRENCY, type SoakResult } from './soak';

const SIZES = {
  small: { counts: [20], signals: 20, signalGapMs: 50 },
  full: { counts: [100, 500, 1000], signals: 200, signalGapMs: 50 },
};

/** One worker's round: its figures are the first of each list. */
type Result = Omit<SoakResult, 'idleRss' | 'soakRss' | 'peakRss'> & {
  /** The worker's workflow cache: the product's default, or the SDK's (the "before", at the largest N). */
  cache: string;
  idleRss: number;
  soakRss: number;
  peakRss: number;
};

const oneWorker = (r: SoakResult, cache: string): Result => ({
  ...r,
  cache,
  idleRss: r.idleRss[0],
  soakRss: r.soakRss[0],
  peakRss: r.peakRss[0],
});

export async function concurrencyBench(opts: BenchOptions, log: (s: string) => void): Promise<BenchReport> {
  const startedAt = new Date();
  const loadStart = loadAverage();
  const size = SIZES[opts.size];
  const run = runId();
  const plan = soakPlan(run);
  // The product's workflows and the tests' parent (test/helpers/test-workflows.ts).
  const bundle = await bundleToFile(WORKFLOWS_PATH);
  const results: Result[] = [];
  try {
    // Every N with the product's cache; the largest N once more with the SDK's default, side by side.
    const rounds: { n: number; cache?: number }[] = [
      ...size.counts.map((n) => ({ n, cache: MAX_CACHED_WORKFLOWS })),
      { n: size.counts[size.counts.length - 1], cache: undefined },
    ];
    for (const { n, cache } of rounds) {
      const env = await devServerEnv();
      try {
        const round = await soakRound({
          client: env.client,
          address: env.address,
          taskQueue: uniqueQueue('bench-concurrency'),
          bundle: bundle.codePath,
          plan,
          n,
          workers: 1,
          maxCachedWorkflows: cache,
          signals: size.signals,
          signalGapMs: size.signalGapMs,
          prefix: `bench-conc-${run}-${n}-${cache ?? 'sdk'}`,
          // A throwaway dev server needs no clean-up; a server given by TEMPORAL_ADDRESS does.
          terminate: Boolean(process.env.TEMPORAL_ADDRESS),
          log,
        });
        results.push(
          oneWorker(round, cache === undefined ? `SDK default (${round.maxCachedWorkflows})` : `${cache} (shipped)`),
        );
      } finally {
        await env.teardown().catch(() => undefined);
      }
    }
  } finally {
    bundle.remove();
  }

  const shipped = results.filter((r) => r.cache.endsWith('(shipped)'));
  const sdkDefault = results[results.length - 1];
  const largest = shipped[shipped.length - 1];
  const smallest = shipped[0];
  const at = `N=${largest.n}${largest.n < 1000 ? ' (the target is for 1000)' : ''}`;
  const perWorkflow = shipped.length > 1 ? (largest.soakRss - smallest.soakRss) / (largest.n - smallest.n) : NaN;
  const memoryWhy = `an idle worker holds ${mib(largest.idleRss)}${Number.isFinite(perWorkflow) ? `, each soaking canary adds about ${(perWorkflow / 1024).toFixed(0)} KiB with a cache of ${MAX_CACHED_WORKFLOWS}` : ''}`;
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
    signalTarget(at, largest),
  ];
  return {
    name: 'concurrency',
    title: 'Concurrency: canaries soaking at once on one worker',
    ...runInfo(opts.size, startedAt, loadStart),
    setup: [
      `N = ${size.counts.join(', ')} canary workflows (steps ${plan.canary.steps.join('/')}, soak 1 h, analysis every ${ms(plan.canary.analysisIntervalMs)}), each the child of a parent workflow that only waits for it (test/helpers/test-workflows.ts; canaries run only as children), the parents started ${START_CONCURRENCY} requests at a time; instant fake activities; one worker process per N running parents and canaries (real Temporal worker, prebuilt bundle of src/workflows and the parent, every adapter module loaded, the project's worker memory settings (src/worker-memory.ts: heap flags, two malloc arenas) and workflow cache temporal.maxCachedWorkflows ${MAX_CACHED_WORKFLOWS}, and at N=${largest.n} once more with the SDK's default cache, ${sdkDefault.maxCachedWorkflows}, and Node's default heap); a fresh dev server per round`,
      `promote signals to ${size.signals} random soaking canaries (all of them when N is smaller), one every ${size.signalGapMs} ms, sent to the canary itself (not through a deployment's forwarding); latency = start of setCanaryWeight(${plan.canary.steps[1]}%) in the worker - signal sent by the client (same clock)`,
      'the dev server, the benchmark (the client) and the worker share the same CPUs',
    ],
    tables: [
      {
        columns: [
          'N',
          'workflow cache',
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
          r.cache,
          mib(r.idleRss),
          mib(r.soakRss),
          mib(r.peakRss),
          ms(r.startAllMs),
          ms(r.startAllMs / r.n),
          ms(percentile(r.latencies, 50)),
          Number.isFinite(p99Of(r)) ? ms(p99Of(r)) : `${r.missing} missing`,
          ms(Math.max(...r.latencies)),
        ]),
      },
      {
        title: `Ratios against N=${smallest.n}`,
        columns: [
          'N',
          'workflow cache',
          'N ratio',
          'RSS growth ratio (soaking - idle)',
          'time to start all ratio',
          'signal p99 ratio',
        ],
        rows: results.map((r) => [
          r.n,
          r.cache,
          ratio(r.n / smallest.n),
          ratio((r.soakRss - r.idleRss) / Math.max(1, smallest.soakRss - smallest.idleRss)),
          ratio(r.startAllMs / smallest.startAllMs),
          ratio(p99Of(r) / p99Of(smallest)),
        ]),
      },
    ],
    targets,
    notes: [
      `With the SDK's default cache (${sdkDefault.maxCachedWorkflows}) every workflow stays in memory: ${mib(sdkDefault.soakRss)} at N=${sdkDefault.n}, against ${mib(largest.soakRss)} with the shipped ${MAX_CACHED_WORKFLOWS}. A canary evicted from the cache is replayed from its history at its next task (an analysis, a signal): the signal latencies above include those replays.`,
      shipped.length > 1
        ? `Worker memory per additional soaking workflow, from N=${smallest.n} to N=${largest.n}: ${((largest.soakRss - smallest.soakRss) / (largest.n - smallest.n) / 1024).toFixed(0)} KiB (RSS all soaking); the first workflows also pay for the workflow sandbox itself (${mib(smallest.soakRss - smallest.idleRss)} over idle at N=${smallest.n}).`
        : `RSS all soaking - idle at N=${smallest.n}: ${mib(smallest.soakRss - smallest.idleRss)}, mostly the workflow sandbox that the first workflow loads, not per workflow.`,
      'The worker holds 2N workflows: N canaries and their N parents (a deployment would be the parent in production, and holds more state than this parent).',
      'The time to start all is bounded by the dev server (one process, SQLite in memory) as much as by the worker: each canary takes five workflow tasks and four activities (confirmPlan, startCanary, setCanaryWeight, notify) before its soak, and its parent two workflow tasks.',
    ],
  };
}
