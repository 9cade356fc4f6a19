/**
 * deployctl without a server: argument checking (bad input never reaches
 * Temporal), exit codes, which signals apply, and the status view.
 */
import { main, signalApplies, type Ctx } from '../../src/client';
import { ExitCode, exitCodeFor } from '../../src/cli/exit-codes';
import { formatStatus, weightBar } from '../../src/cli/format';
import type { DeploymentStatus } from '../../src/domain/status';

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
    [['deploy', '--version', '1.0'], /invalid deploy input: version: invalid version "1.0"/],
    [['deploy', '--version', '1.0.1; rm -rf /'], /invalid version "1.0.1; rm -rf \/"/],
    [['deploy', '--version', '1.0.1', '--bump', 'patch'], /exactly one of "version"/],
    [['deploy'], /exactly one of "version"/],
    [['deploy', '--version', '1.0.1', '--steps', '50,25,100'], /steps must increase strictly/],
    [['deploy', '--version', '1.0.1', '--steps', '5,25,150'], /steps cannot exceed 100/],
    [['deploy', '--version', '1.0.1', '--soak', '-5m'], /soak must look like/],
    [['deploy', '--version', '1.0.1', '--soak', '0s'], /soak must be between/],
    [['deploy', '--version', '1.0.1', '--soak', '400h'], /soak must be between/],
    [['deploy', '--version', '1.0.1', '--services', 'auth-service,auth-service'], /services must not repeat/],
    [['deploy', '--version', '1.0.1', '--services', 'Auth_Service'], /lowercase DNS labels/],
    [['deploy', '--version', '1.0.1', '--strategy', 'yolo'], /Allowed choices are rolling, canary, blue-green/],
    [['deploy', '--version', '1.0.1', '--env', '$(id)'], /environment name/],
    [['deploy', '--version', '1.0.1', '--requested-by', 'a`id`'], /requestedBy/],
    [['rollback', '--to-version', 'v1.0.0', '--to-revision', '3'], /at most one of toVersion or toRevision/],
    [['rollback', '--to-revision', 'x'], /invalid --to-revision "x"/],
    [['rollback', '--restore-db', '../etc/passwd;'], /backupKey/],
    [['approve', 'deploy-x', '--by', 'a;b'], /approve needs "by"/],
    [['abort', 'deploy-x', '--by', 'ops', '--reason', 'x'.repeat(1001)], /"reason" must be text of at most 1000/],
    [['list', '--env', "prod' OR 1=1"], /invalid --env/],
    [['frobnicate'], /unknown command 'frobnicate'/],
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

test('an unreachable server is one line with what to do, exit 8', async () => {
  const r = await run('status', 'deploy-production-1.0.1');
  expect(r.code).toBe(ExitCode.Unreachable);
  expect(r.err).toMatch(
    /^deployctl: Temporal server unreachable at 127\.0\.0\.1:1: start it with `npm start` or set TEMPORAL_ADDRESS/,
  );
}, 20_000);

