/**
 * What a user feels: the whole deploy pipeline on the sandbox, end to end,
 * against the runbook's sequence as a person types it, on the same services.
 *
 *   (p) ours: the deploy workflow (rolling strategy, nothing to soak) run by a
 *       real worker (in this process, with every real activity and client, as
 *       the e2e tests run it) on the sandbox's Temporal: its cluster when the
 *       sandbox runs one, else a dev server. Plan, pre-flight, pre-deployment
 *       checks, tag, six images beside the backup, migrations, a rolling update
 *       of the six Deployments in their waves, verification, summary. Where
 *       the time goes comes from the workflow's history (each activity from
 *       scheduled to completed; the workflow from start to close).
 *   (r) the runbook: the same steps as child processes with argument arrays
 *       (no shell): kubectl/psql/redis-cli/aws checks, the release's npm
 *       checks, git tag + push, docker build then docker push of each image
 *       one after another, pg_dump to a file, gzip, aws s3 cp, rm, the
 *       migration with psql (the equivalent of our built-in migrator), kubectl
 *       set image and `rollout status` per Deployment, curl checks. Each
 *       command is timed.
 *
 * Each side deploys a new version each round (so no image, tag or backup is
 * reused), and the release's migration is made pending again before each side
 * (its index dropped, its record deleted), so both apply it. At the end the
 * Deployments get back the pod templates they had, the migration its state,
 * and the bench's tags, images and objects are deleted; `sandbox reset` is
 * never used.
 */
import { DeleteObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { TestWorkflowEnvironment as TWE } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import Docker from 'dockerode';
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createActivities, defaultDeps } from '../src/activities';
import { RegistryClient } from '../src/activities/clients/registry';
import { createS3Client } from '../src/activities/clients/s3';
import { keepAliveInterceptor } from '../src/activities/runtime';
import type { DeployConfig } from '../src/domain/config';
import { environmentConfig } from '../src/domain/environment-config';
import type { DeployInput } from '../src/domain/input';
import type { DeployResult } from '../src/workflows/deploy';
import { adminKube, TEST_POLICY } from '../test/helpers/e2e';
import { sandboxEnv, sandboxVarOf, type SandboxEnvironmentName } from '../test/helpers/sandbox';
import { devServerEnv, uniqueQueue, workflowBundle } from '../test/helpers/temporal';
import { adminSql, benchConfig, loadAverage, runCommand, runId, type BenchOptions } from './common';
import { median, ms, ratio, type BenchReport, type Table, type Target } from './report';

const SIZES = { small: { rounds: 1 }, full: { rounds: 3 } };
const PG15_BIN = '/usr/lib/postgresql/15/bin';
/** The release's migration (scripts/sandbox/git.ts), made pending again before each side. */
const MIGRATION = '0002_add_email_verified_at_index.sql';
const MIGRATION_INDEX = 'users_email_verified_at_idx';
/** Kept by the Deployment controller: not restored from before the run. */
const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';

/** The phases both sides are compared by, in the runbook's order. */
const PHASES = [
  'plan',
  'pre-flight',
  'pre-deployment checks',
  'release tag',
  'images',
  'backup',
  'migrations',
  'rollout',
  'verification',
  'summary',
  'notifications and other',
] as const;
type Phase = (typeof PHASES)[number];

/** Our activities by phase; verification's checks that run before the last wave's rollout ended are the rollout's wave check. */
const ACTIVITY_PHASE: Record<string, Phase> = {
  resolvePlan: 'plan',
  confirmPlan: 'plan',
  lockHolder: 'plan',
  freezeState: 'plan',
  preflight: 'pre-flight',
  runPreDeploymentChecks: 'pre-deployment checks',
  createReleaseTag: 'release tag',
  buildImages: 'images',
  backupDatabase: 'backup',
  migrationStatus: 'migrations',
  applyMigrations: 'migrations',
  snapshotConfiguration: 'rollout',
  patchImages: 'rollout',
  waitForRollout: 'rollout',
  podRestarts: 'rollout',
  platformBaseline: 'rollout',
  readClusterState: 'rollout',
  checkHealth: 'verification',
  runSmokeChecks: 'verification',
  checkKubernetesHealth: 'verification',
  checkPlatformHealth: 'verification',
  checkLogErrors: 'verification',
  runAnalysis: 'verification',
  writeSummary: 'summary',
  pruneConfigSnapshots: 'summary',
};

interface ActivitySpan {
  name: string;
  phase: Phase;
  start: number;
  end: number;
}

interface OursRun {
  version: string;
  wall: number;
  /** Workflow start -> close, from the server's history. */
  history: number;
  spans: ActivitySpan[];
  phases: Map<Phase, number>;
  /** Wall time not inside any activity: workflow tasks, the lock's child workflow, dispatch. */
  outside: number;
}

interface CommandTime {
  phase: Phase;
  what: string;
  ms: number;
}

