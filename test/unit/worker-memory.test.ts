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

test('every way the project starts a worker uses the same flags: the image, npm run worker and worker:io', () => {
  const dockerfile = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const cmd = /^CMD (\[.*\])$/m.exec(dockerfile)?.[1];
  expect(JSON.parse(cmd ?? '[]')).toEqual(['node', ...WORKER_NODE_FLAGS, 'dist/src/worker.js']);
  expect(dockerfile).toMatch(new RegExp(`^ENV MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX}$`, 'm'));
  expect(dockerfile).toMatch(/apt-get install .*\bzstd\b/);
  const scripts = (
    JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  ).scripts;
  for (const [name, file] of [
    ['worker', 'src/worker.ts'],
    ['worker:io', 'src/io-worker.ts'],
  ])
    expect(scripts[name]).toBe(
      `MALLOC_ARENA_MAX=\${MALLOC_ARENA_MAX:-${MALLOC_ARENA_MAX}} node ${WORKER_NODE_FLAGS.join(' ')} --import tsx ${file}`,
    );
});
