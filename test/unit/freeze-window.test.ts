/**
 * Freeze windows: whether a moment is inside one and when deploying is
 * allowed again, on each zone's own clock (across both changes of clocks),
 * with windows that join up merged and a config that never leaves a gap
 * answered within a bound; and the config refusing what it cannot mean.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describeFreeze, FREEZE_LOOKAHEAD_DAYS, freezeAt, type FreezeWindow } from '../../src/domain/freeze-window';
import { freezeSchema } from '../../src/domain/config-freeze';
import { REPO_ROOT } from '../helpers/tools';

type WindowInput = Partial<Omit<FreezeWindow, 'days'>> & { days?: string[]; from: string; to: string };

const windows = (...w: WindowInput[]): FreezeWindow[] => freezeSchema.parse({ windows: w }).windows;
const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
const untilOf = (w: FreezeWindow[], now: string) => iso(freezeAt(w, at(now))?.until);

/** Every refusal of the schema as "path: message". */
function refusals(input: unknown): string[] {
  const r = freezeSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

describe('inside and outside a window', () => {
  const nightly = windows({ from: '18:00', to: '20:00' }); // every day, UTC

  test('inside: frozen until the end of the window', () => {
    const f = freezeAt(nightly, at('2026-06-10T19:00:00Z'));
    expect(f).toMatchObject({ until: at('2026-06-10T20:00:00Z'), capped: false });
    expect(f?.window).toBe(nightly[0]);
    expect(f?.last).toBe(nightly[0]);
  });

  test('outside: not frozen', () => {
    expect(freezeAt(nightly, at('2026-06-10T17:59:59.999Z'))).toBeUndefined();
    expect(freezeAt(nightly, at('2026-06-10T21:00:00Z'))).toBeUndefined();
  });

  test('a window holds from its start up to, not including, its end', () => {
    expect(untilOf(nightly, '2026-06-10T18:00:00Z')).toBe('2026-06-10T20:00:00.000Z');
    expect(freezeAt(nightly, at('2026-06-10T20:00:00Z'))).toBeUndefined();
  });

  test('no windows: never frozen', () => {
    expect(freezeAt([], at('2026-06-10T19:00:00Z'))).toBeUndefined();
    expect(freezeAt(freezeSchema.parse(undefined).windows, at('2026-06-10T19:00:00Z'))).toBeUndefined();
  });

  test('the time is epoch milliseconds; anything else is refused', () => {
    expect(() => freezeAt(nightly, Number.NaN)).toThrow(/epoch milliseconds/);
  });

  test('the same question gets the same answer (no clock of its own)', () => {
    const now = at('2026-06-10T19:00:00Z');
    expect(freezeAt(nightly, now)).toEqual(freezeAt(nightly, now));
  });
});

describe('a window that crosses midnight', () => {
  // Weeknights: Monday evening to Tuesday morning ... Friday evening to Saturday morning.
  const weeknights = windows({
    days: ['mon', 'tue', 'wed', 'thu', 'fri'],
    from: '18:00',
    to: '08:00',
    timeZone: 'Europe/Berlin',
  });

  test('evening: frozen until the next morning', () => {
    // Wed 2026-12-09 20:00 CET → Thu 08:00 CET.
    expect(untilOf(weeknights, '2026-12-09T19:00:00Z')).toBe('2026-12-10T07:00:00.000Z');
  });

  test('after midnight it is still the night that started the evening before', () => {
    expect(untilOf(weeknights, '2026-12-10T02:00:00Z')).toBe('2026-12-10T07:00:00.000Z');
  });

  test('its days are the days it starts on: Friday night runs into Saturday, Sunday night is open', () => {
    expect(untilOf(weeknights, '2026-12-12T06:00:00Z')).toBe('2026-12-12T07:00:00.000Z'); // Sat 07:00 CET
    expect(freezeAt(weeknights, at('2026-12-12T19:00:00Z'))).toBeUndefined(); // Sat 20:00
    expect(freezeAt(weeknights, at('2026-12-13T19:00:00Z'))).toBeUndefined(); // Sun 20:00
    expect(freezeAt(weeknights, at('2026-12-14T06:00:00Z'))).toBeUndefined(); // Mon 07:00
    expect(untilOf(weeknights, '2026-12-14T17:00:00Z')).toBe('2026-12-15T07:00:00.000Z'); // Mon 18:00
  });

  test('daytime is open', () => {
    expect(freezeAt(weeknights, at('2026-12-09T11:00:00Z'))).toBeUndefined();
  });
});

describe('day lists', () => {
  const saturdays = windows({ days: ['sat'], from: '00:00', to: '24:00', timeZone: 'America/New_York' });

  test.each([
    ['Fri 23:59 New York', '2026-12-12T04:59:00Z', undefined],
    ['Sat 00:00 New York', '2026-12-12T05:00:00Z', '2026-12-13T05:00:00.000Z'],
    ['Sat 23:59 New York', '2026-12-13T04:59:00Z', '2026-12-13T05:00:00.000Z'],
    ['Sun 00:00 New York', '2026-12-13T05:00:00Z', undefined],
  ])('%s', (_, now, until) => {
    expect(untilOf(saturdays, now)).toBe(until);
  });

  test('every day by default', () => {
    expect(windows({ from: '01:00', to: '02:00' })[0].days).toEqual(['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun']);
  });
});

describe('changes of clocks (Europe/Berlin)', () => {
  // 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00Z). 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00Z).
  const berlin = (w: Omit<WindowInput, 'timeZone'>) => windows({ ...w, timeZone: 'Europe/Berlin' });

  test('spring: a night across the change is an hour shorter and ends at 06:00 summer time', () => {
    const nights = berlin({ from: '22:00', to: '06:00' });
    expect(untilOf(nights, '2026-03-28T23:30:00Z')).toBe('2026-03-29T04:00:00.000Z');
    expect(freezeAt(nights, at('2026-03-28T20:59:59Z'))).toBeUndefined(); // Sat 21:59:59 CET
    expect(untilOf(nights, '2026-03-28T21:00:00Z')).toBe(iso(Date.parse('2026-03-29T06:00:00+02:00')));
    // The next night is on summer time.
    expect(untilOf(nights, '2026-03-29T20:00:00Z')).toBe(iso(Date.parse('2026-03-30T06:00:00+02:00')));
  });

  test('spring: a window starting in the skipped hour starts at the jump', () => {
    const w = berlin({ days: ['sun'], from: '02:30', to: '04:00' });
    expect(freezeAt(w, at('2026-03-29T00:59:59Z'))).toBeUndefined(); // 01:59:59 CET
    expect(untilOf(w, '2026-03-29T01:00:00Z')).toBe('2026-03-29T02:00:00.000Z'); // 03:00 CEST → 04:00 CEST
  });

  test('spring: a window ending in the skipped hour ends at the jump', () => {
    const w = berlin({ days: ['sun'], from: '01:00', to: '02:30' });
    expect(untilOf(w, '2026-03-29T00:30:00Z')).toBe('2026-03-29T01:00:00.000Z');
    expect(freezeAt(w, at('2026-03-29T01:00:00Z'))).toBeUndefined();
  });

  test('spring: a window wholly inside the skipped hour does not happen that day', () => {
    const w = berlin({ from: '02:00', to: '02:30' });
    expect(freezeAt(w, at('2026-03-29T01:00:00Z'))).toBeUndefined();
    expect(untilOf(w, '2026-03-30T00:15:00Z')).toBe('2026-03-30T00:30:00.000Z'); // Monday 02:15 CEST
  });

  test('autumn: a night across the change is an hour longer and ends at 06:00 winter time', () => {
    const nights = berlin({ from: '22:00', to: '06:00' });
    expect(untilOf(nights, '2026-10-24T20:00:00Z')).toBe(iso(Date.parse('2026-10-25T06:00:00+01:00')));
    expect(untilOf(nights, '2026-10-25T01:30:00Z')).toBe('2026-10-25T05:00:00.000Z');
    expect(freezeAt(nights, at('2026-10-24T19:59:59Z'))).toBeUndefined(); // Sat 21:59:59 CEST
  });

  test('autumn: a window ending in the repeated hour holds through both readings of its end', () => {
    const w = berlin({ days: ['sun'], from: '01:00', to: '02:30' });
    // 01:00 CEST (23:00Z) to the second 02:30, which is CET (01:30Z).
    expect(untilOf(w, '2026-10-24T23:00:00Z')).toBe('2026-10-25T01:30:00.000Z');
    expect(untilOf(w, '2026-10-25T00:45:00Z')).toBe('2026-10-25T01:30:00.000Z'); // 02:45 CEST
    expect(freezeAt(w, at('2026-10-25T01:30:00Z'))).toBeUndefined();
  });

  test('autumn: a window starting in the repeated hour starts at its first reading', () => {
    const w = berlin({ days: ['sun'], from: '02:30', to: '04:00' });
    expect(freezeAt(w, at('2026-10-25T00:29:59Z'))).toBeUndefined(); // 02:29:59 CEST
    expect(untilOf(w, '2026-10-25T00:30:00Z')).toBe('2026-10-25T03:00:00.000Z'); // 02:30 CEST → 04:00 CET
  });

  test('a zone that changes on other dates and at another hour (America/New_York)', () => {
    const nights = windows({ from: '22:00', to: '06:00', timeZone: 'America/New_York' });
    // 2026-03-08 02:00 EST → 03:00 EDT; 2026-11-01 02:00 EDT → 01:00 EST.
    expect(untilOf(nights, '2026-03-08T05:00:00Z')).toBe(iso(Date.parse('2026-03-08T06:00:00-04:00')));
    expect(untilOf(nights, '2026-11-01T05:00:00Z')).toBe(iso(Date.parse('2026-11-01T06:00:00-05:00')));
  });
});

describe('windows that join up are one freeze', () => {
  const weekend = windows(
    { days: ['fri'], from: '18:00', to: '24:00', timeZone: 'Europe/Berlin', reason: 'friday evening' },
    { days: ['sat', 'sun'], from: '00:00', to: '24:00', timeZone: 'Europe/Berlin', reason: 'weekend freeze' },
    { days: ['mon'], from: '00:00', to: '08:00', timeZone: 'Europe/Berlin', reason: 'monday catch-up' },
  );

  test('adjacent windows: Friday evening runs through the weekend into Monday morning', () => {
    const f = freezeAt(weekend, at('2026-12-04T18:30:00Z'))!; // Fri 19:30 CET
    expect(iso(f.until)).toBe('2026-12-07T07:00:00.000Z'); // Mon 08:00 CET
    expect(f.window.reason).toBe('friday evening');
    expect(f.last.reason).toBe('monday catch-up');
    expect(f.capped).toBe(false);
    expect(describeFreeze('production', f)).toBe(
      'production is frozen until Mon 2026-12-07 08:00 Europe/Berlin (friday evening, then monday catch-up)',
    );
  });

  test('overlapping windows in different zones merge', () => {
    const w = windows(
      { from: '09:00', to: '12:00', timeZone: 'UTC' },
      { from: '12:30', to: '14:00', timeZone: 'Europe/London' }, // winter: 12:30Z to 14:00Z
      { from: '15:00', to: '18:00', timeZone: 'Europe/Berlin' }, // winter: 14:00Z to 17:00Z
    );
    expect(untilOf(w, '2026-01-15T10:00:00Z')).toBe('2026-01-15T12:00:00.000Z'); // a gap at 12:00-12:30
    expect(untilOf(w, '2026-01-15T13:00:00Z')).toBe('2026-01-15T17:00:00.000Z');
  });

  test('a one-minute gap is a gap', () => {
    const w = windows({ from: '09:00', to: '12:00' }, { from: '12:01', to: '13:00' });
    expect(untilOf(w, '2026-01-15T10:00:00Z')).toBe('2026-01-15T12:00:00.000Z');
  });

  test('of two windows open now, the one ending last is named', () => {
    const w = windows({ from: '09:00', to: '11:00', reason: 'short' }, { from: '08:00', to: '12:00', reason: 'long' });
    const f = freezeAt(w, at('2026-01-15T10:00:00Z'))!;
    expect(f.window.reason).toBe('long');
    expect(iso(f.until)).toBe('2026-01-15T12:00:00.000Z');
  });
});

describe('a config that never leaves a gap', () => {
  test.each<[string, WindowInput[]]>([
    ['a whole day, every day', [{ from: '00:00', to: '24:00', timeZone: 'Europe/Berlin' }]],
    [
      'night and day windows that join',
      [
        { from: '18:00', to: '08:00', timeZone: 'Europe/Berlin' }, // winter: 17:00Z to 07:00Z
        { from: '07:00', to: '12:00', timeZone: 'UTC' },
        { from: '07:00', to: '13:00', timeZone: 'America/New_York' }, // winter: 12:00Z to 18:00Z
      ],
    ],
  ])('%s: a finite answer, at least the bound ahead, that says so', (_, input) => {
    const now = at('2026-12-04T18:30:00Z');
    const f = freezeAt(windows(...input), now)!;
    expect(f.capped).toBe(true);
    expect(f.until).toBeGreaterThanOrEqual(now + FREEZE_LOOKAHEAD_DAYS * 86_400_000);
    expect(f.until).toBeLessThanOrEqual(now + (FREEZE_LOOKAHEAD_DAYS + 2) * 86_400_000);
    expect(describeFreeze('production', f)).toMatch(
      /^production is frozen for at least 14 days: its freeze windows leave no gap before \w{3} 2026-12-\d\d \d\d:\d\d /,
    );
  });

  test('a freeze shorter than the bound is not capped', () => {
    const w = windows({ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat'], from: '00:00', to: '24:00' });
    const f = freezeAt(w, at('2026-12-07T10:00:00Z'))!; // Mon
    expect(f).toMatchObject({ until: at('2026-12-13T00:00:00Z'), capped: false });
  });
});

describe('describeFreeze', () => {
  test('names the environment, the end on the window’s clock and the reason', () => {
    const w = windows({
      days: ['fri'],
      from: '18:00',
      to: '08:00',
      timeZone: 'Europe/Berlin',
      reason: 'weekend freeze',
    });
    const f = freezeAt(w, at('2026-12-04T20:00:00Z'))!;
    expect(describeFreeze('production', f)).toBe(
      'production is frozen until Sat 2026-12-05 08:00 Europe/Berlin (weekend freeze)',
    );
  });

  test('a window without a reason is described by its days and hours', () => {
    const w = windows({ days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '18:00', to: '08:00' });
    const f = freezeAt(w, at('2026-12-07T20:00:00Z'))!;
    expect(describeFreeze('staging', f)).toBe(
      'staging is frozen until Tue 2026-12-08 08:00 UTC (freeze window mon-fri 18:00-08:00 UTC)',
    );
    const g = freezeAt(
      windows({ days: ['sat', 'sun', 'wed'], from: '10:00', to: '11:00' }),
      at('2026-12-05T10:30:00Z'),
    )!;
    expect(describeFreeze('staging', g)).toMatch(/\(freeze window wed,sat,sun 10:00-11:00 UTC\)$/);
  });
});

describe('the freeze config', () => {
  test('defaults: no windows, wait, look again every minute', () => {
    expect(freezeSchema.parse(undefined)).toEqual({ windows: [], mode: 'wait', checkInterval: 60_000 });
    expect(freezeSchema.parse({})).toEqual({ windows: [], mode: 'wait', checkInterval: 60_000 });
  });

  test('a window takes UTC and every day by default; a zone is written as the runtime names it', () => {
    expect(freezeSchema.parse({ windows: [{ from: '18:00', to: '08:00' }] }).windows[0]).toEqual({
      days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'],
      from: '18:00',
      to: '08:00',
      timeZone: 'UTC',
    });
    expect(windows({ from: '18:00', to: '08:00', timeZone: 'europe/berlin' })[0].timeZone).toBe('Europe/Berlin');
  });

  test('mode and checkInterval', () => {
    expect(freezeSchema.parse({ mode: 'refuse', checkInterval: '5m' })).toMatchObject({
      mode: 'refuse',
      checkInterval: 300_000,
    });
    expect(refusals({ checkInterval: '5s' })).toEqual([
      'checkInterval: freeze checkInterval must be between 10s and 1d, got "5s"',
    ]);
    expect(refusals({ mode: 'later' })[0]).toMatch(/^mode: /);
  });

  test.each([
    ['Mars/Olympus_Mons', '"Mars/Olympus_Mons" is not an IANA time zone such as Europe/Berlin'],
    ['CEST', '"CEST" is not an IANA time zone'],
    ['+01:00', '"+01:00" is not an IANA time zone'],
    ['', '"" is not an IANA time zone'],
  ])('time zone %j is refused, saying what one looks like', (timeZone, message) => {
    const r = refusals({ windows: [{ from: '18:00', to: '08:00', timeZone }] });
    expect(r).toHaveLength(1);
    expect(r[0]).toContain(`windows.0.timeZone: ${message}`);
  });

  test.each([
    ['from', '25:00'],
    ['from', '8:00'],
    ['from', '18:60'],
    ['from', '18.00'],
    ['from', '24:00'],
    ['to', '24:01'],
    ['to', '0800'],
  ])('%s %j is refused as not HH:MM', (field, value) => {
    const w = { from: '18:00', to: '08:00', [field]: value };
    expect(refusals({ windows: [w] })).toEqual([
      expect.stringMatching(new RegExp(`^windows\\.0\\.${field}: a time of day "HH:MM" such as`)),
    ]);
  });

  test('to 24:00 is the end of the day', () => {
    expect(untilOf(windows({ from: '20:00', to: '24:00' }), '2026-01-15T21:00:00Z')).toBe('2026-01-16T00:00:00.000Z');
  });

  test('from equal to to is refused: a window has a length', () => {
    expect(refusals({ windows: [{ from: '08:00', to: '08:00' }] })).toEqual([
      'windows.0.to: to is the same as from: a window must have a length (00:00 to 24:00 is a whole day)',
    ]);
  });

  test('days are weekdays, each once', () => {
    expect(refusals({ windows: [{ days: ['saturday'], from: '00:00', to: '24:00' }] })).toEqual([
      'windows.0.days.0: a day: one of mon, tue, wed, thu, fri, sat, sun',
    ]);
    expect(refusals({ windows: [{ days: ['sat', 'sat'], from: '00:00', to: '24:00' }] })).toEqual([
      'windows.0.days: days must not repeat',
    ]);
    expect(refusals({ windows: [{ days: [], from: '00:00', to: '24:00' }] })[0]).toMatch(/^windows\.0\.days: /);
  });

  test('a reason is one line', () => {
    expect(refusals({ windows: [{ from: '00:00', to: '24:00', reason: 'sale\n@channel' }] })).toEqual([
      'windows.0.reason: one line of at most 200 characters',
    ]);
  });

  test('unknown keys and more than 50 windows are refused', () => {
    expect(refusals({ windows: [{ from: '00:00', to: '24:00', tz: 'UTC' }] })[0]).toMatch(/^windows\.0: /);
    expect(refusals({ window: [] })[0]).toMatch(/window/);
    const many = Array.from({ length: 51 }, () => ({ from: '00:00', to: '01:00' }));
    expect(refusals({ windows: many })[0]).toMatch(/^windows: /);
    expect(refusals({ windows: many.slice(0, 50) })).toEqual([]);
  });
});

test('the module imports nothing, so a workflow can import it without a schema library in its bundle', () => {
  const source = readFileSync(path.join(REPO_ROOT, 'src/domain/freeze-window.ts'), 'utf8');
  const imports = [...source.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1]);
  expect(imports).toEqual([]);
  expect(source).not.toMatch(/Date\.now\(|new Date\(\)|process\./);
});
