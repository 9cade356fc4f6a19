/**
 * Each sandbox component through the client library the activities use:
 * dockerode builds and pushes, pg reads the seed rows, @aws-sdk uploads 20 MB
 * in parts and reads it back, PromQL sees the demo traffic (and a fault),
 * Redis answers PING, a pushed tag is visible on origin.
 */
import { GetObjectCommand, HeadObjectCommand, S3Client, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import Docker from 'dockerode';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import Redis from 'ioredis';
import { Client } from 'pg';
import { sandboxVar } from '../helpers/sandbox';
import { waitFor } from '../helpers/wait';

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd, encoding: 'utf8' });

test('dockerode builds an image from a streamed context and pushes it to the registry', async () => {
  const docker = new Docker({ socketPath: sandboxVar('DOCKER_HOST').replace('unix://', '') });
  const dir = mkdtempSync(path.join(tmpdir(), 'ctx-'));
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    'FROM sandbox/busybox:1\nARG VERSION\nCOPY hello.txt /hello.txt\nRUN echo "$VERSION" > /version\n',
  );
  writeFileSync(path.join(dir, 'hello.txt'), `hello ${Date.now()}\n`);
  const tag = `${sandboxVar('REGISTRY')}/sandbox-check:${Date.now()}`;
  const stream = await docker.buildImage(
    { context: dir, src: ['Dockerfile', 'hello.txt'] },
    { t: tag, buildargs: { VERSION: '9.9.9' }, networkmode: 'none' },
  );
  const built = await new Promise<unknown[]>((resolve, reject) =>
    docker.modem.followProgress(stream, (err, res) => (err ? reject(err) : resolve(res))),
  );
  expect(built.some((e: any) => typeof e.stream === 'string' && e.stream.includes('Successfully tagged'))).toBe(true);
  const push = await docker.getImage(tag).push({ authconfig: { serveraddress: sandboxVar('REGISTRY') } });
  const pushed = await new Promise<any[]>((resolve, reject) =>
    docker.modem.followProgress(push, (err, res) => (err ? reject(err) : resolve(res))),
  );
  const digest = pushed.map((e) => e.aux?.Digest).find(Boolean);
  expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  const [repo, version] = tag.slice(sandboxVar('REGISTRY').length + 1).split(':');
  const head = await fetch(`http://${sandboxVar('REGISTRY')}/v2/${repo}/manifests/${version}`, {
    method: 'HEAD',
    headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  });
  expect(head.headers.get('docker-content-digest')).toBe(digest);
}, 120_000);

test('pg reads the seed data of ai_saas_prod', async () => {
  const client = new Client({ connectionString: sandboxVar('DATABASE_URL') });
  await client.connect();
  try {
    const r = await client.query<{ users: string; conversations: string; messages: string; subscriptions: string }>(
      'SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM conversations) AS conversations, (SELECT count(*) FROM messages) AS messages, (SELECT count(*) FROM subscriptions) AS subscriptions',
    );
    expect(Number(r.rows[0].users)).toBeGreaterThanOrEqual(1000);
    expect(Number(r.rows[0].conversations)).toBeGreaterThan(0);
    expect(Number(r.rows[0].messages)).toBeGreaterThan(0);
    expect(Number(r.rows[0].subscriptions)).toBeGreaterThan(0);
    const v = await client.query<{ version: string }>('SELECT version()');
    expect(v.rows[0].version).toMatch(/^PostgreSQL 15/);
  } finally {
    await client.end();
  }
});

test('pg refuses a wrong password', async () => {
  const url = new URL(sandboxVar('DATABASE_URL'));
  url.password = 'wrong';
  const client = new Client({ connectionString: url.toString() });
  await expect(client.connect()).rejects.toThrow(/password authentication failed/);
});

