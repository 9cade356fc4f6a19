/**
 * Seeing the pipeline (README "Observe") end to end: the real worker process
 * serves /metrics, the sandbox's Prometheus scrapes it, and after real
 * deployments (a canary with an approval, a canary that fails its analysis
 * and rolls back, a manual rollback, a freeze and unfreeze, a rolling fix)
 * every product series is there with its labels, and every panel of
 * deploy/grafana/deploy-pipelines.json returns data through PromQL.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Client, Connection } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { prometheusUrl } from '../../scripts/sandbox/prometheus';
import { createS3Client } from '../../src/activities/clients/s3';
import { main } from '../../src/client';
import { METRIC } from '../../src/domain/metric-names';
import { loadConfig } from '../../src/load-config';
import { resultOf } from '../../src/workflows/outcome';
import { approveSignal, statusQuery } from '../../src/workflows/messages';
import type { deployWorkflow, DeployResult } from '../../src/workflows/deploy';
import type { rollbackWorkflow } from '../../src/workflows/rollback';
import { sandboxCli, TEST_POLICY } from '../helpers/e2e';
import { sandboxEnv } from '../helpers/sandbox';
import { REPO_ROOT } from '../helpers/tools';
import { waitFor } from '../helpers/wait';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process';

const METRICS_ADDRESS = '127.0.0.1:9464';
const stamp = Date.now();
const taskQueue = `observe-${stamp}`;
let dir: string;
let worker: WorkerProcess | undefined;
let connection: Connection;
let client: Client;
let workerEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  await sandboxCli('reset');
  dir = mkdtempSync(path.join(tmpdir(), 'observe-'));
  // The example config; production allows the short soaks, canaries without backup and migrations the tests ask for.
  const raw = parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8'));
  raw.environments.production.policy = TEST_POLICY;
  raw.analysis.window = '10s';
  raw.rollout.canary.soak = '1s';
  const configFile = path.join(dir, 'deploy.config.yaml');
  writeFileSync(configFile, stringify(raw));
  workerEnv = {
    ...process.env,
    ...sandboxEnv(),
    DEPLOY_CONFIG: configFile,
    TEMPORAL_TASK_QUEUE: taskQueue,
    DEPLOY_METRICS_ADDRESS: METRICS_ADDRESS,
  };
  for (const k of [
    'TEMPORAL_API_KEY',
    'TEMPORAL_TLS',
    'DEPLOY_CODEC_KEY',
    'DEPLOY_CODEC_KEY_ID',
    'DEPLOY_CODEC_OLD_KEYS',
  ])
    delete workerEnv[k];
  worker = await startWorkerProcess(workerEnv, path.join(dir, 'worker.log'));
  connection = await Connection.connect({ address: workerEnv.TEMPORAL_ADDRESS! });
  client = new Client({ connection, namespace: workerEnv.TEMPORAL_NAMESPACE ?? 'default' });
}, 240_000);

afterAll(async () => {
  await sandboxCli('fault', '--clear').catch(() => undefined);
  await worker?.stop();
  await connection?.close();
  await sandboxCli('reset');
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 180_000);

/** One PromQL query against the sandbox's production Prometheus: the result vector. */
async function promql(query: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const url = `${prometheusUrl()}/api/v1/query?query=${encodeURIComponent(query)}`;
  const body = (await (await fetch(url)).json()) as {
    status: string;
    error?: string;
    data?: { result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  if (body.status !== 'success') throw new Error(`${query}: ${body.error}`);
  return body.data!.result;
}

async function deploy(id: string, input: Parameters<typeof deployWorkflow>[0]): Promise<DeployResult> {
  return resultOf(
    client.workflow.execute<typeof deployWorkflow>('deployWorkflow', { taskQueue, workflowId: id, args: [input] }),
  );
}

/** deployctl, as a person runs it, against this test's worker and its config (`env` changes either). */
async function deployctlWith(
  env: NodeJS.ProcessEnv,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'deployctl', ...args], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { ...workerEnv, TEMPORAL_TASK_QUEUE: taskQueue, ...env },
    isTTY: false,
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const deployctl = (...args: string[]) => deployctlWith({}, ...args);

const ids = {
  canary: `deploy-production-observe-canary-${stamp}`,
  bad: `deploy-production-observe-bad-${stamp}`,
  manual: `rollback-production-observe-${stamp}`,
  fix: `deploy-production-observe-fix-${stamp}`,
};

test('a canary with an approval, a failed canary, a manual rollback, a freeze and a fix, on the real worker process', async () => {
  // 1. A canary that stops for approval before 100%; alice approves.
  const canaryRun = deploy(ids.canary, {
    version: '1.0.1',
    strategy: 'canary',
    requestedBy: 'e2e',
    migrate: false,
    backup: false,
    canary: { soak: '2s', analysisInterval: '2s', approval: 'before-full' },
  });
  let ended: DeployResult | undefined;
  void canaryRun.then((r) => (ended = r)).catch(() => undefined);
  const child = client.workflow.getHandle(`${ids.canary}-canary`);
  await waitFor(
    async () => {
      if (ended) throw new Error(`the canary ended before its gate: ${ended.outcome}: ${ended.reason}`);
      return (await child.query(statusQuery).catch(() => undefined))?.waitingFor?.gate;
    },
    240_000,
    500,
  );
  // While it waits, the canary's weight is on /metrics and in Prometheus.
  const weight = await waitFor(async () => {
    const r = await promql(`${METRIC.canaryWeight}{environment="production",taskQueue="${taskQueue}"}`);
    return r.length && Number(r[0].value[1]) > 0 ? Number(r[0].value[1]) : undefined;
  }, 30_000);
  expect(weight).toBe(50);
  await child.signal(approveSignal, { by: 'alice', note: 'looks good' });
  const first = await canaryRun;
  expect(first.outcome).toBe('succeeded');
  expect(first.status.timeline?.committedAt).toMatch(/^\d{4}-/);
  expect(first.status.timeline?.liveAt).toMatch(/^\d{4}-/);

  // 2. A canary whose analysis fails: rolled back, automatically.
  await sandboxCli('fault', '--track', 'canary', '--error-rate', '0.5');
  const bad = await deploy(ids.bad, {
    version: '1.0.2',
    strategy: 'canary',
    requestedBy: 'e2e',
    migrate: false,
    backup: false,
    canary: { soak: '4s', analysisInterval: '2s' },
  });
  await sandboxCli('fault', '--clear');
  expect(bad.outcome).toBe('rolled-back');
  expect(bad.status.timeline?.failedAt).toBeDefined();
  expect(bad.status.timeline?.stableAt).toBeDefined();

  // 3. A manual rollback of one service to its previous revision.
  const manual = await resultOf(
    client.workflow.execute<typeof rollbackWorkflow>('rollbackWorkflow', {
      taskQueue,
      workflowId: ids.manual,
      args: [{ environment: 'production', services: ['frontend'], reason: 'observe e2e', requestedBy: 'e2e' }],
    }),
  );
  expect(manual.outcome).toBe('rolled-back');

  // 4. Stop the line and start it again.
  const froze = await deployctl('freeze', '--env', 'production', '--by', 'bob', '--reason', 'observe e2e');
  expect(froze).toMatchObject({ code: 0 });
  const thawed = await deployctl('unfreeze', '--env', 'production', '--by', 'bob', '--reason', 'done');
  expect(thawed).toMatchObject({ code: 0 });

  // 5. The fix, rolled out.
  const fix = await deploy(ids.fix, {
    version: '1.0.3',
    strategy: 'rolling',
    requestedBy: 'e2e',
    migrate: false,
    backup: false,
  });
  expect(fix.outcome).toBe('succeeded');
}, 900_000);

test('each product series is in Prometheus with its labels, and the SDK runtime series beside them', async () => {
  const mine = `taskQueue="${taskQueue}"`;
  const value = async (q: string) => {
    const r = await promql(q);
    return r.reduce((n, s) => n + Number(s.value[1]), 0);
  };
  // Scraped every 2 s: wait for the last deployment's counters.
  await waitFor(
    async () =>
      (await value(
        `${METRIC.deploymentsFinished}{${mine},environment="production",strategy="rolling",outcome="succeeded"}`,
      )) >= 1,
    30_000,
    500,
  );
  const at = (name: string, labels: string) => value(`${name}{${mine},environment="production",${labels}}`);
  expect(await at(METRIC.deploymentsStarted, 'strategy="canary"')).toBe(2);
  expect(await at(METRIC.deploymentsStarted, 'strategy="rolling"')).toBe(1);
  expect(await at(METRIC.deploymentsFinished, 'strategy="canary",outcome="succeeded"')).toBe(1);
  expect(await at(METRIC.deploymentsFinished, 'strategy="canary",outcome="rolled-back"')).toBe(1);
  // Started at 0 for every configured environment, strategy and outcome: increase() sees the first deployment.
  expect(await promql(`${METRIC.deploymentsFinished}{${mine},environment="staging",outcome="aborted"}`)).toHaveLength(
    6,
  );
  // The failed canary changed workloads: a change failure, as deployctl stats counts it.
  expect(await at(METRIC.deploymentsFinished, 'outcome="rolled-back",rollout="began"')).toBe(1);
  expect(await at(`${METRIC.deploymentDuration}_count`, 'outcome="succeeded"')).toBe(2);
  expect(await at(`${METRIC.leadTime}_count`, 'strategy=~".+"')).toBe(2);
  expect(
    await value(
      `${METRIC.stepDuration}_count{${mine},workflow="deploy",step="build and push images",state="succeeded"}`,
    ),
  ).toBe(3);
  // "traffic 5%" and the others are one step kind.
  expect(await value(`${METRIC.stepDuration}_count{${mine},workflow="canary",step="traffic"}`)).toBeGreaterThanOrEqual(
    4,
  );
  expect(await value(`${METRIC.phase}{${mine},workflow="canary",environment="production",phase="soaking"}`)).toBe(0);
  expect(await promql(`${METRIC.phase}{${mine},workflow="canary",phase="soaking"}`)).not.toHaveLength(0);
  expect(await at(METRIC.canaryWeight, 'environment="production"')).toBe(0);
  expect(await at(METRIC.canaryRunning, 'environment="production"')).toBe(0);
  expect(await at(METRIC.analysisRuns, 'outcome="pass"')).toBeGreaterThanOrEqual(1);
  expect(await at(METRIC.analysisRuns, 'outcome="fail"')).toBeGreaterThanOrEqual(1);
  expect(await at(METRIC.analysisMeasurements, 'metric="error-rate",outcome="fail"')).toBeGreaterThanOrEqual(1);
  expect(await at(METRIC.approvals, 'gate="traffic-100"')).toBe(1);
  expect(await at(`${METRIC.approvalWait}_count`, 'environment="production"')).toBe(1);
  expect(await at(METRIC.rollbacks, 'kind="automatic",outcome="rolled-back"')).toBe(1);
  expect(await at(METRIC.rollbacks, 'kind="manual",outcome="rolled-back"')).toBe(1);
  expect(await at(`${METRIC.rollbackDuration}_count`, 'kind="automatic"')).toBe(1);
  expect(await at(`${METRIC.rollbackDuration}_count`, 'kind="manual"')).toBe(1);
  expect(await at(METRIC.freezes, 'action="freeze"')).toBe(1);
  expect(await at(METRIC.freezes, 'action="unfreeze"')).toBe(1);
  expect(await at(METRIC.frozen, 'environment="production"')).toBe(0);
  // The Temporal SDK's own: task latencies, slots, sticky cache.
  for (const sdk of [
    'temporal_workflow_task_schedule_to_start_latency_count',
    'temporal_activity_execution_latency_count',
    'temporal_worker_task_slots_available',
    'temporal_sticky_cache_size',
  ])
    expect(await promql(`${sdk}{task_queue="${taskQueue}"}`)).not.toHaveLength(0);
}, 60_000);

/** Every PromQL expression in the dashboard, with Grafana's variables as a person's first look sets them. */
function dashboardQueries(): { panel: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(path.join(REPO_ROOT, 'deploy/grafana/deploy-pipelines.json'), 'utf8')) as {
    panels: { title: string; targets?: { expr: string }[] }[];
  };
  return dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({
      panel: p.title,
      expr: t.expr
        .replace(/\$environment/g, '.*')
        .replace(/\$__range/g, '1h')
        .replace(/\$__rate_interval/g, '5m'),
    })),
  );
}

