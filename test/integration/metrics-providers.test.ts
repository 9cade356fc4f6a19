/**
 * The metrics providers against the sandbox's real backends (staging's): InfluxDB 1.x
 * and Graphite (carbon-cache + graphite-web), fed every 2 s by the demo
 * server's synthetic traffic, the demo server's own JSON endpoint for the web
 * provider, and Prometheus. Then the analysis activity end to end per
 * provider: a fault on the canary track fails the canary's run, and a target
 * with no series is inconclusive.
 *
 * The sandbox is shared: the canary track gets traffic through the demo
 * server's sandbox-only weight pin (POST /__sandbox/weights, which ends by
 * itself), and the pin and the fault are cleared after.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { analysisActivities, createMetricsProvider } from '../../src/activities/analysis';
import type { AnalysisConfig } from '../../src/activities/analysis';
import type { AnalysisRequest } from '../../src/activities/contracts';
import type { DeployConfig, MetricConfig } from '../../src/domain/config';
import type { MetricsProviderName } from '../../src/domain/analysis';
import { compareSettingsSchema } from '../../src/domain/config-metric-rules';
import type { AnalysisRun } from '../../src/domain/status';
import { loadConfig } from '../../src/load-config';
import { sandboxEnv, sandboxVar, sandboxVarOf } from '../helpers/sandbox';
import { REPO_ROOT } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

/**
 * Staging's backends and demo server: the suites that run deployments and
 * restart demo servers mostly use production's, and this file pins the
 * canary weight and injects a canary fault for a few seconds.
 */
const ENVIRONMENT = 'staging';
const envVar = (name: string) => sandboxVarOf(ENVIRONMENT, name);
const NS = 'ai-saas';
const WINDOW = '10s';
const env = () => sandboxEnv();
const baseConfig = (): DeployConfig => loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), env());

/** The same two figures of a track for every provider: its error rate (at most 1%) and its P95 latency (at most 500 ms). */
function metricsFor(provider: MetricsProviderName): MetricConfig[] {
  const where = '"namespace" = {{namespace}} AND "track" = {{track}} AND time > now() - {{window}}';
  const path = '{{namespace}}.api-gateway.{{track}}.*';
  const api = `${envVar('DEMO_URL')}/api/metrics?namespace={{namespace}}&track={{track}}&window={{window}}`;
  const errorRate = { name: 'error-rate', max: 0.01 };
  const p95 = { name: 'p95-latency', max: 500, unit: 'ms' };
  switch (provider) {
    case 'prometheus': {
      const [e, p] = baseConfig().analysis.metrics;
      return [e, p];
    }
    case 'influxdb':
      return [
        {
          ...errorRate,
          query: `SELECT sum("errors") / sum("requests") FROM "requests" WHERE ${where}`,
          samplesQuery: `SELECT sum("errors") / sum("requests") FROM "requests" WHERE ${where} GROUP BY time({{step}})`,
        },
        {
          ...p95,
          query: `SELECT max("p95_latency_ms") FROM "requests" WHERE ${where}`,
          samplesQuery: `SELECT max("p95_latency_ms") FROM "requests" WHERE ${where} GROUP BY time({{step}})`,
        },
      ];
    case 'graphite':
      return [
        { ...errorRate, query: `averageSeries(${path}.error_rate)` },
        { ...p95, query: `maxSeries(${path}.p95_latency_ms)` },
      ];
    case 'web':
      return [
        { ...errorRate, query: api, jsonPath: '$.errorRate', samplesJsonPath: '$.history[*].errorRate' },
        { ...p95, query: api, jsonPath: '$.p95LatencyMs', samplesJsonPath: '$.history[*].p95LatencyMs' },
      ];
  }
}

function analysisFor(provider: MetricsProviderName, over: Partial<AnalysisConfig> = {}): AnalysisConfig {
  const base = baseConfig().analysis;
  return {
    ...base,
    provider,
    prometheusUrl: envVar('PROMETHEUS_URL'),
    influxdb: {
      url: envVar('INFLUXDB_URL'),
      database: envVar('INFLUXDB_DATABASE'),
      usernameEnv: 'INFLUXDB_USERNAME',
      passwordEnv: 'INFLUXDB_PASSWORD',
    },
    graphite: { url: envVar('GRAPHITE_URL') },
    web: { headers: { 'X-Api-Key': 'DEMO_METRICS_API_KEY' } },
    metrics: metricsFor(provider),
    queryTimeout: 5000,
    ...over,
  };
}

