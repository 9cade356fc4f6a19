/**
 * One soak round, shared by the concurrency and scale-out benchmarks: N
 * canaries started as the product starts them (each the child of a parent
 * workflow, the tests' testParentWorkflow, since a canary refuses to run
 * without one) on one task queue served by one or more worker processes
 * (bench/concurrency-worker.ts, instant fake activities). It measures each
 * worker's RSS idle, with all N soaking and at its peak, the time from the
 * first start request until every canary soaks at its first step, and the
 * latency from a `promote` signal to the start of the next activity
 * (setCanaryWeight to the second step) in whichever worker runs it.
 *
 * Signals go to a random sample of the soaking canaries at a steady rate,
 * as people and CI would send them, not as one burst. The soaks are an hour
 * long with the example config's 1-minute analysis, so analysis activities
 * run in the background while the round measures, as in production.
 */
import type { Client } from '@temporalio/client';
import type { DeployPlan } from '../src/domain/plan';
import { promoteSignal } from '../src/workflows/messages';
import type { CanaryInput } from '../src/workflows/canary';
import { parentIdOf } from '../test/helpers/child';
import { testPlan } from '../test/helpers/plan';
import { workerProcessEnv } from '../src/worker-memory';
import { forkChild, inPool, nowMs, procStatus, RssSampler, sleep, type Child } from './common';
import type { ConcurrencyWorkerIn, ConcurrencyWorkerOut } from './concurrency-types';
import { mib, ms, percentile, type Target } from './report';

/** Start requests in flight at once. */
export const START_CONCURRENCY = 32;

/** The canaries' plan: an hour's soak per step, no approval, the example config's analysis. */
export function soakPlan(run: string): DeployPlan {
  const base = testPlan({ version: '1.0.1' });
  return {
    ...base,
    environment: `bench-${run}`,
    searchAttributes: false,
    canary: { ...base.canary, soakMs: 3_600_000, approval: 'none' as const },
  };
}

export interface SoakOptions {
  client: Client;
  /** The frontend the worker processes connect to. */
  address: string;
  namespace?: string;
  taskQueue: string;
  /** The prebuilt bundle of the product's workflows and the tests' parent (bench/common.ts bundleToFile). */
  bundle: string;
  plan: DeployPlan;
  n: number;
  workers: number;
  /**
   * The worker's workflow cache, with the memory settings the project starts a worker with
   * (src/worker-memory.ts); unset: the SDK's default cache and Node's default heap (the "before").
   */
  maxCachedWorkflows?: number;
  /** How many canaries get a promote signal, and the gap between two signals. */
  signals: number;
  signalGapMs: number;
  /** Workflow ids start with it: unique per round. */
  prefix: string;
  /** Terminate what the round started before its workers stop (a shared cluster; a throwaway dev server needs none). */
  terminate: boolean;
  /**
   * When not all N soak by the deadline: return what was measured, marked
   * `incomplete`, instead of failing the round (a size the machine cannot
   * carry is a result of scale-out, not an error).
   */
  allowIncomplete?: boolean;
  log: (s: string) => void;
}

export interface SoakResult {
  n: number;
  workers: number;
  /** Per worker process, in bytes. */
  idleRss: number[];
  soakRss: number[];
  /** The V8 heap in use once all soak (its latest report): what of the RSS is JavaScript objects. */
  soakHeap: number[];
  peakRss: number[];
  startAllMs: number;
  startCallsMs: number;
  latencies: number[];
  /** Signalled canaries whose next activity never started within a minute. */
  missing: number;
  maxCachedWorkflows: number;
  /** Not all N soaked by the round's deadline (allowIncomplete): how many did, and after how long. No signals were sent. */
  incomplete?: { soaking: number; afterMs: number };
}

/** The sum of the workers' figures (RSS of all processes). */
export const total = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);

