/** The release tag against a real git origin (a private copy of the sandbox's platform repository). */
import { ApplicationFailure } from '@temporalio/common';
import { createReleaseTag, GitRepo, ReleaseSource } from '../../src/activities/clients/git';
import { git, platformRepoCopy, type RepoFixture } from '../helpers/git-fixture';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

let fx: RepoFixture;
let repo: GitRepo;
beforeEach(() => {
  fx = platformRepoCopy();
  repo = new GitRepo(fx.checkout, 'origin', 'main');
});

test('tags the planned commit once; a re-run creates nothing new', async () => {
  const head = await repo.remoteBranchHead();
  expect(head).toBe(fx.head);
  const first = await createReleaseTag(repo, { workflowId: 'wf-1', version: '1.0.1', commit: head });
  expect(first).toEqual({ tag: 'v1.0.1', commit: head, created: true });
  const again = await createReleaseTag(repo, { workflowId: 'wf-1', version: 'v1.0.1', commit: head });
  expect(again).toEqual({ tag: 'v1.0.1', commit: head, created: false });
  const remote = git(fx.checkout, 'ls-remote', '--tags', 'origin').trim().split('\n');
  expect(remote.filter((l) => l.endsWith('refs/tags/v1.0.1'))).toHaveLength(1);
  // Annotated, with the runbook's message, on the planned commit.
  expect(git(fx.origin, 'cat-file', '-t', 'v1.0.1').trim()).toBe('tag');
  expect(git(fx.origin, 'tag', '-l', '--format=%(contents:subject)', 'v1.0.1').trim()).toBe('Release v1.0.1');
  expect(git(fx.origin, 'rev-parse', 'v1.0.1^{commit}').trim()).toBe(head);
});

test("a commit's committer time, for lead time; nothing for what is not a full commit id here", async () => {
  const head = await repo.remoteBranchHead();
  const expected = new Date(git(fx.checkout, 'show', '-s', '--format=%cI', head).trim()).toISOString();
  expect(await repo.commitTime(head)).toBe(expected);
  expect(await repo.commitTime('0'.repeat(40))).toBeUndefined();
  expect(await repo.commitTime('HEAD')).toBeUndefined();
  expect(await repo.commitTime('--output=/tmp/x')).toBeUndefined();
});

test('a tag already on origin at another commit is a TagConflict naming both commits', async () => {
  const other = git(fx.checkout, 'rev-parse', 'HEAD~1').trim();
  git(fx.checkout, 'tag', '-a', 'v1.0.1', '-m', 'someone else', other);
  git(fx.checkout, 'push', '-q', 'origin', 'v1.0.1');
  git(fx.checkout, 'tag', '-d', 'v1.0.1');
  const err = await createReleaseTag(repo, { workflowId: 'wf-2', version: '1.0.1', commit: fx.head }).catch(
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect(err).toMatchObject({ type: 'TagConflict', nonRetryable: true });
  expect((err as Error).message).toContain(other.slice(0, 12));
  expect((err as Error).message).toContain(fx.head.slice(0, 12));
});

test.each(['1.0', '01.0.1', '1.0.1; rm -rf /', '../x', '', 'x'.repeat(300), '١.٠.١', '$(touch /tmp/pwned)'])(
  'refuses version %j before touching git',
  async (version) => {
    const err = await createReleaseTag(repo, { workflowId: 'wf-3', version, commit: fx.head }).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(git(fx.checkout, 'ls-remote', '--tags', '--refs', 'origin').trim().split('\n')).toEqual([
      expect.stringMatching(/refs\/tags\/v1.0.0$/),
    ]);
    expect(existsSync('/tmp/pwned')).toBe(false);
  },
);

test('a bad commit is refused', async () => {
  await expect(
    createReleaseTag(repo, { workflowId: 'wf-4', version: '1.0.1', commit: 'HEAD; echo' }),
  ).rejects.toMatchObject({ type: 'InvalidInput' });
});

test('release source: a worktree at exactly the planned commit, reused', async () => {
  const source = new ReleaseSource(repo, path.join(fx.checkout, '..', 'src'));
  const older = git(fx.checkout, 'rev-parse', 'v1.0.0^{commit}').trim();
  const dir = await source.at(older);
  expect(git(dir, 'rev-parse', 'HEAD').trim()).toBe(older);
  expect(existsSync(path.join(dir, 'migrations', '0002_add_email_verified_at_index.sql'))).toBe(false);
  expect(await source.at(older)).toBe(dir);
  const head = await source.at(fx.head);
  expect(readFileSync(path.join(head, 'migrations', '0002_add_email_verified_at_index.sql'), 'utf8')).toContain(
    'CREATE INDEX',
  );
});

test('commit subjects since the previous tag', async () => {
  expect(await repo.subjectsBetween('v1.0.0', fx.head)).toEqual([
    'Fix auth token validation',
    'Add response caching',
    'Add email_verified_at index',
  ]);
});