interface RunbookRun {
  version: string;
  wall: number;
  commands: CommandTime[];
  phases: Map<Phase, number>;
  logErrors: number;
}

type HistoryEvent = { eventId?: unknown; eventTime?: { seconds?: unknown; nanos?: number | null } | null } & Record<
  string,
  unknown
>;

/** Each activity from scheduled to completed, and the workflow from start to close, from its history. */
function fromHistory(events: HistoryEvent[]): { spans: ActivitySpan[]; start: number; close: number } {
  const time = (e: HistoryEvent) => Number(e.eventTime?.seconds ?? 0) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;
  const scheduled = new Map<number, { name: string; t: number }>();
  const raw: { name: string; start: number; end: number }[] = [];
  let start = NaN;
  let close = NaN;
  for (const e of events) {
    const t = time(e);
    if (e.workflowExecutionStartedEventAttributes) start = t;
    if (
      e.workflowExecutionCompletedEventAttributes ||
      e.workflowExecutionFailedEventAttributes ||
      e.workflowExecutionTerminatedEventAttributes
    )
      close = t;
    const s = e.activityTaskScheduledEventAttributes as { activityType?: { name?: string } } | undefined;
    if (s) scheduled.set(Number(e.eventId), { name: s.activityType?.name ?? '?', t });
    const done = (e.activityTaskCompletedEventAttributes ??
      e.activityTaskFailedEventAttributes ??
      e.activityTaskTimedOutEventAttributes) as { scheduledEventId?: unknown } | undefined;
    if (done) {
      const from = scheduled.get(Number(done.scheduledEventId));
      if (from) raw.push({ name: from.name, start: from.t - start, end: t - start });
    }
  }
  // The wave check between waves runs verification's activities before the last wave's rollout has ended.
  const lastWait = Math.max(-Infinity, ...raw.filter((r) => r.name === 'waitForRollout').map((r) => r.end));
  const spans = raw.map((r) => {
    let phase: Phase = ACTIVITY_PHASE[r.name] ?? 'notifications and other';
    if (phase === 'verification' && r.end <= lastWait) phase = 'rollout';
    return { ...r, phase };
  });
  return { spans, start, close };
}

/** Length of the union of intervals. */
function covered(spans: { start: number; end: number }[]): number {
  const sorted = [...spans].sort((a, b) => a.start - b.start);
  let total = 0;
  let curStart = -Infinity;
  let curEnd = -Infinity;
  for (const s of sorted) {
    if (s.start > curEnd) {
      if (curEnd > curStart) total += curEnd - curStart;
      curStart = s.start;
      curEnd = s.end;
    } else curEnd = Math.max(curEnd, s.end);
  }
  if (curEnd > curStart) total += curEnd - curStart;
  return total;
}

/** A phase's time on our side: from its first activity's scheduling to its last one's completion. */
function phaseSpans(spans: ActivitySpan[]): Map<Phase, number> {
  const out = new Map<Phase, number>();
  for (const phase of PHASES) {
    const own = spans.filter((s) => s.phase === phase);
    if (own.length) out.set(phase, covered(own));
  }
  return out;
}

/** Host, port, user, password and database of a postgres:// URL, as a person's psql/pg_dump flags take them. */
function pgTarget(url: string): { host: string; port: string; user: string; password: string; database: string } {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: u.port || '5432',
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: u.pathname.replace(/^\//, ''),
  };
}

