/**
 * A deployment's analysis through each metrics provider other than
 * Prometheus (which every other deployment suite uses): InfluxDB, Graphite
 * and the web provider over the demo server's JSON endpoint, each fed by
 * staging's demo server. A canary of api-gateway in staging answering half
 * its requests with 500 is failed by the provider's error rate and rolled
 * back. (No data and backend errors per provider: test/integration/metrics-providers.test.ts.)
 */
import type { MetricsProviderName } from '../../src/domain/analysis';
import type { DeployConfig } from '../../src/domain/config';
import type { CanaryResult } from '../../src/workflows/canary';
import { deployWorkflow } from '../../src/workflows/deploy';
import { resultOf } from '../../src/workflows/outcome';
import { sandboxCli, startE2E, virtualServiceWeights, type E2E } from '../helpers/e2e';
import { sandboxVarOf } from '../helpers/sandbox';

const staging = (name: string) => sandboxVarOf('staging', name);

/** Error rate (at most 1%) and P95 latency (at most 500 ms) of a track, in each provider's language. */
function metricsOf(provider: Exclude<MetricsProviderName, 'prometheus'>): DeployConfig['analysis']['metrics'] {
  const where = '"namespace" = {{namespace}} AND "track" = {{track}} AND time > now() - {{window}}';
  const series = '{{namespace}}.api-gateway.{{track}}.*';
  const api = `${staging('DEMO_URL')}/api/metrics?namespace={{namespace}}&track={{track}}&window={{window}}`;
  const errorRate = { name: 'error-rate', max: 0.01 };
  const p95 = { name: 'p95-latency', max: 500, unit: 'ms' };
  switch (provider) {
    case 'influxdb':
      return [
        { ...errorRate, query: `SELECT sum("errors") / sum("requests") FROM "requests" WHERE ${where}` },
        { ...p95, query: `SELECT max("p95_latency_ms") FROM "requests" WHERE ${where}` },
      ];
    case 'graphite':
      return [
        { ...errorRate, query: `averageSeries(${series}.error_rate)` },
        { ...p95, query: `maxSeries(${series}.p95_latency_ms)` },
      ];
    case 'web':
      return [
        { ...errorRate, query: api, jsonPath: '$.errorRate' },
        { ...p95, query: api, jsonPath: '$.p95LatencyMs' },
      ];
  }
}

function withProvider(c: DeployConfig, provider: Exclude<MetricsProviderName, 'prometheus'>): DeployConfig {
  return {
    ...c,
    rollout: { ...c.rollout, canary: { ...c.rollout.canary, steps: [50, 100] } },
    analysis: {
      ...c.analysis,
      provider,
      window: '10s',
      influxdb: {
        url: staging('INFLUXDB_URL'),
        database: staging('INFLUXDB_DATABASE'),
        usernameEnv: 'INFLUXDB_USERNAME',
        passwordEnv: 'INFLUXDB_PASSWORD',
      },
      graphite: { url: staging('GRAPHITE_URL') },
      web: { headers: { 'X-Api-Key': 'DEMO_METRICS_API_KEY' } },
      metrics: metricsOf(provider),
    },
  };
}

afterAll(async () => {
  await sandboxCli('fault', '--env', 'staging', '--clear').catch(() => undefined);
  await sandboxCli('reset');
}, 180_000);

describe.each(['influxdb', 'graphite', 'web'] as const)('analysis through %s', (provider) => {
  let e2e: E2E;
  beforeAll(async () => {
    e2e = await startE2E({ config: (c) => withProvider(c, provider) });
  }, 180_000);
  afterAll(async () => {
    await e2e?.stop();
  }, 60_000);

  test('a canary answering half its requests with 500 fails the error rate and is rolled back', async () => {
    await sandboxCli('fault', '--env', 'staging', '--track', 'canary', '--error-rate', '0.5');
    try {
      const workflowId = `deploy-staging-1.0.1-${provider}-${Date.now()}`;
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
            canary: { soak: '30s', analysisInterval: '10s' },
          },
        ],
      });
      const result = await resultOf(handle.result());
      const canary = await resultOf(
        e2e.env.client.workflow.getHandle<() => Promise<CanaryResult>>(`${workflowId}-canary`).result(),
      );
      if (result.outcome !== 'rolled-back') console.error(JSON.stringify(canary.status.lastAnalysis, null, 2));
      expect(result.outcome).toBe('rolled-back');
      expect(result.reason).toContain('error-rate[canary]');
      const errorRate = canary.status.lastAnalysis?.measurements.find(
        (m) => m.metric === 'error-rate' && m.track === 'canary',
      );
      expect(errorRate).toMatchObject({ outcome: 'fail' });
      expect(errorRate?.value).toBeGreaterThan(0.2);
      // Stable, measured by the same provider, passed.
      expect(
        canary.status.lastAnalysis?.measurements.find((m) => m.metric === 'error-rate' && m.track === 'stable'),
      ).toMatchObject({ outcome: 'pass' });
      expect(await virtualServiceWeights('staging')).toEqual({ stable: 100, canary: 0 });
    } finally {
      await sandboxCli('fault', '--env', 'staging', '--clear');
    }
  }, 300_000);
});
