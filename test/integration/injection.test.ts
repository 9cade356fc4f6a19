/**
 * Shell metacharacters (`;`, `$(…)`, backticks, newlines, pipes) in the
 * fields people type (version, service, note, reason) do nothing:
 *  - versions are refused before git or docker run (the real release tag
 *    and image build against a private copy of the sandbox's repository and
 *    the sandbox's Docker engine and registry);
 *  - service names are refused by the real resolvePlan before git is read;
 *  - notes and reasons travel as plain text through a workflow's status and
 *    into the payload the real notify activity posts to a webhook receiver;
 *  - pre-deployment checks are argument arrays: an argument is never parsed
 *    by a shell, and a "command line" in one element does not start.
 * After each test, no /tmp/pwned-<random> file exists.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import Docker from 'dockerode';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { checksActivities } from '../../src/activities/checks';
import { createReleaseTag, GitRepo, ReleaseSource } from '../../src/activities/clients/git';
import { imagesActivities } from '../../src/activities/images';
import { notifyActivities } from '../../src/activities/notify';
import { planActivities } from '../../src/activities/plan';
import { RegistryClient } from '../../src/activities/clients/registry';
import type { DeployInput } from '../../src/domain/input';
import type { PlannedService } from '../../src/domain/plan';
import { deployWorkflow } from '../../src/workflows/deploy';
import { abortSignal, approveSignal, statusQuery } from '../../src/workflows/messages';
import { fakeActivities, type FakeOptions } from '../helpers/fake-activities';
import { git, platformRepoCopy, type RepoFixture } from '../helpers/git-fixture';
import { testConfig, testPlan } from '../helpers/plan';
import { sandboxVar } from '../helpers/sandbox';
import { timeSkippingEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { resultOf } from '../../src/workflows/outcome';

const TOKEN = randomBytes(6).toString('hex');
const PWNED = path.join(tmpdir(), `pwned-${TOKEN}`);
const touch = `touch ${PWNED}`;

/** What a shell would run, in every shape people paste: [shape, text]. */
const SHAPES: [string, string][] = [
  ['a semicolon', `1.0.1; ${touch}`],
  ['command substitution', `$(${touch})`],
  ['backticks', `\`${touch}\``],
  ['a newline', `1.0.1\n${touch}`],
  ['&&', `1.0.1 && ${touch}`],
  ['a pipe', `1.0.1 | ${touch}`],
  ['a redirection', `1.0.1 > ${PWNED}`],
];
const PAYLOADS = SHAPES.map(([, text]) => text);

const pwnedFiles = () => readdirSync(tmpdir()).filter((f) => f.startsWith(`pwned-${TOKEN}`));

afterEach(() => {
  expect(existsSync(PWNED)).toBe(false);
  expect(pwnedFiles()).toEqual([]);
});

/** Wraps an object so every method call is recorded (what reached git, docker, the registry). */
function spy<T extends object>(target: T, calls: string[], label: string): T {
  return new Proxy(target, {
    get(t, p, r) {
      const v = Reflect.get(t, p, r) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        calls.push(`${label}.${String(p)}`);
        return (v as (...a: unknown[]) => unknown).apply(t, args);
      };
    },
  });
}

