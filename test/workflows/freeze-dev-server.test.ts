/**
 * Stop the line on the real dev server, driven by deployctl as people drive
 * it: the real freezeWorkflow, the real verifyFreezer (the worker's sender
 * check: ssh-keygen against an allowed_signers file, proofs made by
 * deployctl's signing code) and the real freezeState (the worker's own
 * WorkflowClient describing and querying the freeze). A canary (fake
 * activities but freezeState) holds at 5% while its environment is frozen;
 * a second freeze is refused naming who froze it and why; an unfreeze from
 * someone who is not an approver is recorded as ignored with why and the
 * canary keeps holding; an approver's unfreeze ends the freeze and the
 * canary goes on to 100%. With `verify: none` names are taken as typed and
 * the freeze's status says so.
 */
import type { AuditAppendRequest } from '../../src/domain/audit';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { freezeActivities } from '../../src/activities/freeze';
import { identityActivities } from '../../src/activities/identity/verifier';
import { main } from '../../src/client';
import { ExitCode } from '../../src/cli/exit-codes';
import { configSchema, type DeployConfig } from '../../src/domain/config';
import type { FreezeStatus } from '../../src/domain/freeze';
import type { DeployPlan } from '../../src/domain/plan';
import { approvalPolicy } from '../../src/domain/planner';
import type { DeploymentStatus } from '../../src/domain/status';
import { freezeWorkflowId } from '../../src/domain/workflow-id';
import { canaryWorkflow } from '../../src/workflows/canary';
import { freezeStatusQuery, statusQuery } from '../../src/workflows/messages';
import { resultOf } from '../../src/workflows/outcome';
import { startAsChild } from '../helpers/child';
import { fakeActivities } from '../helpers/fake-activities';
import { sshPeople, type SshPeople } from '../helpers/identity';
import { testConfig, testPlan } from '../helpers/plan';
import { devServerEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

let env: TestWorkflowEnvironment;
let people: SshPeople;
beforeAll(async () => {
  env = await devServerEnv();
  // alice and bob approve production; carol has a key the team trusts but is not an approver.
  people = sshPeople(['alice', 'bob', 'carol', 'mallory'], ['alice', 'bob', 'carol']);
}, 60_000);
afterAll(async () => {
  await env?.teardown();
});

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
    pollMs: 100,
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

let n = 0;
/** A config with one environment of its own, governed by `approvals`. */
function configWith(approvals: Record<string, unknown>): { config: DeployConfig; environment: string } {
  const environment = `frz-${++n}-${Date.now() % 100000}`;
  const config = configSchema.parse({
    ...testConfig(),
    defaultEnvironment: environment,
    environments: { [environment]: { namespace: 'ai-saas', approvals } },
  });
  return { config, environment };
}

/** The worker's own freeze activities: the real sender check and the real lookup through this server's client. */
function realFreeze(config: DeployConfig) {
  const identity = identityActivities({ config, env: process.env });
  return freezeActivities({ config, verifySender: identity.verifySender, temporal: env.client.workflow });
}

test('SSH: a frozen environment holds its canary; a second freeze and an unfreeze by a non-approver are refused with why; an approver unfreezes it', async () => {
  const { config, environment } = configWith({
    verify: 'ssh',
    ssh: { allowedSigners: people.allowedSigners },
    approvers: ['alice', 'bob'],
  });
  const plan: DeployPlan = {
    ...testPlan({ version: '1.0.1', canary: { soak: '1s', analysisInterval: '1s' } }),
    environment,
    searchAttributes: false,
    approvals: approvalPolicy(config.environments[environment].approvals),
    freeze: { windows: [], mode: 'wait', checkIntervalMs: 1000 },
  };
  const real = realFreeze(config);
  const fake = fakeActivities({ plan });
  const taskQueue = uniqueQueue('freeze');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: { ...fake.activities, freezeState: real.freezeState, verifyFreezer: real.verifyFreezer },
  });
  const freezeId = freezeWorkflowId(environment);
  const ssh = (who: string) => ['--ssh-key', people.key(who)];
  await worker.runUntil(async () => {
    // Nobody has frozen it: the line runs.
    expect(await real.freezeState({ environment })).toEqual({});

    // carol's key is trusted, but she is not an approver: refused, nothing frozen.
    const carol = await deployctl(
      taskQueue,
      'freeze',
      '--env',
      environment,
      '--by',
      'carol',
      '--reason',
      'x',
      ...ssh('carol'),
    );
    expect(carol.code).toBe(ExitCode.BadInput);
    expect(carol.err).toBe(
      `deployctl: refused: carol is not an approver for ${environment} (${environment} is not frozen)`,
    );
    expect((await env.client.workflow.getHandle(freezeId).describe()).status.name).toBe('FAILED');
    expect(await real.freezeState({ environment })).toEqual({});

    // mallory signs as alice with her own key: not verified.
    const forged = await deployctl(
      taskQueue,
      'freeze',
      '--env',
      environment,
      '--by',
      'alice',
      '--reason',
      'x',
      ...ssh('mallory'),
    );
    expect(forged.code).toBe(ExitCode.BadInput);
    expect(forged.err).toMatch(/refused: not verified: the SSH signature is not one of alice's keys/);

    // alice freezes it.
    const frozen = await deployctl(
      taskQueue,
      'freeze',
      '--env',
      environment,
      '--by',
      'alice',
      '--reason',
      'incident 4711: payments failing',
      ...ssh('alice'),
    );
    expect(frozen.err).toBe('');
    expect(frozen.code).toBe(ExitCode.Ok);
    expect(frozen.out).toMatch(
      new RegExp(`^frozen ${environment} by alice \\(ssh\\) at \\S+: incident 4711: payments failing`),
    );
    const unfreezeLine = `deployctl unfreeze --env ${environment} --by <name> --reason <text> --ssh-key <your private key or .pub with an agent>`;
    expect(frozen.out).toContain(`unfreeze: ${unfreezeLine}`);
    const state = await real.freezeState({ environment });
    expect(state.frozen).toMatchObject({
      by: 'alice',
      via: 'ssh',
      reason: 'incident 4711: payments failing',
      workflowId: freezeId,
    });

    // A second freeze while one runs: refused, saying who froze it and why.
    const again = await deployctl(
      taskQueue,
      'freeze',
      '--env',
      environment,
      '--by',
      'bob',
      '--reason',
      'me too',
      ...ssh('bob'),
    );
    expect(again.code).toBe(ExitCode.Refused);
    expect(again.err).toMatch(
      new RegExp(
        `refused: ${environment} is already frozen by alice \\(ssh\\) since \\S+: incident 4711: payments failing; unfreeze it with deployctl unfreeze`,
      ),
    );

    // A canary of the frozen environment: its first step goes, then it holds at 5%.
    const canaryId = `canary-${taskQueue}`;
    const canary = await startAsChild(env.client, canaryWorkflow, {
      taskQueue,
      workflowId: canaryId,
      args: [{ version: '1.0.1', plan, searchAttributes: false }],
    });
    const held = await waitFor(async () => {
      const s = await canary.query(statusQuery);
      return s.phase === 'frozen' ? s : undefined;
    }, 30_000);
    expect(held.canary?.weight).toBe(5);
    expect(held.waitingFor?.what).toBe(
      `${environment} is frozen by alice: incident 4711: payments failing; the canary holds at 5% until ${unfreezeLine}`,
    );

    // carol may not unfreeze it; mallory's key proves nothing: both recorded as ignored, with why.
    const byCarol = await deployctl(
      taskQueue,
      'unfreeze',
      '--env',
      environment,
      '--by',
      'carol',
      '--reason',
      'looks fine',
      ...ssh('carol'),
    );
    expect(byCarol.code).toBe(ExitCode.BadInput);
    expect(byCarol.err).toBe(`deployctl: not unfrozen: carol is not an approver for ${environment}`);
    const byMallory = await deployctl(
      taskQueue,
      'unfreeze',
      '--env',
      environment,
      '--by',
      'bob',
      '--reason',
      'x',
      ...ssh('mallory'),
    );
    expect(byMallory.code).toBe(ExitCode.BadInput);
    expect(byMallory.err).toMatch(/not unfrozen: not verified: the SSH signature is not one of bob's keys/);
    await new Promise((r) => setTimeout(r, 2500));
    expect((await canary.query(statusQuery)).phase).toBe('frozen');
    expect(fake.weights).toEqual([5]);

    // deployctl status shows the freeze: who, why, what was ignored and the command that ends it.
    const shown = await deployctl(taskQueue, 'status', freezeId);
    expect(shown.code).toBe(ExitCode.Ok);
    expect(shown.out).toContain(`freeze ${freezeId}`);
    expect(shown.out).toMatch(/frozen by alice \(ssh ED25519 \S+\) at \S+: incident 4711: payments failing/);
    expect(shown.out).toContain(`ignored unfreeze from carol: carol is not an approver for ${environment}`);
    expect(shown.out).toContain(`$ ${unfreezeLine}`);

    // bob, an approver, unfreezes it: the freeze ends and the canary goes on to 100%.
    const byBob = await deployctl(
      taskQueue,
      'unfreeze',
      '--env',
      environment,
      '--by',
      'bob',
      '--reason',
      'incident 4711 resolved',
      '--json',
      ...ssh('bob'),
    );
    expect(byBob.err).toBe('');
    expect(byBob.code).toBe(ExitCode.Ok);
    expect(JSON.parse(byBob.out)).toMatchObject({
      workflowId: freezeId,
      frozen: { by: 'alice', via: 'ssh', reason: 'incident 4711: payments failing' },
      unfrozen: { by: 'bob', via: 'ssh', reason: 'incident 4711 resolved' },
    });
    const result = await resultOf(canary.result());
    expect(result.outcome).toBe('promoted');
    expect(fake.weights).toEqual([5, 25, 50, 100]);
    expect(await real.freezeState({ environment })).toEqual({});

    const freeze = env.client.workflow.getHandle(freezeId);
    expect((await freeze.describe()).status.name).toBe('COMPLETED');
    const final: FreezeStatus = await freeze.query(freezeStatusQuery);
    expect(final).toMatchObject({
      phase: 'unfrozen',
      frozen: { by: 'alice', via: 'ssh' },
      unfrozen: { by: 'bob', via: 'ssh', reason: 'incident 4711 resolved' },
    });
    expect(final.steering).toBe(
      `${environment}: senders are verified by SSH signature; who may freeze and unfreeze: alice, bob (its approvers)`,
    );
    expect(final.ignoredSignals.map((i) => i.by)).toEqual(['carol', 'bob']);

    // Nothing is frozen any more: unfreezing again says so.
    const twice = await deployctl(
      taskQueue,
      'unfreeze',
      '--env',
      environment,
      '--by',
      'bob',
      '--reason',
      'x',
      ...ssh('bob'),
    );
    expect(twice.code).toBe(ExitCode.BadInput);
    expect(twice.err).toBe(`deployctl: ${environment} is not frozen (no freeze is running)`);
  });
}, 120_000);

test('verify: none: names are taken as typed and the status says so; only an approver freezes and unfreezes', async () => {
  const { config, environment } = configWith({ verify: 'none', approvers: ['alice'] });
  const fake = fakeActivities();
  const real = realFreeze(config);
  const taskQueue = uniqueQueue('freeze');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: { ...fake.activities, freezeState: real.freezeState, verifyFreezer: real.verifyFreezer },
  });
  const freezeId = freezeWorkflowId(environment);
  await worker.runUntil(async () => {
    const eve = await deployctl(taskQueue, 'freeze', '--env', environment, '--by', 'eve', '--reason', 'x');
    expect(eve.code).toBe(ExitCode.BadInput);
    expect(eve.err).toContain(`refused: eve is not an approver for ${environment}`);

    const frozen = await deployctl(
      taskQueue,
      'freeze',
      '--env',
      environment,
      '--by',
      'alice',
      '--reason',
      'release freeze',
      '--json',
    );
    expect(frozen.code).toBe(ExitCode.Ok);
    expect(JSON.parse(frozen.out)).toMatchObject({
      workflowId: freezeId,
      frozen: { by: 'alice', via: 'none', reason: 'release freeze' },
      unfreezeCommand: `deployctl unfreeze --env ${environment} --by <name> --reason <text>`,
    });
    const s = await env.client.workflow.getHandle(freezeId).query(freezeStatusQuery);
    expect(s.steering).toContain('senders are NOT verified (verify: none): the name given with --by is taken as it is');
    expect((await real.freezeState({ environment })).frozen).toMatchObject({ by: 'alice', via: 'none' });

    const byEve = await deployctl(taskQueue, 'unfreeze', '--env', environment, '--by', 'eve', '--reason', 'x');
    expect(byEve.code).toBe(ExitCode.BadInput);
    expect(byEve.err).toBe(`deployctl: not unfrozen: eve is not an approver for ${environment}`);
    // A signal without a reason, sent by hand: ignored with why, never thrown.
    await env.client.workflow.getHandle(freezeId).signal('unfreeze', { by: 'alice' });
    const after = await waitFor(async () => {
      const x: DeploymentStatus | FreezeStatus = await env.client.workflow.getHandle(freezeId).query(freezeStatusQuery);
      return 'ignoredSignals' in x && x.ignoredSignals.length === 2 ? x : undefined;
    }, 10_000);
    expect(after.ignoredSignals.at(-1)?.ignoredBecause).toMatch(/unfreeze needs "reason"/);

    const byAlice = await deployctl(taskQueue, 'unfreeze', '--env', environment, '--by', 'alice', '--reason', 'done');
    expect(byAlice.code).toBe(ExitCode.Ok);
    expect(byAlice.out).toMatch(
      new RegExp(`^unfrozen ${environment} by alice at \\S+: done \\(frozen by alice since \\S+\\)$`),
    );
    expect(await real.freezeState({ environment })).toEqual({});
    // The freeze and the unfreeze each notify and leave an audit record, as a deployment does; eve's refusal neither.
    expect(fake.argsOf<{ kind: string; text: string }>('notify').map((n) => `${n.kind}: ${n.text}`)).toEqual([
      'frozen: frozen by alice: release freeze',
      'unfrozen: unfrozen by alice: done',
    ]);
    const audit = fake.argsOf<AuditAppendRequest>('appendAudit');
    expect(audit.map((a) => [a.environment, a.event, a.eventId, a.facts.requestedBy, a.facts.outcome])).toEqual([
      [environment, 'freeze', 'freeze', 'alice', 'frozen'],
      [environment, 'unfreeze', 'unfreeze', 'alice', 'unfrozen'],
    ]);
  });
}, 120_000);
