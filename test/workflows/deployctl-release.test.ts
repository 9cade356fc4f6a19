/**
 * deployctl's release and quarantine commands on the real dev server (the
 * `temporal` CLI the project fetched, or TEMPORAL_ADDRESS), run as people
 * run them (src/client.ts main) against a worker whose activities are fakes
 * except the ones that decide: the release's plan (resolveRelease, with the
 * requester verified by each stage's SSH verifier), the manual rollback's plan
 * (resolveRollback) and the quarantine lift (approveQuarantineLift), all the
 * worker's own, over the fakes' in-memory quarantine store.
 *
 * A release with a signed request goes through two stages, waits out the
 * soak, is promoted with one signed approval and exits 0, printing its phases,
 * stages and the exact command that answers the gate; status, list --release
 * and watch show it. A quarantined version is refused for a release and a
 * rollback with the worker's one line and exit 2; quarantine list shows it,
 * lift refuses a sender who is not a verified approver (exit 2) and lifts for
 * one who is.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { QuarantineRecord } from '../../src/activities/contracts';
import { identityActivities } from '../../src/activities/identity/verifier';
import { pipelineActivities, type PipelineDeps } from '../../src/activities/pipeline';
import { approveQuarantineLift, releaseActivities } from '../../src/activities/release';
import { main } from '../../src/client';
import { ExitCode } from '../../src/cli/exit-codes';
import { configSchema, type DeployConfig } from '../../src/domain/config';
import type { DeploymentStatus } from '../../src/domain/status';
import { fakeActivities } from '../helpers/fake-activities';
import { sshPeople, type SshPeople } from '../helpers/identity';
import { testConfig, testPlan } from '../helpers/plan';
import { devServerEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

let env: TestWorkflowEnvironment;
let people: SshPeople;
beforeAll(async () => {
  env = await devServerEnv();
  // carol requests releases; alice approves; carol is a verified sender but not an approver; mallory is unknown.
  people = sshPeople(['alice', 'carol', 'mallory'], ['alice', 'carol']);
}, 60_000);
afterAll(async () => {
  await env?.teardown();
});

/** Two stages of their own (each environment its own lock), both verifying senders by SSH; production after a 4s soak and one approval. */
function setUp() {
  const n = `${Date.now() % 100000}`;
  const staging = `stg-${n}`;
  const production = `prod-${n}`;
  const approvals = {
    verify: 'ssh',
    ssh: { allowedSigners: people.allowedSigners },
    approvers: ['alice'],
    required: 1,
  };
  const config: DeployConfig = configSchema.parse({
    ...testConfig(),
    defaultEnvironment: production,
    environments: {
      [staging]: { namespace: 'ai-saas', approvals },
      [production]: {
        namespace: 'ai-saas',
        approvals,
        promotion: { soak: '4s', analysisInterval: '1s', approval: true, approvalTimeout: '10m' },
      },
    },
  });
  const plan = { ...testPlan({ version: '1.0.1', strategy: 'rolling' }), searchAttributes: true };
  const verify = identityActivities({ config, env: process.env });
  // The fakes' in-memory quarantine store: what the release's and the rollback's plans and the lift consult.
  const quarantineOf = (version: string) =>
    Promise.resolve(fake.quarantine.find((q) => q.version === version && !q.lifted));
  const release = releaseActivities({
    config,
    branchHead: () => Promise.resolve(plan.commit),
    remoteTagCommit: () => Promise.resolve(undefined),
    imageDigest: () => Promise.resolve(undefined),
    verifySender: verify.verifySender,
    quarantineOf,
  });
  const unused = () => Promise.reject(new Error('not used by a rollback refused at its plan'));
  const pipeline = pipelineActivities({
    config,
    git: {} as PipelineDeps['git'],
    registry: {} as PipelineDeps['registry'],
    databasePreflight: unused,
    migrationStatus: unused,
    readClusterState: unused,
    redisPing: unused,
    verifySender: verify.verifySender,
    backupExists: () => Promise.resolve(false),
    quarantineOf,
  });
  const fake = fakeActivities({
    plan,
    verifySender: verify.verifySender,
    override: {
      resolveRelease: (req) => release.resolveRelease(req),
      resolveRollback: (req) => pipeline.resolveRollback(req),
      approveQuarantineLift: (req) =>
        approveQuarantineLift(
          {
            config,
            verifySender: verify.verifySender,
            quarantineOf,
            lift: (r) => fake.activities.liftQuarantine(r),
          },
          req,
        ) as Promise<QuarantineRecord[]>,
    },
  });
  return { staging, production, plan, fake, quarantine: fake.quarantine };
}

async function withWorker<T>(setup: ReturnType<typeof setUp>, fn: (taskQueue: string) => Promise<T>): Promise<T> {
  const taskQueue = uniqueQueue('deployctl-release');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: setup.fake.activities,
  });
  return worker.runUntil(() => fn(taskQueue));
}