test('--help on every command, with examples', async () => {
  for (const cmd of [
    'deploy',
    'rollback',
    'status',
    'watch',
    'list',
    'history',
    'approve',
    'abort',
    'pause',
    'resume',
    'promote',
  ]) {
    const r = await run(cmd, '--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`Usage: deployctl ${cmd}`);
    if (!['watch', 'history'].includes(cmd)) expect(r.out).toMatch(/Example/);
  }
});

test('exit codes map outcomes for CI', () => {
  expect(exitCodeFor({ outcome: 'succeeded' })).toBe(0);
  expect(exitCodeFor({ outcome: 'planned' })).toBe(0);
  expect(exitCodeFor({ outcome: 'rolled-back' })).toBe(3);
  expect(exitCodeFor({ outcome: 'aborted' })).toBe(4);
  expect(exitCodeFor({ outcome: 'aborted', timedOut: true })).toBe(5);
  expect(exitCodeFor({ outcome: 'failed', refused: 'deployment-in-progress' })).toBe(6);
  expect(exitCodeFor({ outcome: 'failed', refused: 'invalid-input' })).toBe(2);
  expect(exitCodeFor({ outcome: 'failed' })).toBe(7);
});

const status = (over: Partial<DeploymentStatus> = {}): DeploymentStatus => ({
  workflow: 'deploy',
  workflowId: 'deploy-production-1.0.1',
  version: '1.0.1',
  environment: 'production',
  strategy: 'canary',
  phase: 'soaking',
  startedAt: '2026-11-26T10:00:00.000Z',
  steps: [
    { name: 'release tag', state: 'succeeded', durationMs: 1500, detail: 'v1.0.1 at abc' },
    { name: 'canary', state: 'running', startedAt: '2026-11-26T10:01:00.000Z' },
  ],
  canary: {
    steps: [5, 25, 50, 100],
    stepIndex: 1,
    weight: 25,
    paused: false,
    soakEndsAt: '2026-11-26T10:05:00.000Z',
    failedMeasurements: 0,
    consecutiveInconclusive: 0,
  },
  approvals: [],
  aborts: [],
  pauses: [],
  ignoredSignals: [
    {
      signal: 'approve',
      by: 'bob',
      at: '2026-11-26T10:02:00.000Z',
      ignoredBecause: 'nothing is awaiting approval (phase soaking)',
    },
  ],
  notificationFailures: 1,
  children: ['deploy-production-1.0.1-canary'],
  lastAnalysis: {
    at: '2026-11-26T10:03:00.000Z',
    outcome: 'pass',
    weight: 25,
    measurements: [{ metric: 'error-rate', track: 'canary', value: 0.002, outcome: 'pass', threshold: '<= 0.01' }],
  },
  ...over,
});

test('the status view: ticks, timings, weight bar, soak countdown, analysis, ignored signals', () => {
  const text = formatStatus(status(), { now: Date.parse('2026-11-26T10:03:30.000Z') });
  expect(text).toContain('phase soaking');
  expect(text).toContain(`canary ${weightBar(25)}  steps 5 → 25 → 50 → 100`);
  expect(weightBar(25)).toBe('[#####...............] 25%');
  expect(text).toContain('soak ends in 1m30s');
  expect(text).toMatch(/✓ release tag 1\.5s {2}v1\.0\.1 at abc/);
  expect(text).toMatch(/… canary 2m30s…/);
  expect(text).toContain('error-rate[canary] 0.002 pass (<= 0.01)');
  expect(text).toContain('ignored approve from bob: nothing is awaiting approval (phase soaking)');
  expect(text).toContain('notifications failed: 1');
});

test('waiting for a person shows the exact commands', () => {
  const text = formatStatus(
    status({
      phase: 'awaiting-approval',
      waitingFor: {
        what: 'approval to move traffic to 100%',
        since: '2026-11-26T10:04:00.000Z',
        timeoutAt: '2026-11-26T11:04:00.000Z',
        commands: ['deployctl approve deploy-production-1.0.1 --by <name>'],
      },
    }),
    { now: Date.parse('2026-11-26T10:04:00.000Z') },
  );
  expect(text).toContain(
    'waiting for approval to move traffic to 100% since 2026-11-26T10:04:00.000Z (times out in 1h)',
  );
  expect(text).toContain('$ deployctl approve deploy-production-1.0.1 --by <name>');
});

test('which signals apply now', () => {
  const soaking = status();
  expect(signalApplies('approve', soaking)).toMatch(/approve does not apply in phase soaking/);
  expect(signalApplies('pause', soaking)).toBeUndefined();
  expect(signalApplies('resume', soaking)).toMatch(/not paused/);
  expect(signalApplies('promote', soaking)).toBeUndefined();
  expect(signalApplies('abort', status({ phase: 'succeeded' }))).toMatch(/already succeeded/);
  expect(
    signalApplies(
      'approve',
      status({ phase: 'awaiting-approval', waitingFor: { what: 'approval to move traffic to 100%', since: '' } }),
    ),
  ).toBeUndefined();
  const child = status({
    workflow: 'rollback',
    phase: 'awaiting-db-decision',
    waitingFor: { what: 'a decision on the database', since: '' },
  });
  expect(signalApplies('approve', status({ phase: 'rolling-back' }), child)).toBeUndefined();
});

test('status shows what the environment verifies and how each sender was verified', () => {
  const text = formatStatus(
    status({
      steering: {
        verify: 'ssh',
        approvers: ['alice', 'bob'],
        required: 2,
        allowSelfApproval: false,
        summary: 'production: senders are verified by SSH signature; approvers: alice, bob',
      },
      approvals: [
        {
          signal: 'approve',
          by: 'alice',
          at: '2026-11-26T10:04:00.000Z',
          via: 'ssh',
          credential: 'ED25519 SHA256:abc',
        },
      ],
    }),
    { now: Date.parse('2026-11-26T10:04:30.000Z') },
  );
  expect(text).toContain('steering: production: senders are verified by SSH signature; approvers: alice, bob');
  expect(text).toContain('approved by alice (ssh ED25519 SHA256:abc) at 2026-11-26T10:04:00.000Z');
});