test('@aws-sdk uploads 20 MB in parts to ai-saas-backups and reads the same bytes back', async () => {
  const s3 = new S3Client({
    endpoint: sandboxVar('S3_ENDPOINT'),
    region: sandboxVar('AWS_REGION'),
    forcePathStyle: true,
    credentials: { accessKeyId: sandboxVar('AWS_ACCESS_KEY_ID'), secretAccessKey: sandboxVar('AWS_SECRET_ACCESS_KEY') },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const body = randomBytes(20 * 1024 * 1024);
  const key = `sandbox-check/${Date.now()}.bin`;
  const parts: number[] = [];
  const upload = new Upload({
    client: s3,
    params: { Bucket: 'ai-saas-backups', Key: key, Body: Readable.from([body]) },
    partSize: 5 * 1024 * 1024,
    queueSize: 2,
  });
  upload.on('httpUploadProgress', (p) => parts.push(p.part ?? 0));
  await upload.done();
  expect(new Set(parts).size).toBeGreaterThanOrEqual(4);
  const head = await s3.send(new HeadObjectCommand({ Bucket: 'ai-saas-backups', Key: key }));
  expect(head.ContentLength).toBe(body.length);
  const got = await s3.send(new GetObjectCommand({ Bucket: 'ai-saas-backups', Key: key }));
  const bytes = Buffer.from(await got.Body!.transformToByteArray());
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
  await s3.send(new DeleteObjectCommand({ Bucket: 'ai-saas-backups', Key: key }));
  s3.destroy();
}, 120_000);

async function promQuery(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const r = await fetch(`${sandboxVar('PROMETHEUS_URL')}/api/v1/query?query=${encodeURIComponent(q)}`);
  const j = (await r.json()) as {
    status: string;
    data: { result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  expect(j.status).toBe('success');
  return j.data.result;
}

async function demoControl(p: string, body: unknown): Promise<void> {
  const r = await fetch(`${sandboxVar('DEMO_URL')}${p}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(r.ok).toBe(true);
}

test('PromQL returns the demo traffic and sees an injected fault', async () => {
  const total = await waitFor(async () => {
    const r = await promQuery('sum by (track, version) (rate(http_requests_total[20s]))');
    return r.find((s) => s.metric.track === 'stable' && Number(s.value[1]) > 0);
  }, 60_000);
  expect(total.metric.version).toBe('1.0.0');
  const errorRate =
    'sum(rate(http_requests_total{track="stable",code=~"5.."}[10s])) / sum(rate(http_requests_total{track="stable"}[10s]))';
  try {
    await demoControl('/__sandbox/fault', { track: 'stable', errorRate: 0.3 });
    const faulty = await waitFor(
      async () => {
        const r = await promQuery(errorRate);
        return r.length && Number(r[0].value[1]) > 0.1 ? Number(r[0].value[1]) : undefined;
      },
      60_000,
      1000,
    );
    expect(faulty).toBeGreaterThan(0.1);
  } finally {
    await demoControl('/__sandbox/fault', { clear: true });
  }
}, 150_000);

test('Redis answers PING and has a maxmemory', async () => {
  const redis = new Redis(sandboxVar('REDIS_URL'), { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    expect(await redis.ping()).toBe('PONG');
    const [, max] = (await redis.config('GET', 'maxmemory')) as [string, string];
    expect(Number(max)).toBeGreaterThan(0);
  } finally {
    redis.disconnect();
  }
});

test('a tag pushed to origin is visible with ls-remote', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clone-'));
  git(dir, 'clone', '-q', sandboxVar('GIT_REMOTE'), 'c');
  const c = path.join(dir, 'c');
  const tag = `sandbox-check-${Date.now()}`;
  git(c, 'tag', '-a', tag, '-m', 'check');
  git(c, 'push', '-q', 'origin', tag);
  try {
    const out = git(c, 'ls-remote', '--tags', 'origin', tag);
    expect(out).toContain(`refs/tags/${tag}`);
    expect(git(c, 'ls-remote', '--tags', 'origin', 'v1.0.0')).toContain('refs/tags/v1.0.0');
  } finally {
    git(c, 'push', '-q', 'origin', '--delete', tag);
  }
});
