/**
 * git: a bare repository as `origin` and the release checkout the worker uses,
 * holding the ai-saas platform (scripts/sandbox/demo-repo) tagged v1.0.0,
 * followed by three commits that a 1.0.1 release ships (one adds a
 * migration).
 */
import { appendFileSync, cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { DIR, ensureDir, ROOT, sh, type Component } from './common';

const TEMPLATE = path.join(ROOT, 'scripts', 'sandbox', 'demo-repo');

export function gitPaths() {
  const base = path.join(DIR, 'git');
  return { base, origin: path.join(base, 'origin.git'), checkout: path.join(base, 'checkout') };
}

const IDENTITY = [
  '-c',
  'user.name=ai-saas developers',
  '-c',
  'user.email=dev@ai-saas.example',
  '-c',
  'init.defaultBranch=main',
  '-c',
  'commit.gpgsign=false',
  '-c',
  'tag.gpgsign=false',
];

function git(cwd: string, args: string[]): string {
  return sh('git', [...IDENTITY, ...args], { cwd, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } });
}

/** The commits after v1.0.0: what "changes deployed" lists for 1.0.1. */
const CHANGES: { subject: string; apply: (dir: string) => void }[] = [
  {
    subject: 'Fix auth token validation',
    apply: (d) => {
      appendFileSync(
        path.join(d, 'services/auth-service/server.js'),
        "module.exports.validateToken = (t) => typeof t === 'string' && t.length === 48;\n",
      );
      // Shorter-lived tokens: a configuration change that ships (and rolls back) with the release.
      writeFileSync(
        path.join(d, 'config/auth-service/settings.json'),
        '{\n  "tokenTtlSeconds": 900,\n  "issuer": "https://auth.ai-saas.example"\n}\n',
      );
    },
  },
  {
    subject: 'Add response caching',
    apply: (d) =>
      appendFileSync(path.join(d, 'services/api-gateway/server.js'), 'module.exports.cacheTtlSeconds = 30;\n'),
  },
  {
    subject: 'Add email_verified_at index',
    // The same migration for each migration tool the sandbox runs: built-in, Prisma and dbmate.
    apply: (d) => {
      const why = '-- Speeds up the "verified users" queries of the billing service.\n';
      const sql = 'CREATE INDEX users_email_verified_at_idx ON users (email_verified_at);\n';
      writeFileSync(path.join(d, 'migrations/0002_add_email_verified_at_index.sql'), why + sql);
      const prisma = path.join(d, 'prisma/migrations/20261101000000_add_email_verified_at_index');
      mkdirSync(prisma, { recursive: true });
      writeFileSync(path.join(prisma, 'migration.sql'), why + sql);
      mkdirSync(path.join(d, 'db/migrations'), { recursive: true });
      writeFileSync(
        path.join(d, 'db/migrations/20261101000000_add_email_verified_at_index.sql'),
        `${why}-- migrate:up\n${sql}\n-- migrate:down\nDROP INDEX users_email_verified_at_idx;\n`,
      );
    },
  },
];

export function createRepository(): void {
  const { base, origin, checkout } = gitPaths();
  rmSync(base, { recursive: true, force: true });
  ensureDir('git');
  git(base, ['init', '-q', '--bare', origin]);
  cpSync(TEMPLATE, checkout, { recursive: true });
  git(checkout, ['init', '-q']);
  git(checkout, ['add', '-A']);
  git(checkout, ['commit', '-q', '-m', 'ai-saas platform v1.0.0']);
  git(checkout, ['tag', '-a', 'v1.0.0', '-m', 'Release v1.0.0']);
  for (const c of CHANGES) {
    c.apply(checkout);
    git(checkout, ['add', '-A']);
    git(checkout, ['commit', '-q', '-m', c.subject]);
  }
  git(checkout, ['remote', 'add', 'origin', origin]);
  git(checkout, ['push', '-q', 'origin', 'main', '--tags']);
  git(checkout, ['branch', '-q', '--set-upstream-to=origin/main', 'main']);
}

export function gitComponent(): Component {
  return {
    name: 'git',
    async up() {
      const { origin, checkout } = gitPaths();
      if (!existsSync(path.join(origin, 'HEAD')) || !existsSync(path.join(checkout, '.git'))) createRepository();
      const tags = git(checkout, ['ls-remote', '--tags', '--refs', 'origin']).trim().split('\n').length;
      return `origin ${path.relative(ROOT, origin)} (${tags} tag${tags === 1 ? '' : 's'}), checkout ${path.relative(ROOT, checkout)}`;
    },
    async status() {
      const { origin, checkout } = gitPaths();
      try {
        git(checkout, ['ls-remote', '--exit-code', 'origin', 'refs/tags/v1.0.0']);
        return { ok: true, detail: `origin ${origin}` };
      } catch {
        return { ok: false, detail: 'no origin with tag v1.0.0' };
      }
    },
    async down() {
      // Files only: nothing runs.
    },
    async reset() {
      createRepository();
    },
    env() {
      const { origin, checkout } = gitPaths();
      return { GIT_REMOTE: origin, GIT_CHECKOUT: checkout };
    },
  };
}
