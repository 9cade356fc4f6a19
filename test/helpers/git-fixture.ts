/**
 * A private copy of the sandbox's platform repository (a bare origin and a
 * checkout), so tests can push tags and commits without touching the shared
 * origin that other tests rely on.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { sandboxVar } from './sandbox';

export const git = (cwd: string, ...args: string[]): string =>
  execFileSync(
    'git',
    ['-c', 'user.name=test', '-c', 'user.email=test@example.com', '-c', 'tag.gpgsign=false', ...args],
    { cwd, encoding: 'utf8' },
  );

export interface RepoFixture {
  origin: string;
  checkout: string;
  head: string;
}

export function platformRepoCopy(): RepoFixture {
  const dir = mkdtempSync(path.join(tmpdir(), 'platform-'));
  const origin = path.join(dir, 'origin.git');
  git(dir, 'clone', '-q', '--bare', sandboxVar('GIT_REMOTE'), origin);
  const checkout = path.join(dir, 'checkout');
  git(dir, 'clone', '-q', origin, checkout);
  return { origin, checkout, head: git(checkout, 'rev-parse', 'HEAD').trim() };
}
