/** Pre-deployment checks run for real in the release source at the planned commit. */
import * as path from 'node:path';
import { checksActivities, type CheckSpec } from '../../src/activities/checks';
import { GitRepo, ReleaseSource } from '../../src/activities/clients/git';
import { platformRepoCopy, type RepoFixture } from '../helpers/git-fixture';

let fx: RepoFixture;
let source: ReleaseSource;
beforeAll(() => {
  fx = platformRepoCopy();
  source = new ReleaseSource(new GitRepo(fx.checkout), path.join(fx.checkout, '..', 'src'));
});

const acts = (checks: CheckSpec[], beats: unknown[] = []) =>
  checksActivities({ checks, sourceAt: (c) => source.at(c), heartbeat: (d) => beats.push(d) });

test("the runbook's npm checks pass in the platform's source", async () => {
  const beats: unknown[] = [];
  const r = await acts(
    ['test', 'type-check', 'lint', 'build'].map((s) => ({ name: s, command: ['npm', 'run', s], timeoutMs: 60_000 })),
    beats,
  ).runPreDeploymentChecks({ workflowId: 'wf', commit: fx.head });
  expect(r.checks.map((c) => c.name)).toEqual(['test', 'type-check', 'lint', 'build']);
  expect(beats).toContainEqual({ done: ['test'], running: 'type-check' });
}, 60_000);

test('a failing check stops with the command and the tail of its output', async () => {
  const err = await acts([
    { name: 'ok', command: ['node', '-e', 'console.log("fine")'], timeoutMs: 10_000 },
    {
      name: 'audit',
      command: ['node', '-e', 'console.log("3 moderate vulnerabilities"); process.exit(1)'],
      timeoutMs: 10_000,
    },
    {
      name: 'never',
      command: ['node', '-e', 'require("fs").writeFileSync("ran-after-failure", "")'],
      timeoutMs: 10_000,
    },
  ])
    .runPreDeploymentChecks({ workflowId: 'wf', commit: fx.head })
    .catch((e: unknown) => e);
  expect(err).toMatchObject({ type: 'PreDeploymentCheckFailed', nonRetryable: true });
  expect((err as Error).message).toContain('pre-deployment check "audit" (`node -e');
  expect((err as Error).message).toContain('exited with 1: 3 moderate vulnerabilities');
});

test('a check that runs too long is stopped at its timeout', async () => {
  const started = Date.now();
  const err = await acts([{ name: 'slow', command: ['sleep', '30'], timeoutMs: 500 }])
    .runPreDeploymentChecks({ workflowId: 'wf', commit: fx.head })
    .catch((e: unknown) => e);
  expect(Date.now() - started).toBeLessThan(10_000);
  expect((err as Error).message).toContain('"slow" (`sleep 30`) timed out after 1s');
});

test('no shell: metacharacters in arguments are plain text', async () => {
  const r = await acts([
    {
      name: 'echo',
      command: ['node', '-e', 'process.exit(process.argv[1] === "$(id); `id` | x" ? 0 : 1)', '$(id); `id` | x'],
      timeoutMs: 10_000,
    },
  ]).runPreDeploymentChecks({ workflowId: 'wf', commit: fx.head });
  expect(r.checks).toHaveLength(1);
});

test('a missing program is a clear failure', async () => {
  await expect(
    acts([{ name: 'nope', command: ['no-such-program-xyz'], timeoutMs: 1000 }]).runPreDeploymentChecks({
      workflowId: 'wf',
      commit: fx.head,
    }),
  ).rejects.toMatchObject({
    type: 'PreDeploymentCheckFailed',
    message: expect.stringContaining('could not start `no-such-program-xyz`'),
  });
});
