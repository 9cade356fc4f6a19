/**
 * Verification and canary analysis against the real sandbox: the demo
 * platform's health and smoke endpoints (and its fault injection), the
 * Kubernetes API as the worker's least-privilege ServiceAccount, PostgreSQL,
 * Redis and Prometheus scraping the demo's traffic.
 *
 * The sandbox is shared: every fault this file injects is cleared in a
 * finally block, and checks that depend on traffic poll with a deadline.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as path from 'node:path';
import { Client } from 'pg';
import type { Logger } from '../../src/activities/runtime';
import { verifyActivities, type PodReader, LogsUnavailable } from '../../src/activities/verify';
import { tallyRun } from '../../src/domain/analysis';
import type { DeployConfig } from '../../src/domain/config';
import type { Activities, AnalysisRequest } from '../../src/activities/contracts';
import type { AnalysisRun } from '../../src/domain/status';
import { loadConfig } from '../../src/load-config';
import { sandboxEnv, sandboxVar } from '../helpers/sandbox';
import { REPO_ROOT } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

const env = () => sandboxEnv();
const baseConfig = (): DeployConfig => loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), env());
const NS = 'ai-saas';
const WINDOW = '10s';

/** Collects log lines so tests can assert that secrets never reach them. */
function recordingLogger(): Logger & { text: () => string } {
  const lines: string[] = [];
  return {
    info: (m, meta) => lines.push(`${m} ${JSON.stringify(meta ?? {})}`),
    warn: (m, meta) => lines.push(`${m} ${JSON.stringify(meta ?? {})}`),
    text: () => lines.join('\n'),
  };
}

function acts(
  over: { config?: DeployConfig; env?: Record<string, string | undefined>; log?: Logger; pods?: PodReader } = {},
) {
  // The workflows' contract: these activities must keep its signatures.
  const typed: Pick<
    Activities,
    'checkHealth' | 'runSmokeChecks' | 'podRestarts' | 'checkKubernetesHealth' | 'checkPlatformHealth' | 'analyzeCanary'
  > = verifyActivities({ config: over.config ?? baseConfig(), env: over.env ?? env() });
  void typed;
  return verifyActivities({
    config: over.config ?? baseConfig(),
    env: over.env ?? env(),
    log: over.log ?? recordingLogger(),
    ...(over.pods ? { pods: over.pods } : {}),
  });
}

async function demoControl(p: string, body: unknown): Promise<void> {
  const r = await fetch(`${sandboxVar('DEMO_URL')}${p}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${p}: HTTP ${r.status} ${await r.text()}`);
}

async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

const secretsOf = () => [
  sandboxVar('SMOKE_PASSWORD'),
  new URL(sandboxVar('DATABASE_URL')).password,
  sandboxVar('AWS_SECRET_ACCESS_KEY'),
];
const expectNoSecrets = (text: string) => {
  for (const s of secretsOf()) expect(text).not.toContain(s);
};

/**
 * True when the canary track gets no traffic now and got none in the last
 * 30 s (longer than the analysis window): other tests may run a canary on the
 * shared sandbox, and while they do the canary track legitimately passes.
 */
async function canaryIdle(): Promise<boolean> {
  const state = (await (await fetch(`${sandboxVar('DEMO_URL')}/__sandbox/state`)).json()) as {
    weights: { canary: number };
  };
  if (state.weights.canary !== 0) return false;
  const q = encodeURIComponent('sum(increase(http_requests_total{track="canary"}[30s]))');
  const r = (await (await fetch(`${sandboxVar('PROMETHEUS_URL')}/api/v1/query?query=${q}`)).json()) as {
    data: { result: { value: [number, string] }[] };
  };
  return r.data.result.length === 0 || Number(r.data.result[0].value[1]) === 0;
}

// ---------------------------------------------------------------------------

const WF = 'verify-test';

