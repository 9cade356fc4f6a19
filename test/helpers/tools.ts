/** Paths of the Temporal binaries the project provides itself (scripts/tools/temporal.sh). */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const cache = new Map<string, string>();

export function toolPath(kind: 'cli' | 'test-server'): string {
  const envName = kind === 'cli' ? 'TEMPORAL_CLI_PATH' : 'TEMPORAL_TEST_SERVER_PATH';
  const fromEnv = process.env[envName];
  if (fromEnv) return fromEnv;
  let p = cache.get(kind);
  if (!p) {
    p = execFileSync('bash', [path.join(ROOT, 'scripts/tools/temporal.sh'), kind], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    cache.set(kind, p);
  }
  return p;
}

export const REPO_ROOT = ROOT;

/**
 * dbmate's own binary (the optional dependency @dbmate/linux-x64: the npm
 * registry this project installs from serves only that platform's build).
 */
export const DBMATE = path.join(REPO_ROOT, 'node_modules', '@dbmate', 'linux-x64', 'bin', 'dbmate');

/** The Prisma CLI of this repository's devDependencies. */
export const PRISMA = path.join(REPO_ROOT, 'node_modules', '.bin', 'prisma');

/** Command-mode settings that drive the real Prisma CLI (migrations.mode: command), as a team would configure it. */
export function prismaMigrations(timeout: number) {
  return {
    mode: 'command' as const,
    command: [PRISMA, 'migrate', 'deploy'],
    statusCommand: [PRISMA, 'migrate', 'status'],
    pendingPattern: '^(\\d+_\\w+)$',
    pendingExitCodes: [1],
    // prisma.config.ts imports prisma/config and @prisma/adapter-pg: here from this repository's node_modules.
    env: { NODE_PATH: path.join(REPO_ROOT, 'node_modules'), CHECKPOINT_DISABLE: '1' },
    passEnv: [],
    timeout,
  };
}

/** Command-mode settings that drive dbmate (its own migrations table, no schema dump). */
export function dbmateMigrations(timeout: number) {
  const dbmate = [DBMATE, '--migrations-table', 'dbmate_migrations'];
  return {
    mode: 'command' as const,
    command: [...dbmate, '--no-dump-schema', 'up'],
    statusCommand: [...dbmate, 'status', '--exit-code'],
    pendingPattern: '^\\[ \\] (\\S+)$',
    pendingExitCodes: [1],
    env: {},
    passEnv: [],
    timeout,
  };
}
