/**
 * deployctl release, quarantine and list --release without a server:
 * argument checking (bad input never reaches Temporal), what a release's
 * status, stages, outcome and start look like, which signals a release takes
 * between stages and during a stage, and the quarantine table.
 */
import type { QuarantineRecord } from '../../src/activities/contracts';
import { signalApplies, type Ctx } from '../../src/client';
import { quarantineWorkflowId, formatLifted } from '../../src/cli/commands/quarantine';
import { releaseOrder, RELEASE_LIST_COLUMNS } from '../../src/cli/commands/read';
import { formatReleaseStarted, releaseWorkflowId } from '../../src/cli/commands/release';
import { ExitCode, exitCodeFor } from '../../src/cli/exit-codes';
import { activeChildId, formatQuarantine, formatStages, formatStatus, formatTable } from '../../src/cli/format';
import { main } from '../../src/client';
import { releaseOutcomeLine, statusJson } from '../../src/cli/session';
import type { DeploymentStatus, StageStatus } from '../../src/domain/status';
import { workflowIdProblem } from '../../src/domain/workflow-id';

function ctx(): Ctx & { outs: string[]; errs: string[] } {
  const outs: string[] = [];
  const errs: string[] = [];
  // An address nothing listens on: reaching it would be a bug in these tests.
  return {
    outs,
    errs,
    out: (l) => outs.push(l),
    err: (l) => errs.push(l),
    env: { TEMPORAL_ADDRESS: '127.0.0.1:1' },
    isTTY: false,
  };
}

const run = async (...args: string[]) => {
  const c = ctx();
  const code = await main(['node', 'deployctl', ...args], c);
  return { code, out: c.outs.join('\n'), err: c.errs.join('\n') };
};

describe('bad input is refused with one line and exit 2, before any connection', () => {
  test.each([
    [['release'], /release needs --version, e.g. --version 1\.0\.1/],
    [['release', '--version', '1.0'], /invalid release input: version: invalid version "1.0"/],
    [['release', '--version', '1.0.1+build'], /build metadata/],
    [['release', '--version', '1.0.1', '--through', 'staging,staging'], /through must not repeat an environment/],
    [['release', '--version', '1.0.1', '--through', 'staging,$(id)'], /through\.1: an environment name/],
    [['release', '--version', '1.0.1', '--by', 'a`id`'], /requestedBy/],
    [['release', '--version', '1.0.1', '--id', 'release 1'], /is not a workflow id/],
    [['release', '--version', '1.0.1', '--id', 'deploy-lock-production'], /reserved for environment locks/],
    [['list', '--release', "1.0.1' OR 1=1"], /invalid --release: invalid version/],
    [['quarantine', 'lift', '1.0', '--reason', 'x'], /invalid version "1.0"/],
    [['quarantine', 'lift', '1.0.1'], /required option '--reason <text>' not specified/],
    [['quarantine', 'lift', '1.0.1', '--reason', ''], /--reason must be text of 1 to 1000 characters/],
    [['quarantine', 'lift', '1.0.1', '--reason', 'x', '--by', 'a;b'], /invalid --by "a;b"/],
    [['quarantine', 'frobnicate'], /unknown command 'frobnicate'/],
  ])('%j', async (args, message) => {
    const r = await run(...args);
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.err).toMatch(message);
    expect(r.err).not.toMatch(/unreachable/);
    expect(
      r.err.split('\n').filter((l) => l.startsWith('deployctl:') || l.startsWith('error:')).length,
    ).toBeLessThanOrEqual(1);
  });
});

test('a good release reaches for the server (exit 8 here), after the input passed', async () => {
  const r = await run('release', '--version', 'v1.0.1', '--through', 'staging,production');
  expect(r.code).toBe(ExitCode.Unreachable);
}, 20_000);

