/**
 * Redis (Debian's) on 127.0.0.1 with a maxmemory, so "used memory below 80%
 * of max" is a real check: one server per environment, so that memory
 * pressure in staging never fails production's pre-flight.
 */
import * as net from 'node:net';
import { HOST, PORTS, running, startDaemon, stopDaemon, waitReady, which, type Component } from './common';
import type { SandboxEnvironment } from './environments';

export const REDIS_MAXMEMORY = '64mb';

/** One RESP command over a plain socket: enough for PING during start-up. */
export function redisCommand(args: string[], port = PORTS.REDIS): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port });
    let buf = '';
    s.setTimeout(2000, () => s.destroy(new Error('timeout')));
    s.on('connect', () =>
      s.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`),
    );
    s.on('data', (d) => {
      buf += d.toString('utf8');
      if (buf.endsWith('\r\n')) {
        s.end();
        resolve(buf.trim());
      }
    });
    s.on('error', reject);
  });
}

export function redisComponent(env: SandboxEnvironment): Component {
  const daemon = env.daemon('redis');
  const port = env.ports.redis;
  const url = `redis://${HOST}:${port}`;
  const ping = async () => (await redisCommand(['PING'], port)) === '+PONG';
  return {
    name: 'redis',
    environment: env.name,
    async up() {
      const bin = which('redis-server');
      if (!bin) throw new Error('redis-server not found: install Debian redis-server (scripts/setup.sh does)');
      const dir = env.dir('redis');
      if (!running(daemon)) {
        startDaemon(daemon, bin, [
          '--bind',
          HOST,
          '--port',
          String(port),
          '--save',
          '',
          '--appendonly',
          'no',
          '--dir',
          dir,
          '--maxmemory',
          REDIS_MAXMEMORY,
          '--maxmemory-policy',
          'allkeys-lru',
          '--daemonize',
          'no',
        ]);
      }
      await waitReady(daemon, ping, 20_000, daemon);
      return `${url} maxmemory ${REDIS_MAXMEMORY}`;
    },
    async status() {
      const ok = running(daemon) && (await ping().catch(() => false));
      return { ok, detail: ok ? url : 'down' };
    },
    async down() {
      await stopDaemon(daemon);
    },
    env() {
      return { [env.envVar('REDIS_URL')]: url };
    },
  };
}
