/** The product's metric names, labels and the worker's /metrics address (src/domain/metric-names.ts, listen-address.ts). */
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import * as path from 'node:path';
import { parse } from 'yaml';
import { ConfigError, parseConfig } from '../../src/domain/config';
import { parseListenAddress } from '../../src/domain/listen-address';
import { counterSeries, METRIC, METRIC_BUCKETS, METRIC_HELP, stepKind } from '../../src/domain/metric-names';
import { headline } from '../../src/domain/notification';
import { installMetricsRuntime } from '../../src/worker-metrics';
import { REPO_ROOT } from '../helpers/tools';

describe('stepKind: a bounded label for a step', () => {
  test.each([
    ['traffic 25%', 'traffic'],
    ['traffic 100%', 'traffic'],
    ['images to 1.2.3', 'images to'],
    ['images to 1.2.3-rc.1', 'images to'],
    ['update images (region-a, wave 2)', 'update images'],
    ['wait for rollout (production-b, wave 1)', 'wait for rollout'],
    ['undo auth-service to revision 4', 'undo auth-service to revision'],
    ['pause before 50%', 'pause before'],
    ['build and push images', 'build and push images'],
    ['deploy to staging', 'deploy to staging'],
    ['12', 'step'],
  ])('%s → %s', (name, kind) => expect(stepKind(name)).toBe(kind));
});

test('every metric has help text; histograms have buckets in increasing order; names follow Prometheus conventions', () => {
  for (const name of Object.values(METRIC)) {
    expect(METRIC_HELP[name]).toMatch(/\S/);
    expect(name).toMatch(/^deploy_[a-z_]+$/);
  }
  for (const [name, buckets] of Object.entries(METRIC_BUCKETS)) {
    expect(name).toMatch(/_seconds$/);
    expect([...buckets].sort((a, b) => a - b)).toEqual(buckets);
    expect(new Set(buckets).size).toBe(buckets.length);
  }
  const counters = Object.values(METRIC).filter((n) => n.endsWith('_total'));
  expect(counters.length).toBeGreaterThanOrEqual(7);
});

test('the counters a worker starts at 0 cover every environment, strategy and outcome, and nothing twice', () => {
  const series = counterSeries(['staging', 'production']);
  const keys = series.map((s) => `${s.name}${JSON.stringify(s.labels)}${s.workflowType}`);
  expect(new Set(keys).size).toBe(keys.length);
  const finished = series.filter((s) => s.name === METRIC.deploymentsFinished);
  expect(finished).toHaveLength(2 * 3 * 4 * 2);
  expect(finished.every((s) => s.workflowType === 'deployWorkflow')).toBe(true);
  expect(series).toContainEqual({
    name: METRIC.rollbacks,
    workflowType: 'rollbackWorkflow',
    labels: { environment: 'production', kind: 'manual', outcome: 'rolled-back' },
  });
  expect(series).toContainEqual({
    name: METRIC.freezes,
    workflowType: 'freezeWorkflow',
    labels: { environment: 'staging', action: 'unfreeze' },
  });
  expect(counterSeries([])).toEqual([]);
});

describe('the /metrics listen address', () => {
  test('host:port on loopback, all addresses, localhost; off and empty serve none', () => {
    expect(parseListenAddress('127.0.0.1:9464')).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(parseListenAddress('0.0.0.0:80')).toEqual({ host: '0.0.0.0', port: 80 });
    expect(parseListenAddress('localhost:9100')).toEqual({ host: 'localhost', port: 9100 });
    expect(parseListenAddress('off')).toBeUndefined();
    expect(parseListenAddress('')).toBeUndefined();
  });

  test.each([
    ['9464', /not host:port/],
    ['127.0.0.1:0', /outside 1-65535/],
    ['127.0.0.1:70000', /outside 1-65535/],
    ['256.0.0.1:9464', /not an IPv4 address/],
    ['example.com:9464', /not an IPv4 address or localhost/],
    ['127.0.0.1:9464; rm -rf /', /not host:port/],
  ])('%s is refused with a line that says what is wanted', (text, message) => {
    expect(() => parseListenAddress(text)).toThrow(message);
  });

  test('the config defaults to loopback for both workers, and refuses a bad address naming the field', () => {
    const raw = parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8')) as {
      temporal: Record<string, unknown>;
    };
    delete raw.temporal.metricsAddress;
    delete raw.temporal.ioMetricsAddress;
    const config = parseConfig(raw, 'deploy.config.yaml', {});
    expect(config.temporal.metricsAddress).toBe('127.0.0.1:9464');
    expect(config.temporal.ioMetricsAddress).toBe('127.0.0.1:9465');
    raw.temporal.metricsAddress = 'everywhere';
    expect(() => parseConfig(raw, 'deploy.config.yaml', {})).toThrow(/temporal\.metricsAddress.*not host:port/);
  });
});

test('a freeze notification names the environment, not a version', () => {
  const base = { workflowId: 'deploy-freeze-production', environment: 'production', version: '', text: 'x' };
  expect(headline({ ...base, kind: 'frozen' })).toBe('Environment frozen: production');
  expect(headline({ ...base, kind: 'unfrozen' })).toBe('Environment unfrozen: production');
});

describe('installMetricsRuntime', () => {
  test('a taken port is a one-line config error naming where the address came from, before the SDK binds', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      await expect(installMetricsRuntime(`127.0.0.1:${port}`, 'DEPLOY_METRICS_ADDRESS')).rejects.toThrow(
        new ConfigError(
          `DEPLOY_METRICS_ADDRESS: cannot serve /metrics on 127.0.0.1:${port} (EADDRINUSE): another worker or exporter has it; give this one another host:port, or off`,
        ),
      );
    } finally {
      server.close();
    }
  });

  test('off serves nothing; a bad address names its source', async () => {
    await expect(installMetricsRuntime('off', 'temporal.metricsAddress')).resolves.toBeUndefined();
    await expect(installMetricsRuntime('nowhere', 'temporal.metricsAddress')).rejects.toThrow(
      /^temporal\.metricsAddress: "nowhere" is not host:port/,
    );
  });
});
