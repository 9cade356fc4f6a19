/**
 * Reliability harness (issue 10): real end-to-end canary deployments of
 * v1.0.1 on the sandbox, while the worker process is killed with SIGKILL at
 * seeded random points and restarted, Temporal is killed -9 and restarted
 * (the dev server on its SQLite file, or the history and the matching service
 * of a real cluster, each alone: temporal-under-test.ts), and each outside system (registry, S3,
 * PostgreSQL, apiserver, Prometheus, webhook) fails for a while or for good
 * during the step that uses it. After each deployment the outside systems
 * themselves are asked what happened: one git tag, one image per service
 * with the digest that is deployed, one verified backup of that workflow,
 * each migration once, the Deployments' images, the VirtualService's
 * weights, and no workflow left running.
 *
 * Processes: the harness starts its own Temporal (own ports; a dev server's
 * SQLite file, or a cluster's own databases) and runs the worker as a separate OS process (`tsx src/worker.ts`,
 * own process group, so SIGKILL reaches the whole of it). The worker reaches
 * every outside system through a fault proxy on loopback (test/helpers/fault-proxy.ts);
 * the harness checks the systems directly. The sandbox is the one of
 * SANDBOX_DIR (.sandbox by default), so CI runs this against the default
 * sandbox and a developer against their own instance.
 *
 * Used by test/e2e/reliability-short.test.ts (a few kills, every fault kind
 * once, in `npm test`) and test/reliability/reliability.test.ts (the full
 * version, `npm run test:reliability`). Both write docs/reliability.md.
 */
import { verifyLedger, workflowRecords } from '../../src/activities/audit/chain';
import {
  S3Client,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
} from '@aws-sdk/client-s3';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { Client as PgClient } from 'pg';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import * as k8s from '@kubernetes/client-node';
import type { DeploymentStatus } from '../../src/domain/status';
import type { DeployResult } from '../../src/workflows/deploy';
import { approveSignal, statusQuery } from '../../src/workflows/messages';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { lockWorkflowId } from '../../src/workflows/environment-lock';
import { formatFindings, sandboxSecrets, scanForSecrets, writeSecretsSection, type ScanText } from '../helpers/secrets';
import { REPO_ROOT } from '../helpers/tools';
import { DENIALS, FaultProxy, WebhookReceiver } from '../helpers/fault-proxy';
import { resultOf as workflowResultOf } from '../../src/workflows/outcome';
import { psqlAdmin } from '../../scripts/sandbox/postgres';
import { sandboxLayout } from '../../scripts/sandbox/temporal';
import { Proc, sleep } from './processes';
import { cluster, devServer, temporalKind, type TemporalUnderTest } from './temporal-under-test';

const execFileP = promisify(execFile);

export type System = 'registry' | 's3' | 'postgres' | 'apiserver' | 'prometheus' | 'webhook';
export const SYSTEMS: System[] = ['registry', 's3', 'postgres', 'apiserver', 'prometheus', 'webhook'];
export const SERVICES = [
  'auth-service',
  'chat-service',
  'billing-service',
  'analytics-service',
  'api-gateway',
  'frontend',
];
const NAMESPACE = 'ai-saas';
const VERSION = '1.0.1';
const CANARY_INPUT = { soak: '6s', analysisInterval: '3s' };
const POLL_MS = 300;

/** What the end state of a deployment must be. */
export type Expectation =
  | 'succeeded' // every side effect once, traffic and images on 1.0.1
  | 'rolled-back' // analysis failed: traffic and images back, database restored after approval
  | 'failed-before-rollout' // nothing in Kubernetes changed
  | 'failed-rollback-incomplete'; // the saga tried and says so

export interface RunSpec {
  n: number;
  scenario: string;
  /** Each kill happens this long after the worker (re)started polling. */
  killDelaysMs: number[];
  /** How long the worker stays down after each kill. */
  downMs: number[];
  serverRestarts: ('activity' | 'soak')[];
  transient: System[];
  permanent?: System;
  expect: Expectation;
}

export interface ReliabilityOptions {
  mode: 'short' | 'full';
  seed: number;
  runs: RunSpec[];
  /** Where the results go (docs/reliability.md), and the command that repeats the run. */
  docPath: string;
  command: string;
  /** Progress lines (stderr by default, so they show while jest runs). */
  log?: (line: string) => void;
  runDeadlineMs?: number;
}

// --- seeds and plans -----------------------------------------------------------------

/** mulberry32: a small PRNG, so a seed replays the same plan. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function seedFromEnv(): number {
  const v = process.env.RELIABILITY_SEED;
  if (v !== undefined && v !== '') {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
      throw new Error(`RELIABILITY_SEED must be an integer between 0 and 4294967295, got ${JSON.stringify(v)}`);
    return n;
  }
  return Math.floor(Math.random() * 0xffffffff);
}

/** Expected length of a clean canary run on this sandbox: kill points are drawn over it. */
const RUN_LENGTH_MS = Number(process.env.RELIABILITY_RUN_MS ?? 50_000);

function kills(rand: () => number, count: number, overMs = RUN_LENGTH_MS): Pick<RunSpec, 'killDelaysMs' | 'downMs'> {
  const killDelaysMs: number[] = [];
  const downMs: number[] = [];
  // Each kill a delay after the previous restart, the delays together spanning about one run.
  const span = overMs / Math.max(count, 1);
  for (let i = 0; i < count; i++) {
    killDelaysMs.push(Math.round(1000 + rand() * (span - 1000)));
    downMs.push(Math.round(500 + rand() * 3500));
  }
  return { killDelaysMs, downMs };
}

/** `npm test`: two runs (one kill, then one or two), a server restart during an activity and during a soak, every system's transient outage, one permanent failure. */
export function shortPlan(seed: number): RunSpec[] {
  const rand = prng(seed);
  return [
    {
      n: 1,
      scenario: 'worker kills + server restart during an activity + transient outage of every system',
      ...kills(rand, 1),
      serverRestarts: ['activity'],
      transient: [...SYSTEMS],
      expect: 'succeeded',
    },
    {
      n: 2,
      scenario: 'worker kills + server restart during a soak + Prometheus down for good from the 25% soak',
      ...kills(rand, 1 + Math.floor(rand() * 2), 35_000),
      serverRestarts: ['soak'],
      transient: [],
      permanent: 'prometheus',
      expect: 'rolled-back',
    },
  ];
}

const PERMANENT_EXPECT: Record<System, Expectation> = {
  registry: 'failed-before-rollout',
  s3: 'failed-before-rollout',
  postgres: 'failed-before-rollout',
  apiserver: 'failed-rollback-incomplete',
  prometheus: 'rolled-back',
  webhook: 'succeeded',
};

/** `npm run test:reliability`: a baseline, `crashRuns` runs with 1–3 kills each, two server restarts, each system's transient outage and permanent failure on its own. */
export function fullPlan(seed: number, crashRuns: number, only?: string[]): RunSpec[] {
  const rand = prng(seed);
  const runs: Omit<RunSpec, 'n'>[] = [
    {
      scenario: 'baseline (no fault)',
      killDelaysMs: [],
      downMs: [],
      serverRestarts: [],
      transient: [],
      expect: 'succeeded',
    },
  ];
  for (let i = 0; i < crashRuns; i++)
    runs.push({
      scenario: 'worker kills',
      ...kills(rand, 1 + Math.floor(rand() * 3)),
      serverRestarts: [],
      transient: [],
      expect: 'succeeded',
    });
  runs.push({
    scenario: 'server restart during an activity',
    killDelaysMs: [],
    downMs: [],
    serverRestarts: ['activity'],
    transient: [],
    expect: 'succeeded',
  });
  runs.push({
    scenario: 'server restart during a soak',
    killDelaysMs: [],
    downMs: [],
    serverRestarts: ['soak'],
    transient: [],
    expect: 'succeeded',
  });
  for (const s of SYSTEMS)
    runs.push({
      scenario: `transient ${s} outage`,
      killDelaysMs: [],
      downMs: [],
      serverRestarts: [],
      transient: [s],
      expect: 'succeeded',
    });
  for (const s of SYSTEMS)
    runs.push({
      scenario: `permanent ${s} failure`,
      killDelaysMs: [],
      downMs: [],
      serverRestarts: [],
      transient: [],
      permanent: s,
      expect: PERMANENT_EXPECT[s],
    });
  const filtered = only?.length ? runs.filter((r) => only.some((o) => r.scenario.includes(o))) : runs;
  return filtered.map((r, i) => ({ ...r, n: i + 1 }));
}

// --- results ---------------------------------------------------------------------------

export interface KillRecord {
  atMs: number;
  /** What was running when the worker died. */
  landed: string;
  category: string;
  downMs: number;
  restartMs: number;
  /** For a kill during an activity: when that work ran again on the new worker (after the attempt's heartbeat or start-to-close timeout). */
  resumedMs?: number;
}

export interface FaultRecord {
  system: System;
  kind: 'transient' | 'permanent';
  how: string;
  startedMs?: number;
  durationMs?: number;
  /** The step(s) running when it began. */
  during?: string;
  /** Activity attempts that failed while it lasted (from describe) — the retries it caused. */
  retried: string[];
  /** What the deployment reported while it lasted (analysis runs), and what it cost (lost notifications). */
  observed: string[];
  /** An activity using the system was seen pending while it lasted. */
  overlapped?: boolean;
}

export interface Check {
  name: string;
  ok: boolean;
  detail?: string;
}

