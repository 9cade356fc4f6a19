/** Redis (Debian's) on 127.0.0.1 with a maxmemory, so "used memory below 80% of max" is a real check. */
import * as net from 'node:net';
import { ensureDir, HOST, PORTS, running, startDaemon, stopDaemon, waitReady, which, type Component } from './common';

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

export function redisComponent(): Component {
  return {
    name: 'redis',
    async up() {
      const bin = which('redis-server');
      if (!bin) throw new Error('redis-server not found: install Debian redis-server (scripts/setup.sh does)');
      const dir = ensureDir('redis');
      if (!running('redis')) {
        startDaemon('redis', bin, [
          '--bind',
          HOST,
          '--port',
          String(PORTS.REDIS),
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
      await waitReady('redis', async () => (await redisCommand(['PING'])) === '+PONG', 20_000, 'redis');
      return `redis://${HOST}:${PORTS.REDIS} maxmemory ${REDIS_MAXMEMORY}`;
    },
    async status() {
      const ok = running('redis') && (await redisCommand(['PING']).catch(() => '')) === '+PONG';
      return { ok, detail: ok ? `redis://${HOST}:${PORTS.REDIS}` : 'down' };
    },
    async down() {
      await stopDaemon('redis');
    },
    env() {
      return { REDIS_URL: `redis://${HOST}:${PORTS.REDIS}` };
    },
  };
}
