/**
 * The platform's "nightly" backup: pre-flight refuses to deploy when the
 * newest backup is older than backup.maxAge ("confirm backup schedule is
 * running"), so the sandbox keeps one as a real backup schedule would. It is
 * made by the product's own backup activity, so its key and metadata are
 * exactly what pre-flight and restore read.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import * as path from 'node:path';
import { createS3Client } from '../../src/activities/clients/s3';
import { databaseActivities } from '../../src/activities/database';
import { loadConfig } from '../../src/load-config';
import { ROOT, type Component } from './common';
import { databaseUrl } from './postgres';
import { BUCKET, s3Client, s3Endpoint } from './s3';

const NIGHTLY_MAX_AGE_MS = 12 * 3_600_000;

function config() {
  const env = { ...process.env, DATABASE_URL: databaseUrl(), S3_ENDPOINT: s3Endpoint() };
  return loadConfig(path.join(ROOT, 'deploy.config.yaml'), env);
}

async function newestBackupAge(): Promise<number | undefined> {
  const c = s3Client();
  try {
    const r = await c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'postgres/' }));
    const times = (r.Contents ?? []).map((o) => o.LastModified?.getTime() ?? 0);
    return times.length ? Date.now() - Math.max(...times) : undefined;
  } finally {
    c.destroy();
  }
}

/** Makes a backup of ai_saas_prod at 1.0.0 with the product's backup activity. */
export async function nightlyBackup(): Promise<string> {
  const cfg = config();
  // The S3 client reads the sandbox's keys from the environment, as the worker's does.
  const creds = s3Client().config.credentials;
  const { accessKeyId, secretAccessKey } = await creds();
  process.env.AWS_ACCESS_KEY_ID = accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = secretAccessKey;
  const s3 = createS3Client(cfg.backup);
  try {
    const acts = databaseActivities({
      config: cfg,
      databaseUrl: databaseUrl(),
      s3,
      releaseDir: () => Promise.reject(new Error('not used')),
    });
    const stamp = new Date().toISOString().slice(0, 10).replace(/-/g, '');
    const r = await acts.backupDatabase({ workflowId: `sandbox-nightly-${stamp}`, version: '1.0.0' });
    return r.key;
  } finally {
    s3.destroy();
  }
}

export function backupComponent(): Component {
  return {
    name: 'backup',
    async up() {
      const age = await newestBackupAge();
      if (age !== undefined && age < NIGHTLY_MAX_AGE_MS) return `newest backup ${Math.round(age / 60_000)} min old`;
      return `nightly backup ${await nightlyBackup()}`;
    },
    async status() {
      const age = await newestBackupAge().catch(() => undefined);
      return {
        ok: age !== undefined,
        detail: age === undefined ? 'no backup in the bucket' : `newest backup ${Math.round(age / 60_000)} min old`,
      };
    },
    async down() {
      // Objects only: nothing runs.
    },
    async reset() {
      await nightlyBackup();
    },
  };
}