export async function pipelineBench(opts: BenchOptions, log: (s: string) => void): Promise<BenchReport> {
  const startedAt = new Date();
  const loadStart = loadAverage();
  const size = SIZES[opts.size];
  const run = runId();
  const environment = (process.env.BENCH_PIPELINE_ENVIRONMENT ?? 'production') as SandboxEnvironmentName;
  const sandbox = sandboxEnv();
  const base = benchConfig();
  // The example config, its policy opened so the input may ask for a rolling update (as the e2e tests do), nothing to soak.
  const config: DeployConfig = {
    ...base,
    environments: Object.fromEntries(
      Object.entries(base.environments).map(([name, env]) => [name, { ...env, policy: TEST_POLICY }]),
    ),
    rollout: {
      ...base.rollout,
      strategy: 'rolling',
      canary: { ...base.rollout.canary, soak: 0 },
      blueGreen: { ...base.rollout.blueGreen, monitor: 0 },
    },
  };
  const ec = environmentConfig(config, environment);
  const namespace = config.environments[environment]?.namespace ?? 'ai-saas';
  const services = ec.services.map((s) => ({
    name: s.name,
    image: s.image,
    context: s.context,
    deployment: s.deployment ?? s.name,
    container: s.container ?? s.name,
  }));
  const registryHost = ec.registry.host;
  const db = pgTarget(process.env[ec.database.urlEnv] ?? sandboxVarOf(environment, 'DATABASE_URL'));
  const redis = new URL(process.env[ec.redis.urlEnv] ?? sandboxVarOf(environment, 'REDIS_URL'));
  const adminKubeconfig = sandboxVarOf(environment, 'KUBECONFIG');
  const baseUrl = ec.verification.baseUrl.replace(/\/$/, '');
  const prometheusUrl = ec.analysis.prometheusUrl?.replace(/\/$/, '') ?? sandboxVarOf(environment, 'PROMETHEUS_URL');
  const bucket = ec.backup.bucket;
  const s3Endpoint = ec.backup.endpoint ?? sandbox.S3_ENDPOINT;
  const runbookPrefix = `bench/pipeline-${run}/postgres/`;
  const pgBin = ec.database.clientBin || (existsSync(path.join(PG15_BIN, 'pg_dump')) ? PG15_BIN : '/usr/bin');
  const versions: { version: string; side: 'p' | 'r' }[] = [];

  const work = mkdtempSync(path.join(os.tmpdir(), `bench-pipeline-${run}-`));
  const checkout = path.join(work, 'checkout');
  const backups = path.join(work, 'backups');
  const docker = new Docker({
    socketPath: (sandbox.DOCKER_HOST ?? 'unix:///var/run/docker.sock').replace('unix://', ''),
  });
  const registry = new RegistryClient(registryHost, ec.registry.insecure);
  const s3 = createS3Client(ec.backup);
  const kube = adminKube(environment);

  // --- what the sandbox is left with: the Deployments' pod templates and the migration's state --------------
  // The pod template and the Deployment's own annotations (a deployment records its version, workflow and previous images there).
  const templates = new Map<string, { template: unknown; annotations: Record<string, string> }>();
  for (const s of services) {
    const d = await kube.apps.readNamespacedDeployment({ name: s.deployment, namespace });
    templates.set(s.deployment, {
      template: JSON.parse(JSON.stringify(d.spec?.template)) as unknown,
      annotations: { ...(d.metadata?.annotations ?? {}) },
    });
  }
  const migrationApplied = async () =>
    (await adminSql(db.database, 'SELECT 1 FROM schema_migrations WHERE filename = $1', [MIGRATION])).length === 1;
  const migrationWasApplied = await migrationApplied();
  /** The release's migration pending again: its index dropped, its record deleted (as superuser). */
  const unapplyMigration = async () => {
    await adminSql(db.database, `DROP INDEX IF EXISTS ${MIGRATION_INDEX}`);
    await adminSql(db.database, 'DELETE FROM schema_migrations WHERE filename = $1', [MIGRATION]);
  };

  // --- Temporal: the sandbox's cluster when it runs one, else a dev server; a real worker in this process -----
  const clusterAddress = sandbox.TEMPORAL_ADDRESS;
  const temporal: TestWorkflowEnvironment = clusterAddress
    ? await TWE.createFromExistingServer({
        address: clusterAddress,
        namespace: sandbox.TEMPORAL_NAMESPACE || 'default',
      })
    : await devServerEnv();
  const temporalWhat = clusterAddress
    ? `the sandbox's Temporal cluster at ${clusterAddress} (namespace ${sandbox.TEMPORAL_NAMESPACE || 'default'})`
    : 'a Temporal dev server started for the run (the sandbox runs no cluster)';
  const taskQueue = uniqueQueue('bench-pipeline');
  log(`bundling the workflows; Temporal: ${temporalWhat}`);
  const worker = await Worker.create({
    connection: temporal.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: createActivities(defaultDeps(config, process.env, temporal.client.workflow)),
    interceptors: { activity: [keepAliveInterceptor] },
  });
  const running = worker.run();

  // --- (p) ours -------------------------------------------------------------------------------------------
  const oursOnce = async (version: string, k: number): Promise<OursRun> => {
    const workflowId = `bench-pipeline-${environment}-${run}-${k}`;
    const t0 = performance.now();
    const result = await temporal.client.workflow
      .execute<(input: DeployInput) => Promise<DeployResult>>('deployWorkflow', {
        taskQueue,
        workflowId,
        args: [{ version, environment, strategy: 'rolling', requestedBy: 'bench-pipeline' }],
      })
      .catch((err: unknown) => {
        // A deployment that did not succeed closes as Failed with its result in the failure.
        const details = (err as { cause?: { details?: unknown[] } }).cause?.details?.[0] as DeployResult | undefined;
        throw new Error(
          `deployment ${workflowId}: ${details?.outcome ?? 'failed'}: ${details?.reason ?? (err as Error).message}`,
        );
      });
    const wall = performance.now() - t0;
    if (result.outcome !== 'succeeded')
      throw new Error(`deployment ${workflowId}: ${result.outcome}: ${result.reason}`);
    const built = result.status.steps.find((s) => s.name === 'build and push images');
    if (!built?.detail?.includes('(0 reused)'))
      throw new Error(`deployment ${workflowId}: images were reused (${built?.detail}): the sides would not compare`);
    const h = fromHistory(
      (await temporal.client.workflow.getHandle(workflowId).fetchHistory()).events as unknown as HistoryEvent[],
    );
    return {
      version,
      wall,
      history: h.close - h.start,
      spans: h.spans,
      phases: phaseSpans(h.spans),
      outside: h.close - h.start - covered(h.spans),
    };
  };

  // --- (r) the runbook, command by command ------------------------------------------------------------------
  const awsEnv = {
    ...process.env,
    AWS_DEFAULT_REGION: ec.backup.region,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
  };
  const pgEnv = { ...process.env, PGPASSWORD: db.password };
  const kubeEnv = { ...process.env, KUBECONFIG: adminKubeconfig };
  const dockerEnv = { ...process.env, DOCKER_BUILDKIT: '0' };
  const redisEnv = { ...process.env, REDISCLI_AUTH: decodeURIComponent(redis.password) };
  const psql = (sql: string) => [
    '-h',
    db.host,
    '-p',
    db.port,
    '-U',
    db.user,
    '-d',
    db.database,
    '-v',
    'ON_ERROR_STOP=1',
    '-Atc',
    sql,
  ];

  const runbookOnce = async (version: string): Promise<RunbookRun> => {
    const commands: CommandTime[] = [];
    let phase: Phase = 'pre-flight';
    /** Lines `grep -i error` would show in the logs the runbook reads. */
    let logErrors = 0;
    const cmd = async (
      file: string,
      args: string[],
      o: { env?: NodeJS.ProcessEnv; cwd?: string; what?: string } = {},
    ): Promise<string> => {
      const r = await runCommand(file, args, { env: o.env, cwd: o.cwd });
      commands.push({ phase, what: o.what ?? `${path.basename(file)} ${args.join(' ')}`, ms: r.ms });
      return r.stdout;
    };
    const tag = `v${version}`;
    const ref = (s: (typeof services)[number]) => `${registryHost}/${s.image}:${version}`;
    const t0 = performance.now();

    // Before Starting Deployment: verify current state.
    phase = 'pre-flight';
    await cmd('kubectl', ['get', 'pods', '-n', namespace, '-o', 'wide'], { env: kubeEnv });
    await cmd('kubectl', ['get', 'services', '-n', namespace], { env: kubeEnv });
    await cmd(path.join(pgBin, 'psql'), psql('SELECT version();'), { env: pgEnv, what: 'psql -c "SELECT version();"' });
    const pong = await cmd('redis-cli', ['-h', redis.hostname, '-p', redis.port || '6379', 'PING'], { env: redisEnv });
    if (!pong.includes('PONG')) throw new Error(`redis-cli PING answered ${pong.trim()}`);
    // `| head -5`: read by this process.
    await cmd('aws', ['s3', 'ls', `s3://${bucket}/${ec.backup.prefix}`, '--endpoint-url', s3Endpoint], {
      env: awsEnv,
      what: `aws s3 ls s3://${bucket}/${ec.backup.prefix} (| head -5)`,
    });

    // Pre-Deployment Tests.
    phase = 'pre-deployment checks';
    for (const script of ['test', 'type-check', 'lint', 'build']) await cmd('npm', ['run', script], { cwd: checkout });

    // Step 1: Create Release Tag.
    phase = 'release tag';
    await cmd('git', ['tag', '-a', tag, '-m', `Release ${tag}`], { cwd: checkout });
    await cmd('git', ['push', 'origin', tag], { cwd: checkout });
    await cmd('git', ['tag', '-l', tag, '-n'], { cwd: checkout });

    // Step 2: Build Docker Images, one after another, then push each.
    phase = 'images';
    for (const s of services)
      await cmd(
        'docker',
        [
          'build',
          '-q',
          '--network',
          'none',
          '--build-arg',
          `VERSION=${version}`,
          '-t',
          ref(s),
          path.join(checkout, s.context),
        ],
        { env: dockerEnv, what: `docker build -t ${ref(s)} ${s.context}` },
      );
    for (const s of services) await cmd('docker', ['push', '-q', ref(s)], { env: dockerEnv });
    await cmd('docker', ['pull', '-q', ref(services[0])], { env: dockerEnv });

    // Step 3: Create Backup.
    phase = 'backup';
    const dumpFile = path.join(backups, `${db.database}_${version}_${Math.floor(Date.now() / 1000)}.sql`);
    {
      const fd = openSync(dumpFile, 'w');
      try {
        const r = await runCommand(
          path.join(pgBin, 'pg_dump'),
          ['-h', db.host, '-p', db.port, '-U', db.user, db.database],
          { env: pgEnv, stdout: fd },
        );
        commands.push({ phase, what: `pg_dump -h -U ${db.database} > ${path.basename(dumpFile)}`, ms: r.ms });
      } finally {
        closeSync(fd);
      }
    }
    await cmd('gzip', [dumpFile], { what: `gzip ${path.basename(dumpFile)}` });
    await cmd(
      'aws',
      [
        's3',
        'cp',
        `${dumpFile}.gz`,
        `s3://${bucket}/${runbookPrefix}`,
        '--endpoint-url',
        s3Endpoint,
        '--only-show-errors',
      ],
      { env: awsEnv, what: `aws s3 cp ${path.basename(dumpFile)}.gz s3://${bucket}/${runbookPrefix}` },
    );
    const listed = await cmd('aws', ['s3', 'ls', `s3://${bucket}/${runbookPrefix}`, '--endpoint-url', s3Endpoint], {
      env: awsEnv,
      what: `aws s3 ls s3://${bucket}/${runbookPrefix} (| grep ${version})`,
    });
    if (!listed.includes(version)) throw new Error(`the runbook's backup of ${version} is not in the bucket`);
    await cmd('rm', [`${dumpFile}.gz`], { what: `rm ${path.basename(dumpFile)}.gz` });

    // Database Migrations: status, deploy, status, tables (psql: what our built-in migrator does, by hand).
    phase = 'migrations';
    const migrationsDir = path.join(
      checkout,
      ec.database.migrations.mode === 'builtin' ? ec.database.migrations.directory : 'migrations',
    );
    const files = readdirSync(migrationsDir)
      .filter((f) => f.endsWith('.sql'))
      .sort();
    const applied = new Set(
      (
        await cmd(path.join(pgBin, 'psql'), psql('SELECT filename FROM schema_migrations ORDER BY filename;'), {
          env: pgEnv,
          what: 'psql -c "SELECT filename FROM schema_migrations" (status)',
        })
      )
        .split('\n')
        .filter(Boolean),
    );
    const pending = files.filter((f) => !applied.has(f));
    if (!pending.includes(MIGRATION)) throw new Error(`${MIGRATION} is not pending for the runbook`);
    for (const f of pending) {
      const sum = createHash('sha256')
        .update(readFileSync(path.join(migrationsDir, f)))
        .digest('hex');
      if (!/^[0-9A-Za-z_.-]+$/.test(f)) throw new Error(`unexpected migration file name ${f}`);
      await cmd(
        path.join(pgBin, 'psql'),
        [
          '-h',
          db.host,
          '-p',
          db.port,
          '-U',
          db.user,
          '-d',
          db.database,
          '-v',
          'ON_ERROR_STOP=1',
          '--single-transaction',
          '-f',
          path.join(migrationsDir, f),
          '-c',
          `INSERT INTO schema_migrations (filename, checksum, applied_by) VALUES ('${f}', '${sum}', 'runbook');`,
        ],
        { env: pgEnv, what: `psql --single-transaction -f ${f} -c "INSERT INTO schema_migrations ..." (deploy)` },
      );
    }
    await cmd(path.join(pgBin, 'psql'), psql('SELECT filename FROM schema_migrations ORDER BY filename;'), {
      env: pgEnv,
      what: 'psql -c "SELECT filename FROM schema_migrations" (status)',
    });
    await cmd(
      path.join(pgBin, 'psql'),
      psql("SELECT table_name FROM information_schema.tables WHERE table_schema='public';"),
      { env: pgEnv, what: 'psql -c "SELECT table_name FROM information_schema.tables ..."' },
    );

    // Step 4: Update Kubernetes Deployment (set image per Deployment), then watch each rollout in turn.
    phase = 'rollout';
    for (const s of services)
      await cmd(
        'kubectl',
        ['set', 'image', `deployment/${s.deployment}`, `${s.container}=${ref(s)}`, '-n', namespace],
        {
          env: kubeEnv,
        },
      );
    for (const s of services)
      await cmd('kubectl', ['rollout', 'status', `deployment/${s.deployment}`, '-n', namespace, '--timeout=10m'], {
        env: kubeEnv,
      });

    // Post-Deployment Verification.
    phase = 'verification';
    await cmd('kubectl', ['get', 'pods', '-n', namespace, '-o', 'wide'], { env: kubeEnv });
    await cmd('kubectl', ['get', 'services', '-n', namespace], { env: kubeEnv });
    await cmd('kubectl', ['get', 'pods', '-n', namespace, '--sort-by=.status.containerStatuses[0].restartCount'], {
      env: kubeEnv,
    });
    for (const d of ['api-gateway', 'auth-service']) {
      const logs = await cmd('kubectl', ['logs', '-n', namespace, `deployment/${d}`], {
        env: kubeEnv,
        what: `kubectl logs -n ${namespace} deployment/${d} (| grep -i error)`,
      });
      logErrors += logs.split('\n').filter((l) => /error/i.test(l)).length;
    }
    const health = await cmd('curl', ['-sS', '-i', `${baseUrl}${ec.verification.healthPath}`]);
    if (!/^HTTP\/[\d.]+ 200/m.test(health)) throw new Error(`health check answered ${health.split('\n')[0]}`);
    const credentials = path.join(work, 'signin.json');
    writeFileSync(
      credentials,
      JSON.stringify({ email: process.env.SMOKE_EMAIL ?? '', password: process.env.SMOKE_PASSWORD ?? '' }),
      { mode: 0o600 },
    );
    const signin = async () =>
      cmd(
        'curl',
        [
          '-sS',
          '-f',
          '-X',
          'POST',
          `${baseUrl}/api/auth/signin`,
          '-H',
          'Content-Type: application/json',
          '-d',
          `@${credentials}`,
        ],
        { what: `curl -X POST ${baseUrl}/api/auth/signin (| jq .)` },
      );
    await signin();
    const token = (JSON.parse(await signin()) as { data?: { token?: string } }).data?.token;
    if (!token) throw new Error('sign-in returned no token');
    const header = path.join(work, 'auth.header');
    writeFileSync(header, `Authorization: Bearer ${token}\n`, { mode: 0o600 });
    await cmd('curl', ['-sS', '-f', `${baseUrl}/api/chat/conversations`, '-H', `@${header}`], {
      what: `curl ${baseUrl}/api/chat/conversations -H "Authorization: Bearer $TOKEN" (| jq .)`,
    });
    await cmd('curl', ['-sS', '-f', `${prometheusUrl}/api/v1/query?query=http_requests_total`]);
    const wall = performance.now() - t0;
    const phases = new Map<Phase, number>();
    for (const c of commands) phases.set(c.phase, (phases.get(c.phase) ?? 0) + c.ms);
    return { version, wall, commands, phases, logErrors };
  };

  const ours: OursRun[] = [];
  const runbook: RunbookRun[] = [];
  let kubectlVersion: string | undefined;
  try {
    log(`setting up the runbook's checkout (a clone of ${sandbox.GIT_REMOTE}), not timed`);
    await runCommand('git', ['clone', '-q', sandbox.GIT_REMOTE ?? '', checkout]);
    await runCommand('git', ['config', 'user.name', 'bench runbook'], { cwd: checkout });
    await runCommand('git', ['config', 'user.email', 'bench@example.invalid'], { cwd: checkout });
    rmSync(backups, { recursive: true, force: true });
    await runCommand('mkdir', ['-p', backups]);
    kubectlVersion = (await runCommand('kubectl', ['version', '--client'], { env: kubeEnv })).stdout.split('\n')[0];

    let k = 0;
    for (let round = 0; round < size.rounds; round++) {
      const order: ('p' | 'r')[] = round % 2 === 0 ? ['p', 'r'] : ['r', 'p'];
      for (const side of order) {
        k++;
        const version = `1.0.1-bench-${side}.b${run}.${k}`;
        versions.push({ version, side });
        await unapplyMigration();
        if (side === 'p') {
          const o = await oursOnce(version, k);
          ours.push(o);
          log(`round ${round + 1}: (p) deploy workflow ${version}: ${ms(o.wall)}`);
        } else {
          const r = await runbookOnce(version);
          runbook.push(r);
          log(`round ${round + 1}: (r) runbook ${version}: ${ms(r.wall)}`);
        }
      }
    }
  } finally {
    await cleanUp().catch((err: unknown) => log(`clean-up: ${String(err)}`));
  }

  async function cleanUp(): Promise<void> {
    worker.shutdown();
    await running.catch(() => undefined);
    await temporal.teardown().catch(() => undefined);
    // The Deployments get back their pod templates and annotations (the controller's revision excepted) and roll to them.
    for (const [name, saved] of templates) {
      const d = await kube.apps.readNamespacedDeployment({ name, namespace });
      d.spec!.template = saved.template as NonNullable<typeof d.spec>['template'];
      const revision = d.metadata?.annotations?.[REVISION_ANNOTATION];
      d.metadata!.annotations = { ...saved.annotations, ...(revision ? { [REVISION_ANNOTATION]: revision } : {}) };
      await kube.apps.replaceNamespacedDeployment({ name, namespace, body: d }).catch((err: unknown) => {
        log(`could not restore ${name}'s pod template: ${String(err)}`);
      });
    }
    for (const name of templates.keys())
      await runCommand('kubectl', ['rollout', 'status', `deployment/${name}`, '-n', namespace, '--timeout=5m'], {
        env: kubeEnv,
      }).catch((err: unknown) => log(`rollout back of ${name}: ${String(err)}`));
    if (migrationWasApplied && !(await migrationApplied()))
      log(`${MIGRATION} was applied before the run and is not now`);
    if (!migrationWasApplied) await unapplyMigration();
    // The bench's tags (origin and the worker's checkout), images (engine and registry) and objects.
    for (const { version } of versions) {
      const tag = `v${version}`;
      await runCommand('git', ['push', '-q', 'origin', '--delete', tag], { cwd: checkout }).catch(() => undefined);
      if (ec.git.checkout) await runCommand('git', ['tag', '-d', tag], { cwd: ec.git.checkout }).catch(() => undefined);
      for (const s of services) {
        await docker
          .getImage(`${registryHost}/${s.image}:${version}`)
          .remove({ force: true })
          .catch(() => undefined);
        const digest = await registry.digest(s.image, version).catch(() => undefined);
        if (digest)
          await fetch(`http://${registryHost}/v2/${s.image}/manifests/${digest}`, { method: 'DELETE' }).catch(
            () => undefined,
          );
      }
    }
    const marker = `.b${run}.`;
    for (const prefix of [runbookPrefix, ec.backup.prefix, ec.summary.prefix]) {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
      for (const o of page.Contents ?? [])
        if (o.Key && (prefix === runbookPrefix || o.Key.includes(marker)))
          await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key })).catch(() => undefined);
    }
    s3.destroy();
    rmSync(work, { recursive: true, force: true });
  }

  // --- the report -------------------------------------------------------------------------------------------
  const oursWall = median(ours.map((o) => o.wall));
  const runbookWall = median(runbook.map((r) => r.wall));
  const r = oursWall / runbookWall;
  const closest = <T extends { wall: number }>(xs: T[], m: number) =>
    xs.reduce((best, x) => (Math.abs(x.wall - m) < Math.abs(best.wall - m) ? x : best));
  const o = closest(ours, oursWall);
  const rb = closest(runbook, runbookWall);
  const phaseMedian = <T extends { phases: Map<Phase, number> }>(xs: T[], p: Phase) =>
    xs.some((x) => x.phases.has(p)) ? median(xs.map((x) => x.phases.get(p) ?? 0)) : NaN;

  const phaseRows: (string | number)[][] = PHASES.filter(
    (p) => ours.some((x) => x.phases.has(p)) || runbook.some((x) => x.phases.has(p)),
  ).map((p) => {
    const a = phaseMedian(ours, p);
    const b = phaseMedian(runbook, p);
    // A phase one side has no step for (the runbook plans, notifies and writes its summary by hand): "-".
    const cell = (x: number) => (Number.isFinite(x) ? ms(x) : '-');
    return [p, cell(a), cell(b), Number.isFinite(a) && Number.isFinite(b) ? ratio(a / b) : ''];
  });
  const outside = median(ours.map((x) => x.outside));
  phaseRows.push(
    ['(p) between activities: workflow tasks, lock child, dispatch', ms(outside), '', ''],
    ['(p) workflow start -> close (history)', ms(median(ours.map((x) => x.history))), '', ''],
    ['total wall (client: start -> result; first command -> last)', ms(oursWall), ms(runbookWall), ratio(r)],
  );

  const biggest = [...o.spans].sort((a, b) => b.end - b.start - (a.end - a.start))[0];
  const rbBiggest = [...rb.phases.entries()].sort((a, b) => b[1] - a[1])[0];
  // What the images (beside the backup) may take for the target to be met, everything else as measured.
  const imagesSpan = covered(o.spans.filter((s) => s.phase === 'images' || s.phase === 'backup'));
  const imagesBudget = 0.5 * rb.wall - (o.wall - imagesSpan);
  const tables: Table[] = [
    {
      title: 'Wall time of each round',
      columns: ['round', '(p) deploy workflow', '(r) runbook', '(p)/(r)'],
      rows: ours.map((x, i) => [
        i + 1,
        `${ms(x.wall)} (${x.version})`,
        runbook[i] ? `${ms(runbook[i].wall)} (${runbook[i].version})` : '',
        runbook[i] ? ratio(x.wall / runbook[i].wall) : '',
      ]),
    },
    {
      title:
        'Where the time goes, side by side (median of the rounds): (p) from the first activity of the phase scheduled to its last completed (images and backup run side by side); (r) the sum of its commands',
      columns: ['phase', '(p) ours', '(r) runbook', '(p)/(r)'],
      rows: phaseRows,
    },
    {
      title: `(p) every activity of the round closest to the median (${o.version}), from the workflow's history`,
      columns: ['activity', 'phase', 'scheduled at', 'scheduled -> completed'],
      rows: [...o.spans]
        .sort((a, b) => a.start - b.start)
        .map((s) => [s.name, s.phase, `+${ms(s.start)}`, ms(s.end - s.start)]),
    },
    {
      title: `(r) every command of the round closest to the median (${rb.version})`,
      columns: ['phase', 'command', 'time'],
      rows: rb.commands.map((c) => [c.phase, c.what.replace(/\s+/g, ' ').slice(0, 110), ms(c.ms)]),
    },
  ];
  const waits = o.spans.filter((x) => x.name === 'waitForRollout').map((x) => x.end - x.start);
  const targets: Target[] = [
    {
      name: 'whole deploy, (p) ours vs (r) runbook',
      measured: ratio(r),
      wanted: '<= 0.50x',
      pass: r <= 0.5,
      ...(r > 0.5
        ? {
            why: `(p)'s biggest step is ${biggest.name} (${biggest.phase}), ${ms(biggest.end - biggest.start)} of ${ms(o.wall)}; the runbook's biggest phase is ${rbBiggest[0]}, ${ms(rbBiggest[1])} of ${ms(rb.wall)}. ${
              imagesBudget > 0
                ? `With the rest as measured, images and backup side by side would have to take at most ${ms(imagesBudget)} (${ratio(imagesBudget / (rb.phases.get('images') ?? NaN))} the runbook's serial images) instead of ${ms(imagesSpan)}`
                : `Without images and backup (p) still takes ${ms(o.wall - imagesSpan)}, more than half the runbook's time`
            }`,
          }
        : {}),
    },
  ];
  return {
    name: 'pipeline',
    title: 'Pipeline: the whole deploy vs the runbook by hand',
    size: opts.size,
    startedAt,
    durationMs: Date.now() - startedAt.getTime(),
    load: { start: loadStart, end: loadAverage() },
    setup: [
      `the sandbox's ${environment} environment: ${services.length} services (${services.map((s) => s.name).join(', ')}), database ${db.database}, namespace ${namespace}, registry ${registryHost}`,
      `(p) deployWorkflow, strategy rolling (waves by dependsOn), backup and migrations on, on ${temporalWhat}; a real worker in the benchmark's process (createActivities with the real clients, the example config: build.concurrency ${ec.build.concurrency}, backup -Z${ec.backup.compressionLevel}); the policy opened to allow rolling, soaks 0`,
      `(r) the runbook's commands one after another, no shell: kubectl (${kubectlVersion?.trim() ?? 'version unknown'}), psql/pg_dump from ${pgBin}, redis-cli, aws (awscli), npm, git, docker (legacy builder, as the Engine API gives buildImages), curl`,
      `${size.rounds} round(s), each side once per round with a new version (${size.rounds > 1 ? 'the order alternates each round' : '(p) first'}); the release's migration ${MIGRATION} made pending again before each side`,
    ],
    tables,
    targets,
    notes: [
      `Both sides do the same work: each builds all ${services.length} images from scratch (a new version per side and round; the VERSION build argument changes every layer after the base image, and (p) checks that buildImages reused none), dumps and uploads the database, applies ${MIGRATION}, rolls all ${services.length} Deployments and waits for each, and checks health, sign-in and the API. buildImages also labels each image (revision, version, workflow id), which costs the legacy builder an extra step per image (see the images benchmark).`,
      `Where the runbook is not literal: docker-compose build + docker tag is one docker build -t per service; its "kind: Patch" manifest is not a Kubernetes object, so each Deployment gets kubectl set image; rollout status is awaited for all six Deployments (the runbook lists four); \`| head\`, \`| grep\` and \`| jq\` are done on the captured output; the runbook's backup goes under s3://${bucket}/${runbookPrefix} (deleted at the end) so no listing of the product's backups ever sees it; npm audit, npm run test:smoke (not in the release) and the summary a person writes by hand are not counted, which favours the runbook.`,
      `(p) rolls out in ${waits.length} wave(s) (config dependsOn: api-gateway after its back ends), each awaited before the next after a wave check: waitForRollout took ${waits.map((w) => ms(w)).join(' + ')}; the runbook sets every image at once and then waits for each Deployment in turn.`,
      `Migrations: the sandbox's config uses the built-in migrator (each pending file in one transaction, recorded in schema_migrations with its checksum); the runbook side does the same with psql (status, psql --single-transaction -f <file> -c "INSERT INTO schema_migrations ...", status, the tables), the equivalent of the runbook's prisma migrate status / deploy / status.`,
      `The runbook's \`kubectl logs ... | grep -i error\` showed ${runbook.map((x) => x.logErrors).join(', ')} line(s) per round (read, as a person would, not acted on); (p) counts error lines in the new pods' logs since the rollout inside checkKubernetesHealth, within verification.maxLogErrors (${config.verification.maxLogErrors}).`,
      `The runbook's timings are of the commands alone: no typing or reading time between them, so (r) is the fastest a person could go.`,
      `(p) is timed at the client, from starting the workflow to its result; the history's start -> close is shown beside it. "Between activities" is the part of the workflow's time inside no activity: workflow tasks, the environment lock's child workflow, activity dispatch (see the overhead benchmark).`,
      "The machine is shared: the sandbox's clusters, PostgreSQL, registry, S3, Temporal and both sides run on the same CPUs.",
    ],
  };
}