describe('versions are refused before git or docker run', () => {
  let fx: RepoFixture;
  let repo: GitRepo;
  const calls: string[] = [];
  let images: ReturnType<typeof imagesActivities>;

  beforeAll(() => {
    fx = platformRepoCopy();
    repo = spy(new GitRepo(fx.checkout, 'origin', 'main'), calls, 'git');
    const source = new ReleaseSource(new GitRepo(fx.checkout), path.join(fx.checkout, '..', 'src'));
    const docker = spy(new Docker({ socketPath: sandboxVar('DOCKER_HOST').replace('unix://', '') }), calls, 'docker');
    const registry = spy(new RegistryClient(sandboxVar('REGISTRY'), true), calls, 'registry');
    images = imagesActivities({
      docker,
      registry,
      registryHost: sandboxVar('REGISTRY'),
      sourceAt: (c) => {
        calls.push('source.at');
        return source.at(c);
      },
      concurrency: 1,
      heartbeat: () => undefined,
      previous: () => undefined,
    });
  });
  beforeEach(() => {
    calls.length = 0;
  });

  const service = (name = 'auth-service', image = `inj${TOKEN}-auth-service`): PlannedService => ({
    name,
    image,
    context: `services/${name}`,
    dockerfile: 'Dockerfile',
    deployment: name,
    container: name,
    reference: '',
  });

  test.each(SHAPES)('release tag: %s', async (_shape, version) => {
    const err = await createReleaseTag(repo, { workflowId: 'wf-inj', version, commit: fx.head }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect((err as Error).message).toContain('invalid version');
    expect(calls).toEqual([]);
    expect(git(fx.checkout, 'ls-remote', '--tags', '--refs', 'origin').trim().split('\n')).toEqual([
      expect.stringMatching(/refs\/tags\/v1\.0\.0$/),
    ]);
  });

  test.each(SHAPES)('image build: %s', async (_shape, version) => {
    const err = await images
      .buildImages({ workflowId: 'wf-inj', version, commit: fx.head, services: [service()], allowOverwrite: false })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(calls).toEqual([]);
  });

  test('a commit that is not 40 hex digits is refused before git or docker', async () => {
    await expect(
      createReleaseTag(repo, { workflowId: 'wf-inj', version: '1.0.1', commit: `HEAD; ${touch}` }),
    ).rejects.toMatchObject({ type: 'InvalidInput' });
    await expect(
      images.buildImages({
        workflowId: 'wf-inj',
        version: '1.0.1',
        commit: `$(${touch})`,
        services: [service()],
        allowOverwrite: false,
      }),
    ).rejects.toMatchObject({ type: 'InvalidInput' });
    expect(calls).toEqual([]);
  });

  test('an image name with metacharacters (only from a plan, which the config schema guards) runs nothing and pushes nothing', async () => {
    for (const image of [`inj-$(${touch})`, `inj;${touch}`, `inj\`${touch}\``]) {
      const err = await images
        .buildImages({
          workflowId: 'wf-inj',
          version: '1.0.1',
          commit: fx.head,
          services: [service('auth-service', image)],
          allowOverwrite: false,
        })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
      expect((err as Error).message).toMatch(/invalid image name/);
      // Docker's API takes the name as data, never as a command line.
      expect(
        calls.filter((c) => c.startsWith('docker.')).every((c) => ['docker.getImage', 'docker.buildImage'].includes(c)),
      ).toBe(true);
    }
  }, 60_000);

  // Defence in depth: buildImages refuses names with metacharacters itself, before the registry or Docker.
  test('an image name with metacharacters is refused as InvalidInput before the registry or Docker', async () => {
    const err = await images
      .buildImages({
        workflowId: 'wf-inj',
        version: '1.0.1',
        commit: fx.head,
        services: [service('auth-service', `inj;${touch}`)],
        allowOverwrite: false,
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect(calls).toEqual([]);
  });
});

describe('service names are refused by the real resolvePlan before git is read', () => {
  test.each([
    ['a semicolon', `auth-service;${touch}`],
    ['command substitution', `$(${touch})`],
    ['backticks', `\`${touch}\``],
    ['a newline', `auth-service\n${touch}`],
  ])('%s', async (_shape, name) => {
    const gitCalls: string[] = [];
    const { resolvePlan } = planActivities({
      config: testConfig(),
      verifySender: async () => ({ ok: false, reason: 'no proofs here' }),
      listTags: async () => {
        gitCalls.push('listTags');
        return ['v1.0.0'];
      },
      branchHead: async () => {
        gitCalls.push('branchHead');
        return 'c0ffee0000000000000000000000000000000000';
      },
    });
    const err = await resolvePlan({ workflowId: 'wf-inj', input: { version: '1.0.1', services: [name] } }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ type: 'InvalidInput', nonRetryable: true });
    expect((err as Error).message).toMatch(/services\.0: service names are lowercase DNS labels/);
    expect(gitCalls).toEqual([]);
  });
});

describe('notes and reasons are plain text through the status and into notifications', () => {
  const REASON = `p99 $(${touch}); \`${touch}\` | cat /etc/passwd > ${PWNED}\nsecond line & <b>bold</b> 'quoted' "double"`;
  const NOTE = `ok $(${touch}) && \`id\`; rm -rf / # <!here>`;
  let env: TestWorkflowEnvironment;
  let receiver: Server;
  let base: string;
  let received: { path: string; body: any }[] = [];

  beforeAll(async () => {
    env = await timeSkippingEnv();
    receiver = createServer((req, res) => {
      let text = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (text += d));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body: JSON.parse(text) });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  }, 60_000);
  afterAll(async () => {
    receiver?.closeAllConnections();
    await new Promise((r) => receiver?.close(r));
    await env?.teardown();
  });
  beforeEach(() => {
    received = [];
  });

  /** Fakes for everything but notify, which is the real activity posting to the loopback receiver. */
  function activities(input: DeployInput, override: FakeOptions['override'] = {}) {
    const { notify } = notifyActivities({
      config: testConfig(),
      env: { SLACK_WEBHOOK_URL: `${base}/slack`, DEPLOY_WEBHOOK_URL: `${base}/hook` },
    });
    const plan = { ...testPlan(input), environment: `inj-${randomBytes(4).toString('hex')}`, searchAttributes: false };
    return fakeActivities({ plan, override: { notify, ...override } });
  }

  async function run<T>(fake: ReturnType<typeof fakeActivities>, fn: (taskQueue: string) => Promise<T>): Promise<T> {
    const taskQueue = uniqueQueue('inj');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowBundle: await workflowBundle(),
      activities: fake.activities,
    });
    return worker.runUntil(fn(taskQueue));
  }

  test('an abort reason: verbatim in the status, the result and the webhook payload; escaped for Slack', async () => {
    let release!: () => void;
    const blocked = new Promise<void>((r) => (release = r));
    const input: DeployInput = { version: '1.0.1', strategy: 'rolling' };
    const fake = activities(input, {
      buildImages: async () => {
        await blocked;
        throw new Error('cancelled');
      },
    });
    const result = await run(fake, async (taskQueue) => {
      const h = await env.client.workflow.start(deployWorkflow, {
        taskQueue,
        workflowId: `inj-abort-${taskQueue}`,
        args: [input],
      });
      for (let i = 0; i < 100 && (await h.query(statusQuery)).phase !== 'building'; i++) await env.sleep('1s');
      await h.signal(abortSignal, { by: 'dave', reason: REASON });
      const during = await h.query(statusQuery);
      expect(during.aborts[0]).toMatchObject({ by: 'dave', reason: REASON });
      release();
      return resultOf(h.result());
    });
    expect(result.outcome).toBe('aborted');
    expect(result.reason).toBe(`aborted by dave: ${REASON}`);
    expect(result.status.aborts).toEqual([expect.objectContaining({ by: 'dave', reason: REASON })]);
    const hook = received.filter((r) => r.path === '/hook');
    expect(hook.map((r) => r.body.kind)).toEqual(['started', 'aborted']);
    expect(hook[1].body.text).toContain(REASON);
    const slack = received.filter((r) => r.path === '/slack');
    expect(slack).toHaveLength(2);
    const section = slack[1].body.blocks.find((b: any) => b.type === 'section').text.text as string;
    expect(section).toContain(REASON.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'));
  }, 60_000);

  test('an approval note: verbatim in the canary status; the gate opens as usual', async () => {
    const input: DeployInput = {
      version: '1.0.1',
      canary: { soak: '1m', analysisInterval: '1m', approval: 'before-full' },
    };
    const fake = activities(input);
    const canary = await run(fake, async (taskQueue) => {
      const h = await env.client.workflow.start(deployWorkflow, {
        taskQueue,
        workflowId: `inj-note-${taskQueue}`,
        args: [input],
      });
      const child = env.client.workflow.getHandle(`${h.workflowId}-canary`);
      for (
        let i = 0;
        i < 200 && (await child.query(statusQuery).catch(() => undefined))?.phase !== 'awaiting-approval';
        i++
      )
        await env.sleep('20s');
      await h.signal(approveSignal, { by: 'erin', note: NOTE });
      const r = await h.result();
      expect(r.outcome).toBe('succeeded');
      return child.result();
    });
    expect(canary.status.approvals).toEqual([expect.objectContaining({ by: 'erin', note: NOTE })]);
    // The awaiting-approval notification went out with the exact commands, and nothing else ran.
    expect(received.filter((r) => r.path === '/hook').map((r) => r.body.kind)).toEqual(
      expect.arrayContaining(['awaiting-approval', 'succeeded']),
    );
  }, 60_000);

  // Slack's top-level `text` (the fallback shown in push notifications) is escaped like the blocks.
  test('Slack markup in a reason is escaped in the fallback text as well', async () => {
    const { notify } = notifyActivities({
      config: testConfig(),
      env: { SLACK_WEBHOOK_URL: `${base}/slack` },
      log: { info: () => undefined, warn: () => undefined },
    });
    await notify({
      kind: 'aborted',
      workflowId: 'wf-inj',
      environment: 'production',
      version: '1.0.1',
      text: 'aborted by dave: <!channel> look',
    });
    expect(received[0].body.text).not.toContain('<!channel>');
  });
});

