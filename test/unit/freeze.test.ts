/**
 * Stop the line without a server: the reserved freeze id, the freeze and
 * unfreeze payloads, the texts people read (the hold, the unfreeze command,
 * deployctl's view of a freeze), deployctl's refusal of bad input before it
 * connects, and the worker's answer to who may freeze (verifyFreezer) with a
 * sender check standing in for ssh-keygen.
 */
import { freezeActivities } from '../../src/activities/freeze';
import type { SenderCheck, VerifySenderRequest } from '../../src/activities/contracts';
import { ExitCode } from '../../src/cli/exit-codes';
import { formatFreezeStatus } from '../../src/cli/format';
import { main } from '../../src/client';
import { configSchema } from '../../src/domain/config';
import {
  describeFreezePolicy,
  frozenLine,
  isFreezeStatus,
  unfreezeCommand,
  unfreezeGate,
  type FreezeStatus,
} from '../../src/domain/freeze';
import { checkProof, type ApprovalPolicy } from '../../src/domain/identity';
import { checkSignal } from '../../src/domain/signals';
import { FREEZE_ID_PREFIX, freezeWorkflowId, workflowIdProblem } from '../../src/domain/workflow-id';
import { PATCH_IDS, CANARY_HOLDS_WHILE_FROZEN_PATCH } from '../../src/workflows/patches';
import { testConfig } from '../helpers/plan';

const run = async (...args: string[]) => {
  const outs: string[] = [];
  const errs: string[] = [];
  // An address nothing listens on: reaching it would be a bug where bad input is expected.
  const code = await main(['node', 'deployctl', ...args], {
    out: (l) => outs.push(l),
    err: (l) => errs.push(l),
    env: { TEMPORAL_ADDRESS: '127.0.0.1:1' },
    isTTY: false,
  });
  return { code, out: outs.join('\n'), err: errs.join('\n') };
};

const policy = (p: Partial<ApprovalPolicy> = {}): ApprovalPolicy => ({
  verify: 'none',
  approvers: [],
  required: 1,
  allowSelfApproval: true,
  ...p,
});

describe('the freeze id', () => {
  test(`${FREEZE_ID_PREFIX}<env> is reserved: no deployment, rollback or signal may name it; reading it may`, () => {
    expect(freezeWorkflowId('production')).toBe('deploy-freeze-production');
    expect(workflowIdProblem('deploy-freeze-production')).toBe(
      '"deploy-freeze-production": the prefix "deploy-freeze-" is reserved for stop-the-line freezes (deployctl freeze); choose another id',
    );
    expect(workflowIdProblem('deploy-freeze-production', { freeze: true })).toBeUndefined();
    // The lock's permission is not the freeze's.
    expect(workflowIdProblem('deploy-freeze-production', { lock: true })).toMatch(/reserved for stop-the-line/);
    expect(workflowIdProblem('deploy-freezer-1.0.0')).toBeUndefined();
  });

  test.each([
    ['deploy', '--version', '1.0.1', '--workflow-id', 'deploy-freeze-production'],
    ['abort', 'deploy-freeze-production', '--by', 'alice', '--reason', 'x'],
    ['approve', 'deploy-freeze-production', '--by', 'alice'],
  ])('deployctl %s %j: exit 2 before connecting', async (...args) => {
    const r = await run(...args);
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.err).toMatch(/reserved for stop-the-line freezes/);
  });

  test('deployctl status may read a freeze (it tries to connect)', async () => {
    const r = await run('status', 'deploy-freeze-production');
    expect(r.code).toBe(ExitCode.Unreachable);
  }, 20_000);

  test(`the canary's patch is declared with the others`, () => {
    expect(PATCH_IDS).toContain(CANARY_HOLDS_WHILE_FROZEN_PATCH);
    expect(CANARY_HOLDS_WHILE_FROZEN_PATCH).toBe('canary-holds-while-frozen');
  });
});

describe('freeze and unfreeze payloads', () => {
  test('need a person and a reason; anything else is refused with why', () => {
    expect(checkSignal('freeze', { by: 'alice', reason: 'incident 4711' })).toEqual({
      ok: true,
      value: { by: 'alice', reason: 'incident 4711' },
    });
    expect(checkSignal('unfreeze', { by: 'alice' })).toEqual({
      ok: false,
      by: 'alice',
      reason: 'unfreeze needs "reason": why (people read it while their deployments wait)',
    });
    expect(checkSignal('freeze', { by: 'alice', reason: '   ' })).toMatchObject({ ok: false });
    expect(checkSignal('unfreeze', { by: 'a;b', reason: 'x' })).toMatchObject({ ok: false, reason: /needs "by"/ });
    expect(checkSignal('unfreeze', 'alice')).toMatchObject({ ok: false });
    // The other signals are as they were: an abort without a reason still counts.
    expect(checkSignal('abort', { by: 'alice' })).toEqual({
      ok: true,
      value: { by: 'alice', reason: 'no reason given' },
    });
  });

  test("an unfreeze's gate names its freeze and is a gate a proof may carry", () => {
    const gate = unfreezeGate('0197a3c2-5e1f-7b6a-9c1d-2e3f4a5b6c7d');
    expect(gate).toBe('unfreeze-0197a3c2-5e1f-7b6a-9c1d-2e3f4a5b6c7d');
    const proof = { type: 'ssh', gate, expires: '2030-01-01T00:00:00Z', nonce: 'n'.repeat(24), signature: 'sig' };
    expect(checkProof(proof).ok).toBe(true);
  });
});

