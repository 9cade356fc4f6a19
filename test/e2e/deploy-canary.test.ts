/**
 * A canary release of v1.0.1 end to end on the dev server and the sandbox:
 * tag, six images, backup, migration, rolling update of five services, a
 * canary of api-gateway through 5/25/50/100 with short soaks, verification.
 */
import { execFileSync } from 'node:child_process';
import { Client } from 'pg';
import { deployWorkflow } from '../../src/workflows/deploy';
import { recordHistory } from '../helpers/histories';
import { sandboxVar } from '../helpers/sandbox';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/activities/clients/s3';
import { changelogMarker, statusLine, summaryKey } from '../../src/domain/summary';
import { deploymentImages, e2eConfig, sandboxCli, startE2E, virtualServiceWeights, type E2E } from '../helpers/e2e';

let e2e: E2E;
beforeAll(async () => {
  await sandboxCli('reset');
  // The runbook's "Update Change Log" too: an entry committed to the release repository and pushed.
  e2e = await startE2E({ config: (c) => ({ ...c, summary: { ...c.summary, changelog: true } }) });
}, 180_000);
afterAll(async () => {
  await e2e?.stop();
  // Other suites start from v1.0.0 everywhere.
  await sandboxCli('reset');
}, 180_000);

test('a canary to v1.0.1 passes and every side effect is there once', async () => {
  const workflowId = `deploy-production-1.0.1-${Date.now()}`;
  const result = await e2e.env.client.workflow.execute(deployWorkflow, {
    taskQueue: e2e.taskQueue,
    workflowId,
    args: [{ version: '1.0.1', requestedBy: 'e2e', canary: { soak: '6s', analysisInterval: '3s' } }],
  });
  if (result.outcome !== 'succeeded') console.error(JSON.stringify(result.status, null, 2));
  expect(result.outcome).toBe('succeeded');
  // One tag on origin, on main's head.
  const tags = execFileSync('git', ['ls-remote', '--tags', '--refs', sandboxVar('GIT_REMOTE')], { encoding: 'utf8' });
  expect(tags.match(/refs\/tags\/v1\.0\.1$/gm)).toHaveLength(1);
  // Every Deployment runs its 1.0.1 image, pinned by digest; traffic all on stable.
  const images = await deploymentImages();
  for (const s of ['auth-service', 'chat-service', 'billing-service', 'analytics-service', 'api-gateway', 'frontend']) {
    expect(images[s]).toMatch(new RegExp(`^127\\.0\\.0\\.1:\\d+/ai-saas-${s}@sha256:[0-9a-f]{64}$`));
  }
  expect(images['api-gateway-canary']).toBeUndefined();
  expect(await virtualServiceWeights()).toEqual({ stable: 100, canary: 0 });
  // The migration ran once.
  const db = new Client({ connectionString: sandboxVar('DATABASE_URL') });
  await db.connect();
  try {
    const m = await db.query<{ filename: string }>('SELECT filename FROM schema_migrations ORDER BY filename');
    expect(m.rows.map((r) => r.filename)).toEqual(['0001_baseline.sql', '0002_add_email_verified_at_index.sql']);
  } finally {
    await db.end();
  }
  expect(result.status.steps.filter((s) => s.state === 'failed')).toEqual([]);
  expect(result.summary).toContain('v1.0.1');
  // Issue 16 item 2: the summary in the bucket says the deployment succeeded, and the changelog entry is on origin once.
  const config = e2eConfig();
  const key = summaryKey(config.summary.prefix, config.project, '1.0.1', workflowId);
  const stored = await createS3Client(config.backup, process.env).send(
    new GetObjectCommand({ Bucket: config.backup.bucket, Key: key }),
  );
  const text = await stored.Body!.transformToString();
  expect(text).toContain(statusLine('succeeded'));
  expect(text).not.toContain('In progress');
  const git = (...args: string[]) =>
    execFileSync('git', ['--git-dir', sandboxVar('GIT_REMOTE'), ...args], { encoding: 'utf8' });
  const changelog = git('show', 'main:CHANGELOG.md');
  expect(changelog.split(changelogMarker(config.project, '1.0.1'))).toHaveLength(2);
  expect(git('log', '--format=%s', 'main').match(/^chore: update changelog for v1\.0\.1$/gm)).toHaveLength(1);
  await recordHistory(e2e.env.client, workflowId, 'deployWorkflow--canary-succeeded');
  await recordHistory(e2e.env.client, `${workflowId}-canary`, 'canaryWorkflow--promoted');
}, 600_000);
