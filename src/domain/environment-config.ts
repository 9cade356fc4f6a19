/**
 * One environment's settings: the top-level sections as defaults, with what
 * `environments.<name>` sets differently deep-merged over them (objects merge,
 * lists and values replace). The planner and every activity read an
 * environment's back ends (cluster, database, bucket, metrics, URLs, Redis,
 * traffic, rollout) only through environmentConfig, so staging's deployment
 * never reaches production's database.
 */
import type { z } from 'zod';
import type { DeployConfig, EnvironmentOverrides, SectionsConfig } from './config';
import { SECTIONS, type Section } from './config-environment';
import { TRAFFIC_PROVIDER_OPTIONS, TRAFFIC_PROVIDERS, type CanaryStepConfig, type TrafficProviderName } from './plan';

type Plain = Record<string, unknown>;

const isPlain = (v: unknown): v is Plain => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `over` merged into `base`: objects recursively, anything else (lists included) replaced. */
export function deepMerge<T>(base: T, over: unknown): T {
  if (!isPlain(base) || !isPlain(over)) return (over === undefined ? base : over) as T;
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = v === undefined ? out[k] : deepMerge(out[k], v);
  return out as T;
}

/** The parsed values of exactly the fields `given` names (so the top level's defaults are not copied in). */
function givenFields(given: unknown, parsed: unknown): unknown {
  if (!isPlain(given) || !isPlain(parsed)) return parsed;
  return Object.fromEntries(
    Object.keys(given)
      .filter((k) => k in parsed)
      .map((k) => [k, givenFields(given[k], parsed[k])]),
  );
}

export interface OverrideIssue {
  path: (string | number)[];
  message: string;
}

/**
 * Validates one environment's raw overrides by parsing each overridden
 * section merged over the raw top level, so an override is held to the same
 * rules as the top level and its errors name the environment's own field.
 */
export function parseOverrides(
  rawTop: Plain,
  rawEnv: Plain,
  schemas: { [K in Section]: z.ZodType },
): { overrides: EnvironmentOverrides } | { issue: OverrideIssue } {
  const overrides: Plain = {};
  for (const section of SECTIONS) {
    const given = rawEnv[section];
    if (given === undefined) continue;
    if (!isPlain(given)) return { issue: { path: [section], message: "a mapping of the top-level section's fields" } };
    const parsed = schemas[section].safeParse(deepMerge(isPlain(rawTop[section]) ? rawTop[section] : {}, given));
    if (!parsed.success) {
      const first = parsed.error.issues[0];
      return { issue: { path: [section, ...(first.path as (string | number)[])], message: first.message } };
    }
    overrides[section] = givenFields(given, parsed.data);
  }
  return { overrides: overrides };
}

/**
 * The config as one environment sees it: its sections resolved. An unknown
 * name is the caller's error (the planner refuses it with the list).
 */
export function environmentConfig(config: DeployConfig, environment: string, cluster?: string): DeployConfig {
  const overrides = config.environments[environment]?.overrides;
  const resolved: Partial<SectionsConfig> = {};
  for (const section of SECTIONS) {
    if (overrides?.[section] !== undefined) {
      (resolved as Plain)[section] = deepMerge(config[section], overrides[section]);
    }
  }
  const merged = overrides ? { ...config, ...resolved } : config;
  if (cluster === undefined) return merged;
  // One cluster of the environment: its kubeconfig and context over the environment's.
  const c = clusterOf(config, environment, cluster);
  return { ...merged, kubernetes: deepMerge(merged.kubernetes, withoutUndefined(c.kubernetes)) };
}

/** The environment's clusters in rollout order; none configured: [] (its one cluster is the environment's kubernetes). */
export function clustersOf(config: DeployConfig, environment: string): string[] {
  return (config.environments[environment]?.clusters ?? []).map((c) => c.name);
}

function clusterOf(config: DeployConfig, environment: string, cluster: string) {
  const found = config.environments[environment]?.clusters?.find((c) => c.name === cluster);
  if (!found)
    throw new Error(
      `cluster ${JSON.stringify(cluster)} is not one of environment ${environment}'s (configured: ${clustersOf(config, environment).join(', ') || 'none'})`,
    );
  return found;
}

const withoutUndefined = (o: Plain): Plain => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

/** Where a database is: its server (from the URL variable's value when set) and its name. */
function databaseIdentity(c: DeployConfig, env: Record<string, string | undefined>): string {
  const value = env[c.database.urlEnv];
  let server = `$${c.database.urlEnv}`;
  if (value) {
    try {
      const u = new URL(value);
      server = `${u.hostname}:${u.port || '5432'}`;
    } catch {
      // A malformed URL is reported where it is used; here the variable's name identifies it.
    }
  }
  return `${server}/${c.database.name}`;
}

function prefixesOverlap(a: string, b: string): boolean {
  return a.startsWith(b) || b.startsWith(a);
}

/**
 * One line per pair of environments that would share a database, a backup
 * prefix or a cluster namespace without saying so (`shared: true` in that
 * section of both): deploying to one would back up, migrate or roll out the
 * other's.
 */
