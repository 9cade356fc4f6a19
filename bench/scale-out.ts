/**
 * Scale out: N canaries soaking on the sandbox's Temporal cluster (four
 * services on PostgreSQL, as a team runs it), served by 1, 2 and 4 worker
 * processes on one task queue, side by side in one run. Each round
 * (bench/soak.ts) starts fresh worker processes on a task queue of its own,
 * starts the N canaries, measures every worker's RSS, the time until all N
 * soak and the latency from a `promote` signal to the next activity, then
 * terminates what it started. It needs the cluster: the dev server is one
 * process on SQLite and would measure itself, not the workers.
 */
import { MAX_CACHED_WORKFLOWS } from '../src/domain/config';
import { Client, Connection } from '@temporalio/client';
import { sandboxEnv } from '../test/helpers/sandbox';
import { uniqueQueue, WORKFLOWS_PATH } from '../test/helpers/temporal';
import { bundleToFile, loadAverage, runId, type BenchOptions } from './common';
import { mib, ms, percentile, ratio, runInfo, type BenchReport, type Target } from './report';
import { p99Of, signalTarget, soakPlan, soakRound, START_CONCURRENCY, total, type SoakResult } from './soak';

const SIZES = {
  small: { counts: [20], workers: [1, 2], signals: 20, signalGapMs: 50 },
  full: { counts: [1000, 5000], workers: [1, 2, 4], signals: 200, signalGapMs: 50 },
};

/**
 * Analyses a second the cluster is asked for, at most. Every soaking canary
 * runs one analysis per interval (a timer, a workflow task and an activity):
 * at the example's 60 s, 5000 canaries ask 83 a second, more than the four
 * services and PostgreSQL on these two CPUs complete, so the round would
 * measure the backlog instead of the workers. Past 1000 canaries the interval
 * grows with N and the load stays that of 1000 at 60 s.
 */
const ANALYSES_PER_SECOND = 1000 / 60;

/** The plan's analysis interval at N canaries: the example's, or longer so that N / interval stays at ANALYSES_PER_SECOND. */
export function analysisIntervalAt(n: number, exampleMs: number): number {
  return Math.max(exampleMs, Math.ceil(n / ANALYSES_PER_SECOND) * 1000);
}

/** The per-worker memory target of the concurrency benchmark, which more processes are the way to meet. */
const WORKER_RSS_TARGET = 512 * 1024 * 1024;

/** The cluster's frontend from the sandbox's environment; a one-line error when the sandbox runs none. */
function clusterAddress(): { address: string; namespace: string } {
  let env: Record<string, string> = {};
  try {
    env = sandboxEnv();
  } catch {
    // no sandbox at all: the same answer
  }
  if (!env.TEMPORAL_ADDRESS)
    throw new Error('scale-out needs the sandbox’s Temporal cluster: run `npm run sandbox -- up --temporal cluster`');
  return { address: env.TEMPORAL_ADDRESS, namespace: env.TEMPORAL_NAMESPACE || 'default' };
}

const workersOf = (k: number) => `${k} worker${k > 1 ? 's' : ''}`;
/** Worker memory per soaking canary (its parent included): what N added over the idle processes. */
/** How many canaries soaked when the RSS was read: N, or fewer in a round that did not start all by its deadline. */
const soaked = (r: SoakResult) => r.incomplete?.soaking ?? r.n;
const perCanary = (r: SoakResult) => (total(r.soakRss) - total(r.idleRss)) / soaked(r);
/** The time to start all N, or how many soaked by the round's deadline. */
const startAll = (r: SoakResult) =>
  r.incomplete ? `${r.incomplete.soaking} of ${r.n} after ${ms(r.incomplete.afterMs)}` : ms(r.startAllMs);
/** A signal latency column: none were sent when not all soaked. */
const signalCell = (r: SoakResult, value: () => string) => (r.incomplete ? 'not sent' : value());
const kib = (bytes: number) => (Number.isFinite(bytes) ? `${(bytes / 1024).toFixed(0)} KiB` : 'n/a');

/** Memory per additional soaking canary at each worker count, between the smallest and the largest N. */
function marginal(results: SoakResult[]): string[] {
  const counts = [...new Set(results.map((r) => r.n))];
  if (counts.length < 2) return [];
  const [lo, hi] = [Math.min(...counts), Math.max(...counts)];
  const per = [...new Set(results.map((r) => r.workers))].map((k) => {
    const a = results.find((r) => r.n === lo && r.workers === k)!;
    const b = results.find((r) => r.n === hi && r.workers === k)!;
    return `${workersOf(k)} ${kib((total(b.soakRss) - total(a.soakRss)) / (soaked(b) - soaked(a)))}`;
  });
  return [`Worker memory (RSS total) per additional soaking canary from N=${lo} to N=${hi}: ${per.join(', ')}.`];
}

