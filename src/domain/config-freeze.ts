/**
 * `environments.<name>.freeze` in the config (zod), apart from the freeze
 * windows' computation (freeze-window.ts): workflows import that one, and a
 * schema library in the workflow bundle would be paid for by every workflow
 * a worker holds (bench scale-out measured it: about twice the memory per
 * soaking canary).
 */
import { z } from 'zod';
import { duration } from './config-fields';
import { WEEKDAYS } from './freeze-window';

const MINUTE = 60_000;
const DAY = 86_400_000;
const MAX_WINDOWS = 50;

const TIME_RE = /^([01]\d|2[0-3]):[0-5]\d$/;
const END_RE = /^(([01]\d|2[0-3]):[0-5]\d|24:00)$/;

/** The canonical name of an IANA time zone the runtime knows, or undefined. */
function canonicalTimeZone(name: string): string | undefined {
  // Offsets such as "+01:00" are refused (some runtimes accept them): a freeze follows a place's clock.
  if (!/^[A-Za-z][A-Za-z0-9_+\-/]{0,63}$/.test(name)) return undefined;
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

const timeZone = z.string().transform((name, ctx) => {
  const canonical = canonicalTimeZone(name);
  if (canonical === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(name.slice(0, 80))} is not an IANA time zone such as Europe/Berlin, America/New_York or UTC`,
    });
    return z.NEVER;
  }
  return canonical;
});

const windowSchema = z
  .strictObject({
    /** The days a window starts on (a window that crosses midnight ends on the next day); default every day. */
    days: z
      .array(z.enum(WEEKDAYS, { error: `a day: one of ${WEEKDAYS.join(', ')}` }))
      .min(1)
      .max(7)
      .refine((d) => new Set(d).size === d.length, 'days must not repeat')
      .default([...WEEKDAYS]),
    from: z.string().regex(TIME_RE, 'a time of day "HH:MM" such as 18:00 (00:00 to 23:59)'),
    /** Earlier than `from`: the window crosses midnight and ends on the next day; "24:00" is the end of the day. */
    to: z
      .string()
      .regex(END_RE, 'a time of day "HH:MM" such as 08:00 (00:00 to 23:59, or 24:00 for the end of the day)'),
    timeZone: timeZone.default('UTC'),
    /** Shown to people with the freeze ("weekend freeze"). */
    reason: z
      .string()
      .regex(/^[^\p{Cc}]{1,200}$/u, 'one line of at most 200 characters')
      .optional(),
  })
  .refine((w) => w.from !== w.to, {
    message: 'to is the same as from: a window must have a length (00:00 to 24:00 is a whole day)',
    path: ['to'],
  });

/** `environments.<name>.freeze`: when the environment's line is stopped, and what a deployment then does. */
export const freezeSchema = z
  .strictObject({
    windows: z.array(windowSchema).max(MAX_WINDOWS).default([]),
    /** wait: a deployment holds until the freeze ends; refuse: it is refused at once. */
    mode: z.enum(['wait', 'refuse']).default('wait'),
    /** How often a held deployment looks again whether the line is stopped (the config may have changed). */
    checkInterval: duration('freeze checkInterval', 10_000, DAY).default(MINUTE),
  })
  .prefault({});

export type FreezeConfig = z.output<typeof freezeSchema>;
