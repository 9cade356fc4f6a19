import type { DeploymentStatus } from '../../src/domain/status';
import {
  buildSummary,
  changelogEntry,
  changelogMarker,
  collectIssues,
  deriveTimings,
  humanDuration,
  insertChangelogEntry,
  monitoringFromAnalysis,
  rollbackLine,
  summaryKey,
  type SummaryInput,
} from '../../src/domain/summary';

const at = (min: number) => new Date(Date.parse('2025-11-15T10:00:00Z') + min * 60_000).toISOString();

function status(over: Partial<DeploymentStatus> = {}): DeploymentStatus {
  return {
    workflow: 'deploy',
    workflowId: 'deploy-ai-saas-1.0.1',
    version: '1.0.1',
    environment: 'production',
    strategy: 'canary',
    requestedBy: 'DevOps Team',
    phase: 'succeeded',
    startedAt: at(0),
    endedAt: at(15),
    steps: [
      { name: 'resolve plan', state: 'succeeded', startedAt: at(0), endedAt: at(0.1) },
      { name: 'build images', state: 'succeeded', startedAt: at(0.5), endedAt: at(3) },
      { name: 'push images', state: 'succeeded', startedAt: at(3), endedAt: at(5.5) },
      { name: 'backup database', state: 'succeeded', startedAt: at(5.5), endedAt: at(6) },
      { name: 'migrate', state: 'succeeded', startedAt: at(6), endedAt: at(6.5) },
      { name: 'canary', state: 'succeeded', startedAt: at(6.5), endedAt: at(15) },
    ],
    approvals: [],
    aborts: [],
    pauses: [],
    ignoredSignals: [],
    notificationFailures: 0,
    children: [],
    ...over,
  };
}

const input = (over: Partial<SummaryInput> = {}): SummaryInput => ({
  project: 'ai-saas',
  status: status(),
  previousVersion: '1.0.0',
  changes: [
    { subject: 'Fix auth token validation' },
    { subject: 'Add response caching' },
    { subject: 'Add email_verified_at index' },
  ],
  migrations: { applied: ['0002_add_email_verified_at_index.sql'] },
  monitoring: { errorRate: 0.002, p95Ms: 250.4, activeConnections: 150 },
  ...over,
});

test('the summary follows the runbook template', () => {
  const s = buildSummary(input());
  expect(s.markdown).toBe(
    [
      '# Deployment Summary - v1.0.1',
      '',
      '**Date**: 2025-11-15',
      '**Deployed By**: DevOps Team',
      '**Status**: ✓ Successful',
      '**Environment**: production',
      '**Workflow**: deploy-ai-saas-1.0.1',
      '',
      '## Changes Deployed',
      '- Fix auth token validation',
      '- Add response caching',
      '- Add email_verified_at index',
      '',
      '## Database Migrations',
      '- 0002_add_email_verified_at_index.sql',
      '- No data migrations',
      '',
      '## Deployment Time',
      '- Build: 5 minutes',
      '- Deploy: 9 minutes 30 seconds',
      '- Total: 15 minutes',
      '',
      '## Issues Encountered',
      'None',
      '',
      '## Rollback Status',
      'Ready (previous version v1.0.0 available)',
      '',
      '## Monitoring',
      '- Error rate: 0.2%',
      '- P95 latency: 250ms',
      '- Active connections: 150',
      '',
    ].join('\n'),
  );
  expect(s.timings).toEqual({ buildMs: 5 * 60_000, deployMs: 9.5 * 60_000, totalMs: 15 * 60_000 });
});

test('timings given by the caller win over derived ones', () => {
  expect(deriveTimings({ status: status(), timings: { buildMs: 1000 } }).buildMs).toBe(1000);
  expect(deriveTimings({ status: status({ steps: [], endedAt: undefined }) })).toEqual({
    buildMs: null,
    deployMs: null,
    totalMs: null,
  });
  expect(humanDuration(null)).toBe('n/a');
  expect(humanDuration(42_000)).toBe('42 seconds');
  expect(humanDuration(60_000)).toBe('1 minute');
  expect(humanDuration(90_000)).toBe('1 minute 30 seconds');
  expect(humanDuration(12 * 60_000 + 20_000)).toBe('12 minutes');
});

