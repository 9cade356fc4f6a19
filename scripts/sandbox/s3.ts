/**
 * An S3-compatible store: versitygw (built from the Go module proxy) over a
 * posix folder, with the bucket ai-saas-backups. Multipart uploads supported.
 */
import {
  CreateBucketCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  DeleteObjectsCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  ensureDir,
  HOST,
  PORTS,
  running,
  sh,
  startDaemon,
  stopDaemon,
  tool,
  waitReady,
  type Component,
} from './common';

export const BUCKET = 'ai-saas-backups';
const REGION = 'us-east-1';

function credentials(): { accessKeyId: string; secretAccessKey: string } {
  const f = path.join(ensureDir('s3'), 'credentials.json');
  if (!existsSync(f)) {
    const accessKeyId = `AKSB${sh('openssl', ['rand', '-hex', '8']).trim().toUpperCase()}`;
    const secretAccessKey = sh('openssl', ['rand', '-base64', '30'])
      .trim()
      .replace(/[^A-Za-z0-9]/g, 'x');
    writeFileSync(f, JSON.stringify({ accessKeyId, secretAccessKey }), { mode: 0o600 });
  }
  return JSON.parse(readFileSync(f, 'utf8')) as { accessKeyId: string; secretAccessKey: string };
}

export function s3Endpoint(): string {
  return `http://${HOST}:${PORTS.S3}`;
}

export function s3Client(): S3Client {
  return new S3Client({
    endpoint: s3Endpoint(),
    region: REGION,
    forcePathStyle: true,
    credentials: credentials(),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

async function ready(): Promise<boolean> {
  const c = s3Client();
  try {
    await c.send(new HeadBucketCommand({ Bucket: BUCKET }));
    return true;
  } catch (err) {
    // 404/NotFound means the server answers; the bucket is made next.
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    return status === 404 || status === 403;
  } finally {
    c.destroy();
  }
}

async function emptyBucket(): Promise<void> {
  const c = s3Client();
  try {
    for (;;) {
      const page = await c.send(new ListObjectsV2Command({ Bucket: BUCKET }));
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
      if (!keys.length) break;
      await c.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: keys } }));
    }
  } finally {
    c.destroy();
  }
}

export function s3Component(): Component {
  return {
    name: 's3',
    async up() {
      const bin = tool('go-tool.sh', 'versitygw', 'github.com/versity/versitygw/cmd/versitygw@v1.8.0');
      const data = ensureDir('s3', 'data');
      const meta = ensureDir('s3', 'meta');
      const creds = credentials();
      if (!running('s3')) {
        startDaemon(
          's3',
          bin,
          ['--port', `${HOST}:${PORTS.S3}`, '--region', REGION, '--quiet', 'posix', '--sidecar', meta, data],
          {
            env: { ...process.env, ROOT_ACCESS_KEY: creds.accessKeyId, ROOT_SECRET_KEY: creds.secretAccessKey },
          },
        );
      }
      await waitReady('s3', ready, 30_000, 's3');
      const c = s3Client();
      try {
        await c
          .send(new HeadBucketCommand({ Bucket: BUCKET }))
          .catch(async () => c.send(new CreateBucketCommand({ Bucket: BUCKET })));
      } finally {
        c.destroy();
      }
      return `${s3Endpoint()} bucket ${BUCKET}`;
    },
    async status() {
      const ok = running('s3') && (await ready().catch(() => false));
      return { ok, detail: ok ? `${s3Endpoint()} bucket ${BUCKET}` : 'down' };
    },
    async down() {
      await stopDaemon('s3');
    },
    async reset() {
      await emptyBucket();
    },
    env() {
      const c = credentials();
      return {
        S3_ENDPOINT: s3Endpoint(),
        AWS_ACCESS_KEY_ID: c.accessKeyId,
        AWS_SECRET_ACCESS_KEY: c.secretAccessKey,
        AWS_REGION: REGION,
        S3_BUCKET: BUCKET,
      };
    },
  };
}
