import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { MALLOC_ARENA_MAX, WORKER_NODE_FLAGS, workerProcessEnv } from '../../src/worker-memory';
import { REPO_ROOT } from '../helpers/tools';

test('a worker starts with the bounded heap and two malloc arenas; what a person set is kept', () => {
  expect(workerProcessEnv({ PATH: '/bin' })).toEqual({
    PATH: '/bin',
    NODE_OPTIONS: WORKER_NODE_FLAGS.join(' '),
    MALLOC_ARENA_MAX,
  });
  const own = workerProcessEnv({
    NODE_OPTIONS: '--max-old-space-size=2048 --enable-source-maps',
    MALLOC_ARENA_MAX: '8',
  });
  expect(own.NODE_OPTIONS).toBe('--max-old-space-size=2048 --enable-source-maps --max-semi-space-size=2');
  expect(own.MALLOC_ARENA_MAX).toBe('8');
});

test('every way the project starts a worker uses the same flags, in NODE_OPTIONS so a heap limit of your own wins', () => {
  const flags = WORKER_NODE_FLAGS.join(' ');
  const dockerfile = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
  expect(JSON.parse(/^CMD (\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]')).toEqual(['node', 'dist/src/worker.js']);
  expect(dockerfile).toMatch(/^ENV .*\bMALLOC_ARENA_MAX=2\b/m);
  expect(dockerfile).toContain(`NODE_OPTIONS="${flags}"`);
  expect(dockerfile).toMatch(/apt-get install .*\bzstd\b/);
  const scripts = (
    JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  ).scripts;
  for (const [name, file] of [
    ['worker', 'src/worker.ts'],
    ['worker:io', 'src/io-worker.ts'],
  ])
    expect(scripts[name]).toBe(
      `MALLOC_ARENA_MAX=\${MALLOC_ARENA_MAX:-${MALLOC_ARENA_MAX}} NODE_OPTIONS="${flags} \${NODE_OPTIONS:-}" tsx ${file}`,
    );
});

test('a heap limit of your own, given in NODE_OPTIONS after ours, is the one the worker gets', () => {
  const r = spawnSync(process.execPath, ['-e', "console.log(require('v8').getHeapStatistics().heap_size_limit)"], {
    env: { PATH: process.env.PATH, NODE_OPTIONS: `${WORKER_NODE_FLAGS.join(' ')} --max-old-space-size=1024` },
    encoding: 'utf8',
  });
  expect(Number(r.stdout) / 2 ** 20).toBeGreaterThan(1024);
});
