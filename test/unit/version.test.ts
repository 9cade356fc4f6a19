import { compareVersions, latestRelease, nextVersion, parseVersion, tagOf } from '../../src/domain/version';

describe('parseVersion', () => {
  test.each([
    ['1.0.1', '1.0.1'],
    ['v1.0.1', '1.0.1'],
    ['10.20.30', '10.20.30'],
    ['1.0.1-rc.1', '1.0.1-rc.1'],
  ])('accepts %s as %s', (input, out) => {
    expect(parseVersion(input)).toBe(out);
  });

  test.each([
    ['1.0'],
    ['01.0.1'],
    ['1.0.1; rm -rf /'],
    ['../x'],
    [''],
    ['1'.repeat(300)],
    ['١.٠.١'], // Arabic-Indic digits
    ['vv1.0.1'],
    ['1.0.1\n'],
    ['$(whoami).0.1'],
    ['1.0.1`id`'],
    ['2.0.0+build.5'],
  ])('refuses %j and quotes it', (input) => {
    expect(() => parseVersion(input)).toThrow(/invalid version "/);
    try {
      parseVersion(input);
    } catch (err) {
      const shown = input.length > 60 ? input.slice(0, 60) : input;
      expect((err as Error).message).toContain(JSON.stringify(shown).slice(1, -1).slice(0, 20));
    }
  });

  test('refuses non-strings', () => {
    expect(() => parseVersion(101)).toThrow(/invalid version "101"/);
    expect(() => parseVersion(undefined)).toThrow(/invalid version/);
  });
});

test('tags never double the v', () => {
  expect(tagOf('v1.2.3')).toBe('v1.2.3');
  expect(tagOf('1.2.3')).toBe('v1.2.3');
});

test('bumps from the latest release tag, ignoring pre-releases and junk tags', () => {
  const tags = ['v1.0.0', 'v1.2.0', 'v1.10.0', 'v2.0.0-rc.1', 'nightly', 'v1.9.9'];
  expect(latestRelease(tags)).toBe('1.10.0');
  expect(nextVersion(tags, 'patch')).toBe('1.10.1');
  expect(nextVersion(tags, 'minor')).toBe('1.11.0');
  expect(nextVersion(tags, 'major')).toBe('2.0.0');
  expect(nextVersion([], 'patch')).toBe('0.0.1');
  expect(() => nextVersion(tags, 'huge' as 'patch')).toThrow(/invalid bump "huge"/);
});

test('compares by semantic version, not by text', () => {
  expect(compareVersions('1.10.0', '1.9.0')).toBe(1);
  expect(compareVersions('v1.0.0', '1.0.0')).toBe(0);
  expect(compareVersions('1.0.0-rc.1', '1.0.0')).toBe(-1);
});
