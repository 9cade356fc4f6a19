/**
 * The audit ledger's appender against the sandbox's object store
 * (versitygw, the backup bucket of deploy.config.yaml): chains for two
 * environments that verify; a retry, and a retry after a crash at each point
 * of an append, add nothing; ten appends racing for one environment take ten
 * consecutive seqs; facts leave redacted; a ledger whose tail does not
 * verify refuses appends; an unreachable store is retried. Each run works
 * under its own prefix and deletes it afterwards. deployctl audit: audit-cli.test.ts.
 */
import {
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { ApplicationFailure } from '@temporalio/common';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { verifyLedger } from '../../src/activities/audit/chain';
import { auditLedger, type AuditLedgerDeps } from '../../src/activities/audit/ledger';
import { createS3Client } from '../../src/activities/clients/s3';
import { createRedactor } from '../../src/activities/redactor';
import { canonicalJson, eventKey, GENESIS, headKey, recordKey, type AuditAppendRequest } from '../../src/domain/audit';
import type { DeployConfig } from '../../src/domain/config';
import { loadConfig } from '../../src/load-config';
import { sandboxEnv } from '../helpers/sandbox';
import { REPO_ROOT } from '../helpers/tools';

const RUN = randomBytes(4).toString('hex');
const PREFIX = `audit-test-${RUN}/`;

let config: DeployConfig;
let s3: S3Client;
let bucket: string;

beforeAll(() => {
  config = loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), sandboxEnv());
  s3 = createS3Client(config.backup, sandboxEnv());
  bucket = config.backup.bucket;
});

afterAll(async () => {
  if (!s3) return;
  const keys = await keysUnder(PREFIX);
  for (let i = 0; i < keys.length; i += 1000)
    await s3.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) },
      }),
    );
  expect(await keysUnder(PREFIX)).toEqual([]);
  s3.destroy();
});

