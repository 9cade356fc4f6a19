/**
 * The platform's "nightly" backups, one per environment: pre-flight refuses
 * to deploy when the newest backup is older than backup.maxAge ("confirm
 * backup schedule is running"), so the sandbox keeps one of each database
 * under its environment's prefix (ai_saas_prod under postgres/,
 * ai_saas_staging under staging/postgres/), as a real backup schedule would.
 * They are made by the product's own backup activity, so their keys and
 * metadata are exactly what pre-flight and restore read.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import * as path from 'node:path';
import { createS3Client } from '../../src/activities/clients/s3';
import { databaseActivities } from '../../src/activities/database';
import type { DeployConfig } from '../../src/domain/config';
import { environmentConfig } from '../../src/domain/environment-config';
import { loadConfig } from '../../src/load-config';
import { ROOT, type Component } from './common';
import type { SandboxEnvironment } from './environments';
import { databaseUrl } from './postgres';
import { BUCKET, s3Client, s3Endpoint } from './s3';

const NIGHTLY_MAX_AGE_MS = 12 * 3_600_000;

/** The example config as the environment sees it (its database and backup prefix), as the worker would read it. */
function config(env: SandboxEnvironment): DeployConfig {
  const vars = { ...process.env, DATABASE_URL: databaseUrl(), S3_ENDPOINT: s3Endpoint() };
  return environmentConfig(loadConfig(path.join(ROOT, 'deploy.config.yaml'), vars), env.name);
}

async function newestBackupAge(env: SandboxEnvironment): Promise<number | undefined> {
  const c = s3Client();
  try {
    const prefix = `${env.backupPrefix}${env.database}_`;
    const r = await c.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }));
    const times = (r.Contents ?? []).map((o) => o.LastModified?.getTime() ?? 0);
    return times.length ? Date.now() - Math.max(...times) : undefined;
  } finally {
    c.destroy();
  }
}

/** Makes a backup of the environment's database at 1.0.0 with the product's backup activity. */
export async function nightlyBackup(env: SandboxEnvironment): Promise<string> {
  const cfg = config(env);
  // The S3 client reads the sandbox's keys from the environment, as the worker's does.
  const creds = s3Client().config.credentials;
  const { accessKeyId, secretAccessKey } = await creds();
  process.env.AWS_ACCESS_KEY_ID = accessKeyId;
  process.env.AWS_SECRET_ACCESS_KEY = secretAccessKey;
  const s3 = createS3Client(cfg.backup);
  try {
    const acts = databaseActivities({
      config: cfg,
      databaseUrl: databaseUrl(env.database),
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

export function backupComponent(env: SandboxEnvironment): Component {
  const age = (ms: number) => `newest backup ${Math.round(ms / 60_000)} min old`;
  return {
    name: 'backup',
    environment: env.name,
    async up() {
      const ms = await newestBackupAge(env);
      if (ms !== undefined && ms < NIGHTLY_MAX_AGE_MS) return age(ms);
      return `nightly backup ${await nightlyBackup(env)}`;
    },
    async status() {
      const ms = await newestBackupAge(env).catch(() => undefined);
      return { ok: ms !== undefined, detail: ms === undefined ? `no backup under ${env.backupPrefix}` : age(ms) };
    },
    async down() {
      // Objects only: nothing runs.
    },
    async reset() {
      await nightlyBackup(env);
    },
  };
}