export interface RunRecord {
  spec: RunSpec;
  workflowId: string;
  durationMs: number;
  outcome: string;
  reason?: string;
  kills: KillRecord[];
  skippedKills: number;
  serverRestarts: { where: string; atMs: number; downMs: number; service: string }[];
  faults: FaultRecord[];
  /** Activities that needed more than one attempt, from the event history. */
  retries: string[];
  notifications: { expected: number; received: number; failuresCounted: number };
  workerExits: string[];
  /** The secret scan of this run's histories, the worker log and the notifications received. */
  secrets?: { secrets: number; sources: number; bytes: number; findings: string[] };
  checks: Check[];
  ok: boolean;
}

export interface ReliabilityReport {
  mode: 'short' | 'full';
  seed: number;
  command: string;
  startedAt: string;
  durationMs: number;
  sandboxDir: string;
  /** Which Temporal ran and what a restart killed. */
  temporal: string;
  runs: RunRecord[];
  ok: boolean;
}

// --- sandbox -------------------------------------------------------------------------

export function sandboxDir(): string {
  return path.resolve(process.env.SANDBOX_DIR ?? path.join(REPO_ROOT, '.sandbox'));
}

function readEnvFile(dir: string): Record<string, string> {
  const file = path.join(dir, 'env');
  if (!existsSync(file))
    throw new Error(`no sandbox environment in ${file}: start it with \`npm run sandbox -- up\` (SANDBOX_DIR=${dir})`);
  return Object.fromEntries(
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

async function sandboxCli(dir: string, env: Record<string, string>, ...args: string[]): Promise<string> {
  const { stdout } = await execFileP(
    path.join(REPO_ROOT, 'node_modules/.bin/tsx'),
    [path.join(REPO_ROOT, 'scripts/sandbox/cli.ts'), ...args],
    {
      cwd: REPO_ROOT,
      // The instance's ports come from its env file: a reset never reaches another instance.
      env: { ...process.env, ...pick(env, /^SANDBOX_/), SANDBOX_DIR: dir },
      maxBuffer: 10 * 1024 * 1024,
    },
  );
  return stdout;
}

function pick(env: Record<string, string>, re: RegExp): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter(([k]) => re.test(k)));
}

function portOf(url: string): number {
  const u = new URL(url.includes('://') ? url : `http://${url}`);
  return Number(u.port || (u.protocol === 'https:' ? 443 : 80));
}

// --- the outside systems, read directly ----------------------------------------------

interface Outside {
  env: Record<string, string>;
  dir: string;
  kube: { apps: k8s.AppsV1Api; custom: k8s.CustomObjectsApi };
  s3: S3Client;
}

function outside(dir: string, env: Record<string, string>): Outside {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(env.KUBECONFIG);
  return {
    env,
    dir,
    kube: { apps: kc.makeApiClient(k8s.AppsV1Api), custom: kc.makeApiClient(k8s.CustomObjectsApi) },
    s3: new S3Client({
      endpoint: env.S3_ENDPOINT,
      region: env.AWS_REGION ?? 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    }),
  };
}

interface PlatformSnapshot {
  images: Record<string, string>;
  revisions: Record<string, string>;
  replicas: Record<string, number>;
  weights: { stable: number; canary: number };
  /** Manifests the registry holds (linked revisions) per repository. */
  manifests: Record<string, string[]>;
}

async function snapshot(o: Outside): Promise<PlatformSnapshot> {
  const list = await o.kube.apps.listNamespacedDeployment({ namespace: NAMESPACE });
  const images: Record<string, string> = {};
  const revisions: Record<string, string> = {};
  const replicas: Record<string, number> = {};
  for (const d of list.items) {
    const name = d.metadata!.name!;
    images[name] = d.spec!.template.spec!.containers[0].image!;
    revisions[name] = d.metadata?.annotations?.['deployment.kubernetes.io/revision'] ?? '?';
    replicas[name] = d.spec?.replicas ?? 0;
  }
  const vs = (await o.kube.custom.getNamespacedCustomObject({
    group: 'networking.istio.io',
    version: 'v1beta1',
    namespace: NAMESPACE,
    plural: 'virtualservices',
    name: 'api-gateway',
  })) as {
    spec: { http: { route: { destination: { subset: string }; weight?: number }[] }[] };
  };
  const route = vs.spec.http[0].route;
  const weights = {
    stable: route.find((r) => r.destination.subset === 'stable')?.weight ?? 0,
    canary: route.find((r) => r.destination.subset === 'canary')?.weight ?? 0,
  };
  const manifests: Record<string, string[]> = {};
  for (const s of SERVICES) manifests[s] = registryManifests(o.dir, `ai-saas-${s}`);
  return { images, revisions, replicas, weights, manifests };
}

/** The registry's own record of the manifests it holds (distribution's storage layout: revisions with a link). */
function registryManifests(dir: string, repo: string): string[] {
  const revs = path.join(
    dir,
    'registry',
    'data',
    'docker',
    'registry',
    'v2',
    'repositories',
    repo,
    '_manifests',
    'revisions',
    'sha256',
  );
  if (!existsSync(revs)) return [];
  return readdirSync(revs)
    .filter((d) => existsSync(path.join(revs, d, 'link')))
    .map((d) => `sha256:${d}`)
    .sort();
}

const MANIFEST_ACCEPT =
  'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json';

async function registryTags(registry: string, repo: string): Promise<string[]> {
  const r = await fetch(`http://${registry}/v2/${repo}/tags/list`);
  if (!r.ok) return [];
  return (((await r.json()) as { tags?: string[] | null }).tags ?? []).sort();
}

async function registryImage(
  registry: string,
  repo: string,
  ref: string,
): Promise<{ digest?: string; labels: Record<string, string> }> {
  const r = await fetch(`http://${registry}/v2/${repo}/manifests/${ref}`, { headers: { Accept: MANIFEST_ACCEPT } });
  if (!r.ok) return { labels: {} };
  const digest = r.headers.get('docker-content-digest') ?? undefined;
  const manifest = (await r.json()) as { config?: { digest: string } };
  if (!manifest.config) return { digest, labels: {} };
  const c = await fetch(`http://${registry}/v2/${repo}/blobs/${manifest.config.digest}`);
  const config = (await c.json()) as { config?: { Labels?: Record<string, string> } };
  return { digest, labels: config.config?.Labels ?? {} };
}

async function gitTags(remote: string): Promise<{ count: number; commit?: string }> {
  const { stdout } = await execFileP('git', ['ls-remote', '--tags', remote]);
  const lines = stdout.trim().split('\n').filter(Boolean);
  const count = lines.filter((l) => l.endsWith(`refs/tags/v${VERSION}`)).length;
  const peeled =
    lines.find((l) => l.endsWith(`refs/tags/v${VERSION}^{}`)) ?? lines.find((l) => l.endsWith(`refs/tags/v${VERSION}`));
  return { count, commit: peeled?.split(/\s+/)[0] };
}

async function migrations(env: Record<string, string>): Promise<{ files: string[]; indexes: number }> {
  const db = new PgClient({ connectionString: env.DATABASE_URL });
  await db.connect();
  try {
    const m = await db.query<{ filename: string }>('SELECT filename FROM schema_migrations ORDER BY filename');
    const i = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_indexes WHERE indexname = 'users_email_verified_at_idx'",
    );
    return { files: m.rows.map((r) => r.filename), indexes: i.rows[0].n };
  } finally {
    await db.end();
  }
}

interface BackupCheck {
  objects: number;
  verified: number;
  keys: string[];
  pendingUploads: number;
}

/** This workflow's backups of 1.0.1 as the bucket holds them; a verified one is read back and hashed here. */
async function backups(o: Outside, workflowId: string): Promise<BackupCheck> {
  const bucket = o.env.S3_BUCKET ?? 'ai-saas-backups';
  const prefix = `postgres/ai_saas_prod_${VERSION}_`;
  const listed = await o.s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  const out: BackupCheck = { objects: 0, verified: 0, keys: [], pendingUploads: 0 };
  for (const obj of listed.Contents ?? []) {
    const h = await o.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: obj.Key! }));
    const meta = h.Metadata ?? {};
    if (decodeURIComponent(meta['workflow-id'] ?? '') !== workflowId) continue;
    out.objects++;
    out.keys.push(obj.Key!);
    if (!meta.sha256 || !meta.bytes || Number(meta.bytes) !== h.ContentLength) continue;
    const got = await o.s3.send(new GetObjectCommand({ Bucket: bucket, Key: obj.Key! }));
    const bytes = await got.Body!.transformToByteArray();
    if (bytes.length === Number(meta.bytes) && createHash('sha256').update(bytes).digest('hex') === meta.sha256)
      out.verified++;
  }
  const uploads = await o.s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix }));
  out.pendingUploads = (uploads.Uploads ?? []).length;
  return out;
}

// --- observing a deployment ------------------------------------------------------------

interface Pending {
  workflowId: string;
  type: string;
  attempt: number;
  /** Started on a worker (else scheduled: waiting for a worker or for its retry backoff). */
  started: boolean;
  /** When the current attempt started (server clock, same machine). */
  startedAt?: number;
  lastFailure?: string;
}

interface Observation {
  at: number;
  status?: string;
  phase?: string;
  childId?: string;
  childPhase?: string;
  weight?: number;
  /** The canary's latest analysis run. */
  analysis?: { at: string; outcome: string; reason?: string };
  running: string[];
  done: Set<string>;
  pending: Pending[];
}

const CHILD_SUFFIXES = ['-canary', '-rollback'];

class Observer {
  last: Observation = { at: 0, running: [], done: new Set(), pending: [] };
  private readonly done = new Set<string>();

  constructor(
    private readonly client: Client,
    private readonly workflowId: string,
  ) {}

