/**
 * How a worker process is started so that its memory stays bounded
 * (docs/benchmarks.md, concurrency; docs/operations.md, "Scaling workers").
 * Node sizes its heap from the machine's memory, so on a large machine V8
 * lets a worker's heap grow far beyond what it uses before collecting; a
 * limit and a small young generation keep the RSS near the live set. glibc
 * gives each of the Rust core's threads its own malloc arena; two arenas cut
 * the RSS they hold with no measured cost. One list of flags for every way
 * a worker starts: npm start, npm run worker, the image (Dockerfile), the
 * benchmarks; test/unit/worker-memory.test.ts checks they agree.
 */
import { getHeapStatistics } from 'node:v8';

export const WORKER_NODE_FLAGS = ['--max-old-space-size=384', '--max-semi-space-size=2'] as const;
export const MALLOC_ARENA_MAX = '2';

/** The environment a worker process starts with: the flags a person did not set in NODE_OPTIONS, and MALLOC_ARENA_MAX unless set. */
export function workerProcessEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const own = env.NODE_OPTIONS ?? '';
  const missing = WORKER_NODE_FLAGS.filter((f) => !own.includes(f.split('=')[0]));
  return {
    ...env,
    NODE_OPTIONS: [own, ...missing].filter(Boolean).join(' '),
    MALLOC_ARENA_MAX: env.MALLOC_ARENA_MAX ?? MALLOC_ARENA_MAX,
  };
}

/** The V8 heap limit this process runs with, for the worker's start-up line. */
export function heapLimit(): string {
  return `heap limit ${Math.round(getHeapStatistics().heap_size_limit / 2 ** 20)} MiB`;
}
