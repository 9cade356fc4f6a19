/**
 * Waves and clusters on the sandbox (issue 19): production spans two real
 * control planes (region-a is production's own, region-b the sandbox's
 * production-b), and api-gateway depends on auth-service and chat-service.
 * A watch on both apiservers records the order in which Deployments change:
 * region-a's first wave, then its second, then (after a person approves)
 * region-b's. A fault in region-a's second wave, and a stalled rollout in
 * region-b, each roll back every wave already touched, last first, and leave
 * both clusters as they were.
 */
import * as k8s from '@kubernetes/client-node';
import type { DeployConfig } from '../../src/domain/config';
import { deployWorkflow } from '../../src/workflows/deploy';
import { approveSignal, statusQuery } from '../../src/workflows/messages';
import { resultOf } from '../../src/workflows/outcome';
import { sandboxCli, startE2E, type E2E } from '../helpers/e2e';
import { sandboxVar, sandboxVarOf } from '../helpers/sandbox';
import { waitFor } from '../helpers/wait';

const FIRST_WAVE = ['auth-service', 'chat-service', 'billing-service', 'analytics-service', 'frontend'];

/** Production as two clusters with an approval between them; api-gateway after auth-service and chat-service. */
function clustersConfig(c: DeployConfig): DeployConfig {
  const production = c.environments.production;
  return {
    ...c,
    services: c.services.map((s) =>
      s.name === 'api-gateway' ? { ...s, dependsOn: ['auth-service', 'chat-service'] } : s,
    ),
    kubernetes: { ...c.kubernetes, rolloutTimeout: 20_000 },
    environments: {
      ...c.environments,
      production: {
        ...production,
        clusters: [
          { name: 'region-a', kubernetes: {} },
          { name: 'region-b', kubernetes: { kubeconfig: sandboxVar('KUBECONFIG_WORKER_PRODUCTION_B') } },
        ],
        betweenClusters: { pause: 0, approval: true, approvalTimeout: 10 * 60_000 },
      },
    },
  };
}

const ADMIN = {
  'region-a': sandboxVarOf('production', 'KUBECONFIG'),
  'region-b': sandboxVar('KUBECONFIG_PRODUCTION_B'),
};
type Region = keyof typeof ADMIN;

function apps(region: Region): k8s.AppsV1Api {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(ADMIN[region]);
  return kc.makeApiClient(k8s.AppsV1Api);
}

/** Every Deployment's image (and version annotation) in a cluster: its state, to compare before and after. */
async function stateOf(region: Region): Promise<Record<string, string>> {
  const list = await apps(region).listNamespacedDeployment({ namespace: 'ai-saas' });
  return Object.fromEntries(
    list.items.map((d) => [
      d.metadata!.name!,
      `${d.spec!.template.spec!.containers[0].image} ${d.metadata?.annotations?.['deploy-pipelines.dev/version'] ?? ''}`,
    ]),
  );
}

/** Image changes of Deployments in both clusters, in the order the apiservers report them. */
class ChangeLog {
  readonly changes: { region: Region; deployment: string; image: string }[] = [];
  private readonly aborts: { abort(): void }[] = [];

  async start(): Promise<void> {
    for (const region of Object.keys(ADMIN) as Region[]) {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(ADMIN[region]);
      const seen = new Map<string, string>();
      const req = await new k8s.Watch(kc).watch(
        '/apis/apps/v1/namespaces/ai-saas/deployments',
        {},
        (type: string, d: k8s.V1Deployment) => {
          const name = d.metadata?.name ?? '';
          const image = d.spec?.template.spec?.containers[0].image ?? '';
          const before = seen.get(name);
          seen.set(name, image);
          if (type === 'MODIFIED' && before !== undefined && before !== image)
            this.changes.push({ region, deployment: name, image });
        },
        () => undefined,
      );
      this.aborts.push(req);
    }
  }

  stop(): void {
    for (const a of this.aborts) a.abort();
  }

  /** The deployments changed, in order, as "region/deployment". */
  order(): string[] {
    return this.changes.map((c) => `${c.region}/${c.deployment}`);
  }
}

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E({ config: clustersConfig });
}, 180_000);
afterAll(async () => {
  await sandboxCli('fault', '--clear').catch(() => undefined);
  await e2e?.stop();
  await sandboxCli('reset');
}, 180_000);

function startDeploy(workflowId: string) {
  return e2e.env.client.workflow.start(deployWorkflow, {
    taskQueue: e2e.taskQueue,
    workflowId,
    args: [{ version: '1.0.1', strategy: 'rolling', requestedBy: 'e2e', migrate: false }],
  });
}

/** Indexes of the first and last change of `deployments` in `region`. */
function span(order: string[], region: Region, deployments: string[]): [number, number] {
  const idx = order.flatMap((o, i) => (deployments.some((d) => o === `${region}/${d}`) ? [i] : []));
  return [Math.min(...idx), Math.max(...idx)];
}

