/**
 * Replays the committed histories (test/replay/histories) against the
 * current workflow code: whole runs recorded from the end-to-end suites with
 * RECORD_HISTORIES=1, and workflows parked at each waiting point (a gate, a
 * pause, a soak, a monitoring window, the database decision, the environment
 * lock) recorded by test/replay/record-waiting-points.ts, some from the
 * current code and some from older versions (the `--<commit>-parent`
 * files). A parked history is what an upgraded worker replays when it picks
 * up a deployment that waited through the upgrade. A non-deterministic change
 * to a workflow fails here: such a change needs `patched()` (see
 * docs/operations.md) before it may ship, because deployments in flight would
 * otherwise break on the upgraded worker.
 */
import { Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { HISTORIES_DIR } from '../helpers/histories';
import { workflowBundle } from '../helpers/temporal';

const files = readdirSync(HISTORIES_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

interface Recorded {
  workflowId: string;
  events: { eventType: string }[];
}
const read = (file: string): Recorded => JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8')) as Recorded;

/**
 * Every point where a workflow waits for people or for time, as
 * record-waiting-points.ts names its histories (each saved while the
 * workflow was parked there).
 */
const WAITING_POINTS = [
  'canaryWorkflow--parked-at-gate',
  'canaryWorkflow--parked-paused',
  'canaryWorkflow--parked-paused-before-step',
  'canaryWorkflow--parked-after-promote-while-paused',
  'canaryWorkflow--parked-soaking',
  'blueGreenWorkflow--parked-at-gate',
  'blueGreenWorkflow--parked-monitoring',
  'retireColourWorkflow--parked-before-delete',
  'rollbackWorkflow--parked-at-db-decision',
  'rollbackWorkflow--manual-parked-at-db-decision',
  'deployWorkflow--parked-canary-at-gate',
  'deployWorkflow--parked-blue-green-monitoring',
  'deployWorkflow--parked-rollback-at-db-decision',
  'environmentLockWorkflow--parked-holding',
];
/** The versions each waiting point is recorded from: this one, and the parent of 4841158 (issue 16 item 11). */
const VERSIONS = ['', '--4841158-parent'];
/**
 * Waiting points that no older version has, recorded from this one only: a
 * gate where senders are verified (one of two approvals counted), a pause
 * with the environment's maxPause timer running, a canary holding its weight
 * while its environment is frozen (patch canary-holds-while-frozen), and the
 * stop-the-line freeze itself.
 */
const NEWER_WAITING_POINTS = [
  'canaryWorkflow--parked-at-verified-gate',
  'canaryWorkflow--parked-paused-max-pause',
  // A release's soak and promotion gate, and a deployment held by a freeze window.
  'releaseWorkflow--parked-soaking',
  'releaseWorkflow--parked-at-promotion-gate',
  'deployWorkflow--parked-in-freeze-window',
  'canaryWorkflow--parked-frozen',
  'freezeWorkflow--parked-frozen',
  // Issue 19: the pause and the approval between two clusters of an environment.
  'deployWorkflow--parked-between-clusters',
  'deployWorkflow--parked-at-cluster-gate',
];

test('histories of every workflow type are committed', () => {
  const types = new Set(files.map((f) => f.split('--')[0]));
  expect([...types].sort()).toEqual([
    'blueGreenWorkflow',
    'canaryWorkflow',
    'deployWorkflow',
    'environmentLockWorkflow',
    'freezeWorkflow',
    'releaseWorkflow',
    'retireColourWorkflow',
    'rollbackWorkflow',
  ]);
});

test('issue 16 item 11: every waiting point has a recorded history', () => {
  const expected = [
    ...WAITING_POINTS.flatMap((name) => VERSIONS.map((v) => `${name}${v}.json`)),
    ...NEWER_WAITING_POINTS.map((name) => `${name}.json`),
  ];
  expect(expected.filter((f) => !files.includes(f))).toEqual([]);
  // Saved while the workflow waited there: the history ends with the workflow still running.
  const closedEvent =
    /^EVENT_TYPE_WORKFLOW_EXECUTION_(COMPLETED|FAILED|TERMINATED|CANCELED|TIMED_OUT|CONTINUED_AS_NEW)$/;
  const closed = expected.filter((f) => files.includes(f) && closedEvent.test(read(f).events.at(-1)?.eventType ?? ''));
  expect(closed).toEqual([]);
});

test.each(files)(
  '%s replays without non-determinism',
  async (file) => {
    // The SDK decodes the CLI's JSON form of the events itself.
    const { workflowId, events } = read(file);
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, { events }, workflowId);
  },
  60_000,
);
