/**
 * Bad input through a running deployWorkflow (time-skipping server) with the
 * REAL resolvePlan activity, wired with the example config and a fake git:
 * every bad input is refused by resolvePlan with one line naming the field,
 * and nothing else runs (no lock, no notification, no git read for inputs
 * that fail their schema). Bad signals to a running deployment are recorded
 * in ignoredSignals and never wedge or end it. The table of the same kinds
 * of input at every edge: test/unit/bad-input.test.ts.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { planActivities } from '../../src/activities/plan';
import type { DeployConfig } from '../../src/domain/config';
import type { DeployInput } from '../../src/domain/input';
import type { DeploymentStatus } from '../../src/domain/status';
import { deployWorkflow } from '../../src/workflows/deploy';
import {
  abortSignal,
  approveSignal,
  pauseSignal,
  promoteSignal,
  resumeSignal,
  statusQuery,
} from '../../src/workflows/messages';
import { fakeActivities } from '../helpers/fake-activities';
import { testConfig } from '../helpers/plan';
import { timeSkippingEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { resultOf } from '../../src/workflows/outcome';

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
}, 60_000);
afterAll(async () => {
  await env?.teardown();
});

let counter = 0;
/**
 * The example config with an environment of its own (so no lock is shared
 * between tests) and no search attributes; it allows a rolling deployment and
 * 1m soaks (the input may only tighten the config), and keeps the example's
 * backup, migrations and image overwrite rules.
 */
function config(): DeployConfig {
  const c = testConfig();
  const name = `bad-${++counter}-${Date.now() % 100000}`;
  const production = c.environments.production;
  return {
    ...c,
    environments: {
      [name]: { ...production, policy: { ...production.policy, strategies: ['rolling', 'canary', 'blue-green'] } },
    },
    defaultEnvironment: name,
    temporal: { ...c.temporal, searchAttributes: false },
    rollout: { ...c.rollout, canary: { ...c.rollout.canary, soak: 60_000 } },
  };
}

function harness() {
  const gitCalls: string[] = [];
  const plan = planActivities({
    config: config(),
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
  const fake = fakeActivities({ override: { resolvePlan: plan.resolvePlan } });
  return { fake, gitCalls };
}

async function run<T>(fake: ReturnType<typeof fakeActivities>, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = uniqueQueue('bad-input');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: fake.activities,
  });
  return worker.runUntil(fn(taskQueue));
}

const long = (n: number, c = 'x') => c.repeat(n);

