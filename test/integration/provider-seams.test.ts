/**
 * The three provider seams, as docs/architecture.md documents them: a
 * throwaway traffic provider, metrics provider and migrator are registered
 * through ActivityDeps.providers-style injection (the factories' `extra`
 * maps), selected by name in the plan and config, and a canary deployment runs
 * through them on the time-skipping server. The canary Deployment itself is
 * real (the sandbox apiserver, in a namespace of this test's own); everything
 * the seams do not cover comes from the typed fakes.
 */
import * as k8s from '@kubernetes/client-node';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { analysisActivities, type MetricsProviderFactory, type MetricTarget } from '../../src/activities/analysis';
import { loadKubeConfig, makeKubeClients } from '../../src/activities/clients/kube';
import type { Activities } from '../../src/activities/contracts';
import { databaseActivities } from '../../src/activities/database';
import type { Migrator, MigratorFactory } from '../../src/activities/database/migrators';
import { trafficActivities } from '../../src/activities/traffic';
import type { TrafficProvider, TrafficProviderFactory } from '../../src/activities/traffic/provider';
import type { DeployConfig } from '../../src/domain/config';
import type { DeployPlan, TrafficSettings } from '../../src/domain/plan';
import { deployWorkflow } from '../../src/workflows/deploy';
import { fakeActivities } from '../helpers/fake-activities';
import { testConfig, testPlan } from '../helpers/plan';
import { sandboxVar } from '../helpers/sandbox';
import { timeSkippingEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';

jest.setTimeout(180_000);

const NS = `seams-${process.pid}`;
const SERVICE = 'seam-web';
const CANARY = `${SERVICE}-canary`;
const OLD_IMAGE = `${sandboxVar('REGISTRY')}/seam-web:1.0.0`;

/** A router that keeps its weight in memory: what a provider must do is set it and read it back. */
class MemoryWeights implements TrafficProvider {
  static weights: number[] = [];
  private weight = 0;
  type(): string {
    return 'memory-weights';
  }
  async setWeight(weight: number): Promise<void> {
    this.weight = weight;
    MemoryWeights.weights.push(weight);
  }
  async verifyWeight(weight: number) {
    const observed = { stable: 100 - this.weight, canary: this.weight };
    return { verified: this.weight === weight, settled: true, observed, detail: `at ${this.weight}%` };
  }
  async start() {
    return { replicas: 1 };
  }
}
// One instance per target, as the factory builds them, so the weight survives between activities.
const routers = new Map<string, MemoryWeights>();
const memoryWeights: TrafficProviderFactory = (_settings, ctx) => {
  const key = `${ctx.namespace}/${ctx.service}`;
  if (!routers.has(key)) routers.set(key, new MemoryWeights());
  return routers.get(key)!;
};

/** A metrics backend with fixed answers per track, recording what analysis asked. */
const measured: { metric: string; target: MetricTarget }[] = [];
const fixedMetrics: MetricsProviderFactory = () => ({
  type: 'fixed-metrics',
  async measure(metric, target) {
    measured.push({ metric: metric.name, target });
    return { kind: 'value', value: target.track === 'canary' ? 0.001 : 0.002 };
  },
  async samples() {
    return { kind: 'none', reason: 'this test provider keeps no samples' };
  },
});

/** A migration tool with one pending migration, applied once. */
const applied: { workflowId: string; dir: string }[] = [];
const oneMigration: MigratorFactory = (): Migrator => ({
  async status() {
    const done = applied.length > 0;
    return {
      applied: done ? ['0002_seam.sql'] : [],
      pending: done ? [] : ['0002_seam.sql'],
      known: true,
      missing: [],
      outOfOrder: [],
    };
  },
  async apply(release) {
    applied.push(release);
    return {
      applied: [{ file: '0002_seam.sql', checksum: 'c'.repeat(64), durationMs: 1 }],
      alreadyApplied: 0,
      changed: true,
    };
  },
});

let env: TestWorkflowEnvironment;
let apps: k8s.AppsV1Api;
let core: k8s.CoreV1Api;
let releaseDir: string;

beforeAll(async () => {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(sandboxVar('KUBECONFIG'));
  apps = kc.makeApiClient(k8s.AppsV1Api);
  core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NS } } });
  const labels = { app: SERVICE };
  await apps.createNamespacedDeployment({
    namespace: NS,
    body: {
      metadata: { name: SERVICE, labels },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name: 'web', image: OLD_IMAGE }] } },
      },
    },
  });
  releaseDir = mkdtempSync(path.join(tmpdir(), 'seams-release-'));
  env = await timeSkippingEnv();
}, 120_000);

