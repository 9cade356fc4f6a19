/**
 * Who sent a message, checked for real: SSH signatures made by deployctl's
 * signing code with keys from ssh-keygen and verified by `ssh-keygen -Y
 * verify` against an allowed_signers file; ID tokens from a local issuer
 * verified with jose against its JWKS file.
 */
import { identityActivities } from '../../src/activities/identity/verifier';
import { verifiedRequester } from '../../src/activities/identity/requester';
import { makeProof } from '../../src/cli/proof';
import { configSchema } from '../../src/domain/config';
import { NO_GATE, mayApprove, requestNote, type ApprovalPolicy } from '../../src/domain/identity';
import { testConfig } from '../helpers/plan';
import { localIssuer, sshPeople, type LocalIssuer, type SshPeople } from '../helpers/identity';

const WF = 'deploy-production-1.0.1';
let people: SshPeople;
let idp: LocalIssuer;

function verifier(approvals: Record<string, unknown>) {
  const raw = testConfig();
  const config = configSchema.parse({
    ...raw,
    environments: { production: { namespace: 'ai-saas', approvals } },
  });
  return identityActivities({ config, env: process.env });
}

beforeAll(async () => {
  people = sshPeople(['alice', 'bob', 'mallory'], ['alice', 'bob']);
  idp = await localIssuer();
});

describe('SSH signatures', () => {
  const ssh = () => verifier({ verify: 'ssh', ssh: { allowedSigners: people.allowedSigners } });
  const message = (by: string) => ({ workflowId: WF, signal: 'approve', by, note: 'dashboards green' });

  test("a signature by the principal's key verifies, and names the key", async () => {
    const proof = await makeProof({ sshKey: people.key('alice') }, { ...message('alice'), gate: 'traffic-100' });
    const r = await ssh().verifySender({ environment: 'production', message: message('alice'), proof });
    expect(r).toEqual({
      ok: true,
      sender: expect.objectContaining({ identity: 'alice', via: 'ssh', gate: 'traffic-100' }),
    });
    if (r.ok) expect(r.sender.credential).toMatch(/^ED25519 SHA256:/);
  });

  test('a forged name: a key that is not the principal’s does not verify', async () => {
    const proof = await makeProof({ sshKey: people.key('mallory') }, { ...message('alice'), gate: 'traffic-100' });
    const r = await ssh().verifySender({ environment: 'production', message: message('alice'), proof });
    expect(r).toEqual({ ok: false, reason: expect.stringContaining("not one of alice's keys") });
  });

  test('two names from one sender: alice’s key signing as bob does not verify', async () => {
    const proof = await makeProof({ sshKey: people.key('alice') }, { ...message('bob'), gate: 'traffic-100' });
    const r = await ssh().verifySender({ environment: 'production', message: message('bob'), proof });
    expect(r.ok).toBe(false);
  });

  test('a signature over another message (workflow, note) does not verify', async () => {
    const proof = await makeProof({ sshKey: people.key('alice') }, { ...message('alice'), gate: 'traffic-100' });
    const other = await ssh().verifySender({
      environment: 'production',
      message: { ...message('alice'), workflowId: 'deploy-production-9.9.9' },
      proof,
    });
    const note = await ssh().verifySender({
      environment: 'production',
      message: { ...message('alice'), note: 'changed' },
      proof,
    });
    expect([other.ok, note.ok]).toEqual([false, false]);
  });

  test('an expired proof, and one valid for too long, are refused', async () => {
    const old = await makeProof(
      { sshKey: people.key('alice') },
      { ...message('alice'), gate: NO_GATE },
      Date.now() - 10 * 60_000,
    );
    const expired = await ssh().verifySender({ environment: 'production', message: message('alice'), proof: old });
    expect(expired).toEqual({ ok: false, reason: expect.stringContaining('expired') });
    const fresh = await makeProof({ sshKey: people.key('alice') }, { ...message('alice'), gate: NO_GATE });
    const long = { ...fresh!, expires: new Date(Date.now() + 3_600_000).toISOString() };
    const r = await ssh().verifySender({ environment: 'production', message: message('alice'), proof: long });
    expect(r).toEqual({ ok: false, reason: expect.stringContaining('more than 15 minutes') });
  });

  test('no proof, a malformed proof, and an OIDC proof where SSH is configured are refused with the reason', async () => {
    const v = ssh();
    expect(await v.verifySender({ environment: 'production', message: message('alice') })).toEqual({
      ok: false,
      reason: expect.stringContaining('--ssh-key'),
    });
    expect(
      await v.verifySender({ environment: 'production', message: message('alice'), proof: { type: 'ssh' } }),
    ).toEqual({ ok: false, reason: expect.stringContaining('proof: "gate"') });
    const oidc = await makeProof(
      { oidcTokenFile: await idp.tokenFile({ email: 'alice' }) },
      { ...message('alice'), gate: NO_GATE },
    );
    expect(await v.verifySender({ environment: 'production', message: message('alice'), proof: oidc })).toEqual({
      ok: false,
      reason: "the proof's type is oidc, but production verifies ssh",
    });
  });
});