async function keysUnder(prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

const text = async (key: string) =>
  (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body!.transformToString();
const putText = (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
const remove = (key: string) => s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));

/** One "worker" on the run's prefix under `sub`. */
const ledger = (sub: string, over: Partial<AuditLedgerDeps> = {}) =>
  auditLedger({ s3, bucket, prefix: `${PREFIX}${sub}`, contentionDelayMs: 20, ...over });

const request = (environment: string, n: number, over: Partial<AuditAppendRequest> = {}): AuditAppendRequest => ({
  environment,
  workflowId: `deploy-${environment}-1.0.${n}`,
  runId: `run-${n}`,
  event: 'deployment',
  eventId: 'deployment',
  at: new Date(Date.UTC(2026, 0, 1, 0, n)).toISOString(),
  facts: { requestedBy: 'alice', outcome: 'succeeded', images: { api: `reg/api@sha256:${n}` } },
  ...over,
});

describe('appending', () => {
  const sub = 'chains/';
  const p = `${PREFIX}${sub}`;

  test('records for two environments form two chains that verify', async () => {
    const l = ledger(sub);
    const prod = [];
    for (let n = 1; n <= 4; n++) prod.push(await l.appendAudit(request('production', n)));
    const staging = [await l.appendAudit(request('staging', 1)), await l.appendAudit(request('staging', 2))];
    expect(prod.map((r) => [r.seq, r.appended])).toEqual([
      [1, true],
      [2, true],
      [3, true],
      [4, true],
    ]);
    expect(staging.map((r) => r.key)).toEqual([recordKey(p, 'staging', 1), recordKey(p, 'staging', 2)]);
    const report = await verifyLedger({ s3, bucket }, p, 'production');
    expect(report).toMatchObject({ ok: true, records: 4, unanchored: 0, tail: { seq: 4, hash: prod[3].hash } });
    expect(await verifyLedger({ s3, bucket }, p, 'staging')).toMatchObject({ ok: true, records: 2 });
    expect(JSON.parse(await text(headKey(p, 'production')))).toEqual({
      seq: 4,
      hash: prod[3].hash,
      key: prod[3].key,
    });
    const second = JSON.parse(await text(prod[1].key));
    expect(second).toMatchObject({ v: 1, seq: 2, prev: prod[0].hash, workflowId: 'deploy-production-1.0.2' });
    expect(JSON.parse(await text(eventKey(p, 'production', 'deploy-production-1.0.2', 'run-2', 'deployment')))).toEqual(
      expect.objectContaining({ seq: 2 }),
    );
  });

  test('a retry of the same run and event returns its record and adds nothing', async () => {
    const before = await keysUnder(p);
    const again = await ledger(sub).appendAudit(request('production', 2, { facts: { outcome: 'different' } }));
    expect(again).toMatchObject({ seq: 2, key: recordKey(p, 'production', 2), appended: false });
    expect(await keysUnder(p)).toEqual(before);
  });

  test('the same workflow id in another run, or another event of the run, is a record of its own', async () => {
    const l = ledger(sub);
    expect(await l.appendAudit(request('production', 2, { runId: 'run-2b' }))).toMatchObject({ seq: 5 });
    expect(await l.appendAudit(request('production', 2, { event: 'approval', eventId: 'approval-1' }))).toMatchObject({
      seq: 6,
      appended: true,
    });
    expect(await verifyLedger({ s3, bucket }, p, 'production')).toMatchObject({ ok: true, records: 6 });
  });
});

describe('retries after a crash', () => {
  const sub = 'crash/';
  const p = `${PREFIX}${sub}`;
  const env = 'production';

  /** Appends `req`, then undoes the writes after the record as a crash would have left them unwritten. */
  async function crashAfterRecord(req: AuditAppendRequest, keepIndex: boolean) {
    const headBefore = await text(headKey(p, env)).catch(() => undefined);
    const r = await ledger(sub).appendAudit(req);
    if (!keepIndex) await remove(eventKey(p, env, req.workflowId, req.runId, req.eventId));
    // Before the first record HEAD was the start of the ledger (seq 0), written before it.
    await putText(headKey(p, env), headBefore ?? canonicalJson({ seq: 0, hash: GENESIS, key: '' }));
    return r;
  }

  test('crash after the first record, before its index and HEAD: the retry finds it and writes both', async () => {
    const first = await crashAfterRecord(request(env, 1), false);
    // Not a break: HEAD still names the ledger's start, and the record after it is the interrupted append's.
    expect(await verifyLedger({ s3, bucket }, p, env)).toMatchObject({ ok: true, records: 1, unanchored: 1 });
    const retry = await ledger(sub).appendAudit(request(env, 1));
    expect(retry).toEqual({ ...first, appended: false });
    expect(await verifyLedger({ s3, bucket }, p, env)).toMatchObject({ ok: true, records: 1, unanchored: 0 });
  });

  test('crash after the index, before HEAD: HEAD lags; the retry answers from the index and moves HEAD', async () => {
    const second = await crashAfterRecord(request(env, 2), true);
    expect(await verifyLedger({ s3, bucket }, p, env)).toMatchObject({ ok: true, records: 2, unanchored: 1 });
    expect(await ledger(sub).appendAudit(request(env, 2))).toEqual({ ...second, appended: false });
    expect(JSON.parse(await text(headKey(p, env)))).toMatchObject({ seq: 2 });
  });

  test('crash before the index, another event appends meanwhile: its walk indexes the record, the retry finds it', async () => {
    const third = await crashAfterRecord(request(env, 3), false);
    const other = await ledger(sub).appendAudit(request(env, 4));
    expect(other).toMatchObject({ seq: 4, appended: true });
    expect(JSON.parse(await text(eventKey(p, env, 'deploy-production-1.0.3', 'run-3', 'deployment')))).toMatchObject({
      seq: 3,
    });
    expect(await ledger(sub).appendAudit(request(env, 3))).toEqual({ ...third, appended: false });
    expect(await verifyLedger({ s3, bucket }, p, env)).toMatchObject({ ok: true, records: 4, unanchored: 0 });
  });
});

test('ten appends racing for one environment take ten consecutive seqs, each once, and the chain verifies', async () => {
  const sub = 'race/';
  const p = `${PREFIX}${sub}`;
  const clients = Array.from({ length: 10 }, () => createS3Client(config.backup, sandboxEnv()));
  try {
    const results = await Promise.all(
      clients.map((c, i) =>
        ledger(sub, { s3: c }).appendAudit(request('production', i + 1, { workflowId: `deploy-race-${i}` })),
      ),
    );
    expect(results.map((r) => r.seq).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(results.every((r) => r.appended)).toBe(true);
    expect(await verifyLedger({ s3, bucket }, p, 'production')).toMatchObject({ ok: true, records: 10, unanchored: 0 });
    // Racing retries of the same ten add nothing.
    const again = await Promise.all(
      clients.map((c, i) =>
        ledger(sub, { s3: c }).appendAudit(request('production', i + 1, { workflowId: `deploy-race-${i}` })),
      ),
    );
    expect(again.map((r) => r.seq)).toEqual(results.map((r) => r.seq));
    expect(again.every((r) => !r.appended)).toBe(true);
  } finally {
    for (const c of clients) c.destroy();
  }
});

test('attempts of one event racing each other and other events leave one record of it', async () => {
  const sub = 'race-same/';
  const clients = Array.from({ length: 8 }, () => createS3Client(config.backup, sandboxEnv()));
  try {
    const results = await Promise.all(
      clients.map((c, i) =>
        ledger(sub, { s3: c }).appendAudit(
          i % 2 ? request('production', 1) : request('production', 10 + i, { workflowId: `deploy-other-${i}` }),
        ),
      ),
    );
    const ours = results.filter((_, i) => i % 2);
    expect(new Set(ours.map((r) => r.seq)).size).toBe(1);
    expect(ours.filter((r) => r.appended)).toHaveLength(1);
    expect(new Set(results.map((r) => r.seq)).size).toBe(5);
    expect(await verifyLedger({ s3, bucket }, `${PREFIX}${sub}`, 'production')).toMatchObject({ ok: true, records: 5 });
  } finally {
    for (const c of clients) c.destroy();
  }
});

test("facts pass through the worker's redactor before they are stored", async () => {
  const secret = 'hunter2-very-secret';
  const redactor = createRedactor([secret]);
  const l = ledger('redacted/', { redact: (v) => redactor.value(v) });
  const r = await l.appendAudit(request('production', 1, { facts: { reason: `smoke failed with ${secret}` } }));
  const stored = await text(r.key);
  expect(stored).not.toContain(secret);
  expect(JSON.parse(stored).facts.reason).toBe('smoke failed with ***');
});

test('a ledger whose tail does not verify refuses appends, named and not retried', async () => {
  const sub = 'broken/';
  const p = `${PREFIX}${sub}`;
  const l = ledger(sub);
  await l.appendAudit(request('production', 1));
  const { key } = await l.appendAudit(request('production', 2));
  await putText(key, (await text(key)).replace('alice', 'mallory'));
  const err = await l.appendAudit(request('production', 3)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type: 'AuditLedgerBroken', nonRetryable: true });
  expect((err as Error).message).toContain(recordKey(p, 'production', 2));
  expect(await keysUnder(`${p}production/0`)).toHaveLength(2);
});

test('HEAD deleted with the last records: verify names HEAD, and no append buries the truncation', async () => {
  const sub = 'truncated/';
  const p = `${PREFIX}${sub}`;
  const l = ledger(sub);
  for (let i = 1; i <= 3; i++) await l.appendAudit(request('production', i));
  // Whoever can delete objects removes the last record and HEAD, hoping the next append rebuilds HEAD at seq 2.
  await remove(recordKey(p, 'production', 3));
  await remove(headKey(p, 'production'));
  expect(await verifyLedger({ s3, bucket }, p, 'production')).toMatchObject({
    ok: false,
    break: { key: headKey(p, 'production'), problem: 'missing' },
  });
  const err = await l.appendAudit(request('production', 4)).catch((e: unknown) => e);
  expect(err).toMatchObject({ type: 'AuditLedgerBroken', nonRetryable: true });
  expect((err as Error).message).toContain(`${headKey(p, 'production')} is missing`);
  expect(await keysUnder(`${p}production/0`)).toHaveLength(2);
  expect(await verifyLedger({ s3, bucket }, p, 'production')).toMatchObject({ ok: false });
});

test('an environment the configuration does not have gets no ledger', async () => {
  const l = ledger('unconfigured/', { environments: ['staging', 'production'] });
  await expect(l.appendAudit(request('prod-typo', 1))).rejects.toMatchObject({
    type: 'InvalidInput',
    nonRetryable: true,
  });
  expect(await keysUnder(`${PREFIX}unconfigured/`)).toEqual([]);
});

test('bad requests are refused before anything is written; a disabled ledger writes nothing', async () => {
  const l = ledger('refused/');
  for (const bad of [
    { environment: '../x' },
    { workflowId: 'a b' },
    { eventId: '../../HEAD' },
    { runId: '' },
    { at: 'yesterday' },
    { event: 'coffee' as never },
  ])
    await expect(l.appendAudit(request('production', 1, bad))).rejects.toMatchObject({ nonRetryable: true });
  expect(await ledger('refused/', { enabled: false }).appendAudit(request('production', 1))).toEqual({
    seq: 0,
    key: '',
    hash: '',
    appended: false,
    disabled: true,
  });
  expect(await keysUnder(`${PREFIX}refused/`)).toEqual([]);
});

test('an unreachable store is StorageUnavailable, retried', async () => {
  const away = createS3Client({ ...config.backup, endpoint: 'http://127.0.0.1:1' }, sandboxEnv());
  try {
    const err = await ledger('away/', { s3: away })
      .appendAudit(request('production', 1))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'StorageUnavailable', nonRetryable: false });
  } finally {
    away.destroy();
  }
});
