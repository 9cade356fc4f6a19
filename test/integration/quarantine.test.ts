/**
 * The quarantine of versions against the sandbox's object store (the backup
 * bucket of deploy.config.yaml): a record per version and workflow, written
 * once however often it is retried; the newest active one answers whether a
 * version is quarantined; a lift is recorded in the records it lifts and
 * refused when there is nothing to lift; and no key leaves the prefix. Each
 * run works under its own prefix and deletes it afterwards.
 */
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { createS3Client } from '../../src/activities/clients/s3';
import { quarantineActivities, type QuarantineRecord } from '../../src/activities/quarantine';
import type { DeployConfig } from '../../src/domain/config';
import { loadConfig } from '../../src/load-config';
import { sandboxEnv } from '../helpers/sandbox';
import { REPO_ROOT } from '../helpers/tools';

const RUN = randomBytes(4).toString('hex');
const PREFIX = `quarantine-test-${RUN}/`;

let config: DeployConfig;
let s3: S3Client;
let bucket: string;
/** A clock that moves a minute per reading, so "newest first" is decided by the records' times. */
let clock = Date.parse('2026-12-01T10:00:00Z');
const now = () => new Date((clock += 60_000));

beforeAll(() => {
  config = loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), sandboxEnv());
  s3 = createS3Client(config.backup, sandboxEnv());
  bucket = config.backup.bucket;
});

afterAll(async () => {
  if (!s3) return;
  const keys = await keysUnder(PREFIX);
  for (let i = 0; i < keys.length; i += 1000) {
    await s3.send(
      new DeleteObjectsCommand({
        Bucket: bucket,
        Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })) },
      }),
    );
  }
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

async function stored(key: string): Promise<{ record: QuarantineRecord; etag?: string }> {
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return { record: JSON.parse(await got.Body!.transformToString()) as QuarantineRecord, etag: got.ETag };
}

/** One "worker" on the run's prefix, under `sub`. */
const store = (sub: string) => quarantineActivities({ s3, bucket, prefix: `${PREFIX}${sub}`, now });

describe('quarantine and its retries', () => {
  const q = () => store('retries/');

  test('a quarantine is one JSON object at <prefix><version>/<workflowId>.json', async () => {
    const record = await q().quarantineVersion({
      version: 'v1.0.1',
      environment: 'staging',
      workflowId: 'rollback-staging-1',
      reason: 'rolled back: smoke test /health answered 500',
    });
    expect(record).toEqual({
      version: '1.0.1',
      environment: 'staging',
      workflowId: 'rollback-staging-1',
      reason: 'rolled back: smoke test /health answered 500',
      at: expect.stringMatching(/^2026-12-01T\d\d:\d\d:00\.000Z$/),
    });
    const key = `${PREFIX}retries/1.0.1/rollback-staging-1.json`;
    expect(await keysUnder(`${PREFIX}retries/`)).toEqual([key]);
    expect((await stored(key)).record).toEqual(record);
  });

  test('a retry writes nothing and returns the first write', async () => {
    const key = `${PREFIX}retries/1.0.1/rollback-staging-1.json`;
    const before = await stored(key);
    const again = await q().quarantineVersion({
      version: '1.0.1',
      environment: 'production',
      workflowId: 'rollback-staging-1',
      reason: 'a different reason on the retry',
    });
    expect(again).toEqual(before.record);
    expect(await stored(key)).toEqual(before);
  });

  test('attempts racing for one record all return the same record', async () => {
    const attempts = await Promise.all(
      [1, 2, 3, 4, 5].map((n) =>
        q().quarantineVersion({
          version: '1.0.2',
          environment: 'production',
          workflowId: 'verify-production-1.0.2',
          reason: `attempt ${n}`,
        }),
      ),
    );
    const { record } = await stored(`${PREFIX}retries/1.0.2/verify-production-1.0.2.json`);
    for (const a of attempts) expect(a).toEqual(record);
  });
});

