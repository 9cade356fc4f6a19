import { formatDuration, parseDuration } from '../../src/domain/duration';

test.each([
  ['300ms', 300],
  ['30s', 30_000],
  ['5m', 300_000],
  ['1h30m', 5_400_000],
  ['2d', 172_800_000],
  [1500, 1500],
])('parses %j', (input, ms) => {
  expect(parseDuration(input)).toBe(ms);
});

test.each([['-5m'], ['5'], ['five minutes'], [''], ['5m;'], [-1], [1.5], [Number.NaN], [null], ['9'.repeat(50) + 's']])(
  'refuses %j',
  (input) => {
    expect(() => parseDuration(input, 'soak')).toThrow(/soak must/);
  },
);

test('formats for people', () => {
  expect(formatDuration(250)).toBe('250ms');
  expect(formatDuration(2500)).toBe('2.5s');
  expect(formatDuration(300_000)).toBe('5m');
  expect(formatDuration(5_430_000)).toBe('1h30m30s');
});