describe('what people read', () => {
  test('the unfreeze command is shell-quoted and carries the proof flags the environment needs', () => {
    expect(unfreezeCommand('production')).toBe('deployctl unfreeze --env production --by <name> --reason <text>');
    expect(unfreezeCommand('production', policy({ verify: 'ssh' }))).toBe(
      'deployctl unfreeze --env production --by <name> --reason <text> --ssh-key <your private key or .pub with an agent>',
    );
    expect(unfreezeCommand('production', policy({ verify: 'oidc' }))).toMatch(/ --oidc-token-file <your ID token>$/);
  });

  test('the hold says who froze it, why, what holds and the exact command', () => {
    expect(
      frozenLine(
        'production',
        { by: 'alice', reason: 'incident 4711' },
        'the canary holds at 25%',
        unfreezeCommand('production'),
      ),
    ).toBe(
      'production is frozen by alice: incident 4711; the canary holds at 25% until deployctl unfreeze --env production --by <name> --reason <text>',
    );
  });

  test('who may freeze, and how they are verified', () => {
    expect(describeFreezePolicy('production', policy({ approvers: ['alice', 'bob'] }))).toBe(
      'production: senders are NOT verified (verify: none): the name given with --by is taken as it is; who may freeze and unfreeze: alice, bob (its approvers)',
    );
    expect(describeFreezePolicy('staging', policy({ verify: 'oidc' }))).toBe(
      'staging: senders are verified by OIDC ID token; who may freeze and unfreeze: anyone (its approvers)',
    );
  });

  test("deployctl's view of a freeze: who froze it, how verified, why, what was ignored, how to end it", () => {
    const s: FreezeStatus = {
      workflow: 'freeze',
      workflowId: 'deploy-freeze-production',
      environment: 'production',
      phase: 'frozen',
      startedAt: '2026-11-27T08:00:00.000Z',
      steering:
        'production: senders are verified by SSH signature; who may freeze and unfreeze: alice, bob (its approvers)',
      frozen: {
        by: 'alice',
        via: 'ssh',
        credential: 'ED25519 SHA256:abc',
        reason: 'Black Friday',
        at: '2026-11-27T08:00:01.000Z',
      },
      gate: 'unfreeze-x',
      unfreezeCommand: unfreezeCommand('production', policy({ verify: 'ssh' })),
      ignoredSignals: [
        {
          signal: 'unfreeze',
          by: 'carol',
          at: '2026-11-27T09:00:00.000Z',
          ignoredBecause: 'carol is not an approver for production',
        },
      ],
    };
    expect(isFreezeStatus(s)).toBe(true);
    expect(isFreezeStatus({ workflow: 'deploy' })).toBe(false);
    expect(formatFreezeStatus(s).split('\n')).toEqual([
      'freeze deploy-freeze-production',
      '  environment production  phase frozen',
      '  steering: production: senders are verified by SSH signature; who may freeze and unfreeze: alice, bob (its approvers)',
      '  frozen by alice (ssh ED25519 SHA256:abc) at 2026-11-27T08:00:01.000Z: Black Friday',
      '  new deployments wait at their start; running canaries hold their weight; abort still works',
      '    $ deployctl unfreeze --env production --by <name> --reason <text> --ssh-key <your private key or .pub with an agent>',
      '  ignored unfreeze from carol: carol is not an approver for production',
    ]);
    const refused = formatFreezeStatus({
      ...s,
      phase: 'refused',
      frozen: undefined,
      refused: 'eve is not an approver',
    });
    expect(refused).toContain('refused: eve is not an approver (nothing was frozen)');
    expect(refused).not.toContain('$ deployctl unfreeze');
  });
});

describe('deployctl freeze and unfreeze refuse bad input with exit 2, before connecting', () => {
  test.each([
    [['freeze', '--env', 'production', '--by', 'alice'], /required option '--reason <text>'/],
    [['freeze', '--reason', 'x', '--by', 'alice'], /required option '--env <name>'/],
    [['freeze', '--env', 'Prod_1', '--reason', 'x'], /invalid --env "Prod_1"/],
    [['freeze', '--env', 'production', '--reason', ' ', '--by', 'alice'], /freeze needs "reason"/],
    [['freeze', '--env', 'production', '--reason', 'x', '--by', 'a`id`'], /freeze needs "by"/],
    [['unfreeze', '--env', 'production', '--by', 'alice'], /required option '--reason <text>'/],
    [['unfreeze', '--env', '$(id)', '--reason', 'x'], /invalid --env/],
    [['unfreeze', '--env', 'production', '--reason', 'x'.repeat(1001)], /"reason" must be text of at most 1000/],
  ])('%j', async (args, message) => {
    const r = await run(...args);
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.err).toMatch(message);
    expect(r.err).not.toMatch(/unreachable/);
  });

  test('--help, with an example and the exit codes', async () => {
    for (const cmd of ['freeze', 'unfreeze']) {
      const r = await run(cmd, '--help');
      expect(r.code).toBe(0);
      expect(r.out).toContain(`Usage: deployctl ${cmd}`);
      expect(r.out).toMatch(/Example/);
      expect(r.out).toMatch(/Exit codes: 0 (frozen|unfrozen)/);
    }
  });
});