describe('which versions are quarantined', () => {
  const q = () => store('lookup/');

  beforeAll(async () => {
    // In time order: 2.0.0 in staging, 2.0.1 in production, 2.0.0 again in production.
    await q().quarantineVersion({ version: '2.0.0', environment: 'staging', workflowId: 'wf-a', reason: 'first' });
    await q().quarantineVersion({ version: '2.0.1', environment: 'production', workflowId: 'wf-b', reason: 'second' });
    await q().quarantineVersion({ version: '2.0.0', environment: 'production', workflowId: 'wf-c', reason: 'third' });
  });

  test('quarantineOf: the newest record of the version', async () => {
    expect(await q().quarantineOf({ version: '2.0.0' })).toMatchObject({
      version: '2.0.0',
      environment: 'production',
      workflowId: 'wf-c',
      reason: 'third',
    });
    expect(await q().quarantineOf({ version: 'v2.0.1' })).toMatchObject({ workflowId: 'wf-b' });
  });

  test('quarantineOf: a version never quarantined is not, nor is one that only shares a prefix', async () => {
    expect(await q().quarantineOf({ version: '2.0.2' })).toBeUndefined();
    await q().quarantineVersion({ version: '2.0.3-rc.1', environment: 'staging', workflowId: 'wf-rc', reason: 'rc' });
    expect(await q().quarantineOf({ version: '2.0.3' })).toBeUndefined();
    expect(await q().quarantineOf({ version: '2.0.3-rc.1' })).toMatchObject({ workflowId: 'wf-rc' });
  });

  test('listQuarantine: every record, newest first', async () => {
    const list = await q().listQuarantine();
    expect(list.map((r) => [r.version, r.workflowId])).toEqual([
      ['2.0.3-rc.1', 'wf-rc'],
      ['2.0.0', 'wf-c'],
      ['2.0.1', 'wf-b'],
      ['2.0.0', 'wf-a'],
    ]);
    expect(list.every((r) => r.lifted === undefined)).toBe(true);
  });

  test('an empty store lists nothing', async () => {
    expect(await store('empty/').listQuarantine()).toEqual([]);
  });
});

describe('lifting a quarantine', () => {
  const q = () => store('lift/');
  const lift = {
    version: '3.0.0',
    by: 'alice@example.com',
    via: 'oidc' as const,
    reason: 'the failure was the load balancer, fixed in INC-42',
    workflowId: 'lift-3.0.0-1',
  };

  beforeAll(async () => {
    await q().quarantineVersion({ version: '3.0.0', environment: 'staging', workflowId: 'wf-1', reason: 'one' });
    await q().quarantineVersion({ version: '3.0.0', environment: 'production', workflowId: 'wf-2', reason: 'two' });
  });

  test('every active record of the version is lifted, and the lift is recorded in each', async () => {
    const lifted = await q().liftQuarantine(lift);
    expect(lifted.map((r) => r.workflowId)).toEqual(['wf-2', 'wf-1']);
    for (const r of lifted) {
      expect(r.lifted).toEqual({
        by: 'alice@example.com',
        via: 'oidc',
        reason: 'the failure was the load balancer, fixed in INC-42',
        at: expect.stringMatching(/^2026-12-01T/),
        workflowId: 'lift-3.0.0-1',
      });
      expect((await stored(`${PREFIX}lift/3.0.0/${r.workflowId}.json`)).record).toEqual(r);
    }
    expect(await q().quarantineOf({ version: '3.0.0' })).toBeUndefined();
    // Listed still, with the lift.
    const list = await q().listQuarantine();
    expect(list.map((r) => [r.workflowId, r.lifted?.by])).toEqual([
      ['wf-2', 'alice@example.com'],
      ['wf-1', 'alice@example.com'],
    ]);
  });

  test('a retry of the lift returns the same records and rewrites nothing', async () => {
    const key = `${PREFIX}lift/3.0.0/wf-1.json`;
    const before = await stored(key);
    const again = await q().liftQuarantine({ ...lift, reason: 'retried' });
    expect(again.map((r) => r.workflowId)).toEqual(['wf-2', 'wf-1']);
    expect(again.find((r) => r.workflowId === 'wf-1')).toEqual(before.record);
    expect(await stored(key)).toEqual(before);
  });

  test('another lift of a lifted version is refused: nothing to lift', async () => {
    const err = await q()
      .liftQuarantine({ ...lift, workflowId: 'lift-3.0.0-2' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      type: 'NotQuarantined',
      nonRetryable: true,
      message: 'version 3.0.0 is not quarantined: there is nothing to lift',
    });
  });

  test('a second quarantine after the lift is active again, and a new lift lifts only it', async () => {
    await q().quarantineVersion({ version: '3.0.0', environment: 'production', workflowId: 'wf-3', reason: 'three' });
    expect(await q().quarantineOf({ version: '3.0.0' })).toMatchObject({ workflowId: 'wf-3', reason: 'three' });
    const lifted = await q().liftQuarantine({ ...lift, by: 'bob', via: 'ssh', workflowId: 'lift-3.0.0-3' });
    expect(lifted.map((r) => [r.workflowId, r.lifted?.by, r.lifted?.via])).toEqual([['wf-3', 'bob', 'ssh']]);
    expect((await stored(`${PREFIX}lift/3.0.0/wf-1.json`)).record.lifted?.by).toBe('alice@example.com');
    expect(await q().quarantineOf({ version: '3.0.0' })).toBeUndefined();
  });

  test('two lifts racing: each record is lifted once, by the lift that wrote first, and neither is lost', async () => {
    await q().quarantineVersion({ version: '3.1.0', environment: 'staging', workflowId: 'wf-r1', reason: 'r1' });
    await q().quarantineVersion({ version: '3.1.0', environment: 'production', workflowId: 'wf-r2', reason: 'r2' });
    const results = await Promise.all(
      ['lift-3.1.0-a', 'lift-3.1.0-b'].map((workflowId) =>
        q().liftQuarantine({ ...lift, version: '3.1.0', workflowId }),
      ),
    );
    const returned = results.flat();
    expect(returned.map((r) => r.workflowId).sort()).toEqual(['wf-r1', 'wf-r2']);
    for (const r of returned) expect((await stored(`${PREFIX}lift/3.1.0/${r.workflowId}.json`)).record).toEqual(r);
    expect(await q().quarantineOf({ version: '3.1.0' })).toBeUndefined();
  });

  test('lifting a version never quarantined is refused with a named, non-retryable failure', async () => {
    const err = await q()
      .liftQuarantine({ ...lift, version: '9.9.9' })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      type: 'NotQuarantined',
      nonRetryable: true,
      message: 'version 9.9.9 is not quarantined: there is nothing to lift',
    });
  });

  test('a lift needs who, how they were verified and why', async () => {
    for (const bad of [{ by: '' }, { by: 'a\nb' }, { via: 'password' }, { reason: ' ' }]) {
      await expect(q().liftQuarantine({ ...lift, ...(bad as object) })).rejects.toMatchObject({
        type: 'InvalidInput',
        nonRetryable: true,
      });
    }
  });
});

