/**
 * Freeze windows: the times an environment's line is stopped (nights,
 * weekends, a sale), configured per environment as `freeze`. A deployment that
 * meets a freeze waits for its end or is refused (`mode`).
 *
 * Pure and deterministic: the caller passes the clock (in a workflow, the
 * history's), and wall-clock times become instants through
 * Intl.DateTimeFormat alone, which Temporal's workflow sandbox has, so a
 * workflow may ask directly. The answer depends on the time-zone rules of the
 * runtime's ICU data, as every time-zone computation does.
 *
 * How a window meets a change of clocks: it starts the first time the
 * zone's clock reads `from` and ends the last time it reads `to`. When the
 * clock jumps over a boundary (spring), the boundary is the jump; when it
 * turns back over one (autumn), the window takes the longer reading. A window
 * is therefore never shorter than its wall-clock times say.
 */

export const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof WEEKDAYS)[number];

/** How far `freezeAt` follows windows that join up: a config that never leaves a gap still gets an answer. */
export const FREEZE_LOOKAHEAD_DAYS = 14;

const MINUTE = 60_000;
const DAY = 86_400_000;

/** One window of `environments.<name>.freeze` as the config schema (config-freeze.ts) leaves it. */
export interface FreezeWindow {
  /** The days a window starts on (a window that crosses midnight ends on the next day). */
  days: Weekday[];
  /** "HH:MM". */
  from: string;
  /** "HH:MM" or "24:00"; earlier than `from`: the window ends on the next day. */
  to: string;
  /** A canonical IANA time zone. */
  timeZone: string;
  reason?: string;
}

/** What `freezeAt` answers when the line is stopped. */
export interface Freeze {
  /** When deploying is allowed again (epoch ms): the end of the windows that join up with the one open now. */
  until: number;
  /** The window open now (of several, the one that ends last). */
  window: FreezeWindow;
  /** The window whose end is `until`; `window` itself unless others join on. */
  last: FreezeWindow;
  /**
   * The windows leave no gap within FREEZE_LOOKAHEAD_DAYS: `until` is the end of
   * the window that reaches past that bound, a time to look again, not a promise.
   */
  capped: boolean;
}

/**
 * Whether `nowMs` (epoch ms) falls inside a freeze window and, if so, until
 * when. Windows that overlap or touch are merged, so `until` is when a
 * deployment may really start; the merging stops once it reaches
 * FREEZE_LOOKAHEAD_DAYS ahead (`capped`).
 */
export function freezeAt(windows: readonly FreezeWindow[], nowMs: number): Freeze | undefined {
  if (!Number.isFinite(nowMs)) throw new RangeError(`freezeAt: the time must be epoch milliseconds, got ${nowMs}`);
  if (windows.length === 0) return undefined;
  const spans = occurrences(windows, nowMs);
  let open: Span | undefined;
  for (const s of spans) if (s.start <= nowMs && nowMs < s.end && (!open || s.end > open.end)) open = s;
  if (!open) return undefined;
  const bound = nowMs + FREEZE_LOOKAHEAD_DAYS * DAY;
  let last = open;
  for (const s of spans) {
    if (last.end >= bound || s.start > last.end) break;
    if (s.end > last.end) last = s;
  }
  return { until: last.end, window: open.window, last: last.window, capped: last.end >= bound };
}

/** One line for people: "production is frozen until Mon 2026-12-07 08:00 Europe/Berlin (weekend freeze)". */
export function describeFreeze(environment: string, freeze: Freeze): string {
  const when = `${formatLocal(freeze.last.timeZone, freeze.until)} ${freeze.last.timeZone}`;
  const why = [...new Set([freeze.window, freeze.last].map(label))].join(', then ');
  return freeze.capped
    ? `${environment} is frozen for at least ${FREEZE_LOOKAHEAD_DAYS} days: its freeze windows leave no gap before ${when} (${why})`
    : `${environment} is frozen until ${when} (${why})`;
}

/** A window as people read it when it has no reason: "freeze window mon-fri 18:00-08:00 Europe/Berlin". */
function label(w: FreezeWindow): string {
  return w.reason ?? `freeze window ${dayRuns(w.days)} ${w.from}-${w.to} ${w.timeZone}`;
}

/** "daily", "mon-fri", "sat,sun", "mon,wed-fri". */
function dayRuns(days: readonly Weekday[]): string {
  if (days.length === WEEKDAYS.length) return 'daily';
  const idx = [...new Set(days.map((d) => WEEKDAYS.indexOf(d)))].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && idx[j + 1] === idx[j] + 1) j++;
    const [a, b] = [WEEKDAYS[idx[i]], WEEKDAYS[idx[j]]];
    runs.push(j - i >= 2 ? `${a}-${b}` : j > i ? `${a},${b}` : a);
    i = j + 1;
  }
  return runs.join(',');
}

interface Span {
  start: number;
  end: number;
  window: FreezeWindow;
}

/**
 * Every occurrence of every window that can matter at `nowMs`: those starting
 * from two days before the local date of `nowMs` (a window starting the day
 * before may still be open; two covers a clock turned back over midnight) to
 * one day past the lookahead, sorted by start.
 */