export async function scaleOutBench(opts: BenchOptions, log: (s: string) => void): Promise<BenchReport> {
  const { address, namespace } = clusterAddress();
  const startedAt = new Date();
  const loadStart = loadAverage();
  const size = SIZES[opts.size];
  const run = runId();
  const base = soakPlan(run);
  const planAt = (n: number) => ({
    ...base,
    canary: { ...base.canary, analysisIntervalMs: analysisIntervalAt(n, base.canary.analysisIntervalMs) },
  });
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  const bundle = await bundleToFile(WORKFLOWS_PATH);
  const results: SoakResult[] = [];
  try {
    for (const n of size.counts)
      for (const workers of size.workers)
        results.push(
          await soakRound({
            client,
            address,
            namespace,
            taskQueue: uniqueQueue(`bench-scale-out-${workers}`),
            bundle: bundle.codePath,
            plan: planAt(n),
            n,
            workers,
            maxCachedWorkflows: MAX_CACHED_WORKFLOWS,
            signals: size.signals,
            signalGapMs: size.signalGapMs,
            allowIncomplete: true,
            prefix: `bench-scale-${run}-${n}-${workers}`,
            terminate: true,
            log,
          }),
        );
  } finally {
    bundle.remove();
    await connection.close();
  }

  const largestN = Math.max(...size.counts);
  const most = Math.max(...size.workers);
  const top = results.find((r) => r.n === largestN && r.workers === most)!;
  const single = results.find((r) => r.n === largestN && r.workers === 1)!;
  const targets: Target[] = [
    {
      name: `N=${largestN}, ${workersOf(most)}: RSS of the largest worker with all soaking`,
      measured: mib(Math.max(...top.soakRss)),
      wanted: '< 512 MiB',
      pass: Math.max(...top.soakRss) < WORKER_RSS_TARGET,
      why: `one worker holds ${mib(single.soakRss[0])} for the same N`,
    },
    top.incomplete
      ? {
          name: `N=${largestN}, ${workersOf(most)}: signal -> next activity p99`,
          measured: `not all soaking: ${startAll(top)}`,
          wanted: '< 1 s',
          pass: false,
        }
      : signalTarget(`N=${largestN}, ${workersOf(most)}`, top),
  ];
  return {
    name: 'scale-out',
    title: 'Scale out: canaries soaking across worker processes on the cluster',
    ...runInfo(opts.size, startedAt, loadStart),
    setup: [
      `the sandbox's Temporal cluster at ${address} (server 1.31 on PostgreSQL: frontend, history, matching and worker services as four processes), namespace ${namespace}`,
      `N = ${size.counts.join(', ')} canary workflows (steps ${base.canary.steps.join('/')}, soak 1 h, analysis every ${size.counts.map((n) => `${ms(planAt(n).canary.analysisIntervalMs)} at N=${n}`).join(', ')}: at most ${ANALYSES_PER_SECOND.toFixed(1)} analyses a second), each the child of a parent workflow that only waits for it, the parents started ${START_CONCURRENCY} requests at a time; instant fake activities`,
      `served by ${size.workers.join(', ')} worker processes on one task queue (a new queue and new processes each round; real Temporal worker, prebuilt bundle, every adapter module loaded, the product's workflow cache: maxCachedWorkflows ${top.maxCachedWorkflows} per process); what a round started is terminated before the next`,
      `promote signals to ${size.signals} random soaking canaries (all of them when N is smaller), one every ${size.signalGapMs} ms; latency = start of setCanaryWeight(${base.canary.steps[1]}%) in whichever worker ran it - signal sent by the client (same clock)`,
      'the cluster, its PostgreSQL, the benchmark (the client) and the workers share the same CPUs',
    ],
    tables: [
      {
        columns: [
          'N',
          'workers',
          'RSS each, all soaking',
          'RSS total',
          'peak total',
          'per canary',
          'time to start all',
          'signal p50',
          'signal p99',
        ],
        rows: results.map((r) => [
          r.n,
          r.workers,
          r.soakRss.map(mib).join(' + '),
          mib(total(r.soakRss)),
          mib(total(r.peakRss)),
          kib(perCanary(r)),
          startAll(r),
          signalCell(r, () => ms(percentile(r.latencies, 50))),
          signalCell(r, () => (Number.isFinite(p99Of(r)) ? ms(p99Of(r)) : `${r.missing} missing`)),
        ]),
      },
      {
        title: 'Ratios against one worker at the same N',
        columns: [
          'N',
          'workers',
          'largest worker RSS ratio',
          'RSS total ratio',
          'time to start all ratio',
          'signal p99 ratio',
        ],
        rows: results.map((r) => {
          const one = results.find((x) => x.n === r.n && x.workers === 1)!;
          return [
            r.n,
            r.workers,
            ratio(Math.max(...r.soakRss) / Math.max(...one.soakRss)),
            ratio(total(r.soakRss) / total(one.soakRss)),
            ratio(r.startAllMs / one.startAllMs),
            // A round whose signals did not all arrive (or were not sent) has no p99 to compare.
            ratio(Number.isFinite(p99Of(r)) && Number.isFinite(p99Of(one)) ? p99Of(r) / p99Of(one) : NaN),
          ];
        }),
      },
    ],
    targets,
    notes: [
      ...(largestN > 1000
        ? [
            `Past N=1000 the analysis interval grows with N: at the example's 60 s, ${largestN} canaries would ask the cluster for ${Math.round(largestN / 60)} analyses a second, more than its four services and PostgreSQL complete on these two CPUs, and the round would measure that backlog, not the workers.`,
          ]
        : []),
      ...marginal(results),
      ...results
        .filter((r) => r.incomplete)
        .map(
          (r) =>
            `N=${r.n}, ${workersOf(r.workers)}: not all canaries soaked by the round's deadline (5 min + 200 ms per canary); its RSS is with ${r.incomplete!.soaking} soaking and the rest still starting, and no signals were sent.`,
        ),
      `An idle worker process holds ${mib(Math.min(...results.flatMap((r) => r.idleRss)))} to ${mib(Math.max(...results.flatMap((r) => r.idleRss)))} before its first workflow; "per canary" is (RSS total all soaking - RSS total idle) / N, a canary and its parent (2 workflows) together.`,
      `Each process caches at most maxCachedWorkflows (${top.maxCachedWorkflows}) workflows: past that, a workflow's next task replays its history instead of finding it in memory, so memory per process stops growing and CPU per task grows.`,
      'The time to start all is bounded by the cluster (four services and PostgreSQL on the same CPUs) as much as by the workers: each canary takes five workflow tasks and four activities before its soak, and its parent two workflow tasks.',
    ],
  };
}