  /** Server-side facts (describe) always; the status query only while a worker answers. */
  async observe(queryWorker: boolean): Promise<Observation> {
    const o: Observation = { at: Date.now(), running: [], done: this.done, pending: [] };
    const c = this.client;
    // The query first, then describe: activities are scheduled after the phase changes, so the pair reads consistently.
    const main = queryWorker ? await this.query(this.workflowId) : undefined;
    try {
      const d = await c.withDeadline(Date.now() + 3000, () => c.workflow.getHandle(this.workflowId).describe());
      o.status = d.status.name;
      o.pending.push(...pendingOf(this.workflowId, d.raw.pendingActivities));
      for (const suffix of CHILD_SUFFIXES) {
        const id = `${this.workflowId}${suffix}`;
        if (!(d.raw.pendingChildren ?? []).some((p) => p.workflowId === id)) continue;
        o.childId = id;
        const cd = await c
          .withDeadline(Date.now() + 3000, () => c.workflow.getHandle(id).describe())
          .catch(() => undefined);
        if (cd) o.pending.push(...pendingOf(id, cd.raw.pendingActivities));
      }
    } catch {
      return { ...this.last, at: o.at, running: [], pending: [] };
    }
    if (queryWorker) {
      const s = main;
      if (s) {
        o.phase = s.phase;
        this.steps(s, o);
      }
      if (o.childId) {
        const cs = await this.query(o.childId);
        if (cs) {
          o.childPhase = cs.phase;
          o.weight = cs.canary?.weight;
          if (cs.lastAnalysis) {
            const m = cs.lastAnalysis.measurements.find((x) => x.outcome !== 'pass');
            o.analysis = {
              at: cs.lastAnalysis.at,
              outcome: cs.lastAnalysis.outcome,
              ...(m?.reason ? { reason: m.reason } : {}),
            };
          }
          this.steps(cs, o);
        }
      }
    } else {
      o.phase = this.last.phase;
      o.childPhase = this.last.childPhase;
      o.weight = this.last.weight;
      o.analysis = this.last.analysis;
    }
    this.last = o;
    return o;
  }

  private async query(id: string): Promise<DeploymentStatus | undefined> {
    const c = this.client;
    return c.withDeadline(Date.now() + 2500, () => c.workflow.getHandle(id).query(statusQuery)).catch(() => undefined);
  }

  private steps(s: DeploymentStatus, o: Observation): void {
    for (const st of s.steps) {
      if (st.state === 'running') o.running.push(st.name);
      if (st.state === 'succeeded') this.done.add(st.name);
    }
  }
}

type RawTime = { seconds?: number | { toString(): string } | null; nanos?: number | null } | null | undefined;

function millis(t: RawTime): number | undefined {
  if (!t || t.seconds === undefined || t.seconds === null) return undefined;
  const secs = typeof t.seconds === 'number' ? t.seconds : Number(t.seconds.toString());
  return secs * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

function pendingOf(workflowId: string, raw: unknown): Pending[] {
  const list = (raw ?? []) as {
    activityType?: { name?: string | null } | null;
    attempt?: number | null;
    state?: number | null;
    lastStartedTime?: RawTime;
    lastFailure?: { message?: string | null } | null;
  }[];
  return list.map((p) => {
    const startedAt = millis(p.lastStartedTime);
    // PendingActivityState 2 = STARTED.
    return {
      workflowId,
      type: p.activityType?.name ?? '?',
      attempt: p.attempt ?? 1,
      started: p.state === 2,
      ...(startedAt ? { startedAt } : {}),
      ...(p.lastFailure?.message ? { lastFailure: p.lastFailure.message } : {}),
    };
  });
}

/**
 * What was going on, as a person would say it. `workerSince`: when the
 * current worker started; an attempt started before that belongs to a killed
 * worker and only waits for its timeout.
 */
function describeWhere(o: Observation, workerSince = 0): string {
  const label = (p: Pending): string => {
    const attempt = p.attempt > 1 ? `attempt ${p.attempt}` : '';
    if (!p.started) return `${p.type} (${[attempt, 'scheduled, not running'].filter(Boolean).join(', ')})`;
    if (p.startedAt !== undefined && p.startedAt < workerSince)
      return `${p.type} (${[attempt, 'orphaned by the previous kill, waiting for its timeout'].filter(Boolean).join(', ')})`;
    return `${p.type}${attempt ? ` (${attempt})` : ''}`;
  };
  const acts = [...new Set(o.pending.map(label))];
  const steps = o.running.filter((s) => !s.startsWith('canary') || o.running.length === 1);
  if (acts.length) return `${steps.length ? `${steps.join(' + ')}: ` : ''}${acts.join(', ')}`;
  if (o.childPhase === 'soaking') return `soak at ${o.weight ?? '?'}% (durable timer, no activity)`;
  if (o.childPhase === 'awaiting-db-decision' || o.phase === 'awaiting-db-decision')
    return 'waiting for the database decision (signal)';
  if (steps.length) return `${steps.join(' + ')} (between activities)`;
  return `${o.phase ?? o.status ?? 'unknown'} (no activity pending)`;
}

/** The kind of moment a kill hit, for the summary table. */
function categorize(o: Observation, workerSince: number): string {
  const running = o.pending.filter((p) => p.started && (p.startedAt === undefined || p.startedAt >= workerSince));
  if (running.length) return `activity running: ${[...new Set(running.map((p) => p.type))].sort().join(' + ')}`;
  if (o.childPhase === 'soaking') return 'canary soak (durable timer, no activity)';
  if (o.pending.some((p) => p.started))
    return 'no activity running: an attempt of the killed worker waits for its timeout';
  if (o.pending.length) return 'no activity running: activity scheduled (retry backoff or no worker yet)';
  return 'between activities (workflow task or timer)';
}

/** Activity types that talk to each system: a transient fault is judged by their retries. */
const USES: Record<System, string[]> = {
  registry: ['buildImages'],
  s3: ['backupDatabase', 'writeSummary'],
  postgres: ['migrationStatus', 'applyMigrations', 'backupDatabase'],
  apiserver: [
    'podRestarts',
    'snapshotConfiguration',
    'patchImages',
    'waitForRollout',
    'readClusterState',
    'startCanary',
    'setCanaryWeight',
    'checkKubernetesHealth',
  ],
  prometheus: ['runAnalysis', 'analyzeCanary', 'platformBaseline'],
  webhook: ['notify'],
};

// --- the harness -----------------------------------------------------------------------

export async function runReliability(opts: ReliabilityOptions): Promise<ReliabilityReport> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`[reliability] ${line}\n`));
  const started = Date.now();
  const dir = sandboxDir();
  const env = readEnvFile(dir);
  const work = mkdtempSync(path.join(tmpdir(), 'deploy-reliability-'));
  log(`seed ${opts.seed} (repeat with: ${opts.command}); ${opts.runs.length} runs; sandbox ${dir}; logs in ${work}`);

  // Fault proxies in front of every outside system the worker uses.
  const receiver = new WebhookReceiver();
  await receiver.start();
  const proxies: Record<System, FaultProxy> = {
    registry: new FaultProxy('registry', portOf(env.REGISTRY)),
    s3: new FaultProxy('s3', portOf(env.S3_ENDPOINT)),
    postgres: new FaultProxy('postgres', portOf(env.DATABASE_URL.replace(/^postgres(ql)?:/, 'http:'))),
    apiserver: new FaultProxy('apiserver', apiserverPort(env.KUBECONFIG_WORKER)),
    prometheus: new FaultProxy('prometheus', portOf(env.PROMETHEUS_URL)),
    webhook: new FaultProxy('webhook', receiver.port),
  };
  for (const p of Object.values(proxies)) await p.start();

  // The worker's config: the example, a short analysis window; its endpoints are the proxies.
  const configFile = path.join(work, 'deploy.config.yaml');
  const cfg = parseYaml(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8')) as {
    analysis: { window: string };
    rollout: { canary: { soak: string } };
    registry: { previousHosts?: string[] };
  };
  cfg.analysis.window = '10s';
  // The worker reaches the registry through its proxy, under another address than the one v1.0.0 was deployed
  // from: a registry under another name, which a rollback may return to.
  cfg.registry.previousHosts = [env.REGISTRY];
  // The input may only lengthen the configured soak: the harness's short soak is configured.
  cfg.rollout.canary.soak = CANARY_INPUT.soak;
  writeFileSync(configFile, stringifyYaml(cfg));
  const kubeconfig = path.join(work, 'worker.kubeconfig');
  writeFileSync(
    kubeconfig,
    readFileSync(env.KUBECONFIG_WORKER, 'utf8').replace(
      /server: https:\/\/127\.0\.0\.1:\d+/,
      `server: https://${proxies.apiserver.address}`,
    ),
    { mode: 0o600 },
  );
  const dbUrl = new URL(env.DATABASE_URL);
  dbUrl.port = String(proxies.postgres.port);
  const proxiedRegistry = proxies.registry.address;

  // Our own Temporal, killed and restarted by the runs: a dev server on a SQLite file, or a cluster.
  const temporal =
    temporalKind(env) === 'cluster'
      ? await cluster(work, { ...sandboxLayout().database, name: 'temporal_reliability' }, (sql) =>
          psqlAdmin('postgres', sql),
        )
      : await devServer(work);
  const address = temporal.address;
  log(`temporal: ${temporal.description}`);

  const taskQueue = `reliability-${randomUUID()}`;
  const workerEnv: NodeJS.ProcessEnv = {
    ...process.env,
    ...env,
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: taskQueue,
    DEPLOY_CONFIG: configFile,
    // A killed worker's successor starts at once: no /metrics port to wait for.
    DEPLOY_METRICS_ADDRESS: 'off',
    // The worker bundles src/workflows itself: what is tested is the code in the tree.
    DEPLOY_WORKFLOW_SOURCE: '1',
    REGISTRY: proxiedRegistry,
    S3_ENDPOINT: `http://${proxies.s3.address}`,
    DATABASE_URL: dbUrl.toString(),
    KUBECONFIG_WORKER: kubeconfig,
    PROMETHEUS_URL: `http://${proxies.prometheus.address}`,
    DEPLOY_WEBHOOK_URL: `http://${proxies.webhook.address}${receiver.path}`,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  // Nothing of the caller's own Temporal or notification setup reaches this worker (no TLS to the dev server, no real Slack).
  for (const k of [
    'TEMPORAL_TLS',
    'TEMPORAL_TLS_CERT',
    'TEMPORAL_TLS_KEY',
    'TEMPORAL_TLS_CA',
    'TEMPORAL_TLS_SERVER_NAME',
    'TEMPORAL_API_KEY',
    'SLACK_WEBHOOK_URL',
  ])
    delete workerEnv[k];
  for (const k of Object.keys(workerEnv)) if (k.startsWith('JEST_')) delete workerEnv[k];
  const worker = new Proc(
    'worker',
    path.join(REPO_ROOT, 'node_modules/.bin/tsx'),
    [path.join(REPO_ROOT, 'src/worker.ts')],
    workerEnv,
    path.join(work, 'worker.log'),
    /worker: polling task queue/,
  );
  const workerReady = async (): Promise<boolean> => true;

  const killAll = (): void => {
    worker.killNow();
    temporal.killNow();
  };
  process.once('exit', killAll);

  const out = outside(dir, env);
  const report: ReliabilityReport = {
    mode: opts.mode,
    seed: opts.seed,
    command: opts.command,
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    sandboxDir: dir,
    temporal: temporal.description,
    runs: [],
    ok: false,
  };
  let connection: Connection | undefined;
  try {
    await temporal.start();
    connection = await Connection.connect({ address });
    const client = new Client({ connection, namespace: 'default' });
    await worker.start(workerReady);
    for (const spec of opts.runs) {
      const rec = await runOne(spec, {
        log,
        client,
        worker,
        workerReady,
        temporal,
        proxies,
        receiver,
        out,
        env,
        dir,
        taskQueue,
        seed: opts.seed,
        deadlineMs: opts.runDeadlineMs ?? 12 * 60_000,
      });
      report.runs.push(rec);
      log(
        `run ${spec.n}/${opts.runs.length} ${rec.ok ? 'ok' : 'FAILED'}: ${spec.scenario}: ${rec.outcome} in ${(rec.durationMs / 1000).toFixed(0)}s; kills: ${rec.kills.map((k) => k.landed).join(' | ') || 'none'}${
          rec.ok
            ? ''
            : `; failed checks: ${rec.checks
                .filter((c) => !c.ok)
                .map((c) => `${c.name} (${c.detail ?? ''})`)
                .join('; ')}`
        }`,
      );
      report.durationMs = Date.now() - started;
      writeReport(opts.docPath, report);
    }
  } finally {
    for (const p of Object.values(proxies)) await p.restore().catch(() => undefined);
    await worker.stop().catch(() => worker.killNow());
    await connection?.close().catch(() => undefined);
    await temporal.stop().catch(() => temporal.killNow());
    process.removeListener('exit', killAll);
    for (const p of Object.values(proxies)) await p.close().catch(() => undefined);
    await receiver.close().catch(() => undefined);
    out.s3.destroy();
    // Leave the sandbox at v1.0.0 for whoever comes next, as the other end-to-end suites do.
    await sandboxCli(dir, env, 'reset').catch((err: unknown) => log(`final reset failed: ${(err as Error).message}`));
  }
  report.durationMs = Date.now() - started;
  report.ok = report.runs.length === opts.runs.length && report.runs.every((r) => r.ok);
  writeReport(opts.docPath, report);
  if (report.ok) rmSync(work, { recursive: true, force: true });
  else log(`logs kept in ${work}`);
  return report;
}

