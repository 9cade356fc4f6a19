/**
 * Post-deployment documentation (runbook "Create Deployment Summary" and
 * "Update Change Log"): what changed since the previous tag, read from the
 * release checkout with git argument arrays; the summary stored next to the
 * backups; optionally a changelog entry committed and pushed. The text itself
 * comes from the pure buildSummary (domain/summary.ts); writeSummary takes the
 * workflow's plan, status, applied migrations and backup key and gathers the
 * rest (commits since plan.previousVersion, figures of the last analysis,
 * active database connections) itself. A changelog entry is only written for
 * a deployment that succeeded.
 *
 * Idempotent: the stored object has a key made of project, version and
 * workflow id, so a retry overwrites it with the same text; the changelog
 * entry carries a marker for its version, so a re-run finds it on the remote
 * and neither adds a second entry nor makes a second commit.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { DeployConfig } from '../domain/config';
import {
  buildSummary,
  changelogEntry,
  changelogMarker,
  insertChangelogEntry,
  monitoringFromAnalysis,
  summaryKey,
  versionLabel,
  type ChangeEntry,
  type MonitoringFigures,
  type SummaryInput,
} from '../domain/summary';
import type { DeploymentStatus } from '../domain/status';
import { redact, secretValues } from '../domain/verification';
import { run, runOk } from './clients/process';
import { createS3Client } from './clients/s3';
import type { SummaryRequest } from './contracts';
import { countDatabaseConnections } from './clients/postgres';
import { messageOf, fail } from './failures';
import { activityLogger, type Logger } from './runtime';
import type { ReleaseChanges, ReleaseChangesRequest, SummaryReport } from './contracts';

export interface ReportDeps {
  config: DeployConfig;
  env: Record<string, string | undefined>;
  /** Built from config.backup and the AWS_* environment when absent. */
  s3?: S3Client;
  /** Active database connections for the summary; defaults to counting them in pg_stat_activity. */
  activeConnections?: () => Promise<number>;
  log?: Logger;
}

const GIT_ENV = (): NodeJS.ProcessEnv => ({ ...process.env, GIT_TERMINAL_PROMPT: '0' });