async function deployctl(taskQueue: string, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'deployctl', ...args], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: {
      TEMPORAL_ADDRESS: env.connection.options.address,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: taskQueue,
    },
    isTTY: false,
    pollMs: 200,
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const status = (workflowId: string) => env.client.workflow.getHandle(workflowId).query<DeploymentStatus>('status');

test('release --wait: a signed request through two stages, the soak, one signed approval at the promotion gate, exit 0; status, list --release and watch show it', async () => {
  const setup = setUp();
  const { staging, production } = setup;
  const id = 'release-1.0.1';
  await withWorker(setup, async (q) => {
    const released = deployctl(
      q,
      'release',
      '--version',
      '1.0.1',
      '--by',
      'carol',
      '--ssh-key',
      people.key('carol'),
      '--wait',
    );
    const gate = await waitFor(async () => {
      const s = await status(id).catch(() => undefined);
      return s?.phase === 'awaiting-approval' ? s : undefined;
    }, 90_000);
    expect(gate.waitingFor?.gate).toBe(`promote-${production}`);
    expect(gate.stages?.map((s) => s.state)).toEqual(['succeeded', 'waiting']);
    // Between stages the release takes approve and abort only: deployctl says so before sending.
    const pause = await deployctl(q, 'pause', id, '--by', 'alice');
    expect(pause.code).toBe(ExitCode.BadInput);
    expect(pause.err).toMatch(/^deployctl: pause does not apply between stages \(phase awaiting-approval\)/);
    // carol, who requested it, is not an approver; alice, verified by her key, is.
    expect((await deployctl(q, 'approve', id, '--by', 'carol', '--ssh-key', people.key('carol'))).code).toBe(0);
    await waitFor(async () => ((await status(id)).ignoredSignals.length ? true : undefined), 30_000);
    const approved = await deployctl(q, 'approve', id, '--by', 'alice', '--ssh-key', people.key('alice'));
    expect(approved).toMatchObject({ code: 0, out: `sent approve to ${id} as alice` });

    const r = await released;
    expect(r.err).toBe('');
    expect(r.code).toBe(ExitCode.Ok);
    const lines = r.out.split('\n');
    // Started: the id, how to follow it; then the phases, each stage's state and steps, and the gate's exact command.
    expect(lines[0]).toBe(`started ${id}: release 1.0.1`);
    expect(r.out).toContain(`  watch:  deployctl watch ${id}`);
    // With fake activities the phases before the soak pass quicker than deployctl polls: only the long ones are asserted.
    for (const expected of [
      `stage ${staging}: deploying (${id}-${staging})`,
      `stage ${staging}: succeeded (${id}-${staging})`,
      'phase soaking',
      `stage ${production}: waiting (${id}-${production})`,
      'phase awaiting-approval',
      `stage ${production}: deploying (${id}-${production})`,
      `stage ${production}: succeeded (${id}-${production})`,
      'phase succeeded',
    ])
      expect(lines).toContain(expected);
    expect(lines).toContain(
      `wait 1 approval to promote 1.0.1 from ${staging} to ${production} — deployctl approve ${id} --by <name> --ssh-key <your private key or .pub with an agent> | deployctl abort ${id} --by <name> --reason <text> --ssh-key <your private key or .pub with an agent>`,
    );
    expect(lines.some((l) => l.startsWith(`wait a 4s soak in ${staging} with its analysis passing`))).toBe(true);
    expect(lines.some((l) => l.startsWith('ok   build and push images'))).toBe(true);
    // Each stage's steps, to its last one, though the stage ended between two looks.
    for (const stage of [staging, production])
      expect(lines.filter((l) => l.startsWith(`ok   [${stage}] summary`))).toHaveLength(1);
    expect(lines.slice(-3)).toEqual([
      `succeeded: ${id} (1.0.1 through ${staging} → ${production})`,
      `  ✓ ${staging}   succeeded  ${id}-${staging}`,
      `  ✓ ${production}  succeeded  ${id}-${production}`,
    ]);

    // status: every stage, the images and commit, who requested and approved, how they were verified.
    const st = await deployctl(q, 'status', id);
    expect(st.code).toBe(0);
    expect(st.out).toContain(`release ${id}`);
    expect(st.out).toContain(`by carol`);
    expect(st.out).toContain(`release commit ${setup.plan.commit.slice(0, 12)}, images (the same in every stage):`);
    expect(st.out).toMatch(new RegExp(`✓ ${staging} +succeeded +${id}-${staging}`));
    expect(st.out).toMatch(new RegExp(`✓ ${production} +succeeded +${id}-${production}`));
    expect(st.out).toMatch(/approved by alice \(ssh ED25519 SHA256:.*\) at .* \(promote 1\.0\.1 to prod-/);
    expect(st.out).toContain(`ignored approve from carol: carol is not an approver for ${production}`);
    const json = JSON.parse((await deployctl(q, 'status', id, '--json')).out) as DeploymentStatus;
    expect(json.workflow).toBe('release');
    expect(json.stages?.map((s) => [s.environment, s.state])).toEqual([
      [staging, 'succeeded'],
      [production, 'succeeded'],
    ]);
    expect(Object.keys(json.release?.images ?? {})).toEqual(setup.plan.services.map((s) => s.name));

    // list --release: the release and each stage's deployment, by the DeployRelease search attribute.
    const rows = await waitFor(async () => {
      const l = await deployctl(q, 'list', '--release', '1.0.1', '--json');
      const parsed = JSON.parse(l.out) as Record<string, string>[];
      return parsed.length === 3 && parsed.every((x) => x.phase === 'succeeded') ? parsed : undefined;
    }, 20_000);
    expect(rows.map((x) => [x.workflowId, x.type, x.stage, x.status])).toEqual([
      [id, 'releaseWorkflow', production, 'COMPLETED'],
      [`${id}-${staging}`, 'deployWorkflow', staging, 'COMPLETED'],
      [`${id}-${production}`, 'deployWorkflow', production, 'COMPLETED'],
    ]);
    const table = (await deployctl(q, 'list', '--release', '1.0.1')).out.split('\n');
    expect(table[0]).toMatch(/^WORKFLOWID +TYPE +STAGE +STATUS +PHASE +STARTED$/);
    expect(table[1]).toMatch(new RegExp(`^${id} +releaseWorkflow +${production} +COMPLETED +succeeded +\\S+$`));

    expect(await deployctl(q, 'watch', id)).toMatchObject({
      code: ExitCode.Ok,
      out: expect.stringMatching(/succeeded$/),
    });
  });
}, 240_000);

test('a quarantined version: release and rollback refused with the one line and exit 2; quarantine list shows it; lift refuses who may not and lifts for an approver', async () => {
  const setup = setUp();
  const { production } = setup;
  const held: QuarantineRecord = {
    version: '1.0.2',
    environment: production,
    workflowId: `release-1.0.2-${production}`,
    reason: 'VerificationFailed: GET /health: 503',
    at: '2026-11-26T10:00:00.000Z',
  };
  setup.quarantine.push(held);
  const line = `1.0.2 is quarantined: VerificationFailed: GET /health: 503 (in ${production}, by workflow release-1.0.2-${production}); an approver may lift it with deployctl quarantine lift 1.0.2 --by <name> --reason <text>`;
  await withWorker(setup, async (q) => {
    // An unsigned request where the stages verify requesters: refused by the worker before anything happens.
    const unsigned = await deployctl(q, 'release', '--version', '1.0.1', '--id', 'release-unsigned', '--wait');
    expect(unsigned.code).toBe(ExitCode.BadInput);
    expect(unsigned.out).toMatch(/verifies who requests a release .* deployctl release --ssh-key <key>/);

    const release = await deployctl(
      q,
      'release',
      '--version',
      '1.0.2',
      '--by',
      'carol',
      '--ssh-key',
      people.key('carol'),
      '--wait',
    );
    expect(release.err).toBe('');
    expect(release.code).toBe(ExitCode.BadInput);
    expect(release.out.split('\n')).toContain(`failed: release-1.0.2 (1.0.2): InvalidInput: ${line}`);
    const json = await deployctl(
      q,
      'release',
      '--version',
      '1.0.2',
      '--by',
      'carol',
      '--ssh-key',
      people.key('carol'),
      '--id',
      'release-1.0.2-json',
      '--wait',
      '--json',
    );
    expect(json.code).toBe(ExitCode.BadInput);
    expect(JSON.parse(json.out)).toMatchObject({
      outcome: 'failed',
      refused: 'invalid-input',
      workflowId: 'release-1.0.2-json',
      version: '1.0.2',
      reason: `InvalidInput: ${line}`,
      stages: [],
      phase: 'failed',
    });

    const rollback = await deployctl(
      q,
      'rollback',
      '--env',
      production,
      '--to-version',
      '1.0.2',
      '--requested-by',
      'carol',
      '--ssh-key',
      people.key('carol'),
      '--wait',
    );
    expect(rollback.err).toBe('');
    expect(rollback.code).toBe(ExitCode.BadInput);
    expect(rollback.out.split('\n').at(-1)).toBe(
      `failed: not restored; database unchanged: InvalidInput: toVersion: ${line}`,
    );

    const listed = await deployctl(q, 'quarantine', 'list');
    expect(listed.code).toBe(0);
    expect(listed.out.split('\n')).toEqual([
      expect.stringMatching(/^VERSION +ENVIRONMENT +STATE +SINCE +WORKFLOW +WHY$/),
      expect.stringMatching(
        new RegExp(
          `^1\\.0\\.2 +${production} +quarantined +2026-11-26T10:00:00\\.000Z +release-1\\.0\\.2-${production} +VerificationFailed: GET /health: 503$`,
        ),
      ),
    ]);

    // Refusals: the worker's one line, exit 2.
    const notApprover = await deployctl(
      q,
      'quarantine',
      'lift',
      '1.0.2',
      '--by',
      'carol',
      '--reason',
      'fixed',
      '--ssh-key',
      people.key('carol'),
    );
    expect(notApprover).toMatchObject({
      code: ExitCode.BadInput,
      err: `deployctl: carol is not an approver for ${production}, where 1.0.2 was quarantined`,
    });
    const unproven = await deployctl(q, 'quarantine', 'lift', '1.0.2', '--by', 'alice', '--reason', 'fixed');
    expect(unproven.code).toBe(ExitCode.BadInput);
    expect(unproven.err).toMatch(
      new RegExp(`^deployctl: not verified: ${production} needs proof of who sends it \\(ssh\\)`),
    );
    const forged = await deployctl(
      q,
      'quarantine',
      'lift',
      '1.0.2',
      '--by',
      'alice',
      '--reason',
      'fixed',
      '--ssh-key',
      people.key('mallory'),
    );
    expect(forged.code).toBe(ExitCode.BadInput);
    expect(forged.err).toMatch(/^deployctl: not verified: the SSH signature is not one of alice's keys/);
    expect(setup.quarantine[0].lifted).toBeUndefined();

    // An approver of the quarantining environment, verified by her key.
    const lifted = await deployctl(
      q,
      'quarantine',
      'lift',
      '1.0.2',
      '--by',
      'alice',
      '--reason',
      'the probe was misconfigured',
      '--ssh-key',
      people.key('alice'),
    );
    expect(lifted.err).toBe('');
    expect(lifted.code).toBe(0);
    expect(lifted.out).toMatch(
      new RegExp(
        `^1\\.0\\.2: quarantine in ${production} \\(VerificationFailed: GET /health: 503\\) lifted by alice \\(ssh\\) at \\S+ from quarantine-lift-1\\.0\\.2-\\d{8}T\\d{6}-[0-9a-f]{6}: the probe was misconfigured$`,
      ),
    );
    const after = JSON.parse((await deployctl(q, 'quarantine', 'list', '--json')).out) as QuarantineRecord[];
    expect(after).toEqual([
      {
        ...held,
        lifted: expect.objectContaining({ by: 'alice', via: 'ssh', reason: 'the probe was misconfigured' }),
      },
    ]);
    expect((await deployctl(q, 'quarantine', 'list')).out.split('\n')[2]).toMatch(/^ {2}lifted by alice \(ssh\) at /);
    const again = await deployctl(
      q,
      'quarantine',
      'lift',
      '1.0.2',
      '--by',
      'alice',
      '--reason',
      'again',
      '--ssh-key',
      people.key('alice'),
    );
    expect(again).toMatchObject({
      code: ExitCode.BadInput,
      err: 'deployctl: 1.0.2 is not quarantined: nothing to lift',
    });
  });
}, 240_000);

test('release without --wait prints the planned stages and how to follow it; an abort between stages ends it, watch exits 4', async () => {
  const setup = setUp();
  const { staging, production } = setup;
  const id = 'release-1.0.1';
  await withWorker(setup, async (q) => {
    const started = await deployctl(
      q,
      'release',
      '--version',
      '1.0.1',
      '--by',
      'carol',
      '--ssh-key',
      people.key('carol'),
    );
    expect(started).toMatchObject({ code: 0, err: '' });
    expect(started.out.split('\n').slice(0, 2)).toEqual([
      `started ${id}: release 1.0.1`,
      `  stages: ${staging} (${id}-${staging}) → ${production} (${id}-${production})`,
    ]);
    await waitFor(async () => {
      const s = await status(id);
      return ['soaking', 'awaiting-approval'].includes(s.phase) ? s : undefined;
    }, 60_000);
    const abort = await deployctl(
      q,
      'abort',
      id,
      '--by',
      'alice',
      '--reason',
      'hold for the holidays',
      '--ssh-key',
      people.key('alice'),
    );
    expect(abort.code).toBe(0);
    const watched = await deployctl(q, 'watch', id);
    expect(watched.code).toBe(ExitCode.Aborted);
    expect(watched.out.split('\n').at(-1)).toMatch(/^aborted: .*alice/);
    expect(watched.out).toContain(`stage ${production}: aborted (${id}-${production})`);
  });
}, 240_000);
