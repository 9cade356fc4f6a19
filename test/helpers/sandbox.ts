/**
 * The sandbox's environment (.sandbox/env, written by `npm run sandbox -- up`)
 * for integration tests. A missing sandbox is an error that says how to start
 * it, never a silently skipped test.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from './tools';

let cached: Record<string, string> | undefined;

export function sandboxEnv(): Record<string, string> {
  if (cached) return cached;
  const dir = process.env.SANDBOX_DIR ?? path.join(REPO_ROOT, '.sandbox');
  let text: string;
  try {
    text = readFileSync(path.join(dir, 'env'), 'utf8');
  } catch {
    throw new Error(`no sandbox environment in ${dir}/env: start it with \`npm run sandbox -- up\``);
  }
  cached = Object.fromEntries(
    text
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  return cached;
}

export function sandboxVar(name: string): string {
  const v = sandboxEnv()[name];
  if (!v) throw new Error(`${name} is not in the sandbox environment: run \`npm run sandbox -- up\``);
  return v;
}

/** The sandbox's environments (scripts/sandbox/environments.ts). */
export type SandboxEnvironmentName = 'production' | 'staging';

/**
 * One environment's value of a variable: production's under its own name
 * (KUBECONFIG_WORKER), the others' with their suffix (KUBECONFIG_WORKER_STAGING).
 */
export function sandboxVarOf(environment: SandboxEnvironmentName, name: string): string {
  return sandboxVar(environment === 'production' ? name : `${name}_${environment.toUpperCase()}`);
}
