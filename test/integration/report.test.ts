/**
 * The deployment summary for a real deployment: commits and migrations read
 * from the sandbox's release checkout (v1.0.0 and the three commits after
 * it), monitoring figures from Prometheus and PostgreSQL, stored in the
 * backup bucket; the changelog entry committed and pushed to a throwaway copy
 * of origin (others rely on the real origin's main), once per version.
 */
import { DeleteObjectCommand, GetObjectCommand } from '@aws-sdk/client-s3';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Activities, SummaryRequest } from '../../src/activities/contracts';
import { createS3Client } from '../../src/activities/clients/s3';
import { reportActivities } from '../../src/activities/report';
import type { Logger } from '../../src/activities/runtime';
import { verifyActivities } from '../../src/activities/verify';
import type { DeployConfig } from '../../src/domain/config';
import type { DeploymentStatus } from '../../src/domain/status';
import type { DeployPlan } from '../../src/domain/plan';
import { loadConfig } from '../../src/load-config';
import { sandboxEnv, sandboxVar } from '../helpers/sandbox';
import { testPlan } from '../helpers/plan';
import { REPO_ROOT } from '../helpers/tools';

const SUBJECTS = ['Fix auth token validation', 'Add response caching', 'Add email_verified_at index'];
const MIGRATION = '0002_add_email_verified_at_index.sql';

const quiet: Logger = { info: () => undefined, warn: () => undefined };
const env = () => sandboxEnv();
const baseConfig = (): DeployConfig => loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), env());
const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-C', cwd, ...args], {
    encoding: 'utf8',
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0' },
  }).trim();
const secrets = () => [
  sandboxVar('SMOKE_PASSWORD'),
  new URL(sandboxVar('DATABASE_URL')).password,
  sandboxVar('AWS_SECRET_ACCESS_KEY'),
];

const at = (offsetMin: number) => new Date(Date.parse('2025-11-15T10:00:00Z') + offsetMin * 60_000).toISOString();

/** The plan of 1.0.1 as resolvePlan makes it, at the release commit `commit`. */
function plan(workflowId: string, commit: string): DeployPlan {
  return { ...testPlan({ version: '1.0.1' }, workflowId, ['v1.0.0']), commit, requestedBy: 'report-test' };
}

/** The status a canary deployment of 1.0.1 ends with, as the deploy workflow would pass it. */
function deploymentStatus(workflowId: string): DeploymentStatus {
  return {
    workflow: 'deploy',
    workflowId,
    version: '1.0.1',
    environment: 'production',
    strategy: 'canary',
    requestedBy: 'report-test',
    phase: 'succeeded',
    startedAt: at(0),
    endedAt: at(16),
    steps: [
      { name: 'resolve plan', state: 'succeeded', startedAt: at(0), endedAt: at(0.1) },
      { name: 'build images', state: 'succeeded', startedAt: at(0.2), endedAt: at(4), attempts: 2 },
      { name: 'push images', state: 'succeeded', startedAt: at(4), endedAt: at(5) },
      { name: 'backup database', state: 'succeeded', startedAt: at(5), endedAt: at(6) },
      { name: 'migrate database', state: 'succeeded', startedAt: at(6), endedAt: at(6.5) },
      { name: 'canary', state: 'succeeded', startedAt: at(6.5), endedAt: at(16) },
    ],
    approvals: [],
    aborts: [],
    pauses: [],
    ignoredSignals: [
      { signal: 'promote', by: 'bob', at: at(3), ignoredBecause: 'no soak is running (phase building)' },
    ],
    notificationFailures: 0,
    children: [],
  };
}

describe('releaseChanges (read-only on the sandbox checkout)', () => {
  test('1.0.1: the three commits after v1.0.0 and the migration they add', async () => {
    const { releaseChanges } = reportActivities({ config: baseConfig(), env: env(), log: quiet });
    const r = await releaseChanges({ version: '1.0.1' });
    expect(r.from).toBe('v1.0.0');
    expect(['HEAD', 'v1.0.1']).toContain(r.to);
    expect(r.commits.map((c) => c.subject)).toEqual(SUBJECTS);
    expect(r.commits.every((c) => /^[0-9a-f]{40}$/.test(c.sha))).toBe(true);
    expect(r.migrations).toEqual([MIGRATION]);
  });

  test('1.0.0 is the first release: everything up to its tag, the baseline migration', async () => {
    const { releaseChanges } = reportActivities({ config: baseConfig(), env: env(), log: quiet });
    const r = await releaseChanges({ version: '1.0.0' });
    expect(r).toMatchObject({ from: null, to: 'v1.0.0', migrations: ['0001_baseline.sql'] });
    expect(r.commits.map((c) => c.subject)).toEqual(['ai-saas platform v1.0.0']);
  });

  test('refs from input cannot be options', async () => {
    const { releaseChanges } = reportActivities({ config: baseConfig(), env: env(), log: quiet });
    await expect(releaseChanges({ version: '1.0.1', previousTag: '--output=/tmp/x' })).rejects.toMatchObject({
      type: 'InvalidInput',
      nonRetryable: true,
    });
    await expect(releaseChanges({ version: '1.0.1', ref: 'main..HEAD' })).rejects.toMatchObject({
      type: 'InvalidInput',
    });
  });
});