describe('OIDC ID tokens', () => {
  const oidc = (extra: Record<string, unknown> = {}) =>
    verifier({
      verify: 'oidc',
      oidc: { issuer: idp.issuer, audience: idp.audience, jwksFile: idp.jwksFile, groupsClaim: 'groups', ...extra },
    });
  const message = { workflowId: WF, signal: 'approve', by: 'typed-name' };
  const send = async (file: string, v = oidc()) =>
    v.verifySender({
      environment: 'production',
      message,
      proof: await makeProof({ oidcTokenFile: file }, { ...message, gate: 'switch' }),
    });

  test("the token's email names the sender, whatever name was typed, with its groups", async () => {
    const r = await send(await idp.tokenFile({ email: 'alice@example.com', groups: ['release-managers'] }));
    expect(r).toEqual({
      ok: true,
      sender: expect.objectContaining({ identity: 'alice@example.com', via: 'oidc', groups: ['release-managers'] }),
    });
  });

  test.each([
    ['another issuer', { email: 'alice@example.com', iss: 'https://evil.example.test' }, {}, 'iss'],
    ['another audience', { email: 'alice@example.com', aud: 'something-else' }, {}, 'aud'],
    ['no email claim', { sub: 'alice' }, {}, 'email'],
    ['an unverified email', { email: 'alice@example.com', email_verified: false }, {}, 'not verified'],
    ['an expired token', { email: 'alice@example.com' }, { expiresIn: '-1m' }, 'expired'],
  ])('a token with %s is refused', async (_what, claims, opts, reason) => {
    const r = await send(await idp.tokenFile(claims, opts));
    expect(r).toEqual({ ok: false, reason: expect.stringContaining(reason) });
  });

  test('a token signed by a key that is not in the JWKS is refused', async () => {
    const other = await localIssuer(idp.issuer, idp.audience);
    const r = await send(await other.tokenFile({ email: 'alice@example.com' }));
    expect(r).toEqual({ ok: false, reason: expect.stringContaining('refused') });
  });

  test('with requireNonce, a token not issued for this message is refused', async () => {
    const r = await send(await idp.tokenFile({ email: 'alice@example.com', nonce: 'x' }), oidc({ requireNonce: true }));
    expect(r).toEqual({ ok: false, reason: expect.stringContaining('not issued for this message') });
  });
});

describe('who counts', () => {
  const policy = (rules: Partial<ApprovalPolicy> = {}): ApprovalPolicy => ({
    verify: 'ssh',
    approvers: [],
    required: 1,
    allowSelfApproval: false,
    ...rules,
  });

  test('approvers are identities or OIDC groups', () => {
    const p = policy({ approvers: ['alice', 'group:release-managers'] });
    expect(mayApprove(p, 'alice')).toBe(true);
    expect(mayApprove(p, 'bob')).toBe(false);
    expect(mayApprove(p, 'bob', ['release-managers'])).toBe(true);
    expect(mayApprove(policy(), 'anyone')).toBe(true);
  });

  test('a verified environment that forbids self-approval refuses a request without proof, and names the requester from one', async () => {
    const v = verifier({ verify: 'ssh', ssh: { allowedSigners: people.allowedSigners } });
    const facts = { kind: 'deploy' as const, environment: 'production', workflowId: WF, policy: policy() };
    await expect(verifiedRequester({ ...facts, input: { requestedBy: 'alice' } }, v.verifySender)).rejects.toThrow(
      /requestProof: production verifies who requests a deploy .*deployctl deploy --ssh-key/,
    );
    const input = { requestedBy: 'alice', version: '1.0.1', environment: 'production' };
    const requestProof = await makeProof(
      { sshKey: people.key('alice') },
      { workflowId: WF, signal: 'deploy', by: 'alice', gate: NO_GATE, note: requestNote('deploy', input) },
    );
    await expect(verifiedRequester({ ...facts, input: { ...input, requestProof } }, v.verifySender)).resolves.toEqual({
      requestedBy: 'alice',
      requestedVia: 'ssh',
    });
    // The same proof for another version is not this request's.
    await expect(
      verifiedRequester({ ...facts, input: { ...input, version: '2.0.0', requestProof } }, v.verifySender),
    ).rejects.toThrow(/requestProof: the SSH signature/);
    // Where self-approval is allowed an unverified request goes on, its name marked as typed.
    await expect(
      verifiedRequester(
        { ...facts, policy: policy({ allowSelfApproval: true }), input: { requestedBy: 'x' } },
        v.verifySender,
      ),
    ).resolves.toEqual({ requestedBy: 'x', requestedVia: 'none' });
  });
});
