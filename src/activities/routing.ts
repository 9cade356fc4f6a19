/**
 * Which environment an activity call acts on: the one its request names
 * (`environment`, or that of the target or plan it carries). Planning calls
 * name it in their input, and an unknown one there is the planner's to
 * refuse with the list; anywhere else an environment the config no longer
 * has is refused, never taken as another environment's.
 */
import type { DeployConfig } from '../domain/config';
import { fail } from './failures';

/** Activities whose request holds the person's input: the planner (or the freeze's check) reports an unknown environment. */
const PLANNING = new Set(['resolvePlan', 'resolveRollback', 'resolveRelease', 'verifyFreezer']);

type Request = {
  environment?: unknown;
  cluster?: unknown;
  target?: { environment?: unknown; cluster?: unknown };
  plan?: { environment?: unknown; cluster?: unknown };
  input?: { environment?: unknown };
};

export function routeOf(config: DeployConfig, activity: string, request: unknown): string {
  const r = (request && typeof request === 'object' ? request : {}) as Request;
  if (PLANNING.has(activity)) {
    const asked = r.input?.environment;
    return typeof asked === 'string' && Object.hasOwn(config.environments, asked) ? asked : config.defaultEnvironment;
  }
  const named = r.environment ?? r.target?.environment ?? r.plan?.environment;
  if (named === undefined) return config.defaultEnvironment;
  if (typeof named !== 'string' || !Object.hasOwn(config.environments, named)) {
    throw fail.InvalidInput(
      `environment ${JSON.stringify(named)} is not in the worker's config (configured: ${Object.keys(config.environments).join(', ')}): was it removed while a deployment ran? Put it back, or roll the deployment back by hand`,
    );
  }
  return named;
}

/**
 * Which of the environment's clusters the call acts in: the one its request
 * (or its target or plan) names, which must be one of the environment's; none
 * named: the environment's own kubernetes settings (its first cluster).
 */
export function clusterRouteOf(config: DeployConfig, environment: string, request: unknown): string | undefined {
  const r = (request && typeof request === 'object' ? request : {}) as Request;
  const named = r.cluster ?? r.target?.cluster ?? r.plan?.cluster;
  if (named === undefined) return undefined;
  const clusters = (config.environments[environment]?.clusters ?? []).map((c) => c.name);
  if (typeof named !== 'string' || !clusters.includes(named))
    throw fail.InvalidInput(
      `cluster ${JSON.stringify(named)} is not one of environment ${environment}'s (configured: ${clusters.join(', ') || 'none'})`,
    );
  return named;
}
