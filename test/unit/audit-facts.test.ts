/**
 * What the workflows record in the audit ledger (domain/audit-facts.ts): the
 * requester, approvals and how each was verified, the plan, digests,
 * migrations, analysis evidence and outcome; never a credential or a token.
 */
import { canonicalJson } from '../../src/domain/audit';
import {
  approvalFacts,
  deploymentFacts,
  freezeFacts,
  releaseStageFacts,
  rollbackFacts,
  verifiedWith,
} from '../../src/domain/audit-facts';
import type { DeploymentStatus, SignalRecord } from '../../src/domain/status';
import { testPlan } from '../helpers/plan';

describe('facts', () => {
  const FINGERPRINT = 'ED25519 SHA256:' + 'A'.repeat(43);
  const approval: SignalRecord = {
    signal: 'approve',
    by: 'bob',
    at: '2026-01-01T00:01:00.000Z',
    note: 'looks good',
    via: 'ssh',
    credential: FINGERPRINT,
  };
  const status = (over: Partial<DeploymentStatus> = {}): DeploymentStatus => ({
    workflow: 'deploy',
    workflowId: 'deploy-production-1.0.1',
    version: '1.0.1',
    environment: 'production',
    phase: 'succeeded',
    startedAt: '2026-01-01T00:00:00.000Z',
    steps: [],
    approvals: [approval],
    aborts: [],
    pauses: [],
    ignoredSignals: [],
    notificationFailures: 0,
    children: [],
    lastAnalysis: {
      at: '2026-01-01T00:05:00.000Z',
      outcome: 'pass',
      weight: 100,
      measurements: [{ metric: 'error-rate', track: 'canary', value: 0.001, threshold: '<= 0.01', outcome: 'pass' }],
    },
    ...over,
  });

  test('a deployment: requester, plan, images, migrations, approvals with how verified, analysis, outcome', () => {
    const plan = testPlan({ version: '1.0.1' }, 'deploy-production-1.0.1');
    const facts = deploymentFacts(plan, status(), 'succeeded', undefined, {
      images: { 'auth-service': 'reg/auth@sha256:abc' },
      migrations: ['001_init.sql'],
      backupKey: 'postgres/x.dump.zst',
    });
    expect(facts).toMatchObject({
      requestedBy: plan.requestedBy,
      requestedVia: 'none',
      plan: { project: 'ai-saas', version: '1.0.1', environment: 'production', commit: plan.commit },
      images: { 'auth-service': 'reg/auth@sha256:abc' },
      migrations: ['001_init.sql'],
      backupKey: 'postgres/x.dump.zst',
      approvals: [{ by: 'bob', via: 'ssh', verifiedWith: FINGERPRINT, note: 'looks good' }],
      analysis: { outcome: 'pass', measurements: [{ metric: 'error-rate', value: 0.001, threshold: '<= 0.01' }] },
      outcome: 'succeeded',
    });
    expect(facts.plan!.services).toContain('auth-service');
  });

  test("without the build's digests a deployment records the plan's image references", () => {
    const plan = testPlan();
    const facts = deploymentFacts(plan, status(), 'failed', 'rollout timed out');
    expect(facts.images!['auth-service']).toBe(plan.services.find((s) => s.name === 'auth-service')!.reference);
    expect(facts.reason).toBe('rollout timed out');
  });

  test('no credential field anywhere, and only a fingerprint or an issuer is kept as verifiedWith', () => {
    const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJl';
    const leaky = { ...approval, via: 'oidc' as const, credential: token };
    const all = [
      deploymentFacts(testPlan(), status({ approvals: [leaky], aborts: [leaky] }), 'aborted'),
      approvalFacts(leaky, 'step-100'),
      freezeFacts({ by: 'carol', reason: 'incident', via: 'oidc', credential: token }),
      rollbackFacts(status({ approvals: [leaky] }), {
        outcome: 'rolled-back',
        workloads: 'rolled back',
        database: 'kept',
      }),
    ];
    for (const facts of all) {
      const text = canonicalJson(facts);
      expect(text).not.toContain('credential');
      expect(text).not.toContain(token);
    }
    expect(verifiedWith('issuer https://id.example.com')).toBe('issuer https://id.example.com');
    expect(verifiedWith(FINGERPRINT)).toBe(FINGERPRINT);
    expect(verifiedWith('-----BEGIN SSH SIGNATURE-----')).toBeUndefined();
  });

  test('an approval, a freeze and an unfreeze', () => {
    expect(approvalFacts(approval, 'step-100')).toEqual({
      approvals: [
        { by: 'bob', at: approval.at, via: 'ssh', verifiedWith: FINGERPRINT, gate: 'step-100', note: 'looks good' },
      ],
      outcome: 'approved',
    });
    expect(freezeFacts({ by: 'carol', reason: 'incident 42' })).toEqual({
      requestedBy: 'carol',
      requestedVia: 'none',
      outcome: 'frozen',
      reason: 'incident 42',
    });
    expect(freezeFacts({ by: 'carol', reason: 'over', via: 'ssh', credential: FINGERPRINT }, 'unfrozen')).toMatchObject(
      { outcome: 'unfrozen', requestedWith: FINGERPRINT },
    );
  });

  test('a manual rollback: who asked, the target, workloads, database, the restore and its backup', () => {
    const facts = rollbackFacts(
      status({ workflow: 'rollback', approvals: [] }),
      {
        outcome: 'rolled-back',
        workloads: 'rolled back to the previous images',
        database: 'restored',
        restore: { key: 'postgres/b.dump.zst', verified: true, differences: [] },
      },
      {
        workflowId: 'rollback-production-x',
        project: 'ai-saas',
        environment: 'production',
        namespace: 'ai-saas',
        services: testPlan().services,
        target: { kind: 'version', version: '1.0.0' },
        restoreDatabase: true,
        backupKey: 'postgres/b.dump.zst',
        reason: 'bad release',
        requestedBy: 'dave',
        requestedVia: 'none',
        databaseDecisionTimeoutMs: 1000,
        rolloutTimeoutMs: 1000,
        traffic: testPlan().traffic,
        registry: 'r',
        searchAttributes: false,
      },
    );
    expect(facts).toMatchObject({
      requestedBy: 'dave',
      rollback: { target: 'version 1.0.0', database: 'restored', restore: { verified: true } },
      backupKey: 'postgres/b.dump.zst',
      outcome: 'rolled-back',
      reason: 'bad release',
    });
  });

  test("a release stage: the release, the stage's deployment and state, the images every stage deploys", () => {
    const facts = releaseStageFacts(
      { workflowId: 'release-1.0.1', project: 'ai-saas', version: '1.0.1', commit: 'abc', requestedBy: 'erin' },
      { environment: 'staging', workflowId: 'release-1.0.1-staging', state: 'succeeded' },
      { api: 'reg/api@sha256:1' },
    );
    expect(facts).toEqual({
      requestedBy: 'erin',
      stage: {
        release: 'release-1.0.1',
        environment: 'staging',
        deployment: 'release-1.0.1-staging',
        state: 'succeeded',
      },
      images: { api: 'reg/api@sha256:1' },
      outcome: 'succeeded',
    });
  });
});
