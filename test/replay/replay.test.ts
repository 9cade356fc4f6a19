/**
 * Replays the committed histories of real runs (test/replay/histories, from
 * the end-to-end suites with RECORD_HISTORIES=1) against the current workflow
 * code. A non-deterministic change to a workflow fails here: such a change
 * needs `patched()` (see docs/operations.md) before it may ship, because
 * deployments in flight would otherwise break on the upgraded worker.
 */
import { Worker } from '@temporalio/worker';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { HISTORIES_DIR } from '../helpers/histories';
import { workflowBundle } from '../helpers/temporal';

const files = readdirSync(HISTORIES_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

test('histories of every workflow type are committed', () => {
  const types = new Set(files.map((f) => f.split('--')[0]));
  expect([...types].sort()).toEqual(['blueGreenWorkflow', 'canaryWorkflow', 'deployWorkflow', 'rollbackWorkflow']);
});

test.each(files)(
  '%s replays without non-determinism',
  async (file) => {
    // The SDK decodes the CLI's JSON form of the events itself.
    const { workflowId, events } = JSON.parse(readFileSync(path.join(HISTORIES_DIR, file), 'utf8')) as {
      workflowId: string;
      events: unknown[];
    };
    await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, { events }, workflowId);
  },
  60_000,
);
