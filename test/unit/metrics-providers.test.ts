/**
 * The influxdb, graphite and web metrics providers without I/O: how each
 * query language is filled (a value can never change what a query selects),
 * how each backend's answer is classified (no data, several series, NaN,
 * ±Inf, non-numeric values and errors are never a value), and the config
 * schema's checks of their settings.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../../src/domain/config';
import { classifyGraphiteSamples, classifyGraphiteValue, renderGraphiteTarget } from '../../src/domain/graphite';
import {
  classifyInfluxSamples,
  classifyInfluxValue,
  influxStringLiteral,
  renderInfluxQuery,
} from '../../src/domain/influxql';
import { TemplateError } from '../../src/domain/metric-template';
import { classifyWebSamples, classifyWebValue, renderWebUrl } from '../../src/domain/web-metrics';
import {
  carbonLines,
  influxLines,
  startDemoServer,
  TrackFigures,
  type DemoServerHandle,
} from '../../scripts/sandbox/demo-server';
import { validateWeightsRequest } from '../../scripts/sandbox/demo-server/metrics-api';
import { REPO_ROOT } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

const target = { track: 'canary' as const, version: '1.0.1', namespace: 'ai-saas', window: '1m' };
const hostile = "x' OR track='stable\\\n";

describe('InfluxQL', () => {
  test('values become whole string literals that no quote, backslash or newline can leave', () => {
    expect(influxStringLiteral("it's")).toBe("'it\\'s'");
    expect(influxStringLiteral('a\\')).toBe("'a\\\\'");
    expect(influxStringLiteral('a\nb')).toBe("'a\\nb'");
    const q = renderInfluxQuery(
      'SELECT mean("p95") FROM "requests" WHERE "track" = {{track}} AND "version" = {{version}} AND time > now() - {{window}}',
      { ...target, version: hostile },
    );
    expect(q).toBe(
      `SELECT mean("p95") FROM "requests" WHERE "track" = 'canary' AND "version" = 'x\\' OR track=\\'stable\\\\\\n' AND time > now() - 1m`,
    );
  });

  test('{{step}} is filled for samples only; an unknown placeholder or missing version cannot be rendered', () => {
    expect(renderInfluxQuery('GROUP BY time({{step}})', { ...target, step: '10s' })).toBe('GROUP BY time(10s)');
    expect(() => renderInfluxQuery('time({{step}})', target)).toThrow(TemplateError);
    expect(() => renderInfluxQuery('{{host}}', target)).toThrow('unknown placeholder {{host}}');
    expect(() => renderInfluxQuery('{{version}}', { ...target, version: undefined })).toThrow(
      'the query uses {{version}} but the canary version is not known',
    );
    expect(() => renderInfluxQuery('x', { ...target, window: '1m; DROP' })).toThrow(TemplateError);
  });

  const answer = (series: unknown[]) => ({ results: [{ statement_id: 0, series }] });
  const one = (values: unknown[][], columns = ['time', 'mean']) => answer([{ name: 'requests', columns, values }]);

  test('one series, one row, one value column is a value; anything else is a reason', () => {
    expect(classifyInfluxValue(200, one([[1, 0.25]]))).toEqual({ kind: 'value', value: 0.25 });
    expect(classifyInfluxValue(200, { results: [{ statement_id: 0 }] })).toEqual({
      kind: 'none',
      reason: 'no data (no matching series in the window)',
    });
    expect(classifyInfluxValue(200, one([[1, null]]))).toMatchObject({
      kind: 'none',
      reason: expect.stringMatching(/null/),
    });
    expect(classifyInfluxValue(200, one([[1, 'high']]))).toMatchObject({ reason: 'not a number: "high"' });
    expect(
      classifyInfluxValue(
        200,
        one([
          [1, 1],
          [2, 2],
        ]),
      ),
    ).toMatchObject({ reason: expect.stringContaining('2 rows') });
    expect(classifyInfluxValue(200, one([[1, 1, 2]], ['time', 'a', 'b']))).toMatchObject({
      reason: expect.stringContaining('2 value columns'),
    });
    const two = answer([
      { name: 'r', columns: ['time', 'v'], values: [[1, 1]] },
      { name: 'r', columns: ['time', 'v'], values: [[1, 2]] },
    ]);
    expect(classifyInfluxValue(200, two)).toMatchObject({ reason: expect.stringContaining('2 series') });
    expect(classifyInfluxValue(200, two)).not.toHaveProperty('error');
  });

  test('errors of the server or the query are errors, told apart from no data', () => {
    expect(classifyInfluxValue(400, { error: 'error parsing query: found EOF' })).toEqual({
      kind: 'none',
      reason: 'query error: error parsing query: found EOF',
      error: true,
    });
    expect(classifyInfluxValue(200, { results: [{ statement_id: 0, error: 'database not found: x' }] })).toMatchObject({
      error: true,
    });
    expect(classifyInfluxValue(401, { error: 'authorization failed' })).toMatchObject({ error: true });
    expect(classifyInfluxValue(500, 'oops')).toMatchObject({ error: true });
  });

  test('samples are the numbers of the rows, oldest first, nulls left out', () => {
    expect(
      classifyInfluxSamples(
        200,
        one([
          [1, 0.1],
          [2, null],
          [3, 0.3],
        ]),
      ),
    ).toEqual({
      kind: 'samples',
      values: [0.1, 0.3],
    });
    expect(classifyInfluxSamples(200, one([[1, null]]))).toMatchObject({
      kind: 'none',
      reason: expect.stringMatching(/^no data/),
    });
  });
});

describe('Graphite', () => {
  test('values become path segments without separators, wildcards, braces or calls', () => {
    expect(renderGraphiteTarget('sumSeries({{namespace}}.api.{{track}}.{{version}}.errors)', target)).toBe(
      'sumSeries(ai-saas.api.canary.1_0_1.errors)',
    );
    expect(renderGraphiteTarget('a.{{version}}.b', { ...target, version: '*.x),{y}' })).toBe('a.__x___y_.b');
    expect(renderGraphiteTarget('summarize(a, "{{window}}", "avg")', { ...target, window: '5m' })).toBe(
      'summarize(a, "300s", "avg")',
    );
  });

  const series = (points: unknown[]) => [{ target: 't', datapoints: points.map((v, i) => [v, 1000 + i]) }];

  test('one value is the mean of the non-null datapoints; no series, several, only nulls are reasons', () => {
    expect(classifyGraphiteValue(200, series([null, 1, 2, null, 6]))).toEqual({ kind: 'value', value: 3 });
    expect(classifyGraphiteValue(200, [])).toEqual({ kind: 'none', reason: 'no data (no series matches the target)' });
    expect(classifyGraphiteValue(200, series([null, null]))).toMatchObject({
      reason: 'no data (no datapoint in the window)',
    });
    expect(classifyGraphiteValue(200, [...series([1]), ...series([2])])).toMatchObject({
      reason: expect.stringContaining('2 series'),
    });
    expect(classifyGraphiteValue(200, series([1, 'NaN']))).toMatchObject({ reason: 'not a number: "NaN"' });
    // A datapoint too large for a double parses as Infinity: a value that domain/analysis keeps inconclusive.
    expect(classifyGraphiteValue(200, JSON.parse('[{"datapoints":[[1e999,1]]}]'))).toEqual({
      kind: 'value',
      value: Infinity,
    });
  });

  test('an HTTP error or an answer that is not a list of series is an error', () => {
    expect(classifyGraphiteValue(400, { error: 'x' }, 'Unknown function foo')).toEqual({
      kind: 'none',
      reason: 'Graphite answered HTTP 400: Unknown function foo',
      error: true,
    });
    expect(classifyGraphiteValue(200, { not: 'a list' })).toMatchObject({ error: true });
  });

  test('samples are the finite non-null datapoints, oldest first', () => {
    expect(classifyGraphiteSamples(200, series([null, 3, 1, null]))).toEqual({ kind: 'samples', values: [3, 1] });
    expect(classifyGraphiteSamples(200, [])).toMatchObject({ kind: 'none' });
  });
});

describe('web', () => {
  test('values are URL-encoded: they can neither end a segment nor add a parameter', () => {
    expect(
      renderWebUrl('https://m.example/api?track={{track}}&v={{version}}&w={{window}}', {
        ...target,
        version: '1.0.1&track=stable#x',
      }),
    ).toBe('https://m.example/api?track=canary&v=1.0.1%26track%3Dstable%23x&w=1m');
    expect(renderWebUrl('https://m.example/{{namespace}}/x', { ...target, namespace: '../admin' })).toBe(
      'https://m.example/..%2Fadmin/x',
    );
    expect(renderWebUrl('https://m.example/q?from={{start}}&to={{end}}', { ...target, now: 1_700_000_000_999 })).toBe(
      'https://m.example/q?from=1699999940&to=1700000000',
    );
    expect(() => renderInfluxQuery('time > {{start}}', target)).toThrow("only filled in a web provider's URL");
    expect(() => renderWebUrl('{{namespace}}/x', target)).toThrow('not an absolute URL');
    expect(() => renderWebUrl('file:///etc/{{track}}', target)).toThrow('must be http(s)');
  });

  test('one value is exactly one number the JSONPath picked', () => {
    expect(classifyWebValue([0.5], '$.v')).toEqual({ kind: 'value', value: 0.5 });
    expect(classifyWebValue([], '$.v')).toEqual({ kind: 'none', reason: 'no data ($.v matched nothing)' });
    expect(classifyWebValue([null], '$.v')).toEqual({ kind: 'none', reason: 'no data ($.v is null)' });
    expect(classifyWebValue(['0.5'], '$.v')).toEqual({ kind: 'none', reason: '$.v is not a number: "0.5"' });
    expect(classifyWebValue([1, 2], '$..v')).toEqual({
      kind: 'none',
      reason: '$..v matched 2 values; it must match one',
    });
  });

  test('samples are one array or several matches, nulls and non-finite numbers left out', () => {
    expect(classifyWebSamples([[1, null, 2]], '$.h')).toEqual({ kind: 'samples', values: [1, 2] });
    expect(classifyWebSamples([1, 2, Infinity], '$.h[*].v')).toEqual({ kind: 'samples', values: [1, 2] });
    expect(classifyWebSamples([[1, 'x']], '$.h')).toMatchObject({
      kind: 'none',
      reason: expect.stringContaining('"x"'),
    });
    expect(classifyWebSamples([[]], '$.h')).toMatchObject({ kind: 'none', reason: expect.stringMatching(/^no data/) });
  });
});

describe('config: each provider with its settings', () => {
  const raw = () => parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8'));
  const load = (edit: (r: any) => void) => {
    const r = raw();
    edit(r);
    return parseConfig(r, 'deploy.config.yaml', {});
  };
  const metric = { name: 'error-rate', query: 'SELECT 1', max: 0.01 };

  test("every provider's example in docs/configuration.md is a valid analysis section", () => {
    const doc = readFileSync(path.join(REPO_ROOT, 'docs', 'configuration.md'), 'utf8');
    const examples = [...doc.matchAll(/```yaml\n(analysis:\n[\s\S]*?)```/g)].map((m) => parse(m[1]));
    expect(new Set(examples.map((e) => e.analysis.provider))).toEqual(
      new Set(['prometheus', 'influxdb', 'graphite', 'web']),
    );
    for (const example of examples) {
      const c = load((r) => {
        r.analysis = example.analysis;
        delete r.environments.staging.analysis;
      });
      expect(c.analysis.provider).toBe(example.analysis.provider);
    }
  });

  test('{{start}} and {{end}} are refused outside the web provider', () => {
    expect(() => load((r) => (r.analysis.metrics[0].query = 'rate(x[{{window}}]) @ {{end}}'))).toThrow(
      "analysis.metrics.0.query: {{start}} and {{end}} are filled in the web provider's URLs only, not with provider prometheus",
    );
  });

  test('prometheusUrl is required only with the prometheus provider', () => {
    expect(() => load((r) => delete r.analysis.prometheusUrl)).toThrow(
      'deploy.config.yaml: analysis.prometheusUrl: required when provider is prometheus',
    );
    const c = load((r) => {
      delete r.analysis.prometheusUrl;
      delete r.environments.staging.analysis;
      r.analysis.provider = 'graphite';
      r.analysis.graphite = { url: 'http://127.0.0.1:8280' };
    });
    expect(c.analysis.graphite).toEqual({ url: 'http://127.0.0.1:8280' });
  });

  test("each provider needs its own section, and an environment's override is held to it", () => {
    expect(() => load((r) => (r.analysis.provider = 'influxdb'))).toThrow(
      'analysis.influxdb: required when provider is influxdb',
    );
    expect(() =>
      load((r) => {
        r.analysis.provider = 'influxdb';
        r.analysis.influxdb = { url: 'http://127.0.0.1:8086', database: 'm', usernameEnv: 'INFLUX_USER' };
      }),
    ).toThrow('analysis.influxdb.usernameEnv: give both usernameEnv and passwordEnv, or neither');
    expect(() => load((r) => (r.environments.staging.analysis = { provider: 'graphite' }))).toThrow(
      'environments.staging.analysis.graphite: required when provider is graphite',
    );
  });

  test('the web provider needs URL templates and a jsonPath per metric; headers name variables', () => {
    const web = (m: object, headers: object = { 'DD-API-KEY': 'DATADOG_API_KEY' }) =>
      load((r) => {
        r.analysis = { provider: 'web', web: { headers }, metrics: [{ ...metric, ...m }] };
        delete r.environments.staging.analysis;
      });
    expect(() => web({})).toThrow('analysis.metrics.0.query: with provider web, an http(s) URL template');
    expect(() => web({ query: 'https://api.example/q?t={{track}}' })).toThrow(
      'analysis.metrics.0.jsonPath: required with provider web',
    );
    expect(() => web({ query: 'https://a.example/q', jsonPath: '$.v' }, { 'DD-API-KEY': 'abc123secret' })).toThrow(
      'analysis.web.headers.DD-API-KEY: an environment variable name',
    );
    const c = web({ query: 'https://a.example/q?t={{track}}', jsonPath: '$.v', samplesJsonPath: '$.h[*]' });
    expect(c.analysis.web).toEqual({ headers: { 'DD-API-KEY': 'DATADOG_API_KEY' } });
    expect(() =>
      web({ query: 'https://a.example/q', jsonPath: '$.v', samplesQuery: 'https://a.example/{{host}}' }),
    ).toThrow('analysis.metrics.0.samplesQuery: placeholders must be');
    // A compare metric reads samples: it needs their JSONPath.
    expect(() =>
      web({ query: 'https://a.example/q?t={{track}}', jsonPath: '$.v', kind: 'compare', max: undefined }),
    ).toThrow('analysis.metrics.0.samplesJsonPath: required for a compare metric with provider web');
    expect(
      web({
        query: 'https://a.example/q?t={{track}}',
        jsonPath: '$.v',
        samplesJsonPath: '$.h[*]',
        kind: 'compare',
        max: undefined,
      }).analysis.metrics[0].kind,
    ).toBe('compare');
  });
});

describe('the demo server’s figures for InfluxDB, Carbon and its JSON endpoint', () => {
  test('each interval gives per-track, per-version counts, error rate and P95, written as line protocol and Carbon lines', () => {
    const f = new TrackFigures();
    for (let i = 1; i <= 20; i++) f.record('canary', '1.0.1', i <= 5 ? 500 : 200, i / 100);
    const [closed] = f.flush(2000);
    expect(closed).toEqual({
      at: 2000,
      track: 'canary',
      version: '1.0.1',
      requests: 20,
      errors: 5,
      errorRate: 0.25,
      p95LatencyMs: 190,
    });
    const id = { namespace: 'ai-saas', service: 'api gateway' };
    expect(influxLines(id, [closed])).toEqual([
      'requests,namespace=ai-saas,service=api\\ gateway,track=canary,version=1.0.1 requests=20i,errors=5i,error_rate=0.25,p95_latency_ms=190 2000',
    ]);
    expect(carbonLines(id, [closed])).toContain('ai-saas.api_gateway.canary.1_0_1.error_rate 0.25 2');
    expect(f.flush(4000)).toEqual([]);
    expect(f.window('canary', 10_000, 4000)).toMatchObject({ requests: 20, errorRate: 0.25, history: [{ at: 2000 }] });
    expect(f.window('stable', 10_000, 4000)).toMatchObject({ requests: 0, errorRate: null, p95LatencyMs: null });
  });

  test('the canary weight is pinned for a bounded time only', () => {
    expect(validateWeightsRequest({ canary: 50, seconds: 30 })).toEqual({
      ok: true,
      value: { kind: 'pin', weights: { stable: 50, canary: 50 }, seconds: 30 },
    });
    expect(validateWeightsRequest({ canary: 50, seconds: 3600 })).toMatchObject({ ok: false });
    expect(validateWeightsRequest({ canary: 150 })).toMatchObject({ ok: false });
    expect(validateWeightsRequest({ clear: true })).toEqual({ ok: true, value: { kind: 'clear' } });
  });
});

describe('the demo server’s GET /api/metrics and POST /__sandbox/weights', () => {
  let server: DemoServerHandle;
  let base: string;
  beforeAll(async () => {
    server = await startDemoServer({ port: 0, rps: 200, metricsApiKey: 'test-key', log: () => undefined });
    base = `http://127.0.0.1:${server.port}`;
  });
  afterAll(() => server.close());

  const figures = async (query: string, key = 'test-key') => {
    const r = await fetch(`${base}/api/metrics?${query}`, { headers: { 'x-api-key': key } });
    return { status: r.status, body: (await r.json()) as Record<string, any> };
  };
  const pin = (body: unknown) =>
    fetch(`${base}/__sandbox/weights`, { method: 'POST', body: JSON.stringify(body) }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as Record<string, unknown>,
    }));

  test('a pin sends the canary track traffic until it ends; its figures are served to the key holder only', async () => {
    expect((await figures('track=canary&window=10s', 'wrong')).status).toBe(401);
    expect((await pin({ canary: 100, seconds: 3600 })).status).toBe(400);
    expect(await pin({ canary: 100, seconds: 2 })).toEqual({
      status: 200,
      body: { weights: { stable: 0, canary: 100 }, weightsPinned: true },
    });
    const canary = await waitFor(async () => {
      const f = await figures('track=canary&window=10s');
      return f.body.requests > 0 ? f.body : undefined;
    }, 8000);
    expect(canary).toMatchObject({ namespace: 'ai-saas', track: 'canary', errorRate: 0, history: [expect.anything()] });
    expect(canary.p95LatencyMs).toBeGreaterThan(20);
    expect((await figures('track=canary&window=10s&namespace=elsewhere')).body).toMatchObject({
      requests: 0,
      errorRate: null,
      p95LatencyMs: null,
    });
    const ended = await waitFor(async () => {
      const state = (await (await fetch(`${base}/__sandbox/state`)).json()) as Record<string, unknown>;
      return state.weightsPinned === false ? state : undefined;
    }, 5000);
    expect(ended.weights).toEqual({ stable: 100, canary: 0 });
  }, 20_000);
});