describe('health', () => {
  test('the demo answers 200 {"status":"ok"}', async () => {
    const r = await acts().checkHealth({ workflowId: WF });
    expect(r).toMatchObject({ ok: true, status: 200, url: `${sandboxVar('DEMO_URL')}/health` });
    expect(r.lines).toEqual([
      expect.stringMatching(/^GET http:\/\/127\.0\.0\.1:\d+\/health: 200 \{"status":"ok"\} in \d+ ms$/),
    ]);
  });

  test('a failing health endpoint fails with what came back', async () => {
    try {
      await demoControl('/__sandbox/health', { fail: true, reason: 'verify test: disk full' });
      const r = await acts().checkHealth({ workflowId: WF });
      expect(r).toMatchObject({ ok: false, status: 503, body: expect.stringContaining('degraded') });
      expect(r.lines).toEqual([
        expect.stringMatching(/\/health: failed: expected 200 \{"status":"ok"\}, got 503 .*verify test: disk full/),
      ]);
    } finally {
      await demoControl('/__sandbox/health', { fail: false });
    }
    expect((await acts().checkHealth({ workflowId: WF })).ok).toBe(true);
  });

  test('connection refused and timeouts say so', async () => {
    const port = await closedPort();
    const refused = await acts().checkHealth({ workflowId: WF, baseUrl: `http://127.0.0.1:${port}` });
    expect(refused).toMatchObject({ ok: false, status: null, reason: expect.stringContaining('connection refused') });

    const silent = createServer(() => undefined); // accepts, never answers
    const silentPort = await listen(silent);
    try {
      const config = baseConfig();
      config.verification.timeout = 300;
      const started = Date.now();
      const r = await acts({ config }).checkHealth({ workflowId: WF, baseUrl: `http://127.0.0.1:${silentPort}` });
      expect(r).toMatchObject({ ok: false, reason: 'no answer within 300 ms' });
      expect(Date.now() - started).toBeLessThan(3000);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  test('a base URL from input must be http(s)', async () => {
    await expect(acts().checkHealth({ workflowId: WF, baseUrl: 'file:///etc/passwd' })).rejects.toMatchObject({
      type: 'InvalidInput',
      nonRetryable: true,
    });
  });
});

describe('smoke checks (runbook: sign in -> data.token -> GET /api/chat/conversations)', () => {
  test('pass on the demo, each with status and latency; no secret is logged or returned', async () => {
    const log = recordingLogger();
    const r = await acts({ log }).runSmokeChecks({ workflowId: WF });
    expect(r.ok).toBe(true);
    expect(r.checks.map((c) => [c.name, c.method, c.outcome, c.status])).toEqual([
      ['sign in', 'POST', 'pass', 200],
      ['list conversations', 'GET', 'pass', 200],
    ]);
    expect(r.checks.every((c) => typeof c.latencyMs === 'number')).toBe(true);
    expect(r.lines).toEqual([
      expect.stringMatching(/^sign in: pass \(POST \/api\/auth\/signin 200 in \d+ ms\)$/),
      expect.stringMatching(/^list conversations: pass \(GET \/api\/chat\/conversations 200 in \d+ ms\)$/),
    ]);
    expectNoSecrets(JSON.stringify(r) + log.text());
  });

  test('without the password on the worker, sign-in fails naming the variable and the API check is not run', async () => {
    const { SMOKE_PASSWORD: _drop, ...rest } = env();
    const r = await acts({ env: rest }).runSmokeChecks({ workflowId: WF });
    expect(r.ok).toBe(false);
    expect(r.checks[0]).toMatchObject({
      outcome: 'fail',
      reason: 'environment variable SMOKE_PASSWORD not set on the worker',
    });
    expect(r.checks[1]).toMatchObject({ outcome: 'skipped', reason: expect.stringContaining('"token"') });
    expect(r.lines[0]).toBe(
      'sign in: failed (POST /api/auth/signin): environment variable SMOKE_PASSWORD not set on the worker',
    );
  });

  test('wrong credentials: the demo answers 401 and the failure says so, without the password', async () => {
    const wrong = 'wrong-password-7d1f';
    const log = recordingLogger();
    const r = await acts({ env: { ...env(), SMOKE_PASSWORD: wrong }, log }).runSmokeChecks({ workflowId: WF });
    expect(r.ok).toBe(false);
    expect(r.lines[0]).toMatch(
      /^sign in: failed \(POST \/api\/auth\/signin 401 in \d+ ms\): expected 200, got 401: \{"error":"invalid credentials"\}$/,
    );
    expect(r.lines[1]).toMatch(/^list conversations: skipped, not run/);
    expect(JSON.stringify(r) + log.text()).not.toContain(wrong);
  });
});

describe('kubernetes health (worker ServiceAccount)', () => {
  test("api-gateway pods are Running and Ready; their logs come through the apiserver's pods/log and are checked", async () => {
    const a = acts();
    // Another test may be rolling api-gateway out on the shared sandbox: wait until its pods settle.
    const { baseline, r } = await waitFor(
      async () => {
        const baseline = await a.podRestarts({ namespace: NS, deployments: ['api-gateway'] });
        // A start long ago: every pod counts as new, so every log is asked for.
        const r = await a.checkKubernetesHealth({
          namespace: NS,
          deployments: ['api-gateway'],
          baselineRestarts: baseline,
          since: '2000-01-01T00:00:00Z',
        });
        // Settled: every pod Running and Ready. Error lines are not asked about: the log is the container's
        // since the sandbox's last reset, and a canary fault of another suite may have written some.
        const pods = r.deployments[0].pods;
        const settled =
          pods.length === Object.keys(baseline).length && pods.every((p) => p.phase === 'Running' && p.ready);
        return settled ? { baseline, r } : undefined;
      },
      90_000,
      1000,
    );
    const podsOf = r.deployments[0].pods;
    expect(Object.keys(baseline).length).toBeGreaterThan(0);
    expect(Object.keys(baseline).every((name) => name.startsWith('api-gateway-'))).toBe(true);
    expect(podsOf.every((p) => p.phase === 'Running' && p.ready && p.restartsSinceBaseline === 0 && p.isNew)).toBe(
      true,
    );
    // kwok serves the demo server's container logs as the kubelet would: every pod's log is read.
    expect(r.logs).toMatchObject({ checked: podsOf.length, unavailable: 0 });
    expect(r.warnings).toEqual([]);
    expect(podsOf.every((p) => p.logs.state === 'checked')).toBe(true);
  }, 120_000);

  test('issue 16 pod logs: a fault that makes a container log errors fails the check through the real pods/log endpoint', async () => {
    const a = acts();
    const request = {
      namespace: NS,
      deployments: ['auth-service'],
      baselineRestarts: {},
      since: '2000-01-01T00:00:00Z',
    };
    try {
      await demoControl('/__sandbox/log-errors', { containers: ['auth-service'] });
      const r = await waitFor(
        async () => {
          const r = await a.checkKubernetesHealth(request);
          return r.logs.errorLines > baseConfig().verification.maxLogErrors ? r : undefined;
        },
        60_000,
        1000,
      );
      expect(r.ok).toBe(false);
      expect(r.problems.join('\n')).toMatch(
        /^auth-service: \d+ error lines? in the new pods' logs \(limit \d+\): auth-service-\S+ \d+ \(e\.g\. "ERROR connection to postgres reset by peer \(fault injected\)"\)/m,
      );
    } finally {
      await demoControl('/__sandbox/log-errors', { containers: [] });
    }
  }, 120_000);

  test('pods created before the rollout are not log-checked; a missing deployment fails', async () => {
    const a = acts();
    const r = await waitFor(
      async () => {
        const r = await a.checkKubernetesHealth({
          namespace: NS,
          deployments: ['auth-service', 'chat-service'],
          baselineRestarts: {},
          since: new Date().toISOString(),
        });
        return r.ok ? r : undefined;
      },
      90_000,
      1000,
    );
    expect(r.deployments.map((d) => d.name)).toEqual(['auth-service', 'chat-service']);
    const all = r.deployments.flatMap((d) => d.pods);
    expect(all.length).toBeGreaterThan(0);
    expect(all.every((p) => !p.isNew && p.logs.state === 'not-checked')).toBe(true);
    expect(r.warnings).toEqual([]);
    const missing = await a.checkKubernetesHealth({
      namespace: NS,
      deployments: ['no-such-service'],
      baselineRestarts: {},
      since: new Date().toISOString(),
    });
    expect(missing).toMatchObject({
      ok: false,
      lines: ['failed: deployment no-such-service not found in ai-saas', 'no-such-service: not found'],
    });
  }, 120_000);

  test('restart loops and error lines, on a fake cluster with logs', async () => {
    const created = new Date().toISOString();
    const pods: PodReader = {
      deploymentPods: async (_ns, deployment) =>
        deployment !== 'gw'
          ? null
          : [
              {
                name: 'gw-1',
                phase: 'Running',
                ready: true,
                createdAt: created,
                deleting: false,
                containers: [{ name: 'gw', ready: true, restarts: 4 }],
              },
              {
                name: 'gw-2',
                phase: 'Running',
                ready: true,
                createdAt: created,
                deleting: false,
                containers: [{ name: 'gw', ready: true, restarts: 0 }],
              },
              {
                name: 'gw-3',
                phase: 'Running',
                ready: true,
                createdAt: created,
                deleting: false,
                containers: [{ name: 'gw', ready: true, restarts: 0 }],
              },
            ],
      readLog: async (_ns, pod, _c, opts) => {
        expect(opts.sinceSeconds).toBeGreaterThanOrEqual(60);
        if (pod === 'gw-3') throw new LogsUnavailable('HTTP 500: no kubelet');
        return pod === 'gw-1' ? 'started\nERROR upstream timeout\nError: ECONNRESET\n' : 'started\n';
      },
    };
    const a = acts({ pods });
    expect(await a.podRestarts({ namespace: NS, deployments: ['gw', 'absent'] })).toEqual({
      'gw-1': 4,
      'gw-2': 0,
      'gw-3': 0,
    });
    const r = await a.checkKubernetesHealth({
      namespace: NS,
      deployments: ['gw'],
      since: new Date(Date.now() - 60_000).toISOString(),
      baselineRestarts: { 'gw-1': 1 },
    });
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      'gw: gw-1: restarted 3 times since the deployment started',
      `gw: 2 error lines in the new pods' logs (limit 0): gw-1 2 (e.g. "ERROR upstream timeout")`,
    ]);
    expect(r.warnings).toEqual([
      'gw: logs unavailable for 1 pod (gw-3): error lines not checked (gw: HTTP 500: no kubelet)',
    ]);
    expect(r.logs).toEqual({ checked: 2, unavailable: 1, errorLines: 2, limit: 0 });
    // Problems come first: the workflow quotes the first lines of a failed check.
    expect(r.lines.slice(0, 2)).toEqual(r.problems.map((p) => `failed: ${p}`));
  });
});

describe('platform health (runbook: DB connections not climbing, Redis < 80% of maxmemory)', () => {
  let ownRedis: ChildProcess | undefined;
  afterAll(() => {
    ownRedis?.kill('SIGTERM');
  });

  test('passes with a fresh baseline; Redis is judged against its maxmemory', async () => {
    const a = acts();
    const baseline = await a.platformBaseline();
    expect(baseline.databaseConnections).toBeGreaterThanOrEqual(0);
    const r = await a.checkPlatformHealth({ baselineConnections: baseline.databaseConnections });
    expect(r.ok).toBe(true);
    expect(r.checks.find((c) => c.name === 'redis-memory')).toMatchObject({
      outcome: 'pass',
      detail: expect.stringContaining('of 64.0 MiB used'),
    });
    expect(r.checks.find((c) => c.name === 'database-connections')?.outcome).toBe('pass');
    expect(r.lines).toEqual([
      expect.stringMatching(/^database-connections pass: \d+ active connections \(baseline \d+/),
      expect.stringMatching(/^redis-memory pass: .* of 64\.0 MiB used/),
    ]);
    expectNoSecrets(JSON.stringify(r));
  });

  test('connections that climb beyond the limit fail', async () => {
    const config = baseConfig();
    config.database.maxConnectionGrowth = 2;
    const a = acts({ config });
    const baseline = await a.platformBaseline();
    const clients = Array.from({ length: 8 }, () => new Client({ connectionString: sandboxVar('DATABASE_URL') }));
    try {
      await Promise.all(clients.map((c) => c.connect()));
      const r = await a.checkPlatformHealth({ baselineConnections: baseline.databaseConnections });
      expect(r.ok).toBe(false);
      expect(r.checks.find((c) => c.name === 'database-connections')).toMatchObject({
        outcome: 'fail',
        detail: expect.stringMatching(/growth \+\d+, limit \+2/),
      });
      expect(r.lines[0]).toMatch(/^database-connections failed: /);
    } finally {
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
  });

  test('without a baseline the connection check is inconclusive, not a pass', async () => {
    const r = await acts().checkPlatformHealth({});
    expect(r.ok).toBe(true);
    expect(r.outcome).toBe('inconclusive');
    expect(r.checks.find((c) => c.name === 'database-connections')?.outcome).toBe('inconclusive');
  });

  test('Redis without maxmemory is inconclusive ("no maxmemory set"); unreachable Redis fails', async () => {
    const port = await closedPort();
    ownRedis = spawn(
      'redis-server',
      ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--maxmemory', '0'],
      { stdio: 'ignore' },
    );
    await waitFor(
      async () => {
        const s = net.connect({ host: '127.0.0.1', port });
        return await new Promise<boolean>((resolve) => {
          s.once('connect', () => (s.end(), resolve(true)));
          s.once('error', () => resolve(false));
        });
      },
      10_000,
      100,
    );
    const unlimited = await acts({ env: { ...env(), REDIS_URL: `redis://127.0.0.1:${port}` } }).checkPlatformHealth({
      baselineConnections: 10_000,
    });
    expect(unlimited.checks.find((c) => c.name === 'redis-memory')).toMatchObject({
      outcome: 'inconclusive',
      value: null,
      detail: expect.stringContaining('no maxmemory set'),
    });
    expect(unlimited.outcome).toBe('inconclusive');

    ownRedis.kill('SIGTERM');
    await new Promise((resolve) => ownRedis!.once('exit', resolve));
    ownRedis = undefined;
    const down = await acts({ env: { ...env(), REDIS_URL: `redis://127.0.0.1:${port}` } }).checkPlatformHealth({
      baselineConnections: 10_000,
    });
    expect(down.ok).toBe(false);
    expect(down.checks.find((c) => c.name === 'redis-memory')).toMatchObject({
      outcome: 'fail',
      detail: expect.stringContaining('cannot read Redis memory: connect ECONNREFUSED'),
    });
  });

  test('a missing DATABASE_URL is a configuration error, not a failed check', async () => {
    const { DATABASE_URL: _drop, ...rest } = env();
    await expect(acts({ env: rest }).checkPlatformHealth({})).rejects.toMatchObject({
      type: 'ConfigInvalid',
      nonRetryable: true,
    });
  });
});

describe('canary analysis over Prometheus (argo-rollouts #4479, #1466: no data is never a pass)', () => {
  const req = (
    tracks: ('stable' | 'canary')[],
    over: Partial<Parameters<ReturnType<typeof acts>['analyzeCanary']>[0]> = {},
  ) => ({
    workflowId: 'verify-test',
    namespace: NS,
    version: '1.0.1',
    weight: 5,
    tracks,
    window: WINDOW,
    ...over,
  });

  test('clean traffic on the stable track passes every metric (error rate, P95, P99)', async () => {
    const a = acts();
    // Another test may have a fault injected for a few seconds: poll rather than assert once.
    const run = await waitFor(
      async () => {
        const r = await a.analyzeCanary(req(['stable']));
        return r.outcome === 'pass' ? r : undefined;
      },
      60_000,
      1000,
    );
    expect(run.measurements.map((m) => [m.metric, m.track, m.outcome])).toEqual([
      ['error-rate', 'stable', 'pass'],
      ['p95-latency', 'stable', 'pass'],
      ['p99-latency', 'stable', 'pass'],
    ]);
    expect(run.measurements[0]).toMatchObject({ threshold: '<= 0.01' });
    expect(run.measurements[1].value).toBeGreaterThan(0);
    expect(run.weight).toBe(5);
  }, 90_000);

  test('an injected 30% error rate on the stable track fails the error-rate measurement', async () => {
    const a = acts();
    try {
      await demoControl('/__sandbox/fault', { track: 'stable', errorRate: 0.3 });
      const run = await waitFor(
        async () => {
          const r = await a.analyzeCanary(req(['stable']));
          return r.outcome === 'fail' ? r : undefined;
        },
        60_000,
        1000,
      );
      const m = run.measurements.find((x) => x.metric === 'error-rate')!;
      expect(m).toMatchObject({ track: 'stable', outcome: 'fail', reason: expect.stringMatching(/ > 0\.01$/) });
      expect(m.value).toBeGreaterThan(0.01);
      // The workflow's tally with failureLimit 0 fails the analysis on this run.
      const v = tallyRun({ failedRuns: 0, consecutiveInconclusive: 0 }, run, baseConfig().analysis);
      expect(v.verdict).toBe('fail');
    } finally {
      await demoControl('/__sandbox/fault', { clear: true });
    }
  }, 90_000);

  test('a track without traffic is inconclusive, never a pass', async () => {
    const a = acts();
    // A version nobody runs has no traffic whatever the weights are.
    const config = baseConfig();
    config.analysis.metrics = config.analysis.metrics.map((m) => ({
      ...m,
      query: m.query.split('track="{{track}}"').join('track="{{track}}",version="{{version}}"'),
    }));
    const noTraffic = await acts({ config }).analyzeCanary(req(['canary'], { version: '0.0.0-no-traffic' }));
    expect(noTraffic.outcome).toBe('inconclusive');
    expect(noTraffic.measurements.every((m) => m.outcome === 'inconclusive' && m.value === null)).toBe(true);
    expect(noTraffic.measurements.map((m) => m.reason)).toEqual([
      expect.stringMatching(/NaN|no data/),
      expect.stringMatching(/NaN|no data/),
      expect.stringMatching(/NaN|no data/),
    ]);

    // The canary track as the sandbox routes it (100/0 unless another test is running a canary right now).
    const before = await canaryIdle();
    const canary = await a.analyzeCanary(req(['canary']));
    if (before && (await canaryIdle())) expect(canary.measurements.some((m) => m.outcome === 'pass')).toBe(false);
  });

  test('{{version}} on the stable track needs the stable version; with it the query selects that version', async () => {
    const config = baseConfig();
    config.analysis.metrics = [
      {
        name: 'requests',
        query: 'sum(rate(http_requests_total{track="{{track}}",version="{{version}}"}[{{window}}]))',
        min: 1,
      },
    ];
    const a = acts({ config });
    const unknown = await a.analyzeCanary(req(['stable']));
    expect(unknown.measurements[0]).toMatchObject({
      outcome: 'inconclusive',
      reason: 'the query uses {{version}} but the stable version is not known',
    });
    const known = await waitFor(
      async () => {
        const r = await a.analyzeCanary(req(['stable'], { stableVersion: '1.0.0' }));
        return r.outcome === 'pass' ? r : undefined;
      },
      30_000,
      1000,
    );
    expect(known.measurements[0].value).toBeGreaterThan(1);
  }, 60_000);

  test('a metric that does not exist and a broken query are inconclusive', async () => {
    const config = baseConfig();
    config.analysis.metrics = [
      { name: 'missing', query: 'sum(rate(no_such_metric_total{track="{{track}}"}[{{window}}]))', max: 1 },
      { name: 'broken', query: 'sum(rate(http_requests_total{track="{{track}}"}[{{window}}])', max: 1 },
    ];
    const run = await acts({ config }).analyzeCanary(req(['stable']));
    expect(run.outcome).toBe('inconclusive');
    expect(run.measurements[0]).toMatchObject({
      outcome: 'inconclusive',
      value: null,
      reason: expect.stringContaining('no data (empty vector'),
    });
    expect(run.measurements[1]).toMatchObject({
      outcome: 'inconclusive',
      value: null,
      reason: expect.stringContaining('query error (bad_data)'),
    });
  });

  test('an unreachable Prometheus is inconclusive, and the inconclusive limit ends the analysis', async () => {
    const config = baseConfig();
    config.analysis.prometheusUrl = `http://127.0.0.1:${await closedPort()}`;
    const a = acts({ config });
    const limits = { failureLimit: config.analysis.failureLimit, inconclusiveLimit: config.analysis.inconclusiveLimit };
    expect(limits).toEqual({ failureLimit: 0, inconclusiveLimit: 2 });
    let tally = { failedRuns: 0, consecutiveInconclusive: 0 };
    const verdicts: string[] = [];
    for (let i = 0; i < 3; i++) {
      const run: AnalysisRun = await a.analyzeCanary(req(['canary', 'stable']));
      expect(run.outcome).toBe('inconclusive');
      expect(
        run.measurements.every(
          (m) => m.outcome === 'inconclusive' && /Prometheus unreachable: connection refused/.test(m.reason ?? ''),
        ),
      ).toBe(true);
      const v = tallyRun(tally, run, limits);
      tally = v.tally;
      verdicts.push(v.verdict);
    }
    expect(verdicts).toEqual(['continue', 'continue', 'fail']);
  });

  test('a Prometheus that does not answer in time is inconclusive', async () => {
    const silent = createServer(() => undefined);
    const port = await listen(silent);
    try {
      const config = baseConfig();
      config.analysis.prometheusUrl = `http://127.0.0.1:${port}`;
      config.analysis.queryTimeout = 300;
      const run = await acts({ config }).analyzeCanary(req(['stable']));
      expect(run.measurements[0]).toMatchObject({
        outcome: 'inconclusive',
        reason: 'Prometheus unreachable: no answer within 300 ms',
      });
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });

  test('canary compared with stable (maxRatioToStable): inconclusive unless both tracks were measured', async () => {
    const config = baseConfig();
    // Both "tracks" read the stable series, so the ratio is 1 on real data.
    const sameSeries = 'sum(rate(http_requests_total{track="stable"}[{{window}}]))';
    config.analysis.metrics = [
      { name: 'rate', query: sameSeries, maxRatioToStable: 1.5 },
      { name: 'err', query: config.analysis.metrics[0].query, max: 0.01, maxRatioToStable: 2 },
    ];
    const run = await waitFor(
      async () => {
        const r = await acts({ config }).analyzeCanary(req(['canary', 'stable']));
        return r.measurements.find((m) => m.metric === 'rate vs stable')?.outcome === 'pass' ? r : undefined;
      },
      30_000,
      1000,
    );
    expect(run.measurements.find((m) => m.metric === 'rate vs stable')).toMatchObject({
      track: 'canary',
      outcome: 'pass',
      threshold: expect.stringContaining('<= 1.5 x stable'),
    });
    if (await canaryIdle())
      expect(run.measurements.find((m) => m.metric === 'err vs stable')).toMatchObject({ outcome: 'inconclusive' });
  }, 60_000);

  test('runs inside an activity context (MockActivityEnvironment) and logs through it', async () => {
    const logged: string[] = [];
    const record = (level: string) => (message: string) => void logged.push(`${level} ${message}`);
    const logger = {
      log: (level: string, message: string) => void logged.push(`${level} ${message}`),
      trace: record('TRACE'),
      debug: record('DEBUG'),
      info: record('INFO'),
      warn: record('WARN'),
      error: record('ERROR'),
    };
    const menv = new MockActivityEnvironment(undefined, { logger });
    // No logger injected: the activity logs through its context.
    const a = verifyActivities({ config: baseConfig(), env: env() });
    const run = await menv.run<[AnalysisRequest], AnalysisRun, typeof a.analyzeCanary>(
      a.analyzeCanary,
      req(['stable']),
    );
    expect(['pass', 'fail', 'inconclusive']).toContain(run.outcome);
    expect(logged.some((l) => l.includes(`analysis ${run.outcome === 'pass' ? 'passed' : run.outcome}`))).toBe(true);
  });
});
