/**
 * Verified approvals on the real dev server: the deploy workflow and its
 * canary child run for real, every activity is a fake except the sender
 * check, which is the worker's own (ssh-keygen against an allowed_signers
 * file, jose against a local issuer's JWKS), and proofs are made by
 * deployctl's signing code. Forged, doubled, expired, replayed, self- and
 * wrong-issuer approvals leave the gate closed, each with its reason in the
 * status; two verified people open it.
 */
import { Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { identityActivities } from '../../src/activities/identity/verifier';
import { makeProof } from '../../src/cli/proof';
import { configSchema } from '../../src/domain/config';
import type { DeployPlan } from '../../src/domain/plan';
import { approvalPolicy } from '../../src/domain/planner';
import type { DeploymentStatus } from '../../src/domain/status';
import { deployWorkflow } from '../../src/workflows/deploy';
import { approveSignal, pauseSignal, statusQuery } from '../../src/workflows/messages';
import { resultOf } from '../../src/workflows/outcome';
import { fakeActivities } from '../helpers/fake-activities';
import { localIssuer, sshPeople, type LocalIssuer, type SshPeople } from '../helpers/identity';
import { testConfig, testPlan } from '../helpers/plan';
import { devServerEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

let env: TestWorkflowEnvironment;
let people: SshPeople;
let idp: LocalIssuer;
beforeAll(async () => {
  env = await devServerEnv();
  people = sshPeople(['alice', 'bob', 'carol', 'mallory'], ['alice', 'bob', 'carol']);
  idp = await localIssuer();
}, 60_000);
afterAll(async () => {
  await env?.teardown();
});

let n = 0;
/** A canary plan with a gate before 100%, in an environment of its own that verifies senders with `approvals`. */
function setUp(approvals: Record<string, unknown>, requestedBy: string) {
  const environment = `verified-${++n}-${Date.now() % 100000}`;
  const config = configSchema.parse({
    ...testConfig(),
    defaultEnvironment: environment,
    environments: { [environment]: { namespace: 'ai-saas', approvals: { required: 2, ...approvals } } },
  });
  const plan: DeployPlan = {
    ...testPlan({ version: '1.0.1', canary: { approval: 'before-full', soak: '1s', analysisInterval: '1s' } }),
    environment,
    searchAttributes: false,
    requestedBy,
    requestedVia: config.environments[environment].approvals.verify,
    approvals: approvalPolicy(config.environments[environment].approvals),
  };
  const verify = identityActivities({ config, env: process.env });
  const fake = fakeActivities({ plan, verifySender: verify.verifySender });
  return { plan, fake };
}

type Canary = { query: (q: typeof statusQuery) => Promise<DeploymentStatus> };

/** Runs a deployment to its gate before 100%, then `steer` with the canary child's handle. */
async function atTheGate(
  setup: ReturnType<typeof setUp>,
  steer: (send: (name: string, payload: unknown) => Promise<void>, canary: Canary, workflowId: string) => Promise<void>,
) {
  const taskQueue = uniqueQueue('verified');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: setup.fake.activities,
  });
  return worker.runUntil(async () => {
    const workflowId = `deploy-${taskQueue}`;
    const h = await env.client.workflow.start(deployWorkflow, { taskQueue, workflowId, args: [{ version: '1.0.1' }] });
    const canary = env.client.workflow.getHandle(`${workflowId}-canary`);
    await waitFor(async () => {
      const s = await canary.query(statusQuery).catch(() => undefined);
      return s?.phase === 'awaiting-approval' ? s : undefined;
    }, 60_000);
    await steer((name, payload) => h.signal(name, payload), canary, workflowId);
    return resultOf(h.result());
  });
}

/** Waits until the canary has recorded `count` ignored signals and approvals in all. */
async function recorded(canary: Canary, count: number): Promise<DeploymentStatus> {
  return waitFor(async () => {
    const s = await canary.query(statusQuery);
    return s.ignoredSignals.length + s.approvals.length >= count ? s : undefined;
  }, 30_000);
}