test("every panel's PromQL in the dashboard returns data after the deployments", async () => {
  const queries = dashboardQueries();
  expect(queries.length).toBeGreaterThanOrEqual(10);
  const empty: string[] = [];
  for (const q of queries) {
    const r = await promql(q.expr);
    if (!r.some((s) => s.value[1] !== 'NaN')) empty.push(`${q.panel}: ${q.expr}`);
  }
  expect(empty).toEqual([]);
}, 60_000);

test('deployctl stats --json prints the four DORA figures with their counts, these deployments among them', async () => {
  const r = await deployctl('stats', '--env', 'production', '--since', '2h', '--json');
  expect(r).toMatchObject({ code: 0 });
  const stats = JSON.parse(r.out) as {
    deployments: { counted: number };
    overall: {
      deploymentFrequency: { successes: number; perDay: number };
      leadTime: { measured: number; medianMs: number | null };
      changeFailureRate: { began: number; failures: { rolledBack: number; total: number }; rate: number | null };
      timeToRestore: {
        failures: number;
        toStable: { restored: number; medianMs: number | null };
        toNextSuccess: { restored: number; medianMs: number | null };
      };
    };
    definitions: string[];
  };
  // Other suites deploy to production in the same window: these three are among what is counted.
  const o = stats.overall;
  expect(stats.deployments.counted).toBeGreaterThanOrEqual(3);
  expect(o.deploymentFrequency.successes).toBeGreaterThanOrEqual(2);
  expect(o.deploymentFrequency.perDay).toBeGreaterThan(0);
  expect(o.leadTime.measured).toBeGreaterThanOrEqual(2);
  expect(o.leadTime.medianMs).toBeGreaterThan(0);
  expect(o.changeFailureRate.began).toBeGreaterThanOrEqual(3);
  expect(o.changeFailureRate.failures.rolledBack).toBeGreaterThanOrEqual(1);
  expect(o.changeFailureRate.rate).toBeGreaterThan(0);
  expect(o.changeFailureRate.rate).toBeLessThan(1);
  // The failed canary was stable again within seconds, and the fix went live after it.
  expect(o.timeToRestore.toStable.restored).toBeGreaterThanOrEqual(1);
  expect(o.timeToRestore.toNextSuccess.restored).toBeGreaterThanOrEqual(1);
  expect(stats.definitions.join('\n')).toMatch(/Change failure rate/);
}, 120_000);

