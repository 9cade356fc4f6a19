/**
 * A deployment's result as the DORA figures read it (cli/dora-facts.ts): its
 * timeline when it recorded one, its steps when it is older than that, and
 * nothing for what is not a deployment.
 */
import { factOf } from '../../src/cli/dora-facts';
import type { DeploymentStatus, StepRecord } from '../../src/domain/status';
import type { DeployResult } from '../../src/workflows/deploy';

const at = (m: number) => new Date(Date.parse('2026-11-01T10:00:00.000Z') + m * 60_000).toISOString();

function step(name: string, from: number, to: number, state: StepRecord['state'] = 'succeeded'): StepRecord {
  return { name, state, startedAt: at(from), endedAt: at(to) };
}

function result(
  outcome: DeployResult['outcome'],
  steps: StepRecord[],
  o: Partial<DeploymentStatus> = {},
): DeployResult {
  return {
    outcome,
    workflowId: 'deploy-production-1.0.1',
    version: '1.0.1',
    environment: 'production',
    status: {
      workflow: 'deploy',
      workflowId: 'deploy-production-1.0.1',
      version: '1.0.1',
      environment: 'production',
      phase: outcome,
      startedAt: at(0),
      endedAt: at(60),
      steps,
      approvals: [],
      aborts: [],
      pauses: [],
      ignoredSignals: [],
      notificationFailures: 0,
      children: [],
      ...o,
    },
  };
}

const before = [step('resolve plan', 0, 1), step('pre-flight', 1, 2), step('migrations', 2, 5)];

test('a recorded timeline is used as it is', () => {
  const timeline = {
    committedAt: at(-600),
    rolloutStartedAt: at(6),
    failedAt: at(20),
    stableAt: at(25),
  };
  const f = factOf(result('rolled-back', [...before, step('update images', 7, 8)], { timeline }));
  expect(f).toEqual({
    workflowId: 'deploy-production-1.0.1',
    environment: 'production',
    version: '1.0.1',
    outcome: 'rolled-back',
    startedAt: at(0),
    endedAt: at(60),
    ...timeline,
  });
});

test('an older success: rollout start from its first rollout step, live when it ended, no commit time', () => {
  const f = factOf(
    result('succeeded', [
      ...before,
      step('configuration snapshots (region-a, wave 1 of 2)', 6, 7),
      step('update images (region-a, wave 1 of 2)', 7, 8),
      step('canary', 9, 50),
      step('summary', 51, 52),
    ]),
  );
  expect(f).toEqual({
    workflowId: 'deploy-production-1.0.1',
    environment: 'production',
    version: '1.0.1',
    outcome: 'succeeded',
    startedAt: at(0),
    endedAt: at(60),
    rolloutStartedAt: at(6),
    liveAt: at(60),
    fromSteps: true,
  });
});

test('an older rollback: failure at the first failed step after the rollout began, stable when the rollback ended', () => {
  const f = factOf(
    result('rolled-back', [
      step('pre-flight', 1, 2, 'failed'),
      step('canary', 9, 30, 'failed'),
      step('rollback', 31, 40),
      step('summary', 41, 42),
    ]),
  );
  expect(f).toMatchObject({ rolloutStartedAt: at(9), failedAt: at(30), stableAt: at(40), fromSteps: true });
  expect(f?.liveAt).toBeUndefined();
});

test('an older abort: failure when the abort came, before any step failed', () => {
  const aborts = [{ signal: 'abort', by: 'bob', at: at(12), reason: 'enough' }];
  const f = factOf(result('aborted', [step('blue-green', 9, 20, 'failed'), step('rollback', 21, 30)], { aborts }));
  expect(f).toMatchObject({ outcome: 'aborted', rolloutStartedAt: at(9), failedAt: at(12), stableAt: at(30) });
});

test('an older failed rollback: failed, never stable', () => {
  const f = factOf(result('failed', [step('update images', 9, 10, 'failed'), step('rollback', 11, 12, 'failed')]));
  expect(f).toMatchObject({ outcome: 'failed', rolloutStartedAt: at(9), failedAt: at(10) });
  expect(f?.stableAt).toBeUndefined();
});

test('a failure before the rollout: no rollout start, so no change failure', () => {
  const f = factOf(result('failed', [...before, step('database backup', 5, 6, 'failed')]));
  expect(f?.rolloutStartedAt).toBeUndefined();
  expect(f?.failedAt).toBeUndefined();
});

test('no end recorded: the last step that ended', () => {
  const f = factOf(result('succeeded', [step('update images', 7, 8), step('summary', 9, 12)], { endedAt: undefined }));
  expect(f).toMatchObject({ endedAt: at(12), liveAt: at(12) });
});

test('refused deployments and dry runs are not deployments', () => {
  expect(factOf({ ...result('failed', before), refused: 'deployment-in-progress' })).toBeUndefined();
  expect(factOf({ ...result('failed', before), refused: 'frozen' })).toBeUndefined();
  expect(factOf(result('planned', before))).toBeUndefined();
});
