/** Pre-deployment checks run for real in the release source at the planned commit. */
import * as path from 'node:path';
import { checksActivities, type CheckSpec } from '../../src/activities/checks';
import { GitRepo, ReleaseSource } from '../../src/activities/clients/git';
import { createRedactor } from '../../src/activities/redactor';
import { platformRepoCopy, type RepoFixture } from '../helpers/git-fixture';

let fx: RepoFixture;
let source: ReleaseSource;
beforeAll(() => {
  fx = platformRepoCopy();
  source = new ReleaseSource(new GitRepo(fx.checkout), path.join(fx.checkout, '..', 'src'));
});

const acts = (checks: CheckSpec[], beats: unknown[] = []) =>
  checksActivities({ checks, sourceAt: (c) => source.at(c), heartbeat: (d) => beats.push(d) });

const spec = (name: string, command: string[], more: Partial<CheckSpec> = {}): CheckSpec => ({
  name,
  command,
  timeoutMs: 10_000,
  env: {},
  passEnv: [],
  ...more,
});

test("the runbook's npm checks pass in the platform's source", async () => {
  const beats: unknown[] = [];
  const r = await acts(
    ['test', 'type-check', 'lint', 'build'].map((s) => spec(s, ['npm', 'run', s], { timeoutMs: 60_000 })),
    beats,
  ).runPreDeploymentChecks({ workflowId: 'wf', commit: fx.head });
  expect(r.checks.map((c) => c.name)).toEqual(['test', 'type-check', 'lint', 'build']);
  expect(beats).toContainEqual({ done: ['test'], running: 'type-check' });
}, 60_000);

test('a failing check stops with the command and the tail of its output', async () => {
  const err = await acts([
    spec('ok', ['node', '-e', 'console.log("fine")']),
    spec('audit', ['node', '-e', 'console.log("3 moderate vulnerabilities"); process.exit(1)']),
    spec('never', ['node', '-e', 'require("fs").writeFileSync("ran-after-failure", "")']),
  ])
    .runPreDeploymentChecks({ workflowId: 'wf', commit: fx.head })
    .catch((e: unknown) => e);
  expect(err).toMatchObject({ type: 'PreDeploymentCheckFailed', nonRetryable: true });
  expect((err as Error).message).toContain('pre-deployment check "audit" (`node -e');
  expect((err as Error).message).toContain('exited with 1: 3 moderate vulnerabilities');
});

test('a check that runs too long is stopped at its timeout', async () => {
  const started = Date.now();
  const err = await acts([spec('slow', ['sleep', '30'], { timeoutMs: 500 })])
    .runPreDeploymentChecks({ workflowId: 'wf', commit: fx.head })
    .catch((e: unknown) => e);
  expect(Date.now() - started).toBeLessThan(10_000);
  expect((err as Error).message).toContain('"slow" (`sleep 30`) timed out after 1s');
});

test('no shell: metacharacters in arguments are plain text', async () => {
  const r = await acts([
    spec('echo', ['node', '-e', 'process.exit(process.argv[1] === "$(id); `id` | x" ? 0 : 1)', '$(id); `id` | x']),
  ]).runPreDeploymentChecks({ workflowId: 'wf', commit: fx.head });
  expect(r.checks).toHaveLength(1);
});

test('a missing program is a clear failure', async () => {
  await expect(
    acts([spec('nope', ['no-such-program-xyz'], { timeoutMs: 1000 })]).runPreDeploymentChecks({
      workflowId: 'wf',
      commit: fx.head,
    }),
  ).rejects.toMatchObject({
    type: 'PreDeploymentCheckFailed',
    message: expect.stringContaining('could not start `no-such-program-xyz`'),
  });
});

// --- secrets stay out ---------------------------------------------------------------------

const workerEnv = {
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/tmp',
  LANG: 'C.UTF-8',
  REGISTRY_PASSWORD: 'registry-pass-1234',
  DEPLOY_CODEC_KEY: Buffer.alloc(32, 7).toString('base64'),
  TEMPORAL_API_KEY: 'temporal-api-key-9abc',
  SMOKE_PASSWORD: 'smoke-pass-1357',
  DATABASE_URL: 'postgres://app:db-pass-2468@127.0.0.1:5432/ai_saas_prod',
  NPM_TOKEN: 'npm-token-5566',
};

/** Prints every variable it can see as NAME=value (sorted), then exits with argv[1]. */
const PRINT_ENV = [
  'node',
  '-e',
  'for (const k of Object.keys(process.env).sort()) console.log(`${k}=${process.env[k]}`); process.exit(Number(process.argv[1]))',
];

test('a check sees the base variables and the ones its config names, not the worker environment', async () => {
  const err = (await checksActivities({
    checks: [spec('env', [...PRINT_ENV, '1'], { env: { NODE_ENV: 'test' }, passEnv: ['NPM_TOKEN', 'UNSET_VAR'] })],
    sourceAt: (c) => source.at(c),
    heartbeat: () => undefined,
    env: workerEnv,
  })
    .runPreDeploymentChecks({ workflowId: 'wf', commit: fx.head })
    .catch((e: unknown) => e)) as Error & { details?: { output: string }[] };
  const names = err
    .details![0].output.split('\n')
    .filter((l) => l.includes('='))
    .map((l) => l.slice(0, l.indexOf('=')));
  expect(names.sort()).toEqual(['CI', 'HOME', 'LANG', 'NODE_ENV', 'NPM_TOKEN', 'PATH']);
});

test("a failing check that prints the secrets it was given: they are *** in the failure's message and details", async () => {
  const redactor = createRedactor([workerEnv.NPM_TOKEN, workerEnv.SMOKE_PASSWORD, workerEnv.REGISTRY_PASSWORD]);
  const err = (await checksActivities({
    checks: [spec('leaky', [...PRINT_ENV, '1'], { passEnv: ['NPM_TOKEN', 'SMOKE_PASSWORD', 'REGISTRY_PASSWORD'] })],
    sourceAt: (c) => source.at(c),
    heartbeat: () => undefined,
    env: workerEnv,
    redact: (t) => redactor.text(t),
  })
    .runPreDeploymentChecks({ workflowId: 'wf', commit: fx.head })
    .catch((e: unknown) => e)) as Error & { type?: string; details?: unknown[] };
  expect(err).toMatchObject({ type: 'PreDeploymentCheckFailed' });
  const everything = `${err.message}\n${JSON.stringify(err.details)}`;
  expect(everything).toContain('SMOKE_PASSWORD=***');
  expect(everything).toContain('NPM_TOKEN=***');
  for (const v of [workerEnv.NPM_TOKEN, workerEnv.SMOKE_PASSWORD, workerEnv.REGISTRY_PASSWORD])
    expect(everything).not.toContain(v);
  // Not given, so never seen: the codec key, the Temporal API key, the database URL.
  expect(everything).not.toContain('DEPLOY_CODEC_KEY');
  expect(everything).not.toContain('TEMPORAL_API_KEY');
  expect(everything).not.toContain('DATABASE_URL');
});
