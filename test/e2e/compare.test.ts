/**
 * Canary against stable end to end: a canary of api-gateway made 30% slower
 * (the demo's latency factor) stays far under the absolute P95 threshold
 * (500 ms) yet is caught by a `compare` metric (Mann-Whitney U on both
 * tracks' P95 samples, at most 10% worse), and rolled back; the identical
 * canary passes the same comparison and is promoted.
 */
import type { DeployConfig } from '../../src/domain/config';
import type { Measurement } from '../../src/domain/status';
import { deployWorkflow } from '../../src/workflows/deploy';
import { resultOf } from '../../src/workflows/outcome';
import type { CanaryResult } from '../../src/workflows/canary';
import { sandboxCli, startE2E, virtualServiceWeights, type E2E } from '../helpers/e2e';

const P95_SAMPLES =
  'histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{track="{{track}}"}[10s]))) * 1000';

function withCompare(c: DeployConfig): DeployConfig {
  return {
    ...c,
    // Half the traffic on the canary at once: enough requests on each track for a P95 every 2 s.
    rollout: { ...c.rollout, canary: { ...c.rollout.canary, steps: [50, 100] } },
    analysis: {
      ...c.analysis,
      window: '30s',
      metrics: [
        ...c.analysis.metrics,
        {
          name: 'p95-vs-stable',
          kind: 'compare',
          query: P95_SAMPLES,
          unit: 'ms',
          compare: {
            confidence: 0.95,
            maxDegradation: 0.1,
            direction: 'higher-is-worse',
            step: '2s',
            minSamples: 8,
          },
        },
      ],
    },
  };
}

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E({ config: withCompare });
}, 180_000);
afterAll(async () => {
  await sandboxCli('fault', '--env', 'staging', '--clear').catch(() => undefined);
  await e2e?.stop();
  await sandboxCli('reset');
}, 180_000);

/** A canary of api-gateway alone in staging (its own cluster, Prometheus and demo server) at 50% for 40 s, analysed every 20 s; its canary child's result. */
async function canaryOfGateway(): Promise<{ outcome: string; reason?: string; canary: CanaryResult }> {
  const workflowId = `deploy-staging-1.0.1-compare-${Date.now()}`;
  const handle = await e2e.env.client.workflow.start(deployWorkflow, {
    taskQueue: e2e.taskQueue,
    workflowId,
    args: [
      {
        version: '1.0.1',
        requestedBy: 'e2e',
        environment: 'staging',
        services: ['api-gateway'],
        backup: false,
        migrate: false,
        canary: { soak: '40s', analysisInterval: '20s' },
      },
    ],
  });
  const result = await resultOf(handle.result());
  const canary = await resultOf(
    e2e.env.client.workflow.getHandle<() => Promise<CanaryResult>>(`${workflowId}-canary`).result(),
  );
  return { outcome: result.outcome, ...(result.reason ? { reason: result.reason } : {}), canary };
}

const measured = (c: CanaryResult, metric: string, track = 'canary'): Measurement | undefined =>
  c.status.lastAnalysis?.measurements.find((m) => m.metric === metric && m.track === track);

test('a canary 30% slower, under the absolute P95 threshold, is caught by compare and rolled back', async () => {
  await sandboxCli('fault', '--env', 'staging', '--track', 'canary', '--latency-factor', '1.3');
  try {
    const r = await canaryOfGateway();
    if (r.outcome !== 'rolled-back') console.error(JSON.stringify(r.canary.status.lastAnalysis, null, 2));
    expect(r.outcome).toBe('rolled-back');
    expect(r.reason).toContain('p95-vs-stable failed');
    const compare = measured(r.canary, 'p95-vs-stable');
    expect(compare).toMatchObject({ outcome: 'fail', comparison: { verdict: 'fail' } });
    expect(compare?.comparison?.pValue).toBeLessThan(0.05);
    expect(compare?.comparison?.canaryMedian).toBeGreaterThan(1.1 * (compare?.comparison?.stableMedian ?? Infinity));
    // The absolute threshold alone would have let it through.
    const p95 = measured(r.canary, 'p95-latency');
    expect(p95).toMatchObject({ outcome: 'pass' });
    expect(p95?.value).toBeLessThan(500);
    expect(await virtualServiceWeights('staging')).toEqual({ stable: 100, canary: 0 });
  } finally {
    await sandboxCli('fault', '--env', 'staging', '--clear');
  }
}, 300_000);

test('the identical canary passes the same comparison and is promoted', async () => {
  const r = await canaryOfGateway();
  if (r.outcome !== 'succeeded') console.error(JSON.stringify(r.canary.status.lastAnalysis, null, 2));
  expect(r.outcome).toBe('succeeded');
  const compare = measured(r.canary, 'p95-vs-stable');
  expect(compare).toMatchObject({ outcome: 'pass' });
  expect(['pass', 'marginal']).toContain(compare?.comparison?.verdict);
  expect(compare?.comparison?.canarySamples).toBeGreaterThanOrEqual(8);
}, 300_000);
