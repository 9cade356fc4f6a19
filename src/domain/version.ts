/**
 * Release versions: strict semantic versions, a leading "v" accepted on input
 * and never doubled on output. Every refusal quotes the input, because the
 * person who typed it needs to see what was wrong with it.
 */
import * as semver from 'semver';

export type Bump = 'patch' | 'minor' | 'major';
export const BUMPS: readonly Bump[] = ['patch', 'minor', 'major'];

/** Long enough for any real version with pre-release and build parts. */
const MAX_LENGTH = 128;
/** ASCII only, so no shell, path or look-alike digit ever gets through. */
const SHAPE = /^v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

export class VersionError extends Error {
  override name = 'VersionError';
}

function quote(input: unknown): string {
  const s = typeof input === 'string' ? input : String(input);
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);
}

/** Returns the version without "v" ("1.0.1"), or throws VersionError quoting the input. */
export function parseVersion(input: unknown): string {
  if (typeof input !== 'string')
    throw new VersionError(`invalid version ${quote(input)}: expected text such as "1.0.1"`);
  if (input.length === 0) throw new VersionError('invalid version "": expected MAJOR.MINOR.PATCH such as "1.0.1"');
  if (input.length > MAX_LENGTH)
    throw new VersionError(`invalid version ${quote(input)}: longer than ${MAX_LENGTH} characters`);
  if (input.includes('+')) {
    throw new VersionError(
      `invalid version ${quote(input)}: build metadata ("+...") cannot be part of a container image tag`,
    );
  }
  if (!SHAPE.test(input)) {
    throw new VersionError(
      `invalid version ${quote(input)}: expected MAJOR.MINOR.PATCH such as "1.0.1" (digits without leading zeros, optional "v")`,
    );
  }
  const v = semver.valid(input.startsWith('v') ? input.slice(1) : input);
  if (!v) throw new VersionError(`invalid version ${quote(input)}: not a semantic version`);
  return v;
}

export function isVersion(input: unknown): boolean {
  try {
    parseVersion(input);
    return true;
  } catch {
    return false;
  }
}

/** The git tag of a version: "v1.0.1". */
export function tagOf(version: string): string {
  return `v${parseVersion(version)}`;
}

export function compareVersions(a: string, b: string): number {
  return semver.compare(parseVersion(a), parseVersion(b));
}

/** The highest release (no pre-release part) among tags such as "v1.0.0"; tags that are not versions are skipped. */
export function latestRelease(tags: readonly string[]): string | undefined {
  const versions = tags
    .filter((t) => isVersion(t))
    .map((t) => parseVersion(t))
    .filter((v) => semver.prerelease(v) === null);
  return versions.sort(semver.compare).at(-1);
}

/** The next version after the latest release tag ("0.0.0" when there is none). */
export function nextVersion(tags: readonly string[], bump: Bump): string {
  if (!BUMPS.includes(bump)) throw new VersionError(`invalid bump ${quote(bump)}: expected patch, minor or major`);
  const base = latestRelease(tags) ?? '0.0.0';
  const next = semver.inc(base, bump);
  if (!next) throw new VersionError(`cannot bump ${quote(base)} by ${bump}`);
  return next;
}