/** The worker's environment as the providers see it: only the variables the config names. */
const workerEnv = () => ({
  DEMO_METRICS_API_KEY: sandboxVar('DEMO_METRICS_API_KEY'),
  INFLUXDB_USERNAME: sandboxVar('INFLUXDB_USERNAME'),
  INFLUXDB_PASSWORD: sandboxVar('INFLUXDB_PASSWORD'),
});

function provider(
  name: MetricsProviderName,
  over: Partial<AnalysisConfig> = {},
  penv: Record<string, string | undefined> = workerEnv(),
) {
  return createMetricsProvider({ analysis: analysisFor(name, over), env: penv });
}

const stable = { track: 'stable' as const, version: '1.0.0', namespace: NS, window: WINDOW };

async function demoControl(p: string, body: unknown): Promise<void> {
  const r = await fetch(`${envVar('DEMO_URL')}${p}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${p}: HTTP ${r.status} ${await r.text()}`);
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const NEW_PROVIDERS = ['influxdb', 'graphite', 'web'] as const;

describe.each(NEW_PROVIDERS)('%s against its real backend', (name) => {
  test('measure and samples return the numbers the demo server fed it', async () => {
    const p = provider(name);
    const [errorRate, p95] = metricsFor(name);
    const got = await waitFor(
      async () => {
        const e = await p.measure(errorRate, stable);
        const l = await p.measure(p95, stable);
        const s = await p.samples(p95, { ...stable, step: '2s' });
        return e.kind === 'value' && l.kind === 'value' && s.kind === 'samples' && s.values.length >= 2
          ? { e, l, s }
          : undefined;
      },
      30_000,
      1000,
    );
    // Clean traffic: 20-120 ms of latency, no errors unless another test has a fault on stable right now.
    expect(got.e.kind === 'value' && got.e.value).toBeGreaterThanOrEqual(0);
    expect(got.l.kind === 'value' && got.l.value).toBeGreaterThan(10);
    expect(got.s.kind === 'samples' && got.s.values.every((v) => v > 10 && Number.isFinite(v))).toBe(true);
  }, 45_000);

  test('a namespace with no series is no data, not an error', async () => {
    const p = provider(name);
    const got = await p.measure(metricsFor(name)[0], { ...stable, namespace: 'no-such-namespace' });
    expect(got).toMatchObject({ kind: 'none', reason: expect.stringMatching(/no data/) });
    expect(got).not.toHaveProperty('error');
    expect(
      await p.samples(metricsFor(name)[0], { ...stable, namespace: 'no-such-namespace', step: '2s' }),
    ).toMatchObject({ kind: 'none', reason: expect.stringMatching(/no data/) });
  });

  test('an unreachable server and one that does not answer in time are errors, never a throw', async () => {
    const silent = createServer(() => undefined);
    const port = await listen(silent);
    const closed = createServer();
    const closedPort = await listen(closed);
    await new Promise<void>((r) => closed.close(() => r()));
    try {
      for (const [url, reason] of [
        [`http://127.0.0.1:${closedPort}`, /unreachable: connection refused/],
        [`http://127.0.0.1:${port}`, /unreachable: no answer within 300 ms/],
      ] as const) {
        const metric = metricsFor(name)[0];
        const p = provider(name, { queryTimeout: 300, influxdb: { url, database: 'ai_saas' }, graphite: { url } });
        // The web provider's server is in the metric's URL.
        const m = name === 'web' ? { ...metric, query: `${url}/api/metrics?track={{track}}` } : metric;
        expect(await p.measure(m, stable)).toMatchObject({ kind: 'none', reason, error: true });
        expect(await p.samples(m, { ...stable, step: '2s' })).toMatchObject({ kind: 'none', reason, error: true });
      }
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});

describe('what a backend answers that is not one value', () => {
  test('InfluxDB: several rows or columns, a bad query, an unknown database', async () => {
    const p = provider('influxdb');
    const where = `FROM "requests" WHERE "track" = {{track}} AND time > now() - {{window}}`;
    const m = (query: string): MetricConfig => ({ name: 'm', query });
    await waitFor(async () => (await p.measure(m(`SELECT max("requests") ${where}`), stable)).kind === 'value', 20_000);
    expect(await p.measure(m(`SELECT "requests" ${where}`), stable)).toMatchObject({
      kind: 'none',
      reason: expect.stringMatching(/returned \d+ rows; it must return one/),
    });
    expect(await p.measure(m(`SELECT max("requests"), max("errors") ${where}`), stable)).toMatchObject({
      reason: expect.stringContaining('2 value columns'),
    });
    expect(await p.measure(m(`SELEKT nothing`), stable)).toMatchObject({
      reason: expect.stringMatching(/^query error: error parsing query/),
      error: true,
    });
    const other = provider('influxdb', {
      influxdb: { ...analysisFor('influxdb').influxdb!, database: 'no_such_db' },
    });
    expect(await other.measure(m(`SELECT max("requests") ${where}`), stable)).toMatchObject({
      reason: expect.stringContaining('database not found'),
      error: true,
    });
    // A version with a quote is one literal: it matches no series, it does not widen the query.
    const quoted = `SELECT max("requests") FROM "requests" WHERE "version" = {{version}} AND time > now() - {{window}}`;
    expect(await p.measure(m(quoted), { ...stable, version: "x' OR 'a'='a" })).toMatchObject({
      reason: expect.stringMatching(/^no data/),
    });
  }, 30_000);

  test('InfluxDB: credentials come from the variables the config names, and never show', async () => {
    const password = sandboxVar('INFLUXDB_PASSWORD');
    const m: MetricConfig = {
      name: 'm',
      query: 'SELECT max("requests") FROM "requests" WHERE time > now() - {{window}}',
    };
    const wrong = provider('influxdb', {}, { ...workerEnv(), INFLUXDB_PASSWORD: `${password}x` });
    const refused = await wrong.measure(m, stable);
    expect(refused).toEqual({ kind: 'none', reason: 'query error: authorization failed', error: true });
    const unset = provider('influxdb', {}, { INFLUXDB_USERNAME: 'sandbox' });
    expect(await unset.measure(m, stable)).toEqual({
      kind: 'none',
      reason: 'InfluxDB credentials: INFLUXDB_PASSWORD not set',
      error: true,
    });
    const anonymous = provider('influxdb', { influxdb: { url: envVar('INFLUXDB_URL'), database: 'ai_saas' } });
    expect(await anonymous.measure(m, stable)).toMatchObject({
      reason: expect.stringMatching(/^query error: /),
      error: true,
    });
    for (const r of [refused, await unset.measure(m, stable)]) expect(JSON.stringify(r)).not.toContain(password);
  });

  test('Graphite: several series, an unknown function', async () => {
    const p = provider('graphite');
    const m = (query: string): MetricConfig => ({ name: 'm', query });
    await waitFor(
      async () => (await p.measure(m(`sumSeries(${NS}.api-gateway.stable.*.requests)`), stable)).kind === 'value',
      20_000,
    );
    expect(await p.measure(m(`${NS}.api-gateway.stable.*.*`), stable)).toMatchObject({
      kind: 'none',
      reason: expect.stringMatching(/the target returned \d+ series; it must return one/),
    });
    expect(await p.measure(m('noSuchFunction(a.b)'), stable)).toMatchObject({
      reason: expect.stringMatching(/^Graphite answered HTTP 400/),
      error: true,
    });
  }, 30_000);

  test('web: a value that is not a number, a refused key, a missing variable; the key never shows', async () => {
    const key = sandboxVar('DEMO_METRICS_API_KEY');
    const url = `${envVar('DEMO_URL')}/api/metrics?track={{track}}&window={{window}}`;
    const p = provider('web');
    expect(await p.measure({ name: 'm', query: url, jsonPath: '$.service' }, stable)).toEqual({
      kind: 'none',
      reason: '$.service is not a number: "api-gateway"',
    });
    expect(await p.measure({ name: 'm', query: url, jsonPath: '$.history[*].requests' }, stable)).toMatchObject({
      reason: expect.stringMatching(/matched \d+ values; it must match one/),
    });
    const wrong = provider('web', {}, { DEMO_METRICS_API_KEY: `${key}-wrong` });
    const refused = await wrong.measure({ name: 'm', query: url, jsonPath: '$.errorRate' }, stable);
    expect(refused).toMatchObject({
      reason: expect.stringMatching(/^the metrics endpoint answered HTTP 401/),
      error: true,
    });
    expect(JSON.stringify(refused)).not.toContain(key);
    const unset = provider('web', {}, {});
    expect(await unset.measure({ name: 'm', query: url, jsonPath: '$.errorRate' }, stable)).toEqual({
      kind: 'none',
      reason: 'header X-Api-Key: environment variable DEMO_METRICS_API_KEY is not set',
      error: true,
    });
  });
});

describe('the analysis end to end per provider, on the canary track', () => {
  const req = (over: Partial<AnalysisRequest> = {}): AnalysisRequest => ({
    workflowId: 'metrics-providers-test',
    namespace: NS,
    version: '1.0.1',
    weight: 50,
    tracks: ['canary'],
    window: WINDOW,
    ...over,
  });
  const run = (name: MetricsProviderName, r: AnalysisRequest, metrics?: MetricConfig[]) =>
    analysisActivities({
      config: { ...baseConfig(), analysis: analysisFor(name, metrics ? { metrics } : {}) },
      env: workerEnv(),
      log: { info: () => undefined, warn: () => undefined },
    }).runAnalysis(r);

  beforeAll(async () => {
    // No deployment needed: the demo server sends half its traffic to the canary track for a while.
    await demoControl('/__sandbox/weights', { canary: 50, seconds: 120 });
    await demoControl('/__sandbox/fault', { track: 'canary', errorRate: 0.5, latencyMs: 800 });
  });
  afterAll(async () => {
    await demoControl('/__sandbox/fault', { clear: true });
    await demoControl('/__sandbox/weights', { clear: true });
  });

  test.each(['prometheus', ...NEW_PROVIDERS] as const)(
    '%s: a fault on the canary fails its run; a target with no series is inconclusive',
    async (name) => {
      const failed: AnalysisRun = await waitFor(
        async () => {
          const r = await run(name, req());
          return r.measurements.every((m) => m.outcome === 'fail') ? r : undefined;
        },
        40_000,
        1000,
      );
      expect(failed.outcome).toBe('fail');
      expect(failed.measurements).toEqual([
        expect.objectContaining({ metric: 'error-rate', track: 'canary', reason: expect.stringMatching(/ > 0\.01$/) }),
        expect.objectContaining({
          metric: 'p95-latency',
          track: 'canary',
          reason: expect.stringMatching(/ ms > 500 ms$/),
        }),
      ]);

      // Prometheus' series carry no namespace: its target with no series is a version nobody runs.
      const noData =
        name === 'prometheus'
          ? await run(
              name,
              req({ version: '0.0.0-no-series' }),
              metricsFor(name).map((m) => ({
                ...m,
                query: m.query.split('track="{{track}}"').join('track="{{track}}",version="{{version}}"'),
              })),
            )
          : await run(name, req({ namespace: 'no-such-namespace' }));
      expect(noData.outcome).toBe('inconclusive');
      expect(noData.measurements.map((m) => [m.outcome, m.value])).toEqual([
        ['inconclusive', null],
        ['inconclusive', null],
      ]);
    },
    50_000,
  );

  test.each(NEW_PROVIDERS)(
    "%s: a compare metric judges the canary's latency samples against stable's, and fails it",
    async (name) => {
      const compare: MetricConfig = {
        ...metricsFor(name)[1],
        name: 'p95-vs-stable',
        kind: 'compare',
        compare: compareSettingsSchema.parse({ step: '2s', minSamples: 4 }),
      };
      delete compare.max;
      const r = await waitFor(
        async () => {
          const run = await analysisActivities({
            config: { ...baseConfig(), analysis: analysisFor(name, { metrics: [compare] }) },
            env: workerEnv(),
            log: { info: () => undefined, warn: () => undefined },
          }).runAnalysis(req({ tracks: ['canary', 'stable'], window: '20s' }));
          return run.measurements[0]?.outcome === 'fail' ? run : undefined;
        },
        30_000,
        1000,
      );
      expect(r.measurements[0]).toMatchObject({ metric: 'p95-vs-stable', track: 'canary', outcome: 'fail' });
    },
    40_000,
  );
});