test("the suite's audit ledger verifies and shows who did what; a tampered copy of it fails verify naming the record", async () => {
  const verified = await deployctl('audit', 'verify', '--env', 'production', '--json');
  expect(verified).toMatchObject({ code: 0 });
  const report = JSON.parse(verified.out) as {
    bucket: string;
    prefix: string;
    ledgers: { environment: string; ok: boolean; records: number }[];
  };
  const production = report.ledgers.find((l) => l.environment === 'production')!;
  expect(production).toMatchObject({ ok: true });
  // Three deployments, a manual rollback (and the failed canary's automatic one), a freeze, an unfreeze, an approval.
  expect(production.records).toBeGreaterThanOrEqual(8);

  // The approved canary: its approval (alice, typed: production does not verify senders here), then the deployment.
  const shown = await deployctl('audit', 'show', ids.canary, '--env', 'production', '--json');
  expect(shown).toMatchObject({ code: 0 });
  const records = recordsOf(shown.out);
  expect(records.map((r) => r.event)).toEqual(['approval', 'deployment']);
  expect(records[0].facts.approvals?.[0]).toMatchObject({ by: 'alice' });
  expect(records[1].facts).toMatchObject({ outcome: 'succeeded', requestedBy: 'e2e' });
  expect(records[1].facts.plan).toMatchObject({ version: '1.0.1', environment: 'production', strategy: 'canary' });
  expect(Object.values(records[1].facts.images ?? {})[0]).toMatch(/@sha256:[0-9a-f]{64}$/);
  expect(records[1].facts.analysis).toBeDefined();
  const bad = recordsOf((await deployctl('audit', 'show', ids.bad, '--json')).out);
  expect(bad.find((r) => r.event === 'deployment')?.facts.outcome).toBe('rolled-back');

  // A copy of the ledger under another prefix, one record edited: verify names it.
  const raw = parse(readFileSync(workerEnv.DEPLOY_CONFIG!, 'utf8'));
  const copyPrefix = `audit-tampered-${stamp}/`;
  raw.audit = { ...raw.audit, prefix: copyPrefix };
  const copyConfig = path.join(dir, 'tampered.config.yaml');
  writeFileSync(copyConfig, stringify(raw));
  const config = loadConfig(copyConfig, { ...workerEnv });
  const s3 = createS3Client(config.backup, workerEnv);
  const listed = await s3.send(
    new ListObjectsV2Command({ Bucket: report.bucket, Prefix: `${report.prefix}production/` }),
  );
  for (const o of listed.Contents ?? []) {
    const body = await (
      await s3.send(new GetObjectCommand({ Bucket: report.bucket, Key: o.Key! }))
    ).Body!.transformToByteArray();
    await s3.send(
      new PutObjectCommand({ Bucket: report.bucket, Key: copyPrefix + o.Key!.slice(report.prefix.length), Body: body }),
    );
  }
  const victim = `${copyPrefix}production/${String(2).padStart(10, '0')}.json`;
  const text = await (
    await s3.send(new GetObjectCommand({ Bucket: report.bucket, Key: victim }))
  ).Body!.transformToString();
  const forged = text.replace(/"e2e"/g, '"mallory"');
  expect(forged).not.toBe(text);
  await s3.send(new PutObjectCommand({ Bucket: report.bucket, Key: victim, Body: forged }));
  const copyCtl = await deployctlWith({ DEPLOY_CONFIG: copyConfig }, 'audit', 'verify', '--env', 'production');
  expect(copyCtl.code).not.toBe(0);
  expect(`${copyCtl.out}\n${copyCtl.err}`).toContain(victim);
  // The ledger itself is untouched.
  expect((await deployctl('audit', 'verify', '--env', 'production')).code).toBe(0);
}, 120_000);

/** `audit show --json`'s records, in ledger order. */
function recordsOf(out: string): AuditRecordShape[] {
  return (JSON.parse(out) as { record: AuditRecordShape }[]).map((r) => r.record).sort((a, b) => a.seq - b.seq);
}

interface AuditRecordShape {
  seq: number;
  event: string;
  facts: {
    outcome?: string;
    requestedBy?: string;
    approvals?: { by: string }[];
    plan?: Record<string, unknown>;
    images?: Record<string, string>;
    analysis?: unknown;
  };
}