function occurrences(windows: readonly FreezeWindow[], nowMs: number): Span[] {
  const spans: Span[] = [];
  for (const window of windows) {
    const zone = zoneOf(window.timeZone);
    const today = zone.wall(nowMs);
    const [fh, fm] = hoursMinutes(window.from);
    const [th, tm] = hoursMinutes(window.to);
    const crosses = th * 60 + tm < fh * 60 + fm;
    for (let k = -2; k <= FREEZE_LOOKAHEAD_DAYS + 1; k++) {
      const date = Date.UTC(today.year, today.month - 1, today.day + k);
      if (!window.days.includes(weekdayOf(date))) continue;
      const start = zone.firstReading(date + fh * 3_600_000 + fm * MINUTE);
      const end = zone.lastReading(date + (crosses ? DAY : 0) + th * 3_600_000 + tm * MINUTE);
      // A short window inside a skipped hour never happens that day.
      if (end > start) spans.push({ start, end, window });
    }
  }
  return spans.sort((a, b) => a.start - b.start);
}

function hoursMinutes(hhmm: string): [number, number] {
  return [Number(hhmm.slice(0, 2)), Number(hhmm.slice(3, 5))];
}

/** The weekday of a date given as UTC midnight of that calendar day. */
function weekdayOf(date: number): Weekday {
  return WEEKDAYS[(new Date(date).getUTCDay() + 6) % 7];
}

interface Wall {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/**
 * One time zone's clock. Wall-clock times are passed as "local
 * milliseconds": Date.UTC of the fields the clock shows.
 */
interface Zone {
  wall(t: number): Wall;
  /** The first instant at which the clock reads `local` or later that day (the jump, when it skips `local`). */
  firstReading(local: number): number;
  /** The last instant at which the clock reads `local` (the later one, when the clock turns back over it). */
  lastReading(local: number): number;
}

const zones = new Map<string, Zone>();

function zoneOf(timeZone: string): Zone {
  let zone = zones.get(timeZone);
  if (!zone) {
    zone = makeZone(timeZone);
    zones.set(timeZone, zone);
  }
  return zone;
}

function makeZone(timeZone: string): Zone {
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone,
    hourCycle: 'h23',
    year: 'numeric',
    month: 'numeric',
    day: 'numeric',
    hour: 'numeric',
    minute: 'numeric',
    second: 'numeric',
  });

  function wall(t: number): Wall {
    const w: Wall = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
    for (const p of format.formatToParts(new Date(t))) {
      if (p.type in w) w[p.type as keyof Wall] = Number(p.value);
    }
    if (w.hour === 24) w.hour = 0; // some ICU versions write midnight as 24 despite h23
    return w;
  }

  // Windows of one zone ask about the same instants again and again; formatting is the cost.
  const offsets = new Map<number, number>();

  /** The zone's offset from UTC at instant `t`, in ms. */
  function offsetAt(t: number): number {
    const s = Math.floor(t / 1000) * 1000;
    let offset = offsets.get(s);
    if (offset === undefined) {
      const w = wall(s);
      offset = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second) - s;
      if (offsets.size >= 4096) offsets.clear();
      offsets.set(s, offset);
    }
    return offset;
  }

  /** The instants at which the clock reads `local`, earliest first: one, two (turned back) or none (skipped). */
  function readings(local: number): { at: number[]; before: number; after: number } {
    // Offsets lie within ±14 h, so a day either side brackets every instant that can read `local`.
    const before = offsetAt(local - DAY);
    const after = offsetAt(local + DAY);
    const at = [...new Set([before, after])]
      .map((offset) => ({ offset, t: local - offset }))
      .filter(({ offset, t }) => offsetAt(t) === offset)
      .map(({ t }) => t)
      .sort((a, b) => a - b);
    return { at, before, after };
  }

  /** The instant the clock jumped over `local`: the first second of the new offset, by bisection. */
  function jump(local: number, before: number, after: number): number {
    let lo = local - after; // still the old offset
    let hi = local - before; // already the new one
    if (hi <= lo) return local - before;
    while (hi - lo > 1000) {
      const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
      if (offsetAt(mid) === before) lo = mid;
      else hi = mid;
    }
    return hi;
  }

  function firstReading(local: number): number {
    const r = readings(local);
    return r.at.length > 0 ? r.at[0] : jump(local, r.before, r.after);
  }

  function lastReading(local: number): number {
    const r = readings(local);
    return r.at.length > 0 ? r.at[r.at.length - 1] : jump(local, r.before, r.after);
  }

  return { wall, firstReading, lastReading };
}

/** "Mon 2026-12-07 08:00" on the zone's clock. */
function formatLocal(timeZone: string, t: number): string {
  const w = zoneOf(timeZone).wall(t);
  const date = Date.UTC(w.year, w.month - 1, w.day);
  const day = weekdayOf(date);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${day[0].toUpperCase()}${day.slice(1)} ${String(w.year).padStart(4, '0')}-${pad(w.month)}-${pad(w.day)} ${pad(w.hour)}:${pad(w.minute)}`;
}