test('SSH: forged, doubled, expired, replayed and self-approvals leave the gate closed with the reason; two verified people open it', async () => {
  const setup = setUp({ verify: 'ssh', ssh: { allowedSigners: people.allowedSigners } }, 'carol');
  let closedGate: DeploymentStatus | undefined;
  let approvals: DeploymentStatus['approvals'] = [];
  const result = await atTheGate(setup, async (send, canary, workflowId) => {
    const s = await canary.query(statusQuery);
    expect(s.waitingFor?.gate).toBe('traffic-100');
    expect(s.waitingFor?.commands?.[0]).toContain('--ssh-key');
    expect(s.steering).toEqual(
      expect.objectContaining({ verify: 'ssh', required: 2, allowSelfApproval: false, requestedVia: 'ssh' }),
    );
    const signed = async (key: string, by: string, now?: number, gate = 'traffic-100') => ({
      by,
      proof: await makeProof({ sshKey: people.key(key) }, { workflowId, signal: 'approve', by, gate }, now),
    });
    await send('approve', { by: 'alice' }); // a name alone
    await send('approve', await signed('mallory', 'alice')); // a forged name
    await send('approve', await signed('carol', 'carol')); // the requester
    await send('approve', await signed('alice', 'alice', Date.now() - 10 * 60_000)); // expired
    await send('approve', await signed('alice', 'alice', undefined, 'traffic-50')); // for another gate
    const alice = await signed('alice', 'alice');
    await send('approve', alice); // counts
    await send('approve', alice); // a replay
    await send('approve', await signed('alice', 'bob')); // two names from one sender
    await send('approve', await signed('alice', 'alice')); // again, freshly signed
    closedGate = await recorded(canary, 9);
    expect(closedGate.phase).toBe('awaiting-approval');
    await send('approve', await signed('bob', 'bob'));
    approvals = (await recorded(canary, 10)).approvals;
  });
  expect(result.outcome).toBe('succeeded');
  const reasons = closedGate!.ignoredSignals.map((i) => `${i.by}: ${i.ignoredBecause}`);
  // Each proof is checked by an activity, so the records come in the order the checks end.
  expect(reasons).toHaveLength(8);
  expect(reasons).toEqual(
    expect.arrayContaining([
      expect.stringMatching(
        /^alice: not verified: .* needs proof of who sends it \(ssh\); send it with deployctl --ssh-key/,
      ),
      expect.stringMatching(/^alice: not verified: the SSH signature is not one of alice's keys/),
      expect.stringMatching(/^carol: carol requested this deployment and may not approve it/),
      expect.stringMatching(/^alice: not verified: the proof expired/),
      'alice: signed for gate traffic-50, but the open gate is traffic-100',
      'alice: this proof was used before (a replay); sign the approve again',
      expect.stringMatching(/^bob: not verified: the SSH signature is not one of bob's keys/),
      'alice: alice already approved this step; a different person must approve',
    ]),
  );
  const canaryStatus = result.status.steps.find((s) => s.name === 'canary');
  expect(canaryStatus?.state).toBe('succeeded');
  expect(setup.fake.weights).toEqual([5, 25, 50, 100]);
  expect(approvals.map((a) => [a.by, a.via, a.credential?.split(' ')[0]])).toEqual([
    ['alice', 'ssh', 'ED25519'],
    ['bob', 'ssh', 'ED25519'],
  ]);
}, 120_000);

test('OIDC: a token from another issuer, and a pause from someone who is not an approver, do not count; two people of the approvers group open the gate', async () => {
  const setup = setUp(
    {
      verify: 'oidc',
      approvers: ['group:release-managers'],
      oidc: { issuer: idp.issuer, audience: idp.audience, jwksFile: idp.jwksFile, groupsClaim: 'groups' },
    },
    'carol@example.com',
  );
  const managers = { groups: ['release-managers'] };
  let before: DeploymentStatus | undefined;
  const result = await atTheGate(setup, async (send, canary, workflowId) => {
    const withToken = async (signal: string, claims: Record<string, unknown>) => ({
      by: 'whoever',
      proof: await makeProof(
        { oidcTokenFile: await idp.tokenFile(claims) },
        { workflowId, signal, by: 'whoever', gate: signal === 'approve' ? 'traffic-100' : '-' },
      ),
    });
    await send(
      'approve',
      await withToken('approve', { email: 'dan@example.com', iss: 'https://evil.test', ...managers }),
    );
    await send('approve', await withToken('approve', { email: 'erin@example.com', groups: ['developers'] }));
    await send(pauseSignal.name, await withToken('pause', { email: 'erin@example.com', groups: ['developers'] }));
    await send('approve', await withToken('approve', { email: 'alice@example.com', ...managers }));
    before = await recorded(canary, 4);
    await send(approveSignal.name, await withToken('approve', { email: 'bob@example.com', ...managers }));
  });
  expect(result.outcome).toBe('succeeded');
  const ignored = before!.ignoredSignals.map((i) => `${i.by}: ${i.ignoredBecause}`);
  expect(ignored).toHaveLength(3);
  expect(ignored).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^whoever: not verified: the ID token was refused: iss/),
      'erin@example.com: erin@example.com is not an approver for ' + setup.plan.environment,
      expect.stringMatching(/^erin@example.com: (erin@example.com is not an approver|nothing to pause)/),
    ]),
  );
  expect(before!.approvals.map((a) => [a.by, a.via])).toEqual([['alice@example.com', 'oidc']]);
}, 120_000);
