/**
 * The sandbox's Temporal cluster (`npm run sandbox -- up --temporal cluster`,
 * what CI runs): four services in four processes, the compose file's server
 * version on PostgreSQL with SQL visibility, namespace `default` with the
 * Deploy* search attributes, and the UI server pointed at it. Without the
 * cluster, `status` reports it off (not a failure) and .sandbox/env names no
 * Temporal, so the suites use their own dev servers.
 */
import { Connection } from '@temporalio/client';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { SEARCH_ATTRIBUTE_NAMES } from '../../src/search-attributes';
import { CLUSTER_SERVICES, TEMPORAL_SERVER_VERSION, TEMPORAL_UI_VERSION } from '../../scripts/sandbox/temporal-cluster';
import { sandboxEnv } from '../helpers/sandbox';
import { REPO_ROOT } from '../helpers/tools';

const run = promisify(execFile);
const status = () =>
  run(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), [path.join(REPO_ROOT, 'scripts/sandbox/cli.ts'), 'status'], {
    cwd: REPO_ROOT,
  });

function pidOf(name: string): number {
  // The file holds the pid and its start time.
  return Number(readFileSync(path.join(sandboxEnv().SANDBOX_DIR, 'pids', `${name}.pid`), 'utf8').split(/\s+/)[0]);
}

test('the Temporal cluster: four service processes, the compose version on PostgreSQL, the namespace, the UI (or off, and not used)', async () => {
  const env = sandboxEnv();
  const { stdout } = await status();
  if (!env.TEMPORAL_ADDRESS) {
    expect(stdout).toMatch(/^off\s+temporal\b/m);
    expect(env.TEMPORAL_UI_URL).toBeUndefined();
    return;
  }
  expect(stdout).toMatch(/^up\s+temporal\b/m);
  // One process per service, each alive.
  const pids = CLUSTER_SERVICES.map((s) => pidOf(`temporal-${s}`));
  expect(new Set(pids).size).toBe(CLUSTER_SERVICES.length);
  for (const pid of pids) expect(() => process.kill(pid, 0)).not.toThrow();

  const connection = await Connection.connect({ address: env.TEMPORAL_ADDRESS });
  try {
    const info = await connection.workflowService.getClusterInfo({});
    expect({
      version: info.serverVersion,
      store: info.persistenceStore,
      visibility: info.visibilityStore,
    }).toEqual({ version: TEMPORAL_SERVER_VERSION, store: 'postgres12', visibility: 'postgres12' });
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
    expect(Object.keys(customAttributes ?? {})).toEqual(expect.arrayContaining(SEARCH_ATTRIBUTE_NAMES));
  } finally {
    await connection.close();
  }

  // The UI server answers for this cluster, with the forms people use enabled.
  const settings = (await (await fetch(`${env.TEMPORAL_UI_URL}/api/v1/settings`)).json()) as Record<string, unknown>;
  expect(settings).toMatchObject({ DefaultNamespace: 'default', DisableWriteActions: false, DisableNewsFetch: true });
  expect(String(settings.Version)).toBe(TEMPORAL_UI_VERSION);
}, 60_000);