function apiserverPort(kubeconfigFile: string): number {
  const m = /server: https:\/\/127\.0\.0\.1:(\d+)/.exec(readFileSync(kubeconfigFile, 'utf8'));
  if (!m) throw new Error(`${kubeconfigFile}: no https://127.0.0.1:<port> server`);
  return Number(m[1]);
}

interface RunContext {
  log: (line: string) => void;
  client: Client;
  worker: Proc;
  workerReady: () => Promise<boolean>;
  temporal: TemporalUnderTest;
  proxies: Record<System, FaultProxy>;
  receiver: WebhookReceiver;
  out: Outside;
  env: Record<string, string>;
  dir: string;
  taskQueue: string;
  seed: number;
  deadlineMs: number;
}

interface ActiveFault {
  rec: FaultRecord;
  started?: number;
  ended?: boolean;
  lastAnalysis?: string;
  /** When an activity that uses the system was first seen pending (on a live worker) during the fault. */
  overlapSince?: number;
  start(o: Observation): boolean;
  /** `ms`: since the fault began; `overlapMs`: since its step was seen using the system (0 before). */
  stop(o: Observation, ms: number, overlapMs: number): boolean;
  apply(): Promise<void>;
}

function stepDone(o: Observation, name: string): boolean {
  return o.done.has(name);
}

function retriesOf(o: Observation, system: System): Pending[] {
  return o.pending.filter((p) => USES[system].includes(p.type) && p.attempt > 1);
}

/** When each system's fault begins, and (transient) when it ends. */
function faultFor(system: System, kind: 'transient' | 'permanent', proxy: FaultProxy): ActiveFault {
  const cut = {
    how:
      kind === 'transient'
        ? 'outage (proxy stops listening, open connections reset), then back'
        : 'outage that does not end',
    apply: () => proxy.cut(),
  };
  const deny = (d: (typeof DENIALS)[keyof typeof DENIALS], how: string) => ({ how, apply: () => proxy.deny(d) });
  const beforeBuild = (o: Observation): boolean =>
    o.phase === 'checks' || o.phase === 'tagging' || (o.phase === 'building' && !stepDone(o, 'build and push images'));
  // The backup's completion may reach the workflow in the same task as the build's (after a worker kill or a
  // matching restart, the task waits for the sticky queue to time out): the migration steps' own pending
  // activities open the window too.
  const afterBackup = (o: Observation): boolean =>
    (stepDone(o, 'database backup') && !stepDone(o, 'migration status')) ||
    o.phase === 'migrating' ||
    o.pending.some((p) => p.type === 'migrationStatus' || p.type === 'applyMigrations');
  // PostgreSQL's steps: the backup (beside the build) and the migrations after it. The migrations alone can take
  // less than one observation (a few hundred ms), so the window opens while the build runs: an outage that starts
  // before the backup is done hits the backup, one that starts after it hits the migrations.
  const whileDatabaseWorks = (o: Observation): boolean =>
    (o.phase === 'building' && !stepDone(o, 'build and push images')) || afterBackup(o);
  const rec = (how: string): FaultRecord => ({ system, kind, how, retried: [], observed: [] });
  const failedOnce = (o: Observation): boolean => retriesOf(o, system).length > 0;
  switch (system) {
    case 'registry': {
      const f =
        kind === 'transient' ? cut : deny(DENIALS.registry, 'every request answered 403 DENIED (access revoked)');
      return {
        rec: rec(f.how),
        apply: f.apply,
        start: beforeBuild,
        stop: (o, ms, overlap) =>
          (failedOnce(o) && overlap > 2000) || overlap > 20_000 || stepDone(o, 'build and push images') || ms > 240_000,
      };
    }
    case 's3': {
      const f =
        kind === 'transient' ? cut : deny(DENIALS.s3, 'every request answered 403 AccessDenied (access revoked)');
      return {
        rec: rec(f.how),
        apply: f.apply,
        start: beforeBuild,
        stop: (o, ms, overlap) =>
          (failedOnce(o) && overlap > 2000) || overlap > 20_000 || stepDone(o, 'database backup') || ms > 240_000,
      };
    }
    case 'postgres': {
      const f =
        kind === 'transient'
          ? cut
          : deny(
              DENIALS.postgres,
              'every connection refused with FATAL 28P01 password authentication failed (credentials revoked)',
            );
      // Short activities retry 5 times within ~15 s: the outage stays shorter than that once the step runs into it.
      return {
        rec: rec(f.how),
        apply: f.apply,
        start: kind === 'transient' ? whileDatabaseWorks : afterBackup,
        stop: (o, ms, overlap) => (failedOnce(o) && overlap > 1000) || overlap > 7000 || ms > 120_000,
      };
    }
    case 'apiserver':
      // Transient: while the rolling services are updated. Permanent: mid-canary, after five Deployments changed and 5% of traffic moved.
      return kind === 'transient'
        ? {
            rec: rec(cut.how),
            apply: cut.apply,
            start: (o) => o.phase === 'rolling-out' && !o.childId,
            stop: (o, ms, overlap) => (failedOnce(o) && overlap > 2000) || overlap > 6000 || ms > 60_000,
          }
        : {
            rec: rec(cut.how),
            apply: cut.apply,
            start: (o) => o.childPhase === 'soaking' && o.weight === 5,
            stop: () => false,
          };
    case 'prometheus': {
      // Transient: during the 50% soak (the most canary data, so the runs around it are conclusive) until an
      // analysis ran into it; the soak goes on. Permanent: from the 25% soak on.
      const weight = kind === 'transient' ? 50 : 25;
      let seen: string | undefined;
      return {
        rec: rec(cut.how),
        apply: cut.apply,
        start: (o) => {
          const hit = o.childPhase === 'soaking' && o.weight === weight;
          if (hit) seen = o.analysis?.at;
          return hit;
        },
        stop: (o, ms) => (o.analysis !== undefined && o.analysis.at !== seen && ms > 1000) || ms > 7000,
      };
    }
    case 'webhook': {
      if (kind === 'permanent') {
        const f = deny(DENIALS.webhook, 'every notification answered 410 Gone (webhook removed), from the start');
        return { rec: rec(f.how), apply: f.apply, start: () => true, stop: () => false };
      }
      // Armed from the 25% soak: the next notification (the promotion to 50%) starts a 4 s outage, shorter than
      // notifications.retryFor (10 s), so it must still arrive, once. The proxy restores itself.
      const r = rec('outage of 4 s started by the next notification (connection reset, then refused), then back');
      let cutsBefore = 0;
      return {
        rec: r,
        apply: async () => {
          cutsBefore = proxy.stats.cuts;
          await proxy.cutOnUse(4000);
        },
        start: (o) => o.childPhase === 'soaking' && o.weight === 25,
        stop: (_o, ms) => {
          const hit = proxy.stats.cuts > cutsBefore && proxy.state === 'pass';
          if (hit && !r.observed.length) {
            r.durationMs = 4000;
            r.observed.push('a notification ran into it and was sent again by notify within notifications.retryFor');
          }
          return hit || ms > 120_000;
        },
      };
    }
  }
}

