/**
 * The platform check (runbook "Monitoring & Alerts"): database connections
 * not climbing since the rollout's baseline, Redis below
 * redis.maxMemoryRatio of its maxmemory. A service that cannot be read fails
 * its line of the report; only a missing URL variable on the worker throws
 * (ConfigInvalid, not retried).
 */
import type { MeasurementOutcome } from '../../domain/status';
import { judgeConnectionGrowth, judgeRedisMemory, type PlatformCheck } from '../../domain/verification';
import { countDatabaseConnections } from '../clients/postgres';
import { redisMemory } from '../clients/redis';
import type { PlatformBaseline, PlatformHealthRequest, PlatformReport } from '../contracts';
import { configInvalid } from '../failures';
import type { CheckContext } from './context';

/** The platformBaseline and checkPlatformHealth activities over `ctx`. */
export function platformChecks(ctx: CheckContext) {
  const { config, env, log, now, describe } = ctx;
  const v = config.verification;

  function envUrl(name: string): string {
    const url = env[name];
    if (!url) throw configInvalid(`environment variable ${name} is not set on the worker`);
    return url;
  }

  /** Active database connections now: the baseline a later platform check compares with. */
  async function platformBaseline(): Promise<PlatformBaseline> {
    const url = envUrl(config.database.urlEnv);
    try {
      return {
        at: now().toISOString(),
        databaseConnections: await countDatabaseConnections(url, config.database.name, v.timeout),
      };
    } catch (err) {
      throw new Error(`counting database connections: ${describe(err)}`, { cause: err });
    }
  }

  /** Runbook "Monitoring & Alerts": database connections not climbing, Redis below maxMemoryRatio of maxmemory. */
  async function checkPlatformHealth(req: PlatformHealthRequest): Promise<PlatformReport> {
    const dbUrl = envUrl(config.database.urlEnv);
    const redisUrl = envUrl(config.redis.urlEnv);
    const [db, redis] = await Promise.all([
      countDatabaseConnections(dbUrl, config.database.name, v.timeout).then(
        (n) => judgeConnectionGrowth(n, req.baselineConnections, config.database.maxConnectionGrowth),
        (err: unknown): PlatformCheck => ({
          name: 'database-connections',
          outcome: 'fail',
          value: null,
          detail: `cannot query the database: ${describe(err)}`,
        }),
      ),
      redisMemory(redisUrl, v.timeout).then(
        (m) => judgeRedisMemory(m.used, m.max, config.redis.maxMemoryRatio),
        (err: unknown): PlatformCheck => ({
          name: 'redis-memory',
          outcome: 'fail',
          value: null,
          detail: `cannot read Redis memory: ${describe(err)}`,
        }),
      ),
    ]);
    const checks = [db, redis];
    const outcome: MeasurementOutcome = checks.some((c) => c.outcome === 'fail')
      ? 'fail'
      : checks.some((c) => c.outcome === 'inconclusive')
        ? 'inconclusive'
        : 'pass';
    // Inconclusive (no baseline, no maxmemory) is shown, but only a failure fails the check.
    const lines = checks.map((c) => `${c.name} ${c.outcome === 'fail' ? 'failed' : c.outcome}: ${c.detail}`);
    if (outcome === 'pass') log.info('platform check passed', { lines });
    else log.warn(`platform check ${outcome}`, { lines });
    return { ok: outcome !== 'fail', lines, outcome, checks };
  }

  return { platformBaseline, checkPlatformHealth };
}
