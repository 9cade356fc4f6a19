/**
 * The project's Temporal dynamic config (deploy/temporal/dynamicconfig.yaml)
 * for servers that do not read a file: the dev server (`temporal server
 * start-dev`) takes each setting as a `--dynamic-config-value key=<json>`
 * flag. Only unconstrained values apply there, which is all the file holds.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../src/repo-root';

export const DYNAMIC_CONFIG_FILE = path.join(repoRoot(), 'deploy', 'temporal', 'dynamicconfig.yaml');

type Entry = { value: unknown; constraints?: Record<string, unknown> };

/** key -> value of every setting that holds for the whole server (no constraints). */
export function dynamicConfigValues(text = readFileSync(DYNAMIC_CONFIG_FILE, 'utf8')): Record<string, unknown> {
  const doc = (parse(text) ?? {}) as Record<string, Entry[]>;
  const out: Record<string, unknown> = {};
  for (const [key, entries] of Object.entries(doc)) {
    if (!Array.isArray(entries))
      throw new Error(`${DYNAMIC_CONFIG_FILE}: ${key} is not a list of {value, constraints}`);
    const global = entries.find((e) => !e.constraints || Object.keys(e.constraints).length === 0);
    if (global) out[key] = global.value;
  }
  return out;
}

/** The settings as dev-server flags; `extra` (a test's or a benchmark's own) wins over the file. */
export function devServerDynamicConfigArgs(
  extra: Record<string, unknown> = {},
  base = dynamicConfigValues(),
): string[] {
  return Object.entries({ ...base, ...extra }).flatMap(([k, v]) => [
    '--dynamic-config-value',
    `${k}=${JSON.stringify(v)}`,
  ]);
}