async function runOne(spec: RunSpec, ctx: RunContext): Promise<RunRecord> {
  const { client, worker, temporal, log } = ctx;
  const workflowId = `reliability-${ctx.seed}-${spec.n}-${Date.now()}`;
  const rec: RunRecord = {
    spec,
    workflowId,
    durationMs: 0,
    outcome: '(not started)',
    kills: [],
    skippedKills: 0,
    serverRestarts: [],
    faults: [],
    retries: [],
    notifications: { expected: 0, received: 0, failuresCounted: 0 },
    workerExits: [],
    checks: [],
    ok: false,
  };
  const exitsBefore = worker.exits.length;
  log(
    `run ${spec.n}: ${spec.scenario} (kills after ${spec.killDelaysMs.map((d) => `${(d / 1000).toFixed(1)}s`).join(', ') || 'none'}${spec.serverRestarts.length ? `; server restart during ${spec.serverRestarts.join(', ')}` : ''})`,
  );
  try {
    await sandboxCli(ctx.dir, ctx.env, 'reset');
  } catch (err) {
    rec.checks.push({ name: 'sandbox reset', ok: false, detail: (err as Error).message.split('\n')[0] });
    return rec;
  }
  if (!worker.alive) await worker.start(ctx.workerReady);
  const before = await snapshot(ctx.out);

  const faults: ActiveFault[] = [
    ...spec.transient.map((s) => faultFor(s, 'transient', ctx.proxies[s])),
    ...(spec.permanent ? [faultFor(spec.permanent, 'permanent', ctx.proxies[spec.permanent])] : []),
  ];
  rec.faults = faults.map((f) => f.rec);

  const t0 = Date.now();
  const handle: WorkflowHandle = await client.workflow.start('deployWorkflow', {
    taskQueue: ctx.taskQueue,
    workflowId,
    args: [{ version: VERSION, requestedBy: 'reliability', canary: CANARY_INPUT }],
  });
  const observer = new Observer(client, workflowId);
  let finished = false;
  let serverDown = false;
  let workerDown = false;
  let approved = false;

  // Worker kills: each one a seeded delay after the worker (re)started and took up the work again.
  const orphaned = (o: Observation): boolean =>
    o.pending.some((p) => p.started && p.startedAt !== undefined && p.startedAt < worker.readyAt);
  /** Until the attempt the last kill interrupted has timed out and started again on the new worker. */
  const recovered = async (): Promise<void> => {
    const last = rec.kills[rec.kills.length - 1];
    if (!last) return;
    while (!finished) {
      while (serverDown && !finished) await sleep(100);
      const o = await observer.observe(!serverDown);
      if ((o.status && o.status !== 'RUNNING') || !orphaned(o)) break;
      await sleep(500);
    }
    if (!finished && last.category.startsWith('activity running')) last.resumedMs = Date.now() - t0 - last.atMs;
  };
  const killer = (async () => {
    for (let i = 0; i < spec.killDelaysMs.length; i++) {
      await recovered();
      const upAt = Date.now();
      while (!finished && Date.now() - upAt < spec.killDelaysMs[i]) await sleep(100);
      if (finished) {
        rec.skippedKills = spec.killDelaysMs.length - i;
        return;
      }
      while (serverDown && !finished) await sleep(100);
      const o = await observer.observe(true);
      if (o.status && o.status !== 'RUNNING') {
        rec.skippedKills = spec.killDelaysMs.length - i;
        return;
      }
      const landed = describeWhere(o, worker.readyAt);
      const category = categorize(o, worker.readyAt);
      const atMs = Date.now() - t0;
      workerDown = true;
      await worker.kill9();
      log(`  kill ${i + 1} at +${(atMs / 1000).toFixed(1)}s during ${landed}`);
      await sleep(spec.downMs[i]);
      const r0 = Date.now();
      await worker.start(ctx.workerReady);
      workerDown = false;
      rec.kills.push({ atMs, landed, category, downMs: spec.downMs[i], restartMs: Date.now() - r0 });
    }
    await recovered();
  })();

  const restarts = [...spec.serverRestarts];
  const deadline = t0 + ctx.deadlineMs;
  let result: DeployResult | undefined;
  let error: string | undefined;
  try {
    while (!finished) {
      if (Date.now() > deadline)
        throw new Error(
          `not finished after ${ctx.deadlineMs / 1000}s (last seen: ${describeWhere(observer.last, worker.readyAt)})`,
        );
      if (!workerDown && !worker.alive) {
        // A worker that died by itself (the exit is recorded and fails the run) is restarted so the run can end.
        log(`  the worker exited by itself: ${worker.exits[worker.exits.length - 1] ?? ''}; restarting it`);
        await worker.start(ctx.workerReady);
      }
      const o = await observer.observe(!workerDown && !serverDown);
      const elapsed = Date.now() - t0;
      if (o.status && o.status !== 'RUNNING') {
        finished = true;
        break;
      }
      for (const f of faults) {
        if (!f.started && !f.ended && f.start(o)) {
          await f.apply();
          f.started = Date.now();
          f.rec.startedMs = f.started - t0;
          f.rec.during = describeWhere(o, worker.readyAt);
          f.lastAnalysis = o.analysis?.at;
          log(`  ${f.rec.kind} ${f.rec.system} fault at +${(elapsed / 1000).toFixed(1)}s during ${f.rec.during}`);
        } else if (f.started && !f.ended) {
          for (const p of retriesOf(o, f.rec.system)) {
            const label = `${p.type} attempt ${p.attempt}${p.lastFailure ? ` after: ${p.lastFailure.slice(0, 140)}` : ''}`;
            if (!f.rec.retried.some((x) => x.startsWith(`${p.type} attempt ${p.attempt}`))) f.rec.retried.push(label);
          }
          if (f.rec.system === 'prometheus' && o.analysis && o.analysis.at !== f.lastAnalysis) {
            f.lastAnalysis = o.analysis.at;
            f.rec.observed.push(
              `analysis ${o.analysis.outcome}${o.analysis.reason ? ` (${o.analysis.reason.replace(/\s+/g, ' ').slice(0, 100)})` : ''}`,
            );
          }
          if (
            f.overlapSince === undefined &&
            o.pending.some(
              (p) => USES[f.rec.system].includes(p.type) && (!p.started || (p.startedAt ?? 0) >= worker.readyAt),
            )
          ) {
            f.overlapSince = Date.now();
            f.rec.overlapped = true;
          }
          // Only a live worker runs an analysis: a Prometheus outage's clock starts again when a killed worker is back.
          const analysisClock = f.rec.system === 'prometheus';
          const since = analysisClock ? Math.max(f.started, worker.readyAt) : f.started;
          if (
            f.rec.kind === 'transient' &&
            !(analysisClock && workerDown) &&
            f.stop(o, Date.now() - since, f.overlapSince ? Date.now() - f.overlapSince : 0)
          ) {
            await ctx.proxies[f.rec.system].restore();
            f.ended = true;
            f.rec.durationMs ??= Date.now() - f.started;
            log(`  ${f.rec.system} back after ${(f.rec.durationMs / 1000).toFixed(1)}s`);
          }
        }
      }
      const where = restarts[0];
      if (where && !workerDown) {
        const hit =
          where === 'soak'
            ? o.childPhase === 'soaking'
            : o.pending.some((p) =>
                [
                  'buildImages',
                  'backupDatabase',
                  'runPreDeploymentChecks',
                  'waitForRollout',
                  'applyMigrations',
                ].includes(p.type),
              );
        if (hit) {
          restarts.shift();
          const landed = describeWhere(o, worker.readyAt);
          serverDown = true;
          log(`  temporal restart (kill -9) at +${(elapsed / 1000).toFixed(1)}s during ${landed}`);
          for (const r of await temporal.restart(log))
            rec.serverRestarts.push({ where: landed, atMs: elapsed, downMs: r.downMs, service: r.service });
          serverDown = false;
        }
      }
      // The database decision after a rollback is a person's: the harness approves the restore.
      if (!approved && (o.childPhase === 'awaiting-db-decision' || o.phase === 'awaiting-db-decision')) {
        approved = true;
        await handle
          .signal(approveSignal, { by: 'reliability-harness', note: 'restore the pre-deploy backup' })
          .catch(() => (approved = false));
      }
      await sleep(POLL_MS);
    }
    result = await resultOf(handle, deadline);
  } catch (err) {
    error = (err as Error).message;
  } finally {
    finished = true;
    await killer.catch((err: unknown) => (error ??= `kill/restart failed: ${(err as Error).message}`));
    for (const f of faults) if (f.started && !f.ended) f.rec.durationMs = Date.now() - f.started;
    for (const p of Object.values(ctx.proxies)) if (p.state !== 'pass') await p.restore();
    if (serverDown || !temporal.alive) await temporal.start();
  }
  rec.durationMs = Date.now() - t0;
  if (!worker.alive) await worker.start(ctx.workerReady);
  rec.workerExits = worker.exits.slice(exitsBefore);
  if (error || !result) {
    rec.outcome = 'error';
    rec.reason = error;
    rec.checks.push({ name: 'deployment finished', ok: false, detail: error });
    await terminateRunning(client, log);
    // Activities of the abandoned deployment may still run: a fresh worker for the next run.
    await worker.kill9();
    await worker.start(ctx.workerReady);
    return rec;
  }
  rec.outcome = result.outcome;
  rec.reason = result.reason;
  // Permanent faults leave parallel activities whose results nobody reads (the build beside a failed backup): a fresh worker.
  if (result.outcome !== 'succeeded') {
    await worker.kill9();
    await worker.start(ctx.workerReady);
  }
  rec.retries = await retriedActivities(client, workflowId);
  const sent = ctx.receiver.forWorkflow(workflowId);
  const canary = await workflowResultOf(client.workflow.getHandle(`${workflowId}-canary`).result())
    .then((r: { status?: DeploymentStatus }) => r.status?.notificationFailures ?? 0)
    .catch(() => 0);
  rec.notifications = {
    expected: result.outcome === 'succeeded' ? EXPECTED_NOTIFICATIONS : 0,
    received: new Set(sent.map((n) => `${n.kind}@${n.weight ?? ''}`)).size,
    failuresCounted: result.status.notificationFailures + canary,
  };
  const webhookFault = rec.faults.find((f) => f.system === 'webhook');
  if (webhookFault && rec.notifications.expected > rec.notifications.received) {
    webhookFault.observed.push(
      `${rec.notifications.expected - rec.notifications.received} notification(s) lost: notify reports a failed delivery instead of throwing, so the activity is not retried (counted in notificationFailures: ${rec.notifications.failuresCounted})`,
    );
  }
  rec.checks = await verify(spec, result, before, ctx, workflowId, rec);
  rec.secrets = await scanRun(ctx, workflowId, result.status.environment);
  rec.checks.push({
    name: 'no secret in the histories, the worker log or the notifications',
    ok: rec.secrets.findings.length === 0,
    detail:
      rec.secrets.findings.join('; ') ||
      `${rec.secrets.secrets} values in ${rec.secrets.sources} sources (${rec.secrets.bytes} bytes)`,
  });
  rec.ok = rec.checks.every((c) => c.ok);
  if (!rec.ok)
    appendFileSync(
      ctx.worker.logFile,
      `\n--- run ${spec.n} failed checks: ${JSON.stringify(rec.checks.filter((c) => !c.ok))}\n--- status: ${JSON.stringify(result.status)}\n`,
    );
  return rec;
}