export function reportActivities(deps: ReportDeps) {
  const { config, env } = deps;
  const log = deps.log ?? activityLogger();
  const checkout = config.git.checkout;
  const remote = config.git.remote;
  const branch = config.git.branch;
  let s3 = deps.s3;

  const git = async (args: string[], cwd = checkout): Promise<string> =>
    (await runOk('git', ['-C', cwd, ...args], { env: GIT_ENV(), timeoutMs: 60_000 })).stdout;
  const gitMaybe = async (args: string[], cwd = checkout): Promise<string | undefined> => {
    const r = await run('git', ['-C', cwd, ...args], { env: GIT_ENV(), timeoutMs: 60_000 });
    return r.code === 0 ? r.stdout : undefined;
  };
  const invalid = (message: string) => fail.InvalidInput(message);
  /** Refs come from workflow input: never let one be read as an option. */
  const checkRef = (ref: string, what: string): string => {
    if (!/^[A-Za-z0-9][A-Za-z0-9._/@{}^~-]{0,250}$/.test(ref) || ref.includes('..'))
      throw invalid(`${what} ${JSON.stringify(ref)} is not a git ref`);
    return ref;
  };

  async function releaseChanges(req: ReleaseChangesRequest): Promise<ReleaseChanges> {
    const tag = versionLabel(checkRef(req.version, 'version'));
    const previousTag = req.previousTag !== undefined ? checkRef(req.previousTag, 'previousTag') : undefined;
    const ref =
      req.ref !== undefined
        ? checkRef(req.ref, 'ref')
        : (await gitMaybe(['rev-parse', '--verify', '--quiet', `refs/tags/${tag}^{commit}`])) !== undefined
          ? tag
          : 'HEAD';
    const resolve = (r: string) => gitMaybe(['rev-parse', '--verify', '--quiet', `${r}^{commit}`]);
    let resolved = await resolve(ref);
    if (resolved === undefined || (previousTag !== undefined && (await resolve(previousTag)) === undefined)) {
      // The release commit or the previous tag may only be on the remote yet.
      await git(['fetch', '--quiet', '--tags', remote]);
      resolved = await resolve(ref);
    }
    if (resolved === undefined) throw invalid(`${ref} is not a commit of the release checkout (nor of ${remote})`);
    const toSha = resolved.trim();
    let from: string | null;
    if (previousTag !== undefined) from = previousTag;
    else {
      // The newest release tag strictly before what is released (HEAD^ when HEAD itself is tagged).
      const described = await gitMaybe(['describe', '--tags', '--abbrev=0', '--match', 'v[0-9]*', `${toSha}^`]);
      from = described?.trim() || null;
    }
    const range = from ? [`${from}..${toSha}`] : [toSha];
    const out = await git(['log', '--no-merges', '--reverse', '--format=%H%x1f%s', ...range, '--']);
    const commits = out
      .split('\n')
      .filter((l) => l.includes('\x1f'))
      .map((l) => {
        const [sha, subject] = l.split('\x1f');
        return { sha, subject };
      });
    let migrations: string[] = [];
    const m = config.database.migrations;
    if (m.mode === 'builtin') {
      const added = from
        ? await git(['diff', '--name-only', '--diff-filter=A', from, toSha, '--', m.directory])
        : await git(['ls-tree', '-r', '--name-only', toSha, '--', m.directory]);
      migrations = added
        .split('\n')
        .map((f) => f.trim())
        .filter((f) => f.endsWith('.sql'))
        .map((f) => path.posix.basename(f))
        .sort();
    }
    log.info('release changes', { from, to: ref, commits: commits.length, migrations: migrations.length });
    return { from, to: ref, toSha, commits, migrations };
  }

  function changelogPath(): string {
    const file = config.summary.changelogFile;
    if (path.isAbsolute(file) || file.split(/[\\/]/).includes('..'))
      throw invalid(`summary.changelogFile must be a path inside the repository, got ${JSON.stringify(file)}`);
    return file;
  }

  /** Commits the entry on top of the remote branch from a temporary worktree, so the release checkout is left as it is. */
  async function commitChangelog(input: SummaryInput): Promise<NonNullable<SummaryReport['changelog']>> {
    const file = changelogPath();
    const { project } = input;
    const version = input.status.version;
    const marker = changelogMarker(project, version);
    const base = `refs/remotes/${remote}/${branch}`;
    await git(['fetch', '--quiet', remote, `+refs/heads/${branch}:${base}`]);
    const current = (await gitMaybe(['show', `${base}:${file}`])) ?? '';
    if (current.includes(marker)) {
      const commit = (await git(['log', '-1', '--format=%H', `-S${marker}`, base, '--', file])).trim() || null;
      log.info('changelog already has the entry', { version, commit });
      return { status: 'already-present', commit, file };
    }
    const dir = await mkdtemp(path.join(tmpdir(), 'changelog-'));
    const worktree = path.join(dir, 'wt');
    await git(['worktree', 'add', '--quiet', '--detach', worktree, base]);
    try {
      const target = path.join(worktree, file);
      const existing = await readFile(target, 'utf8').catch(() => '# Changelog\n');
      const next = insertChangelogEntry(existing, changelogEntry(input), project, version);
      await writeFile(target, next.text);
      const { name, email } = config.summary.commitAuthor;
      await git(['add', '--', file], worktree);
      await git(
        [
          '-c',
          `user.name=${name}`,
          '-c',
          `user.email=${email}`,
          '-c',
          'commit.gpgsign=false',
          'commit',
          '--quiet',
          '--no-verify',
          '-m',
          `chore: update changelog for ${versionLabel(version)}`,
        ],
        worktree,
      );
      const commit = (await git(['rev-parse', 'HEAD'], worktree)).trim();
      // Not forced: when someone pushed meanwhile this fails, and the retry starts again from the new tip.
      await git(['push', '--quiet', remote, `HEAD:refs/heads/${branch}`], worktree);
      log.info('changelog committed and pushed', { version, commit, branch });
      return { status: 'committed', commit, file };
    } finally {
      await git(['worktree', 'remove', '--force', worktree]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
      await git(['worktree', 'prune']).catch(() => undefined);
    }
  }

  /** Error rate and P95 of the last analysis (stable track when it was measured), and the connections now. */
  async function monitoring(status: DeploymentStatus): Promise<MonitoringFigures> {
    const run = status.lastAnalysis;
    const track = run?.measurements.some((m) => m.track === 'stable' && m.value !== null) ? 'stable' : 'canary';
    const figures = monitoringFromAnalysis(run, {
      track,
      errorRateMetric: config.summary.errorRateMetric,
      p95Metric: config.summary.p95Metric,
    });
    let activeConnections: number | null = null;
    try {
      const url = env[config.database.urlEnv];
      activeConnections = deps.activeConnections
        ? await deps.activeConnections()
        : url
          ? await countDatabaseConnections(url, config.database.name, config.verification.timeout)
          : null;
    } catch (err) {
      log.warn('summary: active connections not counted', { error: secretsRedacted(messageOf(err)) });
    }
    return { ...figures, activeConnections };
  }

  const secrets = () =>
    secretValues(env, [
      config.database.urlEnv,
      config.redis.urlEnv,
      config.notifications.slackWebhookEnv,
      config.notifications.webhookEnv,
      config.notifications.teamsWebhookEnv,
      config.notifications.email?.passwordEnv,
      config.registry.passwordEnv,
    ]);
  const secretsRedacted = (text: string) => redact(text, secrets());

  /**
   * The runbook's deployment summary from the workflow's plan and status:
   * commits since the previous tag read here, figures from the last analysis
   * and the database, then stored in the backup bucket (summary.store) and,
   * for a successful deployment, added to the changelog (summary.changelog).
   */
  async function writeSummary(req: SummaryRequest): Promise<SummaryReport> {
    const { plan } = req;
    const status = req.status.requestedBy ? req.status : { ...req.status, requestedBy: plan.requestedBy };
    const issues: string[] = [];
    let changes: ChangeEntry[] = [];
    try {
      const r = await releaseChanges({
        version: plan.version,
        ref: plan.commit,
        ...(plan.previousVersion ? { previousTag: versionLabel(plan.previousVersion) } : {}),
      });
      changes = r.commits;
    } catch (err) {
      const why = secretsRedacted(messageOf(err));
      issues.push(`Changes could not be read from git: ${why}`);
      log.warn('summary: changes not read', { error: why });
    }
    const input: SummaryInput = {
      project: plan.project,
      status,
      ...(plan.previousVersion ? { previousVersion: plan.previousVersion } : {}),
      changes,
      migrations: { applied: req.migrations },
      monitoring: await monitoring(status),
      ...(req.backupKey ? { backup: `s3://${config.backup.bucket}/${req.backupKey}` } : {}),
      issues,
      secrets: secrets(),
    };
    const summary = buildSummary(input);
    const result: SummaryReport = { title: summary.title, markdown: summary.markdown };
    if (config.summary.store) {
      const key = summaryKey(config.summary.prefix, input.project, status.version, status.workflowId);
      s3 ??= createS3Client(config.backup, env);
      await s3.send(
        new PutObjectCommand({
          Bucket: config.backup.bucket,
          Key: key,
          Body: summary.markdown,
          ContentType: 'text/markdown; charset=utf-8',
        }),
      );
      result.stored = { bucket: config.backup.bucket, key };
      result.key = key;
      log.info('deployment summary stored', { bucket: config.backup.bucket, key });
    }
    // Only a release that went live belongs in the changelog.
    if (config.summary.changelog && status.phase === 'succeeded' && !plan.dryRun) {
      const changelog = await commitChangelog(input);
      result.changelog = changelog;
      if (changelog.commit) result.changelogCommit = changelog.commit;
    }
    return result;
  }

  return { releaseChanges, writeSummary };
}

export type ReportActivities = ReturnType<typeof reportActivities>;
