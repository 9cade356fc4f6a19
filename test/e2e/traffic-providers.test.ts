/**
 * The canary end to end once per traffic provider (istio, gateway-api, nginx,
 * replicas), on the dev server and the sandbox: a deployment of api-gateway
 * alone (no backup, no migration, short soaks) that holds at 50% before the
 * full step, where the provider's own object (VirtualService, HTTPRoute,
 * canary Ingress, replica counts) and the demo server's measured split both
 * say 50/50, then is approved and promoted; and one that a fault on the
 * canary aborts at 25%, back to stable in the objects and in the measured
 * split. Each provider gets its own worker with its traffic.provider.
 */
import type { DeployConfig } from '../../src/domain/config';
import type { WorkflowHandle } from '@temporalio/client';
import { abortSignal, approveSignal, statusQuery } from '../../src/workflows/messages';
import { deployWorkflow } from '../../src/workflows/deploy';
import { resultOf } from '../../src/workflows/outcome';
import type { TrafficProviderName } from '../../src/domain/plan';
import { adminKube, sandboxCli, startE2E, virtualServiceWeights, type E2E } from '../helpers/e2e';
import { sandboxVar } from '../helpers/sandbox';
import { waitFor } from '../helpers/wait';

const NS = 'ai-saas';
const SERVICE = 'api-gateway';
const CANARY = 'api-gateway-canary';
const HEADER = { name: 'x-canary', value: 'always' };

/** The steps each provider runs: the route options it can apply on the way. */
const STEPS: Record<TrafficProviderName, DeployConfig['rollout']['canary']['steps']> = {
  istio: [25, 50, 100],
  'gateway-api': [{ weight: 25, header: HEADER }, { weight: 50, mirror: 10 }, 100],
  nginx: [{ weight: 25, header: HEADER }, 50, 100],
  replicas: [25, 50, 100],
};

/** The weights as the provider's own object holds them; null when it holds no canary (the original form). */
async function providerWeights(provider: TrafficProviderName): Promise<{ stable: number; canary: number } | null> {
  const kube = adminKube();
  if (provider === 'istio') {
    const w = await virtualServiceWeights();
    return w.canary === 0 ? null : w;
  }
  if (provider === 'gateway-api') {
    const route = (await kube.custom.getNamespacedCustomObject({
      group: 'gateway.networking.k8s.io',
      version: 'v1',
      namespace: NS,
      plural: 'httproutes',
      name: SERVICE,
    })) as { spec: { rules: { backendRefs: { name: string; weight?: number }[] }[] } };
    // The rule to stable (a header step's own rule sends to the canary alone).
    const refs = route.spec.rules.find((r) => r.backendRefs.some((b) => b.name === SERVICE))?.backendRefs ?? [];
    const canary = refs.find((r) => r.name === CANARY);
    return canary ? { stable: refs.find((r) => r.name === SERVICE)?.weight ?? 0, canary: canary.weight ?? 0 } : null;
  }
  if (provider === 'nginx') {
    const ingress = await kube.custom
      .getNamespacedCustomObject({
        group: 'networking.k8s.io',
        version: 'v1',
        namespace: NS,
        plural: 'ingresses',
        name: CANARY,
      })
      .catch(() => undefined);
    const w = (ingress as { metadata?: { annotations?: Record<string, string> } } | undefined)?.metadata?.annotations?.[
      'nginx.ingress.kubernetes.io/canary-weight'
    ];
    return w === undefined ? null : { stable: 100 - Number(w), canary: Number(w) };
  }
  const [stable, canary] = await Promise.all([
    kube.apps.readNamespacedDeployment({ name: SERVICE, namespace: NS }),
    kube.apps.readNamespacedDeployment({ name: CANARY, namespace: NS }).catch(() => undefined),
  ]);
  const s = stable.status?.availableReplicas ?? 0;
  const c = canary?.status?.availableReplicas ?? 0;
  return c === 0 ? null : { stable: Math.round((100 * s) / (s + c)), canary: Math.round((100 * c) / (s + c)) };
}

/** Requests the demo server served per track so far (its http_requests_total counters). */
async function servedByTrack(): Promise<{ stable: number; canary: number }> {
  const text = await (await fetch(`${sandboxVar('DEMO_URL')}/metrics`)).text();
  const sums = { stable: 0, canary: 0 };
  for (const m of text.matchAll(/^http_requests_total\{[^}]*track="(stable|canary)"[^}]*\} (\d+(?:\.\d+)?)$/gm))
    sums[m[1] as 'stable' | 'canary'] += Number(m[2]);
  return sums;
}

/** The canary's share (percent) of the requests the demo server serves over `ms`. */
async function measuredCanaryShare(ms = 4000): Promise<number> {
  const before = await servedByTrack();
  await new Promise((r) => setTimeout(r, ms));
  const after = await servedByTrack();
  const stable = after.stable - before.stable;
  const canary = after.canary - before.canary;
  return (100 * canary) / Math.max(1, stable + canary);
}