describe('verifyFreezer: who may freeze and unfreeze an environment', () => {
  const config = configSchema.parse({
    ...testConfig(),
    defaultEnvironment: 'production',
    environments: {
      production: {
        namespace: 'ai-saas',
        approvals: { verify: 'ssh', ssh: { allowedSigners: '/dev/null' }, approvers: ['alice', 'bob'] },
      },
      staging: { namespace: 'ai-saas', approvals: { verify: 'none', approvers: ['alice'] } },
    },
  });
  /** A sender check that believes the proof's `identity` (the real one runs ssh-keygen: freeze-dev-server.test.ts). */
  const asked: VerifySenderRequest[] = [];
  const verifySender = async (req: VerifySenderRequest): Promise<SenderCheck> => {
    asked.push(req);
    const proof = req.proof as { identity?: string; gate?: string } | undefined;
    if (!proof?.identity) return { ok: false, reason: 'production needs proof of who sends it (ssh)' };
    return {
      ok: true,
      sender: {
        identity: proof.identity,
        via: 'ssh',
        groups: [],
        gate: proof.gate ?? '-',
        replayKey: 'k',
        credential: 'ED25519 SHA256:x',
      },
    };
  };
  const { verifyFreezer, freezeState } = freezeActivities({ config, verifySender });
  const ask = (
    signal: 'freeze' | 'unfreeze',
    input: Record<string, unknown>,
    gate = signal === 'freeze' ? '-' : 'unfreeze-1',
  ) =>
    verifyFreezer({
      workflowId: `deploy-freeze-${String(input.environment)}`,
      signal,
      gate,
      input: input as { environment: string; by: string; reason: string },
    });

  test('verify: none takes an approver at their word and refuses anyone else', async () => {
    expect(await ask('freeze', { environment: 'staging', by: 'alice', reason: 'x' })).toMatchObject({
      ok: true,
      by: 'alice',
      via: 'none',
    });
    expect(await ask('freeze', { environment: 'staging', by: 'eve', reason: 'x' })).toMatchObject({
      ok: false,
      reason: 'eve is not an approver for staging',
    });
  });

  test('ssh: the verified identity counts, not the typed name; the statement signs the freeze, its id and reason', async () => {
    asked.length = 0;
    expect(
      await ask('freeze', {
        environment: 'production',
        by: 'mallory',
        reason: 'x',
        proof: { identity: 'bob', gate: '-' },
      }),
    ).toMatchObject({ ok: true, by: 'bob', via: 'ssh', credential: 'ED25519 SHA256:x' });
    expect(asked[0]).toMatchObject({
      environment: 'production',
      message: { workflowId: 'deploy-freeze-production', signal: 'freeze', by: 'mallory', reason: 'x' },
    });
    expect(
      await ask('freeze', {
        environment: 'production',
        by: 'carol',
        reason: 'x',
        proof: { identity: 'carol', gate: '-' },
      }),
    ).toMatchObject({ ok: false, reason: 'carol is not an approver for production' });
    expect(await ask('freeze', { environment: 'production', by: 'alice', reason: 'x' })).toMatchObject({
      ok: false,
      reason: 'not verified: production needs proof of who sends it (ssh)',
    });
  });

  test('a signed unfreeze counts only for the freeze it was signed for', async () => {
    expect(
      await ask('unfreeze', {
        environment: 'production',
        by: 'alice',
        reason: 'x',
        proof: { identity: 'alice', gate: 'unfreeze-1' },
      }),
    ).toMatchObject({ ok: true, by: 'alice' });
    expect(
      await ask('unfreeze', {
        environment: 'production',
        by: 'alice',
        reason: 'x',
        proof: { identity: 'alice', gate: 'unfreeze-0' },
      }),
    ).toMatchObject({
      ok: false,
      reason: 'signed for gate unfreeze-0, but this unfreeze answers gate unfreeze-1: sign it again for this freeze',
    });
  });

  test('an environment the config does not have is refused, naming those it has', async () => {
    expect(await ask('freeze', { environment: 'prod', by: 'alice', reason: 'x' })).toEqual({
      ok: false,
      reason: 'unknown environment "prod": configured are production, staging',
    });
  });

  test('freezeState without a Temporal client: nothing is frozen', async () => {
    expect(await freezeState({ environment: 'production' })).toEqual({});
  });
});
