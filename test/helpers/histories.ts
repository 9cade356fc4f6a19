/**
 * Recording workflow histories from real runs for the replay tests: with
 * RECORD_HISTORIES=1 the end-to-end suites write each finished workflow's
 * history to test/replay/histories/<name>.json, exported by the `temporal`
 * CLI in the canonical proto3 JSON form. Re-record after a deliberate,
 * versioned (patched) workflow change; never to make a replay test pass.
 */
import type { Client, Connection } from '@temporalio/client';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT, toolPath } from './tools';

export const HISTORIES_DIR = path.join(REPO_ROOT, 'test', 'replay', 'histories');

export async function recordHistory(client: Client, workflowId: string, name: string): Promise<void> {
  if (process.env.RECORD_HISTORIES !== '1') return;
  await client.workflow
    .getHandle(workflowId)
    .result()
    .catch(() => undefined);
  const address = (client.connection as Connection).options.address;
  const json = execFileSync(
    toolPath('cli'),
    [
      'workflow',
      'show',
      '--address',
      address,
      '--namespace',
      client.options.namespace,
      '--workflow-id',
      workflowId,
      '--output',
      'json',
    ],
    { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  // The workflow id goes beside the events: replay needs it, and the history does not hold it.
  const history = JSON.parse(json) as { events: unknown[] };
  writeFileSync(
    path.join(HISTORIES_DIR, `${name}.json`),
    JSON.stringify({ workflowId, events: history.events }, null, 1),
  );
}
