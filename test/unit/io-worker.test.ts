/**
 * The I/O worker's seam: the process that runs image builds, backups and restores loads
 * neither the Kubernetes client nor the cluster-side adapters, and without
 * temporal.ioTaskQueue it refuses to start in one line.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../helpers/tools';

const tsx = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');

test('loading the I/O worker loads no Kubernetes client and no cluster-side adapter', () => {
  const script = [
    "require('./src/io-worker');",
    'const loaded = Object.keys(require.cache);',
    'console.log(JSON.stringify({',
    "  kube: loaded.filter((k) => k.includes('@kubernetes')).length,",
    "  traffic: loaded.filter((k) => k.includes('/src/activities/traffic/')).length,",
    "  kubernetes: loaded.filter((k) => k.includes('/src/activities/kubernetes/')).length,",
    "  workflows: loaded.filter((k) => k.includes('/src/workflows/')).length,",
    "  analysis: loaded.filter((k) => k.includes('/src/activities/analysis/')).length,",
    "  verify: loaded.filter((k) => k.includes('/src/activities/verify')).length,",
    "  deps: loaded.filter((k) => k.endsWith('/src/activities/deps.ts')).length,",
    "  database: loaded.filter((k) => k.includes('/src/activities/database/')).length,",
    '}));',
  ].join('\n');
  const r = spawnSync(process.execPath, ['-r', 'tsx/cjs', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8' });
  expect(r.status).toBe(0);
  const counts = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, number>;
  expect(counts).toMatchObject({ kube: 0, traffic: 0, kubernetes: 0, workflows: 0, analysis: 0, verify: 0, deps: 0 });
  // It does load what it runs.
  expect(counts.database).toBeGreaterThan(0);
});

test('without temporal.ioTaskQueue the I/O worker refuses to start in one line that says what to set', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'io-worker-'));
  const config = path.join(dir, 'deploy.config.yaml');
  writeFileSync(config, readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8'));
  const r = spawnSync(tsx, ['src/io-worker.ts'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DEPLOY_CONFIG: config, REGISTRY: '127.0.0.1:5000' },
    timeout: 60_000,
  });
  expect(r.status).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^io-worker: .*names no temporal\.ioTaskQueue: set it \(e\.g\. deployments-io\)/);
});
