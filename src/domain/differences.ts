/**
 * Where two plain JSON values differ, as one line per path: what a plan or a
 * target handed to a workflow says against what the configuration decides.
 * `undefined` and an absent key are the same, as they are once a value has
 * crossed Temporal (JSON drops both).
 */

const show = (v: unknown): string => (v === undefined ? '(absent)' : JSON.stringify(v));

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `given` against `expected`: "canary.steps is [5,100], expected [5,25,50,100]"; empty when they are equal. */
export function differences(given: unknown, expected: unknown, path = '', skip: readonly string[] = []): string[] {
  if (Array.isArray(given) && Array.isArray(expected) && given.length === expected.length)
    return given.flatMap((g, i) => differences(g, expected[i], `${path}[${i}]`));
  if (isRecord(given) && isRecord(expected)) {
    const keys = [...new Set([...Object.keys(expected), ...Object.keys(given)])].filter((k) => !skip.includes(k));
    return keys.flatMap((k) => differences(given[k], expected[k], path ? `${path}.${k}` : k));
  }
  if (given === expected) return [];
  return [`${path || '(value)'} is ${show(given)}, expected ${show(expected)}`];
}