/** [what, input, field named, message fragment, reads git first (refused by the config, not the schema)] */
const CASES: [string, unknown, string, string, boolean][] = [
  ['malformed version', { version: '1.0' }, 'version', 'invalid version "1.0"', false],
  ['shell in the version', { version: '1.0.1; rm -rf /' }, 'version', 'invalid version "1.0.1; rm -rf /"', false],
  [
    'command substitution in the version',
    { version: '$(touch /tmp/pwned)' },
    'version',
    'invalid version "$(touch /tmp/pwned)"',
    false,
  ],
  ['a newline in the version', { version: '1.0.1\nid' }, 'version', 'invalid version', false],
  ['a version of 1000 characters', { version: long(1000) }, 'version', 'longer than 128 characters', false],
  ['version and bump together', { version: '1.0.1', bump: 'patch' }, 'version', 'give exactly one of "version"', false],
  ['no version', {}, 'version', 'give exactly one of "version"', false],
  ['null from the UI', null, 'version', 'give exactly one of "version"', false],
  ['a bare string from the UI', '1.0.1', '(input)', 'expected object, received string', false],
  ['an unknown field', { version: '1.0.1', frobnicate: true }, '(input)', 'unknown field(s) "frobnicate"', false],
  [
    'an unknown strategy',
    { version: '1.0.1', strategy: 'yolo' },
    'strategy',
    'expected one of "rolling"|"canary"|"blue-green"',
    false,
  ],
  [
    'duplicate services',
    { version: '1.0.1', services: ['auth-service', 'auth-service'] },
    'services',
    'services must not repeat',
    false,
  ],
  [
    'services as a string',
    { version: '1.0.1', services: 'auth-service' },
    'services',
    'expected array, received string',
    false,
  ],
  [
    'steps not increasing',
    { version: '1.0.1', canary: { steps: [50, 25, 100] } },
    'canary.steps',
    'steps must increase strictly',
    false,
  ],
  [
    'a step above 100',
    { version: '1.0.1', canary: { steps: [5, 25, 150] } },
    'canary.steps',
    'steps cannot exceed 100',
    false,
  ],
  ['a negative soak', { version: '1.0.1', canary: { soak: '-5m' } }, 'canary.soak', 'soak must look like', false],
  [
    'a zero soak',
    { version: '1.0.1', canary: { soak: '0s' } },
    'canary.soak',
    'soak must be between 1000ms and 24h',
    false,
  ],
  [
    'an absurd soak',
    { version: '1.0.1', canary: { soak: '400h' } },
    'canary.soak',
    'soak must be between 1000ms and 24h',
    false,
  ],
  [
    'a requester of 129 characters',
    { version: '1.0.1', requestedBy: long(129, 'a') },
    'requestedBy',
    'expected string to have <=128 characters',
    false,
  ],
  ['dryRun as text', { version: '1.0.1', dryRun: 'yes' }, 'dryRun', 'expected boolean, received string', false],
  [
    'an unknown service',
    { version: '1.0.1', services: ['payments'] },
    'service',
    'unknown service "payments": configured are auth-service',
    true,
  ],
  ['an unknown environment', { version: '1.0.1', environment: 'qa' }, 'environment', 'unknown environment "qa"', true],
  ['skipping a required backup', { version: '1.0.1', backup: false }, 'backup', 'requires a backup', true],
  ['skipping required migrations', { version: '1.0.1', migrate: false }, 'migrate', 'requires migrations', true],
  [
    'overwriting an image tag the config keeps immutable',
    { version: '1.0.1', allowImageOverwrite: true },
    'allowImageOverwrite',
    'does not allow overwriting an image tag',
    true,
  ],
  [
    'a soak shorter than the configured one',
    { version: '1.0.1', canary: { soak: '30s' } },
    'canary.soak',
    '30s is shorter than the configured 1m',
    true,
  ],
  [
    'canary steps that leave out configured ones',
    { version: '1.0.1', canary: { steps: [50, 100] } },
    'canary.steps',
    'leaves out the configured steps 5, 25',
    true,
  ],
  [
    'a blue-green monitor shorter than the configured one',
    { version: '1.0.1', strategy: 'blue-green', blueGreen: { monitor: '10s' } },
    'blueGreen.monitor',
    '10s is shorter than the configured 5m',
    true,
  ],
  [
    'a canary without the traffic service',
    { version: '1.0.1', strategy: 'canary', services: ['auth-service'] },
    'strategy',
    'strategy "canary" shifts traffic of "api-gateway"',
    true,
  ],
];

test.each(CASES)(
  '%s is refused by resolvePlan before any side effect',
  async (_what, input, field, message, readsGit) => {
    const { fake, gitCalls } = harness();
    const result = await run(fake, (taskQueue) =>
      resultOf(
        env.client.workflow.execute(deployWorkflow, {
          taskQueue,
          workflowId: `bad-${taskQueue}`,
          args: [input as DeployInput],
        }),
      ),
    );
    expect(result).toMatchObject({ outcome: 'failed', refused: 'invalid-input' });
    expect(result.reason).toContain(message);
    expect(result.reason).toContain(field);
    expect(result.reason).toContain('InvalidInput');
    expect(result.reason!.split('\n')).toHaveLength(1);
    // Nothing but the plan: no lock child, no notification, no pre-flight.
    expect(fake.names()).toEqual(['resolvePlan']);
    expect(result.status.children).toEqual([]);
    expect(result.status.steps.map((s) => [s.name, s.state])).toEqual([['resolve plan', 'failed']]);
    expect(gitCalls).toEqual(readsGit ? expect.arrayContaining(['listTags', 'branchHead']) : []);
  },
  60_000,
);

