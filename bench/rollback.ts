/**
 * Rollback latency: the canary workflow on the dev server, started as the
 * product starts it (the child of a parent: the tests' testParentWorkflow),
 * with the real traffic activities (istio provider, admin kubeconfig) against a namespace
 * of its own (bench-rollback-<run>: a stable api-gateway Deployment, its
 * Service and VirtualService, as scripts/sandbox/demo.ts makes them), soaking
 * at 25%. Measured with a watch on the VirtualService (the time its event
 * arrives):
 *   (i)  from the abort signal to the route back at stable 100, beside the
 *        floor: a workflow that does only what an abort must (one signal,
 *        one workflow task, one activity, one patch: bench/workflows/rollback.ts);
 *   (ii) from the first failing analysis measurement to stable 100. The fake
 *        analyzeCanary starts failing at a known moment (the failure's onset,
 *        at a random point of the analysis interval); both the onset and the
 *        moment the failing measurement is returned to the workflow are
 *        recorded.
 * The namespace is deleted at the end; ai-saas is never touched.
 */
import * as k8s from '@kubernetes/client-node';
import { Worker } from '@temporalio/worker';
import type { Activities, AnalysisRequest } from '../src/activities/contracts';
import { loadKubeConfig } from '../src/activities/clients/kube';
import { trafficActivities } from '../src/activities/traffic';
import type { DeployPlan } from '../src/domain/plan';
import type { AnalysisRun } from '../src/domain/status';
import { readRouteWeights, type HttpRouteLike } from '../src/domain/traffic';
import { canaryWorkflow, type CanaryInput } from '../src/workflows/canary';
import { abortSignal, statusQuery } from '../src/workflows/messages';
import { parentIdOf, startAsChild } from '../test/helpers/child';
import { fakeActivities } from '../test/helpers/fake-activities';
import { testPlan } from '../test/helpers/plan';
import { devServerEnv, uniqueQueue } from '../test/helpers/temporal';
import { floorAbortSignal, rollbackFloorWorkflow, type FloorTarget } from './workflows/rollback';
import {
  benchConfig,
  bundleToFile,
  loadAverage,
  nowMs,
  REPO_ROOT,
  runId,
  sandboxVar,
  sleep,
  type BenchOptions,
} from './common';
import * as path from 'node:path';
import { median, ms, percentile, ratio, type BenchReport, type Target } from './report';
import { resultOf } from '../src/workflows/outcome';

const SERVICE = 'api-gateway';
const VS_API = { group: 'networking.istio.io', version: 'v1beta1', plural: 'virtualservices' };

const SIZES = {
  small: { runs: 3, intervalMs: 2000 },
  full: { runs: 20, intervalMs: 5000 },
};

function platformObjects(namespace: string, image: string) {
  const labels = { app: SERVICE };
  const deployment: k8s.V1Deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: SERVICE,
      namespace,
      labels: { ...labels, 'app.kubernetes.io/part-of': 'bench' },
      annotations: { 'deploy-pipelines.dev/version': '1.0.0' },
    },
    spec: {
      replicas: 4,
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 120,
      selector: { matchLabels: labels },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      template: {
        metadata: { labels: { ...labels, track: 'stable' }, annotations: { 'deploy-pipelines.dev/version': '1.0.0' } },
        spec: {
          containers: [
            {
              name: SERVICE,
              image,
              ports: [{ containerPort: 8080, name: 'http' }],
              env: [{ name: 'SERVICE_NAME', value: SERVICE }],
            },
          ],
        },
      },
    },
  };
  const service: k8s.V1Service = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: SERVICE, namespace, labels },
    spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  };
  const virtualService = {
    apiVersion: 'networking.istio.io/v1beta1',
    kind: 'VirtualService',
    metadata: { name: SERVICE, namespace },
    spec: {
      hosts: ['api.bench.example'],
      http: [
        {
          name: 'primary',
          match: [{ uri: { prefix: '/' } }],
          route: [
            { destination: { host: SERVICE, subset: 'stable' }, weight: 100 },
            { destination: { host: SERVICE, subset: 'canary' }, weight: 0 },
          ],
        },
      ],
    },
  };
  return { deployment, service, virtualService };
}