test('issues: retries, failures, compensations, aborts, ignored signals, notifications and analysis', () => {
  const s = status({
    phase: 'rolled-back',
    error: 'AnalysisFailed: analysis failed',
    steps: [
      { name: 'push images', state: 'succeeded', attempts: 3 },
      { name: 'migrate', state: 'compensated' },
      { name: 'canary', state: 'failed', error: 'analysis failed' },
    ],
    aborts: [{ signal: 'abort', by: 'alice', at: at(1), reason: 'error spike' }],
    ignoredSignals: [{ signal: 'approve', by: 'bob', at: at(2), ignoredBecause: 'nothing is awaiting approval' }],
    notificationFailures: 2,
    lastAnalysis: {
      at: at(3),
      outcome: 'fail',
      measurements: [{ metric: 'error-rate', track: 'canary', value: 0.3, outcome: 'fail', reason: '0.3 > 0.01' }],
    },
  });
  expect(collectIssues({ status: s, issues: ['Smoke check skipped'] })).toEqual([
    'Step "push images" needed 3 attempts',
    'Step "migrate" was compensated',
    'Step "canary" failed: analysis failed',
    'Aborted by alice: error spike',
    'Signal approve from bob ignored: nothing is awaiting approval',
    '2 notifications could not be delivered',
    'Last analysis fail: error-rate[canary] 0.3 > 0.01',
    'Error: AnalysisFailed: analysis failed',
    'Smoke check skipped',
  ]);
  const md = buildSummary(input({ status: s })).markdown;
  expect(md).toContain('**Status**: ↩ Rolled back');
  expect(md).toContain('## Rollback Status\nRolled back to v1.0.0');
});

test('the database backup is named under the rollback status', () => {
  const md = buildSummary(input({ backup: 's3://ai-saas-backups/postgres/ai_saas_prod_1.0.1.dump' })).markdown;
  expect(md).toContain(
    '## Rollback Status\nReady (previous version v1.0.0 available)\nDatabase backup: s3://ai-saas-backups/postgres/ai_saas_prod_1.0.1.dump\n',
  );
});

test('issue 16 item 8: the rollback status says whether the database was restored, and loudly when its row counts differ', () => {
  const rolledBack = (detail: string, attention?: string) =>
    status({
      phase: 'rolled-back',
      steps: [...status().steps, { name: 'rollback', state: 'succeeded', detail, ...(attention ? { attention } : {}) }],
    });
  const loud =
    "database restored from postgres/ai_saas_prod_1.0.1_1.dump; row counts differ from the backup's: users 1000 → 998; check before reopening traffic";
  const differ = buildSummary(
    input({ status: rolledBack('workloads 6 deployments back; database restored, row counts differ', loud) }),
  );
  expect(differ.markdown).toContain(
    `## Rollback Status\nRolled back to v1.0.0\nRollback: workloads 6 deployments back; database restored, row counts differ\n**Needs attention**: ${loud}\n`,
  );
  expect(differ.issues).toContain(`Step "rollback" needs attention: ${loud}`);

  const verified = buildSummary(input({ status: rolledBack('workloads 6 deployments back; database restored') }));
  expect(verified.markdown).toContain(
    '## Rollback Status\nRolled back to v1.0.0\nRollback: workloads 6 deployments back; database restored\n\n',
  );
  expect(verified.markdown).not.toContain('Needs attention');

  const kept = buildSummary(input({ status: rolledBack('workloads 6 deployments back; database kept') }));
  expect(kept.markdown).toContain('Rollback: workloads 6 deployments back; database kept\n');
});

test('rollback status', () => {
  expect(rollbackLine({ status: status(), previousVersion: undefined })).toBe('Not available (no previous version)');
  expect(rollbackLine({ status: status(), previousVersion: '1.0.0', previousVersionAvailable: false })).toBe(
    'Not ready (previous version v1.0.0 is not available)',
  );
});

test('missing figures say so instead of inventing numbers', () => {
  const md = buildSummary(input({ monitoring: { errorRate: null, p95Ms: Number.NaN } })).markdown;
  expect(md).toContain('- Error rate: n/a (no data)');
  expect(md).toContain('- P95 latency: n/a (no data)');
  expect(md).toContain('- Active connections: n/a (no data)');
  expect(buildSummary(input({ changes: [], migrations: { applied: [] } })).markdown).toContain(
    '- No changes since the previous release',
  );
});

test('secrets never appear in the summary', () => {
  const s = status({
    requestedBy: 'ci',
    error: 'connect failed postgres://app:dbpass99@127.0.0.1/x',
    steps: [{ name: 'notify', state: 'failed', error: 'POST https://hooks.example/T000/SECRETPATH failed' }],
  });
  const md = buildSummary(input({ status: s, secrets: ['https://hooks.example/T000/SECRETPATH'] })).markdown;
  expect(md).not.toContain('dbpass99');
  expect(md).not.toContain('SECRETPATH');
  expect(md).toContain('postgres://app:***@127.0.0.1/x');
});

test('monitoringFromAnalysis takes finite values of the asked track', () => {
  const run = {
    at: at(0),
    outcome: 'inconclusive' as const,
    measurements: [
      { metric: 'error-rate', track: 'stable', value: 0.001, outcome: 'pass' as const },
      { metric: 'p95-latency', track: 'stable', value: null, outcome: 'inconclusive' as const },
      { metric: 'error-rate', track: 'canary', value: 0.5, outcome: 'fail' as const },
    ],
  };
  expect(monitoringFromAnalysis(run, { track: 'stable' })).toEqual({ errorRate: 0.001, p95Ms: null });
  expect(monitoringFromAnalysis(undefined, { track: 'stable' })).toEqual({ errorRate: null, p95Ms: null });
});