/** Scans the run's workflow histories (deployment, children, the environment lock), the worker log and the notification bodies for the worker's secrets. */
async function scanRun(
  ctx: RunContext,
  workflowId: string,
  environment: string,
): Promise<NonNullable<RunRecord['secrets']>> {
  const secrets = sandboxSecrets({
    ...ctx.env,
    DEPLOY_WEBHOOK_URL: `http://${ctx.proxies.webhook.address}${ctx.receiver.path}`,
  });
  const texts: ScanText[] = [];
  for (const id of [workflowId, ...CHILD_SUFFIXES.map((s) => `${workflowId}${s}`), lockWorkflowId(environment)]) {
    const history = await ctx.client.workflow
      .getHandle(id)
      .fetchHistory()
      .catch(() => undefined); // a child that never ran
    if (history)
      texts.push({ source: `history ${id}`, text: JSON.stringify(JSON.parse(historyToJSON(history)), null, 1) });
  }
  texts.push({ source: 'worker log', text: readFileSync(ctx.worker.logFile, 'utf8') });
  texts.push({ source: 'notifications', text: JSON.stringify(ctx.receiver.forWorkflow(workflowId), null, 1) });
  const findings = scanForSecrets(texts, secrets);
  return {
    secrets: secrets.length,
    sources: texts.length,
    bytes: texts.reduce((n, t) => n + t.text.length, 0),
    findings: findings.length ? formatFindings(findings).split('\n') : [],
  };
}

async function resultOf(handle: WorkflowHandle, deadline: number): Promise<DeployResult> {
  for (;;) {
    try {
      return await workflowResultOf(handle.result() as Promise<DeployResult>);
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(1000);
    }
  }
}

async function terminateRunning(client: Client, log: (l: string) => void): Promise<void> {
  for await (const w of client.workflow.list({ query: 'ExecutionStatus="Running"' })) {
    log(`  terminating leftover ${w.workflowId}`);
    await client.workflow
      .getHandle(w.workflowId, w.runId)
      .terminate('reliability harness: run failed')
      .catch(() => undefined);
  }
}

async function runningWorkflows(client: Client): Promise<string[]> {
  // Visibility follows the history closely on the dev server; give it a moment.
  let ids: string[] = [];
  for (let i = 0; i < 20; i++) {
    ids = [];
    for await (const w of client.workflow.list({ query: 'ExecutionStatus="Running"' })) ids.push(w.workflowId);
    if (!ids.length) return ids;
    await sleep(500);
  }
  return ids;
}

/** Activities that needed more than one attempt (the attempt number of their last start), with the failure before it. */
async function retriedActivities(client: Client, workflowId: string): Promise<string[]> {
  const out: string[] = [];
  for (const id of [workflowId, ...CHILD_SUFFIXES.map((s) => `${workflowId}${s}`)]) {
    let history;
    try {
      history = await client.workflow.getHandle(id).fetchHistory();
    } catch {
      continue;
    }
    const scheduled = new Map<string, string>();
    for (const e of history.events ?? []) {
      if (e.activityTaskScheduledEventAttributes)
        scheduled.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
      const s = e.activityTaskStartedEventAttributes;
      if (s && (s.attempt ?? 1) > 1) {
        const type = scheduled.get(String(s.scheduledEventId)) ?? '?';
        const why = s.lastFailure?.message ? `: ${s.lastFailure.message.replace(/\s+/g, ' ').slice(0, 160)}` : '';
        out.push(`${id === workflowId ? '' : `${id.slice(workflowId.length + 1)}/`}${type} ×${s.attempt}${why}`);
      }
    }
  }
  return out;
}

/** Notifications a successful deployment sends: started, each of the four canary steps, succeeded. */
const EXPECTED_NOTIFICATIONS = 6;

// --- checks ----------------------------------------------------------------------------