/** [signal, payload, reason recorded] */
const BAD_SIGNALS: [typeof approveSignal, unknown, RegExp][] = [
  [approveSignal, { note: 'lgtm' }, /^approve: approve needs "by"/],
  [approveSignal, null, /^approve: approve needs a JSON object/],
  [approveSignal, { by: 'mallory; rm -rf /' }, /^approve: approve needs "by"/],
  [approveSignal, { by: 'alice', note: long(1001) }, /^approve: approve: "note" must be text of at most 1000/],
  [abortSignal, 'stop', /^abort: abort needs a JSON object/],
  [abortSignal, { reason: 'no by' }, /^abort: abort needs "by"/],
  [abortSignal, { by: 'alice', reason: { nested: true } }, /^abort: abort: "reason" must be text/],
  [pauseSignal, { by: '$(id)' }, /^pause: pause needs "by"/],
  [resumeSignal, [], /^resume: resume needs a JSON object/],
  [promoteSignal, { by: 'alice', full: 'yes' }, /^promote: promote: "full" must be true or false/],
];

const ignoredOf = (s: DeploymentStatus) => s.ignoredSignals.map((i) => `${i.signal}: ${i.ignoredBecause}`);

test('bad signals sent right after the start are recorded as ignored and the deployment carries on', async () => {
  const { fake } = harness();
  const result = await run(fake, async (taskQueue) => {
    const h = await env.client.workflow.start(deployWorkflow, {
      taskQueue,
      workflowId: `bad-signals-${taskQueue}`,
      args: [{ version: '1.0.1', strategy: 'rolling' }],
    });
    for (const [def, payload] of BAD_SIGNALS) await h.signal(def, payload);
    return resultOf(h.result());
  });
  // A bad abort did not abort, a bad approve did not approve: the rolling deployment ran to the end.
  expect(result.outcome).toBe('succeeded');
  expect(result.status.aborts).toEqual([]);
  const ignored = ignoredOf(result.status);
  for (const [, , reason] of BAD_SIGNALS)
    expect(ignored).toEqual(expect.arrayContaining([expect.stringMatching(reason)]));
  expect(fake.count('patchImages')).toBe(1);
}, 60_000);

test('bad signals at an approval gate are recorded by the canary and the gate still opens for a good one', async () => {
  const { fake } = harness();
  const input: DeployInput = {
    version: '1.0.1',
    canary: { soak: '1m', analysisInterval: '1m', approval: 'before-full' },
  };
  const { result, canary } = await run(fake, async (taskQueue) => {
    const h = await env.client.workflow.start(deployWorkflow, {
      taskQueue,
      workflowId: `bad-gate-${taskQueue}`,
      args: [input],
    });
    const child = env.client.workflow.getHandle(`${h.workflowId}-canary`);
    for (let i = 0; i < 200; i++) {
      if ((await child.query(statusQuery).catch(() => undefined))?.phase === 'awaiting-approval') break;
      await env.sleep('20s');
    }
    expect((await child.query(statusQuery)).phase).toBe('awaiting-approval');
    // Forwarded to the canary child, which checks and records them.
    for (const [def, payload] of BAD_SIGNALS) await h.signal(def, payload);
    const waiting = await child.query(statusQuery);
    expect(waiting.phase).toBe('awaiting-approval');
    expect(waiting.approvals).toEqual([]);
    await h.signal(approveSignal, { by: 'alice', note: 'now for real' });
    return { result: await resultOf(h.result()), canary: await resultOf(child.result()) };
  });
  expect(result.outcome).toBe('succeeded');
  expect(canary.status.approvals).toEqual([expect.objectContaining({ by: 'alice', note: 'now for real' })]);
  const ignored = ignoredOf(canary.status);
  for (const [, , reason] of BAD_SIGNALS)
    expect(ignored).toEqual(expect.arrayContaining([expect.stringMatching(reason)]));
  expect(fake.weights).toEqual([5, 25, 50, 100]);
}, 120_000);