describe('changelog', () => {
  const existing = '# Changelog\n\n## v1.0.0\n\n- First production release of the ai-saas platform.\n';

  test('the entry goes first under the title, with its marker', () => {
    const entry = changelogEntry(input());
    const r = insertChangelogEntry(existing, entry, 'ai-saas', '1.0.1');
    expect(r.changed).toBe(true);
    expect(r.text).toBe(
      [
        '# Changelog',
        '',
        '## v1.0.1 - 2025-11-15',
        changelogMarker('ai-saas', '1.0.1'),
        '',
        '- Fix auth token validation',
        '- Add response caching',
        '- Add email_verified_at index',
        '',
        'Migrations: 0002_add_email_verified_at_index.sql',
        '',
        'Deployed to production by DevOps Team (✓ Successful, workflow deploy-ai-saas-1.0.1).',
        '',
        '## v1.0.0',
        '',
        '- First production release of the ai-saas platform.',
        '',
      ].join('\n'),
    );
  });

  test('inserting twice changes nothing the second time', () => {
    const once = insertChangelogEntry(existing, changelogEntry(input()), 'ai-saas', '1.0.1');
    const twice = insertChangelogEntry(
      once.text,
      changelogEntry(input({ status: status({ workflowId: 'another-run' }) })),
      'ai-saas',
      'v1.0.1',
    );
    expect(twice).toEqual({ text: once.text, changed: false });
  });

  test('files without a title or without entries', () => {
    expect(insertChangelogEntry('', 'ENTRY\n', 'p', '1.0.0').text).toBe('ENTRY\n');
    expect(insertChangelogEntry('# Changelog\n\nIntro.\n', 'ENTRY\n', 'p', '1.0.0').text).toBe(
      '# Changelog\n\nIntro.\n\nENTRY\n',
    );
  });
});

test('summaryKey keeps to safe characters', () => {
  expect(summaryKey('summaries/', 'ai-saas', '1.0.1', 'deploy-ai-saas-1.0.1')).toBe(
    'summaries/ai-saas_1.0.1_deploy-ai-saas-1.0.1.md',
  );
  expect(summaryKey('summaries', 'ai-saas', '1.0.1', 'a/b c')).toBe('summaries/ai-saas_1.0.1_a_b_c.md');
});

describe('who steered it', () => {
  test('the summary names the verified requester and each approver with how they were verified', () => {
    const s = status({
      requestedBy: 'carol@example.com',
      steering: {
        verify: 'ssh',
        approvers: [],
        required: 2,
        allowSelfApproval: false,
        requestedVia: 'ssh',
        summary: 'production: senders are verified by SSH signature',
      },
      approvals: [
        {
          signal: 'approve',
          by: 'alice@example.com',
          at: at(10),
          reason: 'approval to move traffic to 100%',
          via: 'ssh',
        },
        {
          signal: 'approve',
          by: 'bob@example.com',
          at: at(11),
          reason: 'approval to move traffic to 100%',
          via: 'ssh',
        },
      ],
    });
    const md = buildSummary(input({ status: s })).markdown;
    expect(md).toContain('**Deployed By**: carol@example.com (verified by SSH signature)');
    expect(md).toContain(
      '**Approved By**: alice@example.com (ssh: approval to move traffic to 100%), bob@example.com (ssh: approval to move traffic to 100%)',
    );
  });

  test('an environment that verifies nobody says the names are as typed', () => {
    const s = status({
      steering: {
        verify: 'none',
        approvers: [],
        required: 1,
        allowSelfApproval: false,
        requestedVia: 'none',
        summary: '',
      },
      approvals: [{ signal: 'promote', by: 'alice', at: at(10) }],
    });
    const md = buildSummary(input({ status: s })).markdown;
    expect(md).toContain('**Deployed By**: DevOps Team (as typed, not verified)');
    expect(md).toContain('**Approved By**: alice (not verified: promote)');
  });
});

test('issue 19: a rollout in waves and clusters lists them in order, with how far each got', () => {
  const s = status({
    waves: [
      { wave: 1, cluster: 'region-a', services: ['auth-service', 'chat-service'], state: 'rolled-back' },
      { wave: 2, cluster: 'region-a', services: ['api-gateway'], state: 'failed' },
      { wave: 1, cluster: 'region-b', services: ['auth-service', 'chat-service'], state: 'pending' },
    ],
  });
  const md = buildSummary(input({ status: s })).markdown;
  expect(md).toContain(
    [
      '## Rollout Order',
      '- region-a, wave 1: auth-service, chat-service: rolled-back',
      '- region-a, wave 2: api-gateway: failed',
      '- region-b, wave 1: auth-service, chat-service: pending',
    ].join('\n'),
  );
  expect(buildSummary(input()).markdown).not.toContain('## Rollout Order');
});