function shuffle<T>(xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export async function soakRound(o: SoakOptions): Promise<SoakResult> {
  const { n, plan } = o;
  const first = plan.canary.steps[0];
  const second = plan.canary.steps[1];
  const soaking = new Map<string, number>();
  const weight2 = new Map<string, number>();
  const children: Child<ConcurrencyWorkerIn, ConcurrencyWorkerOut>[] = [];
  const heapUsed: number[] = [];
  const ids = Array.from({ length: n }, (_, i) => `${o.prefix}-${i}`);
  let started = 0;
  try {
    for (let w = 0; w < o.workers; w++) {
      const base = o.maxCachedWorkflows === undefined ? process.env : workerProcessEnv(process.env);
      const child = await forkChild<ConcurrencyWorkerIn, ConcurrencyWorkerOut>('concurrency-worker.ts', {
        ...base,
        TEMPORAL_ADDRESS: o.address,
        TEMPORAL_NAMESPACE: o.namespace ?? 'default',
        BENCH_TASK_QUEUE: o.taskQueue,
        BENCH_BUNDLE: o.bundle,
        BENCH_MAX_CACHED_WORKFLOWS: o.maxCachedWorkflows === undefined ? '' : String(o.maxCachedWorkflows),
      });
      const index = children.length;
      child.on((m) => {
        if (m.type === 'memory') heapUsed[index] = m.heapUsed;
        if (m.type !== 'events') return;
        for (const e of m.events) {
          if (e.what === 'soaking' && e.weight === first && !soaking.has(e.workflowId)) soaking.set(e.workflowId, e.t);
          if (e.what === 'weight' && e.weight === second && !weight2.has(e.workflowId)) weight2.set(e.workflowId, e.t);
        }
      });
      children.push(child);
    }
    const ready = await Promise.all(
      children.map(async (c) => {
        const m = await c.next((x): x is ConcurrencyWorkerOut => x.type !== 'events' && x.type !== 'memory');
        if (m.type !== 'ready') throw new Error(`concurrency worker: ${m.type === 'failed' ? m.message : m.type}`);
        return m;
      }),
    );
    const samplers = children.map((c) => new RssSampler(c.pid, 200).start());
    const label = `N=${n}, ${o.workers} worker${o.workers > 1 ? 's' : ''}`;

    // Start all N, each under its parent (one start request; the parent starts the canary).
    const t0 = nowMs();
    await inPool(ids, START_CONCURRENCY, async (workflowId) => {
      const input: CanaryInput = { version: '1.0.1', plan: { ...plan, workflowId }, searchAttributes: false };
      await o.client.workflow.start('testParentWorkflow', {
        taskQueue: o.taskQueue,
        workflowId: parentIdOf(workflowId),
        args: [{ workflowType: 'canaryWorkflow', workflowId, args: [input] }],
      });
      started++;
    });
    const startCallsMs = nowMs() - t0;
    /** Stops the samplers: each worker's peak RSS, the sampled one or the kernel's high-water mark. */
    const peaks = () =>
      children.map((c, i) => {
        samplers[i].stop();
        const hwm = procStatus(c.pid, 'VmHWM');
        return Math.max(samplers[i].peak, Number.isFinite(hwm) ? hwm : 0);
      });
    const measured = {
      n,
      workers: o.workers,
      idleRss: ready.map((r) => r.rss),
      startCallsMs,
      maxCachedWorkflows: ready[0].maxCachedWorkflows,
    };
    const deadline = Date.now() + 300_000 + n * 200;
    while (soaking.size < n && Date.now() <= deadline) await sleep(50);
    if (soaking.size < n) {
      const incomplete = { soaking: soaking.size, afterMs: nowMs() - t0 };
      const message = `${label}: only ${incomplete.soaking} of ${n} canaries soaking after ${ms(incomplete.afterMs)}`;
      if (!o.allowIncomplete) throw new Error(message);
      o.log(message);
      return {
        ...measured,
        soakRss: children.map((c) => procStatus(c.pid, 'VmRSS')),
        soakHeap: children.map((_, i) => heapUsed[i] ?? NaN),
        peakRss: peaks(),
        startAllMs: NaN,
        latencies: [],
        missing: 0,
        incomplete,
      };
    }
    const startAllMs = Math.max(...soaking.values()) - t0;
    await sleep(2000); // let the last workflow tasks (timers set) finish before reading the steady RSS
    const soakRss = children.map((c) => procStatus(c.pid, 'VmRSS'));
    const soakHeap = children.map((_, i) => heapUsed[i] ?? NaN);
    o.log(
      `${label}: all soaking after ${ms(startAllMs)} (start calls ${ms(startCallsMs)}); worker RSS ${soakRss.map(mib).join(' + ')}`,
    );

    // Signals at a steady rate to a random sample; latency to the next activity's start in a worker.
    const sample = shuffle(ids).slice(0, Math.min(o.signals, n));
    const sentAt = new Map<string, number>();
    const s0 = nowMs();
    await Promise.all(
      sample.map(async (workflowId, k) => {
        await sleep(Math.max(0, s0 + k * o.signalGapMs - nowMs()));
        sentAt.set(workflowId, nowMs());
        await o.client.workflow.getHandle(workflowId).signal(promoteSignal, { by: 'bench' });
      }),
    );
    const waitUntil = Date.now() + 60_000;
    while (sample.some((id) => !weight2.has(id)) && Date.now() < waitUntil) await sleep(50);
    const latencies = sample.filter((id) => weight2.has(id)).map((id) => weight2.get(id)! - sentAt.get(id)!);
    const missing = sample.length - latencies.length;
    const peakRss = peaks();
    o.log(
      `${label}: signal -> next activity p50 ${ms(percentile(latencies, 50))}, p99 ${ms(percentile(latencies, 99))}${missing ? `, ${missing} never arrived` : ''}; peak RSS ${peakRss.map(mib).join(' + ')}`,
    );
    return { ...measured, soakRss, soakHeap, peakRss, startAllMs, latencies, missing };
  } finally {
    // The workers first (nothing is left mid-task to complete), then what the round started; a parent's
    // termination terminates its canary (the default parent close policy).
    await Promise.all(children.map((c) => c.stop({ type: 'stop' })));
    if (o.terminate)
      await inPool(ids.slice(0, started + START_CONCURRENCY), START_CONCURRENCY, async (workflowId) => {
        await o.client.workflow
          .getHandle(parentIdOf(workflowId))
          .terminate('benchmark round over')
          .catch(() => undefined);
      });
  }
}

/** The signal latency's p99; infinite when a signal never reached its activity. */
export const p99Of = (r: Pick<SoakResult, 'latencies' | 'missing'>): number =>
  r.missing ? Infinity : percentile(r.latencies, 99);

/** The issue's latency target, judged on one round. */
export function signalTarget(label: string, r: Pick<SoakResult, 'latencies' | 'missing'>): Target {
  const p99 = p99Of(r);
  return {
    name: `${label}: signal -> next activity p99`,
    measured: Number.isFinite(p99) ? ms(p99) : `${r.missing} signals never reached it`,
    wanted: '< 1 s',
    pass: p99 < 1000,
  };
}
