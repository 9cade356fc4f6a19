/**
 * Redis: the pre-flight PING and the platform check's memory figures, each on
 * a short-lived connection. The memory check keeps its own timeouts (ioredis'
 * connect and command timers would otherwise outlive the client and hold the
 * process).
 */
import Redis from 'ioredis';
import { parseRedisInfo } from '../../domain/verification';
import { withTimeout } from './http';

function connectOnce(url: string): { redis: Redis; lastError: () => Error | undefined } {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 0,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  let lastError: Error | undefined;
  redis.on('error', (err: Error) => {
    lastError = err;
  });
  return { redis, lastError: () => lastError };
}

async function withRedis<T>(url: string, timeoutMs: number, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const { redis, lastError } = connectOnce(url);
  try {
    await withTimeout(redis.connect(), timeoutMs, 'connecting to Redis').catch((err: unknown) => {
      throw lastError() ?? err;
    });
    return await fn(redis);
  } finally {
    // After a failed connect the client has already ended; disconnecting again would arm a 2 s timer for nothing.
    if (redis.status !== 'end') redis.disconnect();
  }
}

/**
 * PING (runbook pre-flight: "redis-cli ping"), with ioredis' own connect
 * timeout and one retry per request: the pre-flight's messages and timing as
 * they have always been.
 */
export async function redisPing(url: string | undefined): Promise<string> {
  if (!url) throw new Error('no Redis URL in the environment (config redis.urlEnv)');
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000 });
  try {
    await redis.connect();
    return await redis.ping();
  } finally {
    redis.disconnect();
  }
}

/** used_memory and maxmemory from INFO memory. */
export async function redisMemory(url: string, timeoutMs: number): Promise<{ used: number; max: number }> {
  return withRedis(url, timeoutMs, async (redis) => {
    const info = parseRedisInfo(await withTimeout(redis.info('memory'), timeoutMs, 'redis INFO memory'));
    return { used: Number(info.used_memory ?? Number.NaN), max: Number(info.maxmemory ?? Number.NaN) };
  });
}