async function verify(
  spec: RunSpec,
  result: DeployResult,
  before: PlatformSnapshot,
  ctx: RunContext,
  workflowId: string,
  rec: RunRecord,
): Promise<Check[]> {
  const checks: Check[] = [];
  const check = (name: string, ok: boolean, detail?: string): void => {
    checks.push({ name, ok, ...(detail !== undefined ? { detail } : {}) });
  };
  const env = ctx.env;
  const expect = spec.expect;
  const want = expect === 'succeeded' ? 'succeeded' : expect === 'rolled-back' ? 'rolled-back' : 'failed';
  check(
    `outcome ${want}`,
    result.outcome === want,
    `${result.outcome}${result.reason ? `: ${result.reason.slice(0, 300)}` : ''}`,
  );
  const running = await runningWorkflows(ctx.client);
  check('no workflow left running', running.length === 0, running.join(', ') || 'none');
  check('the worker exited only when killed', rec.workerExits.length === 0, rec.workerExits.join('; ') || 'none');

  const after = await snapshot(ctx.out);
  const tag = await gitTags(env.GIT_REMOTE);
  check('one git tag v1.0.1', tag.count === 1, `${tag.count} on origin`);

  // Images: one new manifest per service, built from the release commit; tags 1.0.0 and 1.0.1 only.
  const digests: Record<string, string | undefined> = {};
  const imageProblems: string[] = [];
  for (const s of SERVICES) {
    const repo = `ai-saas-${s}`;
    const tags = await registryTags(env.REGISTRY, repo);
    const img = await registryImage(env.REGISTRY, repo, VERSION);
    digests[s] = img.digest;
    const added = after.manifests[s].filter((d) => !before.manifests[s].includes(d));
    const pushedOnce = existsSync(path.join(ctx.dir, 'registry'))
      ? added.length <= 1 && (!img.digest || added.length === 0 || added[0] === img.digest)
      : true;
    if (expect === 'succeeded' || expect === 'rolled-back') {
      if (tags.join(',') !== `1.0.0,${VERSION}`) imageProblems.push(`${s}: tags ${tags.join(',')}`);
      if (!img.digest) imageProblems.push(`${s}: no ${VERSION} manifest`);
      if (tag.commit && img.labels['org.opencontainers.image.revision'] !== tag.commit)
        imageProblems.push(
          `${s}: revision label ${img.labels['org.opencontainers.image.revision']} is not the tag's commit ${tag.commit}`,
        );
      if (existsSync(path.join(ctx.dir, 'registry')) && !(added.length === 1 && added[0] === img.digest))
        imageProblems.push(
          `${s}: ${added.length} new manifests (${added.map((d) => d.slice(7, 19)).join(', ')}), tag at ${img.digest?.slice(7, 19)}`,
        );
    } else if (!pushedOnce) {
      imageProblems.push(`${s}: ${added.length} new manifests`);
    }
  }
  check(
    expect === 'succeeded' || expect === 'rolled-back'
      ? 'one image per service, pushed once, from the release commit'
      : 'no image pushed twice',
    imageProblems.length === 0,
    imageProblems.join('; ') || `${SERVICES.length} services`,
  );

  const b = await backups(ctx.out, workflowId);
  if (expect === 'failed-before-rollout' && spec.permanent === 's3') {
    check(
      'no backup of this workflow (the bucket refused it)',
      b.verified === 0,
      `${b.objects} objects, ${b.verified} verified`,
    );
  } else if (expect === 'failed-before-rollout' && spec.permanent === 'registry') {
    check(
      'at most one verified backup of this workflow',
      b.verified <= 1 && b.objects === b.verified,
      `${b.objects} objects, ${b.verified} verified`,
    );
  } else {
    check(
      'one verified backup of this workflow (read back, sha256 matches)',
      b.objects === 1 && b.verified === 1,
      `${b.objects} objects, ${b.verified} verified: ${b.keys.join(', ')}`,
    );
  }
  check('no unfinished multipart upload', b.pendingUploads === 0, String(b.pendingUploads));

  // The audit ledger: this deployment's record once, whatever was killed or restarted, and the chain intact.
  const store = { s3: ctx.out.s3, bucket: ctx.out.env.S3_BUCKET ?? 'ai-saas-backups' };
  const ledger = await verifyLedger(store, 'audit/', 'production');
  const recorded = (await workflowRecords(store, 'audit/', 'production', workflowId)).filter(
    (r) => r.record.eventId === 'deployment',
  );
  const ledgerDetail = `${recorded.length} records of it; ${ledger.break?.message ?? `${ledger.records} records in the chain`}`;
  if (spec.permanent === 's3')
    check(
      'at most one audit record of this deployment (the store refused writes)',
      recorded.length <= 1 && ledger.ok,
      ledgerDetail,
    );
  else check('its audit record once, and the ledger verifies', recorded.length === 1 && ledger.ok, ledgerDetail);

  const m = await migrations(env);
  if (expect === 'failed-rollback-incomplete') {
    check(
      'database state recorded (a person decides once the platform is reachable)',
      true,
      `${m.files.join(', ')}; index ×${m.indexes}`,
    );
  } else if (expect === 'succeeded') {
    check(
      'each migration applied once',
      m.files.join(',') === `0001_baseline.sql,0002_add_email_verified_at_index.sql` && m.indexes === 1,
      `${m.files.join(', ')}; index ×${m.indexes}`,
    );
  } else if (expect === 'rolled-back') {
    check(
      'database restored from the pre-deploy backup after approval',
      m.files.join(',') === '0001_baseline.sql' && m.indexes === 0,
      `${m.files.join(', ')}; index ×${m.indexes}`,
    );
  } else {
    check(
      'no migration applied',
      m.files.join(',') === '0001_baseline.sql' && m.indexes === 0,
      `${m.files.join(', ')}; index ×${m.indexes}`,
    );
  }

  const imageRe = (s: string): RegExp =>
    new RegExp(`^127\\.0\\.0\\.1:\\d+/ai-saas-${s}@${digests[s] ?? 'sha256:none'}$`);
  if (expect === 'succeeded') {
    const wrong = SERVICES.filter((s) => !imageRe(s).test(after.images[s]));
    check(
      'every Deployment runs its 1.0.1 image by digest',
      wrong.length === 0,
      wrong.map((s) => `${s}: ${after.images[s]}`).join('; ') || 'six Deployments',
    );
    const revs = SERVICES.filter((s) => Number(after.revisions[s]) - Number(before.revisions[s]) !== 1);
    check(
      'each Deployment rolled out once (revision +1)',
      revs.length === 0,
      revs.map((s) => `${s}: ${before.revisions[s]} -> ${after.revisions[s]}`).join('; ') || 'six Deployments',
    );
    check(
      'no canary Deployment left',
      after.images['api-gateway-canary'] === undefined,
      after.images['api-gateway-canary'] ?? 'none',
    );
    check(
      'VirtualService stable 100 / canary 0',
      after.weights.stable === 100 && after.weights.canary === 0,
      JSON.stringify(after.weights),
    );
    check(
      'no failed step',
      result.status.steps.every((s) => s.state !== 'failed'),
      result.status.steps
        .filter((s) => s.state === 'failed')
        .map((s) => `${s.name}: ${s.error ?? ''}`)
        .join('; ') || 'none',
    );
  } else if (expect === 'rolled-back') {
    const wrong = SERVICES.filter((s) => after.images[s] !== before.images[s]);
    check(
      'every Deployment back on its v1.0.0 image',
      wrong.length === 0,
      wrong.map((s) => `${s}: ${after.images[s]}`).join('; ') || 'six Deployments',
    );
    check(
      'canary scaled to zero',
      (after.replicas['api-gateway-canary'] ?? 0) === 0,
      String(after.replicas['api-gateway-canary']),
    );
    check(
      'VirtualService stable 100 / canary 0',
      after.weights.stable === 100 && after.weights.canary === 0,
      JSON.stringify(after.weights),
    );
    check(
      'the failure is a non-retryable AnalysisFailed',
      /analysis/i.test(result.reason ?? ''),
      result.reason?.slice(0, 200),
    );
  } else if (expect === 'failed-before-rollout') {
    const changed = Object.keys(after.images).filter(
      (d) => after.images[d] !== before.images[d] || after.revisions[d] !== before.revisions[d],
    );
    check(
      'nothing in Kubernetes changed',
      changed.length === 0 && after.weights.stable === 100 && after.weights.canary === 0,
      changed.join(', ') || `weights ${JSON.stringify(after.weights)}`,
    );
    const failedStep = result.status.steps.find((s) => s.state === 'failed');
    const nonRetryable = await failedNonRetryable(ctx.client, workflowId);
    check(
      'ends in a clear non-retryable error',
      nonRetryable.ok,
      nonRetryable.detail + (failedStep ? ` (step "${failedStep.name}")` : ''),
    );
  } else {
    check(
      'the deployment says the rollback did not complete',
      /rollback/i.test(result.reason ?? result.status.error ?? ''),
      (result.reason ?? result.status.error ?? '').slice(0, 300),
    );
  }

  if (expect === 'succeeded' && spec.permanent !== 'webhook') {
    const n = rec.notifications;
    if (spec.transient.includes('webhook'))
      check(
        'every notification delivered despite the webhook outage (retried within notifications.retryFor)',
        n.received >= n.expected && n.failuresCounted === 0,
        `${n.received} of ${n.expected} received, ${n.failuresCounted} failures counted`,
      );
    else
      check(
        'every notification delivered or counted as failed',
        n.received + n.failuresCounted >= n.expected,
        `${n.received} of ${n.expected} received, ${n.failuresCounted} failures counted`,
      );
  }
  if (spec.permanent === 'webhook') {
    check(
      'notifications refused, deployment unaffected, each failure counted',
      rec.notifications.received === 0 && result.status.notificationFailures >= 1,
      `${rec.notifications.received} received, ${result.status.notificationFailures} failures counted`,
    );
  }
  // A transient outage counts only if the deployment ran into it: its step was seen using the system, retried, or reported it.
  for (const f of rec.faults.filter((x) => x.kind === 'transient')) {
    const hit =
      f.system === 'prometheus'
        ? f.observed.length > 0
        : f.system === 'webhook'
          ? f.observed.some((x) => x.startsWith('a notification ran into it'))
          : f.overlapped === true || f.retried.length > 0;
    check(
      `transient ${f.system} outage hit the step that uses it`,
      f.startedMs !== undefined && hit,
      f.startedMs === undefined
        ? 'never triggered'
        : `${f.during}; ${f.retried.length ? `retried: ${f.retried.join(', ')}` : hit ? 'step ran during it' : 'no step used it while it lasted'}`,
    );
  }
  return checks;
}

/** The failure that ended the pipeline, from the history: its type and whether it was marked non-retryable. */
async function failedNonRetryable(client: Client, workflowId: string): Promise<{ ok: boolean; detail: string }> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<string, string>();
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes)
      scheduled.set(String(e.eventId), e.activityTaskScheduledEventAttributes.activityType?.name ?? '?');
    const f = e.activityTaskFailedEventAttributes;
    if (!f) continue;
    const type = scheduled.get(String(f.scheduledEventId)) ?? '?';
    if (type === 'notify' || type === 'writeSummary') continue;
    let failure = f.failure;
    while (failure && !failure.applicationFailureInfo && failure.cause) failure = failure.cause;
    const app = failure?.applicationFailureInfo;
    const attempts =
      history.events?.find(
        (x) =>
          x.activityTaskStartedEventAttributes &&
          String(x.activityTaskStartedEventAttributes.scheduledEventId) === String(f.scheduledEventId),
      )?.activityTaskStartedEventAttributes?.attempt ?? 1;
    const detail = `${type}: ${app?.type ?? 'no type'}${app?.nonRetryable ? ' (non-retryable)' : ' (retryable)'} after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${(failure?.message ?? '').replace(/\s+/g, ' ').slice(0, 200)}`;
    return { ok: !!app?.nonRetryable, detail };
  }
  return { ok: false, detail: 'no failed activity in the history' };
}

// --- docs/reliability.md ---------------------------------------------------------------