export function sharingProblems(config: DeployConfig, env: Record<string, string | undefined>): OverrideIssue[] {
  const names = Object.keys(config.environments);
  const resolved = names.map((n) => ({ name: n, c: environmentConfig(config, n) }));
  const problems: OverrideIssue[] = [];
  for (let i = 0; i < resolved.length; i++) {
    for (let j = i + 1; j < resolved.length; j++) {
      const a = resolved[i];
      const b = resolved[j];
      const pair = `environments ${a.name} and ${b.name}`;
      const db = databaseIdentity(a.c, env);
      if (db === databaseIdentity(b.c, env) && !(a.c.database.shared && b.c.database.shared)) {
        problems.push({
          path: ['environments', b.name, 'database'],
          message: `${pair} share the database ${db}: a deployment to one would back up and migrate the other's; give ${b.name} its own database (name or urlEnv), or set database.shared: true in both`,
        });
      }
      const [ba, bb] = [a.c.backup, b.c.backup];
      if (
        (ba.endpoint ?? '') === (bb.endpoint ?? '') &&
        ba.bucket === bb.bucket &&
        prefixesOverlap(ba.prefix, bb.prefix) &&
        !(ba.shared && bb.shared)
      ) {
        problems.push({
          path: ['environments', b.name, 'backup', 'prefix'],
          message: `${pair} keep backups under the same place (s3://${bb.bucket}/${ba.prefix} and ${bb.prefix}): a restore could pick the other's; give ${b.name} its own backup.prefix, or set backup.shared: true in both`,
        });
      }
      const [ka, kb] = [a.c.kubernetes, b.c.kubernetes];
      if (
        (ka.kubeconfig ?? '') === (kb.kubeconfig ?? '') &&
        (ka.context ?? '') === (kb.context ?? '') &&
        config.environments[a.name].namespace === config.environments[b.name].namespace &&
        !(ka.shared && kb.shared)
      ) {
        problems.push({
          path: ['environments', b.name, 'namespace'],
          message: `${pair} deploy to the same cluster and namespace (${config.environments[b.name].namespace}): give ${b.name} its own kubernetes.kubeconfig or context, or namespace, or set kubernetes.shared: true in both`,
        });
      }
    }
  }
  return problems;
}

/** Rules across sections that must hold in each environment's resolved settings. */
export function environmentProblems(config: DeployConfig): OverrideIssue[] {
  const problems: OverrideIssue[] = [];
  for (const [name, e] of Object.entries(config.environments)) {
    const c = environmentConfig(config, name);
    // Two clusters of one environment that are one cluster would roll it out twice and call it two regions.
    const seen = new Map<string, string>();
    for (const [i, cluster] of (e.clusters ?? []).entries()) {
      const k = environmentConfig(config, name, cluster.name).kubernetes;
      const key = JSON.stringify([k.kubeconfig ?? '', k.context ?? '']);
      const same = seen.get(key);
      if (same)
        problems.push({
          path: ['environments', name, 'clusters', i, 'kubernetes'],
          message: `clusters ${same} and ${cluster.name} are the same cluster (kubeconfig ${k.kubeconfig ?? '(default)'}, context ${k.context ?? '(current)'}): give ${cluster.name} its own kubeconfig or context`,
        });
      seen.set(key, cluster.name);
    }
    // Otherwise every deployment that keeps the configured strategy would be refused.
    if (e.policy.strategies && !e.policy.strategies.includes(c.rollout.strategy)) {
      problems.push({
        path: ['environments', name, 'policy', 'strategies'],
        message: `must include rollout.strategy (${c.rollout.strategy})`,
      });
    }
    const refused = stepOptionProblem(c.traffic.provider, c.rollout.canary.steps);
    if (refused) {
      const where = e.overrides?.rollout?.canary?.steps ? ['environments', name, 'rollout'] : ['rollout'];
      problems.push({ path: [...where, 'canary', 'steps', refused.index], message: refused.message });
    }
    if (!c.services.some((s) => s.name === c.traffic.service)) {
      const where = e.overrides?.traffic?.service
        ? ['environments', name, 'traffic', 'service']
        : ['traffic', 'service'];
      problems.push({ path: where, message: 'must name one of the services' });
    }
  }
  return problems;
}

/** The first step option the traffic provider cannot apply, with a message naming both. */
export function stepOptionProblem(
  provider: TrafficProviderName,
  steps: readonly CanaryStepConfig[],
): { index: number; message: string } | undefined {
  const can = TRAFFIC_PROVIDER_OPTIONS[provider];
  for (const [index, step] of steps.entries()) {
    if (typeof step === 'number') continue;
    for (const option of ['header', 'mirror'] as const) {
      if (step[option] === undefined || can.includes(option)) continue;
      const what = option === 'header' ? 'header-based routing' : 'request mirroring';
      const which = TRAFFIC_PROVIDERS.filter((p) => TRAFFIC_PROVIDER_OPTIONS[p].includes(option));
      return {
        index,
        message: `the ${provider} traffic provider cannot do ${what} (${option}); providers that can: ${which.join(', ')}`,
      };
    }
  }
  return undefined;
}
