/**
 * The I/O worker as a process (src/io-worker.ts), as a team runs it beside the workflows'
 * workers: it polls temporal.ioTaskQueue and runs a real backup of the sandbox's database into
 * the sandbox's S3, scheduled by a workflow on another worker; the history says which process ran it.
 */
import { DeleteObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import type { BackupResult } from '../../src/activities/contracts';
import { sandboxEnv, sandboxVar } from '../helpers/sandbox';
import { devServerEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { REPO_ROOT } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

const RUN = Date.now().toString(36);
const PREFIX = `it-io-worker/${RUN}/`;
const ioTaskQueue = uniqueQueue('io');
let env: TestWorkflowEnvironment;
let io: ChildProcess | undefined;
let output = '';
const s3 = new S3Client({
  endpoint: sandboxVar('S3_ENDPOINT'),
  region: sandboxVar('AWS_REGION'),
  forcePathStyle: true,
  credentials: { accessKeyId: sandboxVar('AWS_ACCESS_KEY_ID'), secretAccessKey: sandboxVar('AWS_SECRET_ACCESS_KEY') },
});
let key: string | undefined;

beforeAll(async () => {
  env = await devServerEnv();
  const dir = mkdtempSync(path.join(tmpdir(), 'io-worker-'));
  const config = parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8')) as Record<
    string,
    Record<string, unknown>
  >;
  config.temporal = { ...config.temporal, ioTaskQueue };
  config.backup = { ...config.backup, prefix: PREFIX };
  const file = path.join(dir, 'deploy.config.yaml');
  writeFileSync(file, stringify(config));
  io = spawn(process.execPath, ['--import', 'tsx', 'src/io-worker.ts'], {
    cwd: REPO_ROOT,
    env: {
      ...sandboxEnv(),
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DEPLOY_CONFIG: file,
      DEPLOY_IO_METRICS_ADDRESS: 'off',
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: env.namespace ?? 'default',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  io.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  io.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await waitFor(async () => output.includes('io-worker: polling'), 60_000).catch(() => {
    throw new Error(`the I/O worker did not start:\n${output}`);
  });
}, 120_000);

afterAll(async () => {
  io?.kill('SIGTERM');
  if (key) await s3.send(new DeleteObjectCommand({ Bucket: 'ai-saas-backups', Key: key })).catch(() => undefined);
  s3.destroy();
  await env?.teardown();
}, 60_000);

test('a backup scheduled on temporal.ioTaskQueue runs in the I/O worker process: a zstd object in the bucket, checked', async () => {
  expect(output).toContain(`io-worker: polling task queue "${ioTaskQueue}"`);
  expect(output).toMatch(/buildImages, backupDatabase, restoreDatabase/);
  const workflows = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: uniqueQueue('io-workflows'),
    workflowBundle: await workflowBundle(),
  });
  const workflowId = `io-worker-${RUN}`;
  const result = (await workflows.runUntil(
    env.client.workflow.execute('ioStepWorkflow', {
      taskQueue: workflows.options.taskQueue,
      workflowId,
      args: [{ taskQueue: ioTaskQueue, activity: 'backupDatabase', args: [{ workflowId, version: '9.9.9' }] }],
    }),
  )) as BackupResult;
  key = result.key;
  expect(result.key.startsWith(PREFIX)).toBe(true);
  expect(result.key.endsWith('.dump.zst')).toBe(true);
  expect(result.reused).toBe(false);
  expect(result.sha256).toMatch(/^[0-9a-f]{64}$/);
  const head = await s3.send(new HeadObjectCommand({ Bucket: result.bucket, Key: result.key }));
  expect(head.ContentLength).toBe(result.bytes);
  expect(head.ContentType).toBe('application/zstd');
  // The history names the process that ran it: the I/O worker (its pid), not this one.
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const started = history.events?.find((e) => e.activityTaskStartedEventAttributes);
  expect(started?.activityTaskStartedEventAttributes?.identity).toMatch(new RegExp(`^${io?.pid}@`));
}, 180_000);