test('the summary of a real deployment: real commits, migrations and figures, stored next to the backups', async () => {
  const config = baseConfig();
  const workflowId = `report-test-${Date.now()}`;
  const s3 = createS3Client(config.backup, env());
  const report = reportActivities({ config, env: env(), s3, log: quiet });
  // The workflows' contract.
  const typed: Pick<Activities, 'writeSummary'> = report;
  void typed;
  const verify = verifyActivities({ config, env: env(), log: quiet });
  const status = deploymentStatus(workflowId);
  status.lastAnalysis = await verify.analyzeCanary({
    workflowId,
    namespace: 'ai-saas',
    version: '1.0.1',
    weight: 100,
    tracks: ['stable'],
    window: '20s',
  });
  const p = plan(workflowId, git(sandboxVar('GIT_CHECKOUT'), 'rev-parse', 'HEAD'));
  expect(p.previousVersion).toBe('1.0.0');
  const req: SummaryRequest = {
    plan: p,
    status,
    migrations: [MIGRATION],
    backupKey: `postgres/ai_saas_prod_${workflowId}.dump`,
  };
  const key = `summaries/ai-saas_1.0.1_${workflowId}.md`;
  try {
    const r = await report.writeSummary(req);
    expect(r.key).toBe(key);
    expect(r.stored).toEqual({ bucket: 'ai-saas-backups', key });
    expect(r.changelog).toBeUndefined();
    expect(r.changelogCommit).toBeUndefined();
    const md = r.markdown;
    expect(md).toContain('# Deployment Summary - v1.0.1');
    expect(md).toContain('**Deployed By**: report-test');
    expect(md).toContain('**Status**: ✓ Successful');
    expect(md).toContain(`## Changes Deployed\n${SUBJECTS.map((s) => `- ${s}`).join('\n')}\n`);
    expect(md).toContain(`## Database Migrations\n- ${MIGRATION}\n- No data migrations`);
    expect(md).toContain('- Build: 4 minutes 48 seconds');
    expect(md).toContain('- Total: 16 minutes');
    expect(md).toContain('Step "build images" needed 2 attempts');
    expect(md).toContain('Signal promote from bob ignored: no soak is running (phase building)');
    expect(md).toContain(
      `## Rollback Status\nReady (previous version v1.0.0 available)\nDatabase backup: s3://ai-saas-backups/postgres/ai_saas_prod_${workflowId}.dump`,
    );
    const errorRate = status.lastAnalysis.measurements.find((m) => m.metric === 'error-rate')?.value;
    expect(md).toMatch(
      errorRate === null || errorRate === undefined
        ? /- Error rate: n\/a \(no data\)\n/
        : /- Error rate: \d+(\.\d+)?%\n/,
    );
    expect(md).toMatch(/- P95 latency: (\d+ms|n\/a \(no data\))/);
    expect(md).toMatch(/- Active connections: \d+\n/);
    for (const s of secrets()) expect(md).not.toContain(s);

    const got = await s3.send(new GetObjectCommand({ Bucket: 'ai-saas-backups', Key: key }));
    expect(got.ContentType).toMatch(/^text\/markdown/);
    expect(await got.Body!.transformToString()).toBe(md);
    // A retry stores the same summary under the same key.
    expect((await report.writeSummary(req)).key).toBe(key);
  } finally {
    await s3.send(new DeleteObjectCommand({ Bucket: 'ai-saas-backups', Key: key })).catch(() => undefined);
    s3.destroy();
  }
}, 60_000);

