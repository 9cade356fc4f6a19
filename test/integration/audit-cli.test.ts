/**
 * deployctl audit against the sandbox's object store: a real chain written
 * by the appender verifies; editing one object's body, deleting a middle
 * object and deleting the last one each make `audit verify` exit non-zero
 * naming that object; `audit show` prints a workflow's records. deployctl
 * reads a copy of deploy.config.yaml whose audit prefix is this run's own,
 * which is deleted afterwards.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { auditLedger } from '../../src/activities/audit/ledger';
import { createS3Client } from '../../src/activities/clients/s3';
import { ExitCode } from '../../src/cli/exit-codes';
import { main, type Ctx } from '../../src/client';
import { recordKey, type AuditAppendRequest } from '../../src/domain/audit';
import { approvalFacts, deploymentFacts } from '../../src/domain/audit-facts';
import type { DeploymentStatus } from '../../src/domain/status';
import { loadConfig } from '../../src/load-config';
import { testPlan } from '../helpers/plan';
import { sandboxEnv } from '../helpers/sandbox';
import { REPO_ROOT } from '../helpers/tools';

const PREFIX = `audit-cli-test-${randomBytes(4).toString('hex')}/`;
const FINGERPRINT = `ED25519 SHA256:${'B'.repeat(43)}`;
const dir = mkdtempSync(path.join(tmpdir(), 'audit-cli-'));
const configFile = path.join(dir, 'deploy.config.yaml');

let s3: S3Client;
let bucket: string;

const key = (env: string, seq: number) => recordKey(PREFIX, env, seq);
const text = async (k: string) =>
  (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: k }))).Body!.transformToString();
const putText = (k: string, body: string) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: k, Body: body }));
const remove = (k: string) => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: k }));

async function deployctl(...args: string[]) {
  const outs: string[] = [];
  const errs: string[] = [];
  const ctx: Ctx = {
    out: (l) => outs.push(l),
    err: (l) => errs.push(l),
    env: { ...sandboxEnv(), DEPLOY_CONFIG: configFile },
    isTTY: false,
  };
  const code = await main(['node', 'deployctl', ...args], ctx);
  return { code, out: outs.join('\n'), err: errs.join('\n') };
}

const status = (version: string): DeploymentStatus => ({
  workflow: 'deploy',
  workflowId: `deploy-production-${version}`,
  version,
  environment: 'production',
  phase: 'succeeded',
  startedAt: '2026-01-01T00:00:00.000Z',
  steps: [],
  approvals: [
    {
      signal: 'approve',
      by: 'bob',
      at: '2026-01-01T00:03:00.000Z',
      note: 'ship it',
      via: 'ssh',
      credential: FINGERPRINT,
    },
  ],
  aborts: [],
  pauses: [],
  ignoredSignals: [],
  notificationFailures: 0,
  children: [],
  lastAnalysis: {
    at: '2026-01-01T00:04:00.000Z',
    outcome: 'pass',
    weight: 100,
    measurements: [{ metric: 'error-rate', track: 'canary', value: 0.002, threshold: '<= 0.01', outcome: 'pass' }],
  },
});

function deployment(environment: string, n: number): AuditAppendRequest {
  const version = `1.0.${n}`;
  const plan = { ...testPlan({ version }, `deploy-${environment}-${version}`), environment };
  return {
    environment,
    workflowId: plan.workflowId,
    runId: `run-${n}`,
    event: 'deployment',
    eventId: 'deployment',
    at: `2026-01-01T00:0${n}:00.000Z`,
    facts: deploymentFacts(plan, status(version), 'succeeded', undefined, {
      images: { 'api-gateway': `127.0.0.1:5000/ai-saas-api-gateway@sha256:${String(n).repeat(64)}` },
      migrations: ['001_init.sql', '002_add_index.sql'],
      backupKey: `postgres/ai_saas_prod-${n}.dump.zst`,
    }),
  };
}

beforeAll(async () => {
  const original = readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8');
  const ours = original.replace(/^audit:\n {2}enabled: true\n {2}prefix: audit\/$/m, `audit:\n  prefix: ${PREFIX}`);
  expect(ours).not.toBe(original);
  writeFileSync(configFile, ours);
  const config = loadConfig(configFile, sandboxEnv());
  expect(config.audit.prefix).toBe(PREFIX);
  s3 = createS3Client(config.backup, sandboxEnv());
  bucket = config.backup.bucket;
  const ledger = auditLedger({ s3, bucket, prefix: PREFIX });
  for (let n = 1; n <= 5; n++) await ledger.appendAudit(deployment('production', n));
  await ledger.appendAudit({
    ...deployment('production', 2),
    event: 'approval',
    eventId: 'approval-1',
    facts: approvalFacts(status('1.0.2').approvals[0], 'step-100'),
  });
  for (let n = 1; n <= 2; n++) await ledger.appendAudit(deployment('staging', n));
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  if (!s3) return;
  const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: PREFIX }));
  const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
  if (keys.length) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
  s3.destroy();
});

test('a real chain verifies: one line per environment', async () => {
  const r = await deployctl('audit', 'verify');
  expect(r).toMatchObject({ code: ExitCode.Ok, err: '' });
  expect(r.out.split('\n')).toEqual([
    expect.stringMatching(/^production: 6 records, chain intact, head sha256 [0-9a-f]{12}…$/),
    expect.stringMatching(/^staging: 2 records, chain intact, head sha256 [0-9a-f]{12}…$/),
  ]);
  const json = await deployctl('audit', 'verify', '--env', 'staging', '--json');
  expect(JSON.parse(json.out)).toMatchObject({
    bucket,
    prefix: PREFIX,
    ledgers: [{ environment: 'staging', ok: true }],
  });
});

test("audit show prints a workflow's records: who asked and approved, how verified, what, the evidence, the outcome", async () => {
  const r = await deployctl('audit', 'show', 'deploy-production-1.0.2');
  expect(r.code).toBe(ExitCode.Ok);
  expect(r.out).toContain('production #2 deployment (deployment) at 2026-01-01T00:02:00.000Z');
  expect(r.out).toContain('production #6 approval (approval-1)');
  expect(r.out).toMatch(/requested +\S+ \(not verified\)/);
  expect(r.out).toContain(
    `approved    bob (ssh ${FINGERPRINT}) at 2026-01-01T00:03:00.000Z at gate step-100: "ship it"`,
  );
  expect(r.out).toContain(`image       api-gateway 127.0.0.1:5000/ai-saas-api-gateway@sha256:${'2'.repeat(64)}`);
  expect(r.out).toContain('migrations  001_init.sql, 002_add_index.sql');
  expect(r.out).toContain(
    'analysis    pass at 2026-01-01T00:04:00.000Z, weight 100%: error-rate canary 0.002 (<= 0.01) pass',
  );
  expect(r.out).toContain('outcome     succeeded');
  expect(r.out).toContain(`object      s3://${bucket}/${key('production', 2)}, sha256 `);
  const json = JSON.parse((await deployctl('audit', 'show', 'deploy-staging-1.0.1', '--json')).out);
  expect(json).toEqual([
    expect.objectContaining({ key: key('staging', 1), record: expect.objectContaining({ seq: 1 }) }),
  ]);
});

test('audit show of a workflow without records, and bad arguments, exit with one line', async () => {
  expect(await deployctl('audit', 'show', 'deploy-production-9.9.9')).toMatchObject({
    code: ExitCode.NotFound,
    err: expect.stringMatching(/^deployctl: no audit records of deploy-production-9\.9\.9 under s3:\/\//),
  });
  expect((await deployctl('audit', 'verify', '--env', '../x')).code).toBe(ExitCode.BadInput);
  expect((await deployctl('audit', 'show', 'a;b')).code).toBe(ExitCode.BadInput);
});

describe('a changed ledger fails verify, naming the object', () => {
  /** Runs `change`, checks what verify says, then puts the original bytes back. */
  async function tampered(k: string, change: () => Promise<unknown>) {
    const original = await text(k);
    await change();
    try {
      return await deployctl('audit', 'verify');
    } finally {
      await putText(k, original);
      expect((await deployctl('audit', 'verify')).code).toBe(ExitCode.Ok);
    }
  }

  test("one record's body edited", async () => {
    const k = key('production', 3);
    const r = await tampered(k, async () => putText(k, (await text(k)).replace('"succeeded"', '"rolled-back"')));
    expect(r.code).toBe(ExitCode.Failed);
    expect(r.out).toContain(`production: BROKEN at ${k}: record ${k} was changed`);
    expect(r.out).toMatch(/^staging: 2 records, chain intact/m);
  });

  test('a middle record deleted', async () => {
    const k = key('production', 2);
    const r = await tampered(k, () => remove(k));
    expect(r.code).toBe(ExitCode.Failed);
    expect(r.out).toContain(
      `production: BROKEN at ${k}: record ${k}: it is missing (deleted) (1 record verified before it)`,
    );
  });

  test('the last record deleted: named through HEAD', async () => {
    const k = key('staging', 2);
    const r = await tampered(k, () => remove(k));
    expect(r.code).toBe(ExitCode.Failed);
    expect(r.out).toContain(`staging: BROKEN at ${k}: record ${k} is missing: ${PREFIX}staging/HEAD.json names seq 2`);
  });
});