describe('a record that cannot be read', () => {
  const q = () => store('unreadable/');

  test('counts as a quarantine, named by its key, until it is lifted', async () => {
    const key = `${PREFIX}unreadable/4.0.0/wf-x.json`;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: '{"version": "4.0.0", trunc' }));
    expect(await q().quarantineOf({ version: '4.0.0' })).toMatchObject({
      version: '4.0.0',
      workflowId: 'wf-x',
      reason: expect.stringContaining(`the quarantine record s3://${bucket}/${key} cannot be read`),
    });
    const lifted = await q().liftQuarantine({
      version: '4.0.0',
      by: 'carol',
      via: 'none',
      reason: 'a broken record',
      workflowId: 'lift-4',
    });
    expect(lifted).toHaveLength(1);
    expect((await stored(key)).record.lifted?.by).toBe('carol');
    expect(await q().quarantineOf({ version: '4.0.0' })).toBeUndefined();
  });

  test('objects under the prefix that are not records are left alone', async () => {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${PREFIX}unreadable/README.txt`, Body: 'notes' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${PREFIX}unreadable/4.0.1/a/b.json`, Body: '{}' }));
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `${PREFIX}unreadable/v4.0.1/wf.json`, Body: '{}' }));
    expect(await q().quarantineOf({ version: '4.0.1' })).toBeUndefined();
    expect((await q().listQuarantine()).map((r) => r.version)).toEqual(['4.0.0']);
  });
});

describe('no key leaves the prefix', () => {
  const q = () => store('escape/');

  test.each(['../x', '../../1.0.0', '1.0.0/../../x', '1.0.0/x', '', '1.0', 'latest'])(
    'version %j is refused before anything is read or written',
    async (version) => {
      const ok = { environment: 'staging', workflowId: 'wf-escape', reason: 'r' };
      for (const p of [
        q().quarantineVersion({ ...ok, version }),
        q().quarantineOf({ version }),
        q().liftQuarantine({ version, by: 'alice', via: 'none', reason: 'r', workflowId: 'wf-escape' }),
      ]) {
        await expect(p).rejects.toMatchObject({
          type: 'InvalidInput',
          nonRetryable: true,
          message: expect.stringMatching(/^invalid version /),
        });
      }
    },
  );

  test.each(['../x', 'a/../../b', 'a/b', '.hidden', '', 'wf id'])(
    'workflow id %j is refused before anything is written',
    async (workflowId) => {
      await expect(
        q().quarantineVersion({ version: '5.0.0', environment: 'staging', workflowId, reason: 'r' }),
      ).rejects.toMatchObject({ type: 'InvalidWorkflowId', nonRetryable: true, message: /^workflowId: / });
      await expect(
        q().liftQuarantine({ version: '5.0.0', by: 'alice', via: 'none', reason: 'r', workflowId }),
      ).rejects.toMatchObject({ type: 'InvalidWorkflowId', nonRetryable: true });
    },
  );

  test('an environment that is not an environment name is refused', async () => {
    await expect(
      q().quarantineVersion({ version: '5.0.0', environment: '../prod', workflowId: 'wf', reason: 'r' }),
    ).rejects.toMatchObject({ type: 'InvalidInput', nonRetryable: true });
  });

  test('nothing was written by the refused calls', async () => {
    expect(await keysUnder(`${PREFIX}escape/`)).toEqual([]);
    // And nothing beside the run's prefix: "../x" would have landed here.
    await expect(s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'x/wf-escape.json' }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 404 },
    });
  });
});