test('region-a wave by wave, an approval, then region-b wave by wave', async () => {
  await sandboxCli('reset');
  const log = new ChangeLog();
  await log.start();
  try {
    const h = await startDeploy(`deploy-waves-e2e-${Date.now()}`);
    const gate = await waitFor(
      async () => {
        const s = await h.query(statusQuery).catch(() => undefined);
        return s?.phase === 'awaiting-approval' ? s : undefined;
      },
      300_000,
      500,
    );
    expect(gate.waitingFor?.gate).toBe('cluster-region-b');
    // region-b is untouched while the gate waits.
    expect(log.order().filter((o) => o.startsWith('region-b/'))).toEqual([]);
    expect((await stateOf('region-b'))['auth-service']).toMatch(/:1\.0\.0 /);
    await h.signal(approveSignal, { by: 'alice', note: 'region-a is healthy' });
    const r = await resultOf(h.result());
    expect({ outcome: r.outcome, reason: r.reason }).toEqual({ outcome: 'succeeded' });
    const order = log.order();
    const a1 = span(order, 'region-a', FIRST_WAVE);
    const a2 = span(order, 'region-a', ['api-gateway']);
    const b1 = span(order, 'region-b', FIRST_WAVE);
    const b2 = span(order, 'region-b', ['api-gateway']);
    expect(a1[1]).toBeLessThan(a2[0]);
    expect(a2[1]).toBeLessThan(b1[0]);
    expect(b1[1]).toBeLessThan(b2[0]);
    for (const region of ['region-a', 'region-b'] as const)
      for (const image of Object.values(await stateOf(region))) expect(image).toMatch(/1\.0\.1$/);
    expect(r.status.waves?.map((w) => `${w.cluster}/${w.wave}:${w.state}`)).toEqual([
      'region-a/1:done',
      'region-a/2:done',
      'region-b/1:done',
      'region-b/2:done',
    ]);
  } finally {
    log.stop();
  }
}, 600_000);

test("a fault in region-a's second wave rolls back the second wave, then the first; region-b is never touched", async () => {
  await sandboxCli('reset');
  const before = { a: await stateOf('region-a'), b: await stateOf('region-b') };
  await sandboxCli('fault', '--log-errors', 'api-gateway');
  const log = new ChangeLog();
  await log.start();
  try {
    const r = await resultOf(startDeploy(`deploy-waves-fault-e2e-${Date.now()}`).then((h) => h.result()));
    expect(r.outcome).toBe('rolled-back');
    expect(r.reason).toMatch(
      /region-a, wave 2 of 2: api-gateway: checks failed: kubernetes health: failed: api-gateway: \d+ error line/,
    );
    const order = log.order();
    // Forward: wave 1, then wave 2; back: wave 2 first, then wave 1.
    const gateway = order.flatMap((o, i) => (o === 'region-a/api-gateway' ? [i] : []));
    const auth = order.flatMap((o, i) => (o === 'region-a/auth-service' ? [i] : []));
    expect(gateway).toHaveLength(2);
    expect(auth).toHaveLength(2);
    expect(auth[0]).toBeLessThan(gateway[0]);
    expect(gateway[1]).toBeLessThan(auth[1]);
    expect(order.filter((o) => o.startsWith('region-b/'))).toEqual([]);
    expect(await stateOf('region-a')).toEqual(before.a);
    expect(await stateOf('region-b')).toEqual(before.b);
  } finally {
    log.stop();
    await sandboxCli('fault', '--clear');
  }
}, 600_000);

test('a rollout that stalls in region-b rolls back region-b, then region-a, to their state before', async () => {
  await sandboxCli('reset');
  const before = { a: await stateOf('region-a'), b: await stateOf('region-b') };
  await sandboxCli('fault', '--cluster', 'production-b', '--stall-rollouts');
  const log = new ChangeLog();
  await log.start();
  try {
    const h = await startDeploy(`deploy-clusters-fault-e2e-${Date.now()}`);
    await waitFor(
      async () =>
        (await h.query(statusQuery).catch(() => undefined))?.phase === 'awaiting-approval' ? true : undefined,
      300_000,
      500,
    );
    await h.signal(approveSignal, { by: 'alice' });
    // region-b cannot make new pods: its first wave's rollout times out and the saga rolls back. The person on
    // call lifts the quota, so region-b's old pods can come back.
    await waitFor(
      async () => ((await h.query(statusQuery).catch(() => undefined))?.phase === 'rolling-back' ? true : undefined),
      300_000,
      500,
    );
    await sandboxCli('fault', '--cluster', 'production-b', '--clear');
    const r = await resultOf(h.result());
    expect(r.outcome).toBe('rolled-back');
    expect(r.reason).toMatch(/auth-service|rollout/);
    const order = log.order();
    const lastB = Math.max(...order.flatMap((o, i) => (o.startsWith('region-b/') ? [i] : [])));
    const restoredA = order.flatMap((o, i) => (o === 'region-a/auth-service' ? [i] : []));
    expect(restoredA).toHaveLength(2);
    // region-b came back before region-a did.
    expect(lastB).toBeLessThan(restoredA[1]);
    expect(await stateOf('region-a')).toEqual(before.a);
    expect(await stateOf('region-b')).toEqual(before.b);
  } finally {
    log.stop();
    await sandboxCli('fault', '--clear');
  }
}, 600_000);