afterAll(async () => {
  await env?.teardown();
  await core?.deleteNamespace({ name: NS }).catch(() => undefined);
  if (releaseDir) rmSync(releaseDir, { recursive: true, force: true });
});

test('a canary runs through a registered traffic provider, metrics provider and migrator', async () => {
  const base = testConfig();
  const config: DeployConfig = {
    ...base,
    kubernetes: { ...base.kubernetes, kubeconfig: sandboxVar('KUBECONFIG'), pollInterval: 200 },
    // Names no built-in provider has: only the registered ones can serve them.
    analysis: { ...base.analysis, provider: 'fixed-metrics' as DeployConfig['analysis']['provider'] },
    database: {
      ...base.database,
      migrations: { mode: 'one-migration' } as unknown as DeployConfig['database']['migrations'],
    },
  };
  const p = testPlan({ version: '1.0.1', strategy: 'canary', canary: { soak: '2m', analysisInterval: '1m' } });
  const traffic: TrafficSettings = {
    ...p.traffic,
    provider: 'memory-weights' as TrafficSettings['provider'],
    service: SERVICE,
  };
  const service = { ...p.services[0], name: SERVICE, deployment: SERVICE, container: 'web', image: 'seam-web' };
  const plan: DeployPlan = {
    ...p,
    environment: `seams-${process.pid}`,
    namespace: NS,
    searchAttributes: false,
    traffic,
    services: [{ ...service, reference: `${p.registry}/seam-web:1.0.1` }],
  };

  const kube = makeKubeClients(loadKubeConfig(sandboxVar('KUBECONFIG')));
  const canary = trafficActivities({ clients: kube, config, providers: { 'memory-weights': memoryWeights } });
  const { runAnalysis } = analysisActivities({ config, providers: { 'fixed-metrics': fixedMetrics } });
  const database = databaseActivities({
    config,
    databaseUrl: '',
    s3: undefined as never,
    releaseDir: async () => releaseDir,
    migrators: { 'one-migration': oneMigration },
  });
  const seams: Partial<Activities> = {
    startCanary: canary.startCanary,
    setCanaryWeight: canary.setCanaryWeight,
    promoteCanary: canary.promoteCanary,
    abortCanary: canary.abortCanary,
    runAnalysis,
    analyzeCanary: runAnalysis,
    migrationStatus: database.migrationStatus,
    applyMigrations: database.applyMigrations,
  };
  const fake = fakeActivities({ plan, override: seams });

  const taskQueue = uniqueQueue('seams');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: fake.activities,
  });
  const workflowId = `deploy-${taskQueue}`;
  const result = await worker.runUntil(
    env.client.workflow.execute(deployWorkflow, {
      taskQueue,
      workflowId,
      args: [{ version: '1.0.1', strategy: 'canary' }],
    }),
  );

  expect(result.outcome).toBe('succeeded');
  // Traffic: every configured step through the registered router, then back to the stable route after promotion.
  expect(MemoryWeights.weights).toEqual([...plan.canary.steps, 0]);
  // Metrics: analysis asked the registered backend for every configured metric on both tracks.
  const metricNames = config.analysis.metrics.map((m) => m.name).sort();
  expect([...new Set(measured.map((m) => m.metric))].sort()).toEqual(metricNames);
  expect(new Set(measured.map((m) => m.target.track))).toEqual(new Set(['canary', 'stable']));
  expect(measured.every((m) => m.target.namespace === NS)).toBe(true);
  // Migrations: the registered migrator applied the release's pending migration once, for this deployment.
  expect(applied).toEqual([{ workflowId, dir: releaseDir }]);
  // The canary Deployment was real: promoted into stable (the digest the build step reported), then removed.
  const stable = await apps.readNamespacedDeployment({ name: SERVICE, namespace: NS });
  expect(stable.spec?.template.spec?.containers[0].image).toBe(`seam-web@sha256:${'a'.repeat(64)}`);
  await expect(apps.readNamespacedDeployment({ name: CANARY, namespace: NS })).rejects.toMatchObject({ code: 404 });
});