interface Sample {
  /** (i): signal sent -> stable 100; (ii): failure onset -> stable 100. */
  fromTrigger: number;
  /** (ii) only: failing measurement returned by the activity -> stable 100. */
  fromMeasurement?: number;
}

export async function rollbackBench(opts: BenchOptions, log: (s: string) => void): Promise<BenchReport> {
  const startedAt = new Date();
  const loadStart = loadAverage();
  const size = SIZES[opts.size];
  const config = benchConfig();
  const run = runId();
  const namespace = `bench-rollback-${run}`;
  const kc = loadKubeConfig(sandboxVar('KUBECONFIG'));
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const registry = sandboxVar('REGISTRY');
  const objects = platformObjects(namespace, `${registry}/ai-saas-${SERVICE}:1.0.0`);

  const weights = async (): Promise<{ stable: number; canary: number } | undefined> => {
    const vs = (await custom.getNamespacedCustomObject({ ...VS_API, namespace, name: SERVICE })) as {
      spec?: { http?: HttpRouteLike[] };
    };
    const w = readRouteWeights(vs.spec?.http, { host: SERVICE, stableSubset: 'stable', canarySubset: 'canary' });
    return w ? { stable: w.stable, canary: w.canary } : undefined;
  };
  /**
   * Watches the VirtualService and resolves `at` with the time the first event showing stable 100 /
   * canary 0 arrives. Returns once the watch has delivered the current state, so the trigger is only
   * sent while it listens; `at` is not one poll interval and one read late, as polling would be.
   */
  const watchUntilStable = async (timeoutMs = 30_000): Promise<{ at: Promise<number> }> => {
    let listening!: () => void;
    const delivered = new Promise<void>((r) => (listening = r));
    let resolve!: (t: number) => void;
    let reject!: (e: unknown) => void;
    const at = new Promise<number>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const ctl = await new k8s.Watch(kc).watch(
      `/apis/${VS_API.group}/${VS_API.version}/namespaces/${namespace}/${VS_API.plural}`,
      { fieldSelector: `metadata.name=${SERVICE}` },
      (_phase, obj: { spec?: { http?: HttpRouteLike[] } }) => {
        const t = nowMs();
        listening();
        const w = readRouteWeights(obj?.spec?.http, { host: SERVICE, stableSubset: 'stable', canarySubset: 'canary' });
        if (w?.stable === 100 && w.canary === 0) resolve(t);
      },
      (err: unknown) => reject(err ?? new Error('the VirtualService watch ended before stable 100')),
    );
    const timer = setTimeout(
      () => reject(new Error(`the VirtualService did not return to stable 100 within ${timeoutMs} ms`)),
      timeoutMs,
    );
    void at
      .finally(() => {
        clearTimeout(timer);
        ctl.abort();
      })
      .catch(() => undefined);
    await Promise.race([delivered, at]);
    return { at };
  };
  /** The floor's activity: one JSON patch of the two weights, no read. */
  const setWeights = (stable: number, canary: number) =>
    custom.patchNamespacedCustomObject(
      {
        ...VS_API,
        namespace,
        name: SERVICE,
        body: [
          { op: 'replace', path: '/spec/http/0/route/0/weight', value: stable },
          { op: 'replace', path: '/spec/http/0/route/1/weight', value: canary },
        ],
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
    );

  // Failure injection for (ii): per workflow, the onset, and when the failing measurement was returned.
  // Keyed by the id the analysis names: the one people act on, the canary's parent.
  const failures = new Map<string, { onset: number; returnedAt?: number }>();
  const analyzeCanary = async (req: AnalysisRequest): Promise<AnalysisRun> => {
    const f = failures.get(req.workflowId);
    const failing = f !== undefined && nowMs() >= f.onset;
    const r: AnalysisRun = {
      at: new Date().toISOString(),
      outcome: failing ? 'fail' : 'pass',
      weight: req.weight,
      measurements: [
        {
          metric: 'error-rate',
          track: 'canary',
          value: failing ? 0.3 : 0.001,
          outcome: failing ? 'fail' : 'pass',
          ...(failing ? { reason: '0.3 > 0.01' } : {}),
        },
      ],
    };
    if (failing && f.returnedAt === undefined) f.returnedAt = nowMs();
    return r;
  };

  const traffic = trafficActivities({
    kubeConfig: kc,
    config: {
      kubernetes: { ...config.kubernetes, pollInterval: 200 },
      traffic: { stepTimeout: config.traffic.stepTimeout },
    },
  });
  const basePlan = testPlan({ version: '1.0.1' });
  const plan = (intervalMs: number): DeployPlan => ({
    ...basePlan,
    environment: `bench-${run}`,
    namespace,
    searchAttributes: false,
    traffic: { ...basePlan.traffic, provider: 'istio', service: SERVICE, virtualService: SERVICE },
    canary: {
      ...basePlan.canary,
      steps: [25, 100],
      soakMs: 3_600_000,
      analysisIntervalMs: intervalMs,
      approval: 'none',
      failureLimit: 0,
    },
  });
  const fake = fakeActivities({
    plan: plan(size.intervalMs),
    override: {
      startCanary: traffic.startCanary,
      setCanaryWeight: traffic.setCanaryWeight,
      promoteCanary: traffic.promoteCanary,
      abortCanary: traffic.abortCanary,
      analyzeCanary,
    } satisfies Partial<Activities>,
  });
  const bundle = await bundleToFile(path.join(REPO_ROOT, 'bench/workflows/rollback.ts'));

  const env = await devServerEnv();
  const taskQueue = uniqueQueue('bench-rollback');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: { codePath: bundle.codePath },
    activities: {
      ...fake.activities,
      patchToStable: async (t: FloorTarget) => {
        if (t.namespace !== namespace || t.name !== SERVICE) throw new Error(`not the benchmark's VirtualService`);
        await setWeights(100, 0);
      },
    },
  });
  const running = worker.run();
  const abortSamples: Sample[] = [];
  const floorSamples: number[] = [];
  const failSamples: Sample[] = [];
  const outcomes: string[] = [];

  const soakingAt25 = async (handle: {
    query: (q: typeof statusQuery) => Promise<{ phase: string; canary?: { weight: number } }>;
  }) => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const s = await handle.query(statusQuery);
      if (s.phase === 'soaking' && s.canary?.weight === 25) break;
      if (['failed', 'aborted', 'succeeded'].includes(s.phase))
        throw new Error(`the canary ended (${s.phase}) before soaking at 25%`);
      if (Date.now() > deadline) throw new Error(`the canary was not soaking at 25% within 60 s (phase ${s.phase})`);
      await sleep(50);
    }
    const w = await weights();
    if (w?.canary !== 25) throw new Error(`soaking, but the VirtualService reads ${JSON.stringify(w)}`);
  };

  try {
    log(`namespace ${namespace}: stable ${SERVICE} x4, Service, VirtualService`);
    await core.createNamespace({
      body: { metadata: { name: namespace, labels: { 'app.kubernetes.io/part-of': 'bench' } } },
    });
    await apps.createNamespacedDeployment({ namespace, body: objects.deployment });
    await core.createNamespacedService({ namespace, body: objects.service });
    await custom.createNamespacedCustomObject({ ...VS_API, namespace, body: objects.virtualService });
    const readyBy = Date.now() + 120_000;
    while ((await apps.readNamespacedDeployment({ name: SERVICE, namespace })).status?.availableReplicas !== 4) {
      if (Date.now() > readyBy) throw new Error(`${namespace}/${SERVICE} not available within 120 s`);
      await sleep(200);
    }

    const start = async (kind: 'abort' | 'fail', i: number, intervalMs: number) => {
      const workflowId = `bench-rollback-${run}-${kind}-${i}`;
      const input: CanaryInput = {
        version: '1.0.1',
        plan: { ...plan(intervalMs), workflowId },
        image: `${registry}/ai-saas-${SERVICE}:1.0.1`,
        searchAttributes: false,
      };
      const handle = await startAsChild(env.client, canaryWorkflow, { taskQueue, workflowId, args: [input] });
      await soakingAt25(handle);
      return { workflowId, handle };
    };

    for (let i = 0; i < size.runs; i++) {
      // (i) abort signal -> stable 100 (no analysis during this soak: its interval is an hour)
      {
        const { handle } = await start('abort', i, 3_600_000);
        await sleep(Math.random() * 250);
        const stable = await watchUntilStable();
        const t0 = nowMs();
        await handle.signal(abortSignal, { by: 'bench', reason: 'rollback latency benchmark' });
        abortSamples.push({ fromTrigger: (await stable.at) - t0 });
        const r = await resultOf(handle.result());
        outcomes.push(r.outcome);
        if (r.outcome !== 'aborted') throw new Error(`abort run ${i}: outcome ${r.outcome} (${r.reason ?? ''})`);
      }
      // (ii) first failing measurement -> stable 100
      {
        const { workflowId, handle } = await start('fail', i, size.intervalMs);
        const onset = nowMs() + Math.random() * size.intervalMs;
        const f: { onset: number; returnedAt?: number } = { onset };
        failures.set(parentIdOf(workflowId), f);
        const stable = await watchUntilStable(size.intervalMs + 30_000);
        await sleep(Math.max(0, onset - nowMs()));
        const at = await stable.at;
        if (f.returnedAt === undefined) throw new Error(`failure run ${i}: stable 100 without a failing measurement`);
        failSamples.push({ fromTrigger: at - onset, fromMeasurement: at - f.returnedAt });
        const r = await resultOf(handle.result());
        outcomes.push(r.outcome);
        if (r.outcome !== 'failed') throw new Error(`failure run ${i}: outcome ${r.outcome} (${r.reason ?? ''})`);
      }
      // The floor: one signal, one workflow task, one activity, one patch; the same watch.
      {
        await setWeights(75, 25);
        const handle = await env.client.workflow.start(rollbackFloorWorkflow, {
          taskQueue,
          workflowId: `bench-rollback-${run}-floor-${i}`,
          args: [{ namespace, name: SERVICE }],
        });
        await sleep(100 + Math.random() * 250);
        const stable = await watchUntilStable();
        const t0 = nowMs();
        await handle.signal(floorAbortSignal);
        floorSamples.push((await stable.at) - t0);
        await handle.result();
      }
      log(
        `run ${i + 1}/${size.runs}: floor ${ms(floorSamples[i])}; abort ${ms(abortSamples[i].fromTrigger)}; failure onset ${ms(failSamples[i].fromTrigger)}, failing measurement ${ms(failSamples[i].fromMeasurement!)}`,
      );
    }
  } finally {
    worker.shutdown();
    await running.catch(() => undefined);
    await env.teardown().catch(() => undefined);
    bundle.remove();
    await core
      .deleteNamespace({ name: namespace })
      .catch((err: unknown) => log(`could not delete namespace ${namespace}: ${String(err)}`));
  }

  const stats = (xs: number[]) => ({ p50: median(xs), p95: percentile(xs, 95), max: Math.max(...xs) });
  const abort = stats(abortSamples.map((s) => s.fromTrigger));
  const onset = stats(failSamples.map((s) => s.fromTrigger));
  const measured = stats(failSamples.map((s) => s.fromMeasurement!));
  const floor = stats(floorSamples);
  const interval = size.intervalMs;
  const slow = (p95: number) =>
    p95 >= 100
      ? {
          why: `the floor (one signal, one workflow task, one activity, one patch) takes ${ms(floor.p95)} p95 on this machine; the canary's abort adds ${ms(Math.max(0, abort.p50 - floor.p50))} p50 over it (its status, the read before the patch, the verification after it)`,
        }
      : {};
  const targets: Target[] = [
    {
      name: '(i) abort signal -> stable 100, p95',
      measured: ms(abort.p95),
      wanted: '< 100 ms',
      pass: abort.p95 < 100,
      ...slow(abort.p95),
    },
    {
      name: `(ii) failure onset -> stable 100, p95 (interval ${ms(interval)})`,
      measured: ms(onset.p95),
      wanted: `< ${ms(interval + 1000)} (interval + 1 s)`,
      pass: onset.p95 < interval + 1000,
    },
    {
      name: '(ii) failing measurement returned -> stable 100, p95',
      measured: ms(measured.p95),
      wanted: '< 100 ms',
      pass: measured.p95 < 100,
      ...slow(measured.p95),
    },
  ];
  return {
    name: 'rollback',
    title: 'Rollback latency',
    size: opts.size,
    startedAt,
    durationMs: Date.now() - startedAt.getTime(),
    load: { start: loadStart, end: loadAverage() },
    setup: [
      `${size.runs} runs of each kind; canary workflow on the dev server (in-process worker), each the child of a parent that only waits for it (canaries run only as children); the abort signal goes to the canary itself (not through a deployment's forwarding); the fake confirmPlan accepts the plan; real traffic activities (istio provider, admin kubeconfig) on namespace ${namespace}, canary soaking at 25% of a 4-replica stable Deployment`,
      'a watch on the VirtualService (admin client), opened before each trigger; a latency ends when the event showing stable 100 / canary 0 arrives',
      'the floor: a workflow of its own that waits for one signal and then runs one activity sending one JSON patch of the two weights (bench/workflows/rollback.ts), on the same worker, server and VirtualService',
      `(ii) analysis interval ${ms(interval)} (the example config's is 1 m; shortened so 20 runs fit in minutes), failure limit 0; the failure starts at a random point of the interval`,
    ],
    tables: [
      {
        title: 'Latency to the VirtualService back at stable 100',
        columns: ['from', 'p50', 'p95', 'max', 'runs'],
        rows: [
          [
            'floor: signal -> one activity -> one patch',
            ms(floor.p50),
            ms(floor.p95),
            ms(floor.max),
            floorSamples.length,
          ],
          ['(i) abort signal sent', ms(abort.p50), ms(abort.p95), ms(abort.max), abortSamples.length],
          [
            '(ii) failure onset (detection + reaction)',
            ms(onset.p50),
            ms(onset.p95),
            ms(onset.max),
            failSamples.length,
          ],
          [
            '(ii) failing measurement returned (reaction only)',
            ms(measured.p50),
            ms(measured.p95),
            ms(measured.max),
            failSamples.length,
          ],
        ],
      },
      {
        title: 'As ratios',
        columns: ['figure', 'ratio'],
        rows: [
          ['(i) abort p50 / floor p50', ratio(abort.p50 / floor.p50)],
          ['(i) abort p95 / floor p95', ratio(abort.p95 / floor.p95)],
          ['(ii) reaction p95 / floor p95', ratio(measured.p95 / floor.p95)],
          ['(ii) onset p95 / (interval + 1 s)', (onset.p95 / (interval + 1000)).toFixed(2)],
          ['(ii) reaction p95 / (i) abort p95', (measured.p95 / abort.p95).toFixed(2)],
        ],
      },
    ],
    targets,
    notes: [
      'The path measured: signal (or activity result) -> workflow task -> abortCanary scheduled -> one read and one merge patch of the VirtualService; the canary is scaled to zero after the route is back, outside the measured time.',
      `Outcomes: ${outcomes.filter((o) => o === 'aborted').length} aborted, ${outcomes.filter((o) => o === 'failed').length} failed (by analysis), as expected.`,
    ],
  };
}
