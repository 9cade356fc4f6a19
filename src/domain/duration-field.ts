/**
 * A duration field of a schema (config or workflow input): "5m", "90s" or
 * milliseconds, refused outside [minMs, maxMs] so a typo cannot make a zero
 * soak or an endless wait. `bounds` words the range in the refusal, as each
 * schema has always worded it.
 */
import { z } from 'zod';
import { parseDuration } from './duration';

export function durationField(
  what: string,
  minMs: number,
  maxMs: number,
  bounds: (minMs: number, maxMs: number) => string,
) {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    let ms: number;
    try {
      ms = parseDuration(v, what);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
    if (ms < minMs || ms > maxMs) {
      ctx.addIssue({
        code: 'custom',
        message: `${what} must be between ${bounds(minMs, maxMs)}, got ${JSON.stringify(v)}`,
      });
      return z.NEVER;
    }
    return ms;
  });
}