/** The demo server follows the cluster within a poll: wait until its split is in force before measuring. */
async function demoWeights(): Promise<{ stable: number; canary: number }> {
  const state = (await (await fetch(`${sandboxVar('DEMO_URL')}/__sandbox/state`)).json()) as {
    weights: { stable: number; canary: number };
  };
  return state.weights;
}

let patch = 0;
const nextVersion = () => `1.0.${++patch}`;

beforeAll(async () => {
  await sandboxCli('reset');
}, 180_000);
afterAll(async () => {
  await sandboxCli('fault', '--clear').catch(() => undefined);
  // Other suites start from v1.0.0 everywhere.
  await sandboxCli('reset');
}, 180_000);

describe.each(['istio', 'gateway-api', 'nginx', 'replicas'] as TrafficProviderName[])('%s', (provider) => {
  let e2e: E2E;
  beforeAll(async () => {
    e2e = await startE2E({
      config: (c) => ({
        ...c,
        traffic: { ...c.traffic, provider },
        rollout: {
          ...c.rollout,
          canary: { ...c.rollout.canary, steps: STEPS[provider], approval: 'before-full', soak: 1000 },
        },
      }),
    });
  }, 180_000);
  afterAll(async () => {
    await e2e?.stop();
  }, 60_000);

  /** A deployment that a failed expectation left running is aborted, so the next one does not wait for its lock. */
  const settle = async (handle: WorkflowHandle<typeof deployWorkflow>): Promise<void> => {
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') return;
    await handle.signal(abortSignal, { by: 'e2e', reason: 'the test ended' });
    await resultOf(handle.result()).catch(() => undefined);
  };
  const start = (version: string, soak: string) =>
    e2e.env.client.workflow.start(deployWorkflow, {
      taskQueue: e2e.taskQueue,
      workflowId: `deploy-production-${provider}-${version}-${Date.now()}`,
      args: [
        {
          version,
          requestedBy: 'e2e',
          services: [SERVICE],
          backup: false,
          migrate: false,
          canary: { soak, analysisInterval: '2s' },
        },
      ],
    });

  test('promotion: 50/50 in the object and in the measured split at the gate, then stable only on the new version', async () => {
    const version = nextVersion();
    const handle = await start(version, '2s');
    try {
      await promoted(handle, version);
    } finally {
      await settle(handle);
    }
  }, 240_000);

  const promoted = async (handle: WorkflowHandle<typeof deployWorkflow>, version: string) => {
    const canary = e2e.env.client.workflow.getHandle(`${handle.workflowId}-canary`);
    await waitFor(
      async () => (await canary.query(statusQuery).catch(() => undefined))?.phase === 'awaiting-approval',
      180_000,
      500,
    );
    expect(await providerWeights(provider)).toEqual({ stable: 50, canary: 50 });
    await waitFor(async () => (await demoWeights()).canary === 50, 10_000);
    expect(Math.abs((await measuredCanaryShare()) - 50)).toBeLessThan(15);
    await handle.signal(approveSignal, { by: 'oncall', note: 'full' });
    const result = await resultOf(handle.result());
    expect(result.outcome).toBe('succeeded');
    expect(await providerWeights(provider)).toBeNull();
    const images = await adminKube().apps.readNamespacedDeployment({ name: SERVICE, namespace: NS });
    expect(images.metadata?.annotations?.['deploy-pipelines.dev/version']).toBe(version);
    await expect(adminKube().core.readNamespacedService({ name: CANARY, namespace: NS })).rejects.toMatchObject({
      code: 404,
    });
    await waitFor(async () => (await demoWeights()).canary === 0, 10_000);
    expect(await measuredCanaryShare(2000)).toBe(0);
  };

  test('abort: a fault on the canary at 25% sends everything back to stable, in the object and the measured split', async () => {
    const version = nextVersion();
    const handle = await start(version, '30s');
    try {
      await aborted(handle);
    } finally {
      await settle(handle);
    }
  }, 240_000);

  const aborted = async (handle: WorkflowHandle<typeof deployWorkflow>) => {
    const canary = e2e.env.client.workflow.getHandle(`${handle.workflowId}-canary`);
    await waitFor(
      async () => (await canary.query(statusQuery).catch(() => undefined))?.canary?.weight === 25,
      180_000,
      500,
    );
    expect(await providerWeights(provider)).toEqual({ stable: 75, canary: 25 });
    await waitFor(async () => (await demoWeights()).canary === 25, 10_000);
    expect(await measuredCanaryShare(3000)).toBeGreaterThan(5);
    await sandboxCli('fault', '--track', 'canary', '--error-rate', '0.5');
    try {
      const result = await resultOf(handle.result());
      expect(result.outcome).toBe('rolled-back');
    } finally {
      await sandboxCli('fault', '--clear');
    }
    expect(await providerWeights(provider)).toBeNull();
    await waitFor(async () => (await demoWeights()).canary === 0, 10_000);
    expect(await measuredCanaryShare(2000)).toBe(0);
  };
});