function secs(ms: number | undefined): string {
  return ms === undefined ? '–' : `${(ms / 1000).toFixed(1)}s`;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function section(r: ReliabilityReport): string {
  const lines: string[] = [];
  const kills = r.runs.flatMap((x) => x.kills);
  const restarts = r.runs.flatMap((x) => x.serverRestarts);
  const faults = r.runs.flatMap((x) => x.faults);
  const passed = r.runs.filter((x) => x.ok).length;
  lines.push(`- **Command**: \`${r.command}\``);
  lines.push(`- **Seed**: ${r.seed}`);
  lines.push(
    `- **When**: ${r.startedAt}, ${Math.round(r.durationMs / 1000)}s, ${cpus().length} CPUs; sandbox \`${path.relative(REPO_ROOT, r.sandboxDir) || r.sandboxDir}\``,
  );
  lines.push(`- **Result**: ${passed}/${r.runs.length} runs passed every check${r.ok ? '' : ' — **FAILED**'}`);
  lines.push(
    `- **Worker kills (SIGKILL)**: ${kills.length} (${r.runs.reduce((n, x) => n + x.skippedKills, 0)} planned kills fell after the deployment had ended)`,
  );
  const resumed = kills.filter((k) => k.resumedMs !== undefined).map((k) => k.resumedMs!);
  if (resumed.length)
    lines.push(
      `- **A kill during an activity**: the work ran again on the new worker after ${secs(Math.min(...resumed))}–${secs(Math.max(...resumed))} (median ${secs(resumed.sort((a, b) => a - b)[Math.floor(resumed.length / 2)])}): the killed attempt is given to the new worker once its heartbeat timeout expires (15 s for long activities, 10 s for the others; the worker repeats heartbeats while an activity runs)`,
    );
  const clean = r.runs
    .filter((x) => x.ok && x.outcome === 'succeeded' && !x.kills.length && !x.faults.length && !x.serverRestarts.length)
    .map((x) => x.durationMs);
  const killed = r.runs.filter((x) => x.ok && x.outcome === 'succeeded' && x.kills.length).map((x) => x.durationMs);
  if (killed.length)
    lines.push(
      `- **Deployment time**: ${secs(Math.min(...killed))}–${secs(Math.max(...killed))} with kills${clean.length ? `, ${secs(Math.min(...clean))}–${secs(Math.max(...clean))} without` : ''}`,
    );
  lines.push(`- **Temporal**: ${r.temporal}`);
  lines.push(
    `- **Temporal restarts (kill -9)**: ${restarts.length}${restarts.length ? ` (${[...new Set(restarts.map((x) => x.service))].join(', ')})` : ''}`,
  );
  const scans = r.runs.flatMap((x) => (x.secrets ? [x.secrets] : []));
  if (scans.length)
    lines.push(
      `- **Secrets**: ${Math.max(...scans.map((x) => x.secrets))} values (the secrets listed above that the run holds) searched for, plain and encoded, in ${scans.reduce((n, x) => n + x.sources, 0)} histories, worker logs and notification sets (${(scans.reduce((n, x) => n + x.bytes, 0) / 1e6).toFixed(1)} MB): ${scans.reduce((n, x) => n + x.findings.length, 0)} found`,
    );
  lines.push('');
  // Where the kills landed, grouped by what was running.
  const byPlace = new Map<string, number>();
  for (const k of kills) byPlace.set(k.category, (byPlace.get(k.category) ?? 0) + 1);
  if (kills.length) {
    lines.push('Where the worker kills landed:', '', '| running when killed | kills |', '| --- | --- |');
    for (const [k, n] of [...byPlace.entries()].sort((a, b) => b[1] - a[1])) lines.push(`| ${cell(k)} | ${n} |`);
    lines.push('');
  }
  if (faults.length) {
    lines.push(
      'Faults per system:',
      '',
      '| system | kind | how | runs | outcomes |',
      '| --- | --- | --- | --- | --- |',
    );
    for (const s of SYSTEMS) {
      for (const kind of ['transient', 'permanent'] as const) {
        const runs = r.runs.filter((x) => x.faults.some((f) => f.system === s && f.kind === kind));
        if (!runs.length) continue;
        const how = runs[0].faults.find((f) => f.system === s && f.kind === kind)!.how;
        lines.push(
          `| ${s} | ${kind} | ${cell(how)} | ${runs.map((x) => x.spec.n).join(', ')} | ${runs.map((x) => `${x.outcome}${x.ok ? '' : ' (check failed)'}`).join(', ')} |`,
        );
      }
    }
    lines.push('');
  }
  lines.push(
    'Every run:',
    '',
    '| # | scenario | kills: when → what was running | server restarts | faults | outcome | retried activities | checks | time |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  );
  for (const x of r.runs) {
    const k =
      x.kills
        .map(
          (y) =>
            `+${secs(y.atMs)} → ${y.landed} (down ${secs(y.downMs)}${y.resumedMs !== undefined ? `, work resumed after ${secs(y.resumedMs)}` : ''})`,
        )
        .join('; ') + (x.skippedKills ? `${x.kills.length ? '; ' : ''}${x.skippedKills} after the end` : '');
    const sr = x.serverRestarts
      .map((y) => `+${secs(y.atMs)} ${y.service} → ${y.where} (down ${secs(y.downMs)})`)
      .join('; ');
    const f = x.faults
      .map(
        (y) =>
          `${y.kind} ${y.system}${y.startedMs !== undefined ? ` at +${secs(y.startedMs)} during ${y.during}` : ' (not triggered)'}${y.kind === 'transient' && y.durationMs !== undefined ? ` for ${secs(y.durationMs)}` : ''}${y.observed.length ? ` [${y.observed.join('; ')}]` : ''}`,
      )
      .join('; ');
    const failed = x.checks.filter((c) => !c.ok);
    const checks = failed.length
      ? `**${failed.length} failed**: ${failed.map((c) => `${c.name}: ${c.detail ?? ''}`).join('; ')}`
      : `${x.checks.length} passed`;
    const outcome = `${x.outcome}${x.outcome !== 'succeeded' && x.reason ? `: ${x.reason.slice(0, 160)}` : ''}`;
    const notif =
      x.spec.transient.includes('webhook') || x.spec.permanent === 'webhook'
        ? `; notifications ${x.notifications.received} received of ${x.notifications.expected}, ${x.notifications.failuresCounted} failures counted`
        : '';
    lines.push(
      `| ${x.spec.n} | ${cell(x.spec.scenario)} | ${cell(k || '–')} | ${cell(sr || '–')} | ${cell(f || '–')} | ${cell(outcome + notif)} | ${cell(x.retries.join('; ') || '–')} | ${cell(checks)} | ${secs(x.durationMs)} |`,
    );
  }
  lines.push('');
  return lines.join('\n');
}

const HEADER = `# Reliability

What happens to a deployment when its worker dies, when the Temporal server
dies, and when an outside system fails — measured, not argued. The harness
(\`test/reliability/crash-harness.ts\`) runs real canary deployments of
v1.0.1 on the sandbox (\`canary: { soak: '6s', analysisInterval: '3s' }\`,
analysis window 10 s) with the worker as a separate OS process that it kills
with SIGKILL at seeded random points and restarts; it kills Temporal with
\`kill -9\` and starts it again: the dev server on its SQLite file, or, when
the sandbox runs a Temporal cluster (\`npm run sandbox -- up --temporal
cluster\`, as CI does; \`RELIABILITY_TEMPORAL=dev|cluster\` chooses), a
four-service cluster of the harness's own on PostgreSQL, whose history
service and then matching service are each killed alone and started again;
and it puts a
fault proxy on loopback between the worker and each outside system
(registry, S3, PostgreSQL, apiserver, Prometheus, webhook) to cut it for a
while (transient) or for good / refuse access (permanent) during the step
that uses it.

After every deployment the outside systems are asked directly (not through
the proxies, not through the workflow): one git tag on origin; per service
one new manifest in the registry, tagged 1.0.1, built from the tag's commit
and deployed by that digest; one backup object of that workflow in the
bucket, read back and hashed; the deployment's audit record once in the
environment's ledger, which verifies; each migration applied once; the
Deployments' images and revisions; the VirtualService's weights; no workflow
running.
Permanent failures must end in the outcome the saga prescribes, with the
failing step's error marked non-retryable. Every run's histories, the worker
log and the notifications received are scanned for the worker's secrets.

The rest of the issue's proof lives beside this page: the bad-input table
(inputs across workflow input, signals, config files and CLI, each refused
before any side effect) in [reliability-bad-input.md](reliability-bad-input.md);
shell metacharacters in versions, service names, notes and reasons in
\`test/integration/injection.test.ts\`; the secret scan of recorded
end-to-end histories and a live failing run in \`test/e2e/secrets.test.ts\`;
payload encryption and the codec endpoint in [operations.md](operations.md).
All deployments here use the worker's least-privilege ServiceAccount
kubeconfig (\`KUBECONFIG_WORKER\`).

Each section below is rewritten by the run it describes: the short version
on every \`npm test\` (\`test/e2e/reliability-short.test.ts\`), the full one by
\`npm run test:reliability\` (\`RELIABILITY_RUNS\` crash runs, default 20).
A seed replays the same plan (kill delays, down times, faults); where the
kills land still depends on timing, so it is recorded per kill.
`;

const MARK = (mode: string, edge: 'start' | 'end'): string => `<!-- reliability:${mode}:${edge} -->`;

export function writeReport(docPath: string, r: ReliabilityReport): void {
  const title = r.mode === 'full' ? '## Full run (`npm run test:reliability`)' : '## Short run (part of `npm test`)';
  const body = `${MARK(r.mode, 'start')}\n${title}\n\n${section(r)}${MARK(r.mode, 'end')}`;
  let doc = existsSync(docPath) ? readFileSync(docPath, 'utf8') : '';
  if (!doc.includes(MARK('full', 'start')) || !doc.includes(MARK('short', 'start'))) {
    const placeholder = (mode: string, t: string): string =>
      `${MARK(mode, 'start')}\n${t}\n\nNot run yet.\n${MARK(mode, 'end')}`;
    doc = `${HEADER}\n${placeholder('full', '## Full run (`npm run test:reliability`)')}\n\n${placeholder('short', '## Short run (part of `npm test`)')}\n`;
  }
  const start = doc.indexOf(MARK(r.mode, 'start'));
  const end = doc.indexOf(MARK(r.mode, 'end')) + MARK(r.mode, 'end').length;
  doc = doc.slice(0, start) + body + doc.slice(end);
  mkdirSync(path.dirname(docPath), { recursive: true });
  writeFileSync(docPath, doc);
  writeSecretsSection(docPath);
}