test('--help on the new commands, with examples', async () => {
  for (const cmd of [['release'], ['quarantine'], ['quarantine', 'list'], ['quarantine', 'lift']]) {
    const r = await run(...cmd, '--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`Usage: deployctl ${cmd.join(' ')}`);
    expect(r.out).toMatch(/Example/);
  }
  expect((await run('list', '--help')).out).toContain('deployctl list --release 1.0.1');
  expect((await run('release', '--help')).out).toMatch(/2 bad input or refused \(e\.g\. a quarantined version\)/);
});

test('a release exits as a deployment does: 0 succeeded, 3 rolled back, 4 aborted, 7 failed, 2 refused', () => {
  expect(exitCodeFor({ outcome: 'succeeded' })).toBe(ExitCode.Ok);
  expect(exitCodeFor({ outcome: 'rolled-back' })).toBe(ExitCode.RolledBack);
  expect(exitCodeFor({ outcome: 'aborted' })).toBe(ExitCode.Aborted);
  expect(exitCodeFor({ outcome: 'failed' })).toBe(ExitCode.Failed);
  expect(exitCodeFor({ outcome: 'failed', refused: 'invalid-input' })).toBe(ExitCode.BadInput);
});

test("a release's default id follows deploy's pattern and the id rule, and so do its stages' and a quarantine run's", () => {
  expect(releaseWorkflowId('1.0.1')).toBe('release-1.0.1');
  expect(releaseWorkflowId('2.0.0-rc.1')).toBe('release-2.0.0-rc.1');
  expect(workflowIdProblem(`${releaseWorkflowId('2.0.0-rc.1')}-production`)).toBeUndefined();
  const list = quarantineWorkflowId('list', undefined, new Date('2026-11-26T10:00:00.000Z'));
  expect(list).toMatch(/^quarantine-list-20261126T100000-[0-9a-f]{6}$/);
  const lift = quarantineWorkflowId('lift', '1.0.1', new Date('2026-11-26T10:00:00.000Z'));
  expect(lift).toMatch(/^quarantine-lift-1\.0\.1-20261126T100000-[0-9a-f]{6}$/);
  expect(workflowIdProblem(lift)).toBeUndefined();
  expect(quarantineWorkflowId('list')).not.toBe(quarantineWorkflowId('list'));
});

const base = (over: Partial<DeploymentStatus> = {}): DeploymentStatus => ({
  workflow: 'deploy',
  workflowId: 'x',
  version: '1.0.1',
  environment: 'staging',
  phase: 'rolling-out',
  startedAt: '2026-11-26T10:00:00.000Z',
  steps: [],
  approvals: [],
  aborts: [],
  pauses: [],
  ignoredSignals: [],
  notificationFailures: 0,
  children: [],
  ...over,
});

const stages = (...states: StageStatus['state'][]): StageStatus[] =>
  ['staging', 'production'].map((environment, i) => ({
    environment,
    workflowId: `release-1.0.1-${environment}`,
    state: states[i] ?? 'pending',
  }));

const release = (over: Partial<DeploymentStatus> = {}) =>
  base({
    workflow: 'release',
    workflowId: 'release-1.0.1',
    strategy: 'release',
    requestedBy: 'carol',
    release: {
      commit: 'a'.repeat(40),
      images: {
        'api-gateway': 'registry.local/ai-saas/api-gateway@sha256:' + '1'.repeat(64),
        'auth-service': 'registry.local/ai-saas/auth-service@sha256:' + '2'.repeat(64),
      },
    },
    stages: stages('succeeded', 'deploying'),
    children: ['release-1.0.1-staging', 'release-1.0.1-production'],
    steps: [{ name: 'build and push images', state: 'succeeded', durationMs: 2000, detail: '2 images' }],
    ...over,
  });

test('a release: its stages in order with state and deployment id, what a stage waits for, why one ended', () => {
  const between = stages('succeeded', 'waiting');
  between[1].waitingFor = 'a 1h soak in staging with its analysis passing, until 2026-11-26T11:00:00.000Z';
  expect(formatStages(between)).toEqual([
    '  ✓ staging     succeeded  release-1.0.1-staging',
    '  … production  waiting    release-1.0.1-production',
    '      waiting for a 1h soak in staging with its analysis passing, until 2026-11-26T11:00:00.000Z',
  ]);
  const ended = stages('succeeded', 'rolled-back');
  ended[1].reason = 'VerificationFailed: GET /health: 503';
  expect(formatStages(ended)).toEqual([
    '  ✓ staging     succeeded    release-1.0.1-staging',
    '  ↺ production  rolled-back  release-1.0.1-production',
    '      VerificationFailed: GET /health: 503',
  ]);
  expect(formatStages(stages('aborted', 'skipped')).map((l) => l.slice(0, 5))).toEqual(['  ✗ s', '  - p']);
});

test("the status of a release: images and commit, every stage, the deploying stage's steps and what its canary waits for", () => {
  const stage = base({
    workflowId: 'release-1.0.1-production',
    environment: 'production',
    phase: 'canary',
    children: ['release-1.0.1-production-canary'],
    steps: [{ name: 'database backup', state: 'succeeded', durationMs: 1000 }],
  });
  const canary = base({
    workflow: 'canary',
    workflowId: 'release-1.0.1-production-canary',
    environment: 'production',
    phase: 'awaiting-approval',
    steps: [{ name: 'traffic 50%', state: 'succeeded', durationMs: 500 }],
    waitingFor: {
      what: 'approval to move traffic to 100%',
      gate: 'traffic-100',
      since: '2026-11-26T10:30:00.000Z',
      commands: ['deployctl approve release-1.0.1 --by <name>'],
    },
  });
  const text = formatStatus(release(), { now: Date.parse('2026-11-26T10:31:00.000Z') }, stage, canary);
  expect(text).toContain('release release-1.0.1');
  expect(text).toContain('strategy release  phase rolling-out');
  expect(text).toContain(`release commit ${'a'.repeat(12)}, images (the same in every stage):`);
  expect(text).toMatch(/ {4}api-gateway {3}registry\.local\/ai-saas\/api-gateway@sha256:1{64}/);
  expect(text).toContain(
    '  stages:\n    ✓ staging     succeeded  release-1.0.1-staging\n    … production  deploying  release-1.0.1-production',
  );
  expect(text).toContain('waiting for approval to move traffic to 100% since 2026-11-26T10:30:00.000Z');
  expect(text).toContain('$ deployctl approve release-1.0.1 --by <name>');
  expect(text).toContain('  deploy release-1.0.1-production (canary):');
  expect(text).toContain('    canary release-1.0.1-production-canary (awaiting-approval):');
  expect(text).toMatch(/ {6}✓ traffic 50% 500ms/);
});

test("a release's signals reach the stage that deploys; between stages it takes approve and abort itself", () => {
  // Between stages no stage deploys: the release answers.
  const soaking = release({
    phase: 'soaking',
    stages: stages('succeeded', 'waiting'),
    waitingFor: { what: 'a 1h soak in staging with its analysis passing', since: '' },
  });
  expect(activeChildId(soaking)).toBeUndefined();
  expect(signalApplies('abort', soaking)).toBeUndefined();
  expect(signalApplies('approve', soaking)).toMatch(/approve does not apply in phase soaking/);
  expect(signalApplies('promote', soaking)).toMatch(/promote does not apply between stages \(phase soaking\)/);
  expect(signalApplies('pause', soaking)).toMatch(/does not apply between stages/);
  const gate = release({
    phase: 'awaiting-approval',
    stages: stages('succeeded', 'waiting'),
    waitingFor: {
      what: '1 approval to promote 1.0.1 from staging to production',
      gate: 'promote-production',
      since: '',
    },
  });
  expect(signalApplies('approve', gate)).toBeUndefined();
  // A stage deploys: its canary is what a pause or an approval reaches.
  const deploying = release();
  expect(activeChildId(deploying)).toBe('release-1.0.1-production');
  const stage = base({ phase: 'canary', children: ['release-1.0.1-production-canary'] });
  const canary = base({
    workflow: 'canary',
    phase: 'soaking',
    canary: {
      steps: [5, 100],
      stepIndex: 0,
      weight: 5,
      paused: false,
      failedMeasurements: 0,
      consecutiveInconclusive: 0,
    },
  });
  expect(activeChildId(stage)).toBe('release-1.0.1-production-canary');
  expect(signalApplies('pause', deploying, stage, canary)).toBeUndefined();
  expect(signalApplies('pause', deploying, stage)).toMatch(/no canary is running/);
  expect(signalApplies('abort', release({ phase: 'succeeded' }))).toMatch(/already succeeded/);
  expect(activeChildId(release({ phase: 'aborted' }))).toBeUndefined();
});

test('status --json nests the active child, and its own, under activeChild', () => {
  const stage = base({ workflowId: 'release-1.0.1-production' });
  const canary = base({ workflow: 'canary', workflowId: 'release-1.0.1-production-canary' });
  const json = statusJson({ status: release(), child: stage, grandchild: canary }) as {
    activeChild: { workflowId: string; activeChild: { workflowId: string } };
  };
  expect(json.activeChild.workflowId).toBe('release-1.0.1-production');
  expect(json.activeChild.activeChild.workflowId).toBe('release-1.0.1-production-canary');
  expect(statusJson({ status: release() })).toEqual(release());
});

test("a release's outcome line and what starting one prints", () => {
  expect(
    releaseOutcomeLine({
      outcome: 'succeeded',
      workflowId: 'release-1.0.1',
      version: '1.0.1',
      stages: stages('succeeded', 'succeeded'),
    }),
  ).toBe('succeeded: release-1.0.1 (1.0.1 through staging → production)');
  const quarantined =
    'InvalidInput: 1.0.1 is quarantined: verification failed (in production, by workflow release-1.0.0-production); an approver may lift it with deployctl quarantine lift 1.0.1 --by <name> --reason <text>';
  expect(
    releaseOutcomeLine({
      outcome: 'failed',
      workflowId: 'release-1.0.1',
      version: '1.0.1',
      reason: quarantined,
      stages: [],
    }),
  ).toBe(`failed: release-1.0.1 (1.0.1): ${quarantined}`);

  const started = formatReleaseStarted({
    workflowId: 'release-1.0.1',
    version: '1.0.1',
    stages: stages().map(({ environment, workflowId }) => ({ environment, workflowId })),
    ui: 'http://127.0.0.1:8233/namespaces/default/workflows/release-1.0.1',
  });
  expect(started.split('\n')).toEqual([
    'started release-1.0.1: release 1.0.1',
    '  stages: staging (release-1.0.1-staging) → production (release-1.0.1-production)',
    '  watch:  deployctl watch release-1.0.1',
    '  status: deployctl status release-1.0.1',
    '  list:   deployctl list --release 1.0.1',
    '  steer:  deployctl approve release-1.0.1 --by <name>  (abort, pause, resume, promote alike: the release forwards them to the stage that deploys)',
    '  UI:     http://127.0.0.1:8233/namespaces/default/workflows/release-1.0.1',
  ]);
  expect(formatReleaseStarted({ workflowId: 'r-1', version: '1.0.1', ui: '' })).toContain(
    '  stages: the configured stages, each deployed as r-1-<environment>',
  );
});

test('list --release: the release first, then its stages in the order they started', () => {
  const rows = releaseOrder([
    {
      workflowId: 'release-1.0.1-production',
      type: 'deployWorkflow',
      stage: 'production',
      status: 'COMPLETED',
      phase: 'succeeded',
      started: '2026-11-26T12:00:00.000Z',
    },
    {
      workflowId: 'release-1.0.1-staging',
      type: 'deployWorkflow',
      stage: 'staging',
      status: 'COMPLETED',
      phase: 'succeeded',
      started: '2026-11-26T10:01:00.000Z',
    },
    {
      workflowId: 'release-1.0.1',
      type: 'releaseWorkflow',
      stage: 'production',
      status: 'COMPLETED',
      phase: 'succeeded',
      started: '2026-11-26T10:00:00.000Z',
    },
  ]);
  expect(rows.map((r) => r.workflowId)).toEqual(['release-1.0.1', 'release-1.0.1-staging', 'release-1.0.1-production']);
  expect(formatTable(RELEASE_LIST_COLUMNS, rows)).toEqual([
    'WORKFLOWID                TYPE             STAGE       STATUS     PHASE      STARTED',
    'release-1.0.1             releaseWorkflow  production  COMPLETED  succeeded  2026-11-26T10:00:00.000Z',
    'release-1.0.1-staging     deployWorkflow   staging     COMPLETED  succeeded  2026-11-26T10:01:00.000Z',
    'release-1.0.1-production  deployWorkflow   production  COMPLETED  succeeded  2026-11-26T12:00:00.000Z',
  ]);
});

test('the quarantine table: version, where, held or lifted, since when, which workflow, why; a lift says who, how and why', () => {
  const records: QuarantineRecord[] = [
    {
      version: '1.0.1',
      environment: 'production',
      workflowId: 'release-1.0.1-production',
      reason: 'VerificationFailed: GET /health: 503',
      at: '2026-11-26T10:00:00.000Z',
    },
    {
      version: '1.0.0',
      environment: 'staging',
      workflowId: 'release-1.0.0',
      reason: 'analysis failed: error-rate 0.05 > 0.01',
      at: '2026-11-20T09:00:00.000Z',
      lifted: {
        by: 'alice',
        via: 'ssh',
        reason: 'the alert was a probe misconfiguration',
        at: '2026-11-21T09:00:00.000Z',
        workflowId: 'quarantine-lift-1.0.0-20261121T090000-abcdef',
      },
    },
  ];
  expect(formatQuarantine(records).split('\n')).toEqual([
    'VERSION  ENVIRONMENT  STATE        SINCE                     WORKFLOW                  WHY',
    '1.0.1    production   quarantined  2026-11-26T10:00:00.000Z  release-1.0.1-production  VerificationFailed: GET /health: 503',
    '1.0.0    staging      lifted       2026-11-20T09:00:00.000Z  release-1.0.0             analysis failed: error-rate 0.05 > 0.01',
    '  lifted by alice (ssh) at 2026-11-21T09:00:00.000Z from quarantine-lift-1.0.0-20261121T090000-abcdef: the alert was a probe misconfiguration',
  ]);
  expect(formatQuarantine([])).toBe('no quarantined versions');
  expect(formatLifted([{ ...records[1], lifted: { ...records[1].lifted!, via: 'none' } }])).toBe(
    '1.0.0: quarantine in staging (analysis failed: error-rate 0.05 > 0.01) lifted by alice at 2026-11-21T09:00:00.000Z from quarantine-lift-1.0.0-20261121T090000-abcdef: the alert was a probe misconfiguration',
  );
});
