/** The sandbox command line: status reports every component, fault changes what the demo reports. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as path from 'node:path';
import { sandboxVar } from '../helpers/sandbox';
import { REPO_ROOT } from '../helpers/tools';

const run = promisify(execFile);
const cli = (...args: string[]) =>
  run(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), [path.join(REPO_ROOT, 'scripts/sandbox/cli.ts'), ...args], {
    cwd: REPO_ROOT,
  });

test('status lists every component as up and exits 0', async () => {
  const { stdout } = await cli('status');
  for (const name of ['kubernetes', 'docker', 'postgres', 's3', 'redis', 'smtp', 'git', 'prometheus', 'demo']) {
    expect(stdout).toMatch(new RegExp(`^up\\s+${name}\\b`, 'm'));
  }
}, 60_000);

test('fault sets and clears a fault on the canary track; bad values are refused', async () => {
  const state = async () =>
    (await (await fetch(`${sandboxVar('DEMO_URL')}/__sandbox/state`)).json()) as {
      faults: Record<string, { errorRate?: number; latencyMs?: number }>;
    };
  try {
    await cli('fault', '--track', 'canary', '--error-rate', '0.3', '--latency-ms', '800');
    expect((await state()).faults.canary).toEqual({ errorRate: 0.3, latencyMs: 800 });
    await expect(cli('fault', '--error-rate', '7')).rejects.toMatchObject({
      stderr: expect.stringContaining('--error-rate must be between 0 and 1'),
    });
  } finally {
    await cli('fault', '--clear');
  }
  expect((await state()).faults.canary).toBeUndefined();
}, 60_000);
