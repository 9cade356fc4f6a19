/**
 * git adapter: the release checkout and its origin. Every call is an argument
 * array (no shell); credentials come from the environment (GIT_ASKPASS,
 * credential helpers, SSH agent), never from workflow input.
 */
import { ApplicationFailure } from '@temporalio/common';
import { mkdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { tagOf } from '../../domain/version';
import { checkedVersion, invalidInput, fail } from '../failures';
import { CommandError, runOk } from './process';
import type { TagRequest, TagResult } from '../contracts';

const SHA_RE = /^[0-9a-f]{40}$/;

export function assertCommit(commit: string): string {
  if (typeof commit !== 'string' || !SHA_RE.test(commit))
    throw invalidInput(`invalid commit ${JSON.stringify(commit)?.slice(0, 60)}: expected 40 hex digits`);
  return commit;
}

export class GitRepo {
  constructor(
    readonly dir: string,
    readonly remote = 'origin',
    readonly branch = 'main',
  ) {}

  async git(args: string[], timeoutMs = 120_000): Promise<string> {
    const env = { ...process.env, GIT_TERMINAL_PROMPT: '0' };
    try {
      const r = await runOk('git', ['-C', this.dir, ...args], { env, timeoutMs });
      return r.stdout;
    } catch (err) {
      if (err instanceof CommandError) {
        const why = (err.result.stderr || err.result.stdout).trim().split('\n').slice(-3).join(' | ');
        throw new Error(`git ${args[0]} failed in ${this.dir}: ${why || err.message}`, { cause: err });
      }
      throw err;
    }
  }

  /** Tags on the remote (what other deployments see). */
  async remoteTags(): Promise<string[]> {
    const out = await this.git(['ls-remote', '--tags', '--refs', this.remote]);
    return out
      .split('\n')
      .map((l) => l.split('\t')[1])
      .filter((ref): ref is string => !!ref && ref.startsWith('refs/tags/'))
      .map((ref) => ref.slice('refs/tags/'.length));
  }

  /** A fetched commit's committer time (ISO 8601, strict), or undefined when it is not here. */
  async commitTime(sha: string): Promise<string | undefined> {
    // Only a full object id: the plan's commit came from rev-parse or ls-remote, never a ref typed by a person.
    if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(sha)) return undefined;
    try {
      const out = (await this.git(['show', '-s', '--format=%cI', sha])).trim();
      return Number.isNaN(Date.parse(out)) ? undefined : new Date(out).toISOString();
    } catch {
      return undefined;
    }
  }

  /** The commit at the head of the release branch on the remote, fetched so it exists locally. */
  async remoteBranchHead(): Promise<string> {
    await this.git([
      'fetch',
      '--quiet',
      this.remote,
      `+refs/heads/${this.branch}:refs/remotes/${this.remote}/${this.branch}`,
    ]);
    return (await this.git(['rev-parse', `refs/remotes/${this.remote}/${this.branch}^{commit}`])).trim();
  }

  /** The commit a remote tag points at (peeled), or undefined when the tag is not there. */
  async remoteTagCommit(tag: string): Promise<string | undefined> {
    const out = await this.git(['ls-remote', this.remote, `refs/tags/${tag}`, `refs/tags/${tag}^{}`]);
    const lines = out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t') as [string, string]);
    if (!lines.length) return undefined;
    const peeled = lines.find(([, ref]) => ref.endsWith('^{}'));
    return (peeled ?? lines[0])[0];
  }

  async hasCommit(commit: string): Promise<boolean> {
    try {
      await this.git(['cat-file', '-e', `${assertCommit(commit)}^{commit}`]);
      return true;
    } catch {
      return false;
    }
  }

  async ensureCommit(commit: string): Promise<void> {
    if (await this.hasCommit(commit)) return;
    await this.git(['fetch', '--quiet', this.remote, commit]);
  }

  /** Subjects of the commits in (from, to], oldest first: the "changes deployed". */
  async subjectsBetween(from: string | undefined, to: string): Promise<string[]> {
    const range = from ? `${from}..${to}` : to;
    const out = await this.git(['log', '--reverse', '--no-merges', '--format=%s', range, '--']);
    return out.split('\n').filter(Boolean);
  }
}

function tagConflict(tag: string, existing: string, wanted: string): ApplicationFailure {
  return fail.TagConflict(
    `tag ${tag} already exists on origin at ${existing.slice(0, 12)}, not at the release commit ${wanted.slice(0, 12)}: choose another version or delete the tag`,
    { tag, existing, wanted },
  );
}

/**
 * Runbook step 1: an annotated tag `v<version>` ("Release v<version>") on the
 * planned commit, pushed to origin and verified there. Idempotent: the tag
 * already on origin at the same commit is a success with nothing new.
 */
export async function createReleaseTag(repo: GitRepo, req: TagRequest): Promise<TagResult> {
  const version = checkedVersion(req.version);
  const commit = assertCommit(req.commit);
  const tag = tagOf(version);
  const existing = await repo.remoteTagCommit(tag);
  if (existing) {
    if (existing === commit) return { tag, commit, created: false };
    throw tagConflict(tag, existing, commit);
  }
  await repo.ensureCommit(commit);
  // A local tag left by an earlier attempt is replaced: origin is the record.
  await repo.git([
    '-c',
    'tag.gpgsign=false',
    'tag',
    '--force',
    '--annotate',
    tag,
    '--message',
    `Release ${tag}`,
    commit,
  ]);
  try {
    await repo.git(['push', '--quiet', repo.remote, `refs/tags/${tag}:refs/tags/${tag}`]);
  } catch (err) {
    // Someone (or our own earlier attempt) pushed it meanwhile: decide by where it points.
    const now = await repo.remoteTagCommit(tag);
    if (now === commit) return { tag, commit, created: false };
    if (now) throw tagConflict(tag, now, commit);
    throw err;
  }
  const pushed = await repo.remoteTagCommit(tag);
  if (pushed !== commit) throw new Error(`tag ${tag} was pushed but origin shows ${pushed ?? 'nothing'}; will retry`);
  return { tag, commit, created: true };
}

/**
 * Read-only copies of the release source at a commit (git worktrees), so that
 * checks, builds and migrations use exactly the planned commit whatever the
 * checkout's own state. Keyed by commit and reused across activities.
 */
export class ReleaseSource {
  private readonly pending = new Map<string, Promise<string>>();

  constructor(
    readonly repo: GitRepo,
    readonly root = path.join(tmpdir(), 'deploy-pipelines-src'),
  ) {}

  at(commit: string): Promise<string> {
    assertCommit(commit);
    let p = this.pending.get(commit);
    if (!p) {
      p = this.create(commit);
      this.pending.set(commit, p);
      p.catch(() => this.pending.delete(commit));
    }
    return p;
  }

  private async create(commit: string): Promise<string> {
    const dir = path.join(this.root, commit);
    const ready = await stat(path.join(dir, '.git')).then(
      () => true,
      () => false,
    );
    if (ready) {
      const head = (await runOk('git', ['-C', dir, 'rev-parse', 'HEAD'])).stdout.trim();
      if (head === commit) return dir;
    }
    await mkdir(this.root, { recursive: true });
    await rm(dir, { recursive: true, force: true });
    await this.repo.git(['worktree', 'prune']);
    await this.repo.ensureCommit(commit);
    await this.repo.git(['worktree', 'add', '--detach', '--force', dir, commit]);
    return dir;
  }
}