describe('pre-deployment checks are argument arrays', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'inj-checks-'));
  const commit = 'c0ffee0000000000000000000000000000000000';
  const checks = (command: string[]) =>
    checksActivities({
      checks: [{ name: 'inj', command, timeoutMs: 10_000, env: {}, passEnv: [] }],
      sourceAt: async () => dir,
      heartbeat: () => undefined,
    }).runPreDeploymentChecks({ workflowId: 'wf-inj', commit });

  test.each(SHAPES)('an argument with %s is passed as data', async (_shape, arg) => {
    const r = await checks(['printf', '%s', arg]);
    expect(r.checks).toEqual([expect.objectContaining({ name: 'inj', command: `printf %s ${arg}` })]);
  });

  test('the argument arrives byte for byte', async () => {
    const err = await checks([
      'node',
      '-e',
      'process.stdout.write(JSON.stringify(process.argv.slice(1))); process.exit(3)',
      ...PAYLOADS,
    ]).catch((e: unknown) => e);
    // The check fails on purpose, so its output (the arguments as the program saw them) is in the failure details.
    expect(err).toMatchObject({ type: 'PreDeploymentCheckFailed' });
    const output = ((err as ApplicationFailure).details?.[0] as { output: string }).output;
    expect(JSON.parse(output)).toEqual(PAYLOADS);
  });

  test('a whole command line in one element is a program name that does not exist', async () => {
    const err = await checks([`npm test; ${touch}`]).catch((e: unknown) => e);
    expect(err).toMatchObject({ type: 'PreDeploymentCheckFailed', nonRetryable: true });
    expect((err as Error).message).toMatch(/could not start/);
  });
});