describe('changelog (on a throwaway copy of origin)', () => {
  let dir: string;
  let origin: string;
  let checkout: string;
  let realOriginMain: string;

  beforeAll(() => {
    realOriginMain = git(sandboxVar('GIT_REMOTE'), 'rev-parse', 'refs/heads/main');
    dir = mkdtempSync(path.join(tmpdir(), 'report-changelog-'));
    origin = path.join(dir, 'origin.git');
    checkout = path.join(dir, 'checkout');
    execFileSync('git', ['clone', '--quiet', '--bare', sandboxVar('GIT_REMOTE'), origin]);
    execFileSync('git', ['clone', '--quiet', origin, checkout]);
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    // The real origin is untouched.
    expect(git(sandboxVar('GIT_REMOTE'), 'rev-parse', 'refs/heads/main')).toBe(realOriginMain);
  });

  const setup = () => {
    const config = baseConfig();
    config.git = { ...config.git, checkout };
    config.summary = { ...config.summary, store: false, changelog: true };
    return { config, report: reportActivities({ config, env: env(), log: quiet, activeConnections: async () => 42 }) };
  };

  test('an entry is committed and pushed once; a re-run adds no entry and no commit', async () => {
    const { report } = setup();
    const workflowId = 'deploy-ai-saas-1.0.1-changelog-test';
    const req: SummaryRequest = {
      plan: plan(workflowId, git(checkout, 'rev-parse', 'HEAD')),
      status: deploymentStatus(workflowId),
      migrations: [MIGRATION],
    };
    const headBefore = git(checkout, 'rev-parse', 'HEAD');
    const originBefore = git(origin, 'rev-parse', 'refs/heads/main');

    const first = await report.writeSummary(req);
    expect(first.key).toBeUndefined();
    expect(first.markdown).toContain('- Active connections: 42');
    expect(first.changelog).toMatchObject({ status: 'committed', file: 'CHANGELOG.md' });
    const originAfter = git(origin, 'rev-parse', 'refs/heads/main');
    expect(first.changelogCommit).toBe(originAfter);
    expect(git(origin, 'rev-parse', `${originAfter}^`)).toBe(originBefore);
    expect(git(origin, 'log', '-1', '--format=%s%n%an <%ae>', originAfter)).toBe(
      'chore: update changelog for v1.0.1\ndeploy-pipelines <deploy-pipelines@localhost>',
    );
    expect(git(origin, 'diff', '--name-only', `${originAfter}^`, originAfter)).toBe('CHANGELOG.md');
    const changelog = git(origin, 'show', `${originAfter}:CHANGELOG.md`);
    expect(changelog).toMatch(
      /^# Changelog\n\n## v1\.0\.1 - 2025-11-15\n<!-- deploy-pipelines: ai-saas v1\.0\.1 -->\n\n- Fix auth token validation\n- Add response caching\n- Add email_verified_at index\n/,
    );
    expect(changelog).toContain('Migrations: 0002_add_email_verified_at_index.sql');
    expect(changelog).toContain('## v1.0.0');

    const second = await report.writeSummary({ ...req, status: { ...req.status, workflowId: `${workflowId}-retry` } });
    expect(second.changelog).toEqual({ status: 'already-present', commit: originAfter, file: 'CHANGELOG.md' });
    expect(git(origin, 'rev-parse', 'refs/heads/main')).toBe(originAfter);
    expect(git(origin, 'show', `${originAfter}:CHANGELOG.md`).split('## v1.0.1').length).toBe(2);

    // The release checkout itself is left as it was: same HEAD, clean tree, no stray worktrees.
    expect(git(checkout, 'rev-parse', 'HEAD')).toBe(headBefore);
    expect(git(checkout, 'status', '--porcelain')).toBe('');
    expect(git(checkout, 'worktree', 'list', '--porcelain').match(/^worktree /gm)).toHaveLength(1);
    expect(readFileSync(path.join(checkout, 'CHANGELOG.md'), 'utf8')).not.toContain('v1.0.1');
  }, 60_000);

  test('a deployment that did not go live gets a summary but no changelog entry', async () => {
    const { report } = setup();
    const workflowId = 'deploy-ai-saas-1.0.2-rolled-back';
    const status = {
      ...deploymentStatus(workflowId),
      version: '1.0.2',
      phase: 'rolled-back' as const,
      error: 'analysis failed',
    };
    const before = git(origin, 'rev-parse', 'refs/heads/main');
    const r = await report.writeSummary({
      plan: { ...plan(workflowId, git(checkout, 'rev-parse', 'HEAD')), version: '1.0.2' },
      status,
      migrations: [],
    });
    expect(r.changelog).toBeUndefined();
    expect(r.markdown).toContain('**Status**: ↩ Rolled back');
    expect(r.markdown).toContain('## Rollback Status\nRolled back to v1.0.0');
    expect(git(origin, 'rev-parse', 'refs/heads/main')).toBe(before);
  }, 60_000);

  test('a commit git cannot find is an issue in the summary, not a lost summary', async () => {
    const { report } = setup();
    const workflowId = 'deploy-ai-saas-1.0.3-unknown-commit';
    const r = await report.writeSummary({
      plan: { ...plan(workflowId, 'deadbeef'.repeat(5)), version: '1.0.3' },
      status: { ...deploymentStatus(workflowId), version: '1.0.3', phase: 'failed' },
      migrations: [],
    });
    expect(r.markdown).toContain('- No changes since the previous release');
    expect(r.markdown).toMatch(
      /- Changes could not be read from git: deadbeef(deadbeef){4} is not a commit of the release checkout/,
    );
  }, 60_000);
});
