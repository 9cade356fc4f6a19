/**
 * Graphite, one per environment, from Debian's packages: carbon-cache
 * (graphite-carbon) receiving the demo server's per-track figures over the
 * plaintext protocol every 2 s (demo-server/feeds.ts) into whisper files kept
 * at 2 s for a day, and graphite-web's render API (graphite-web, a Django
 * WSGI application) served by gunicorn instead of Apache. Everything listens
 * on loopback and keeps its data under the environment's sandbox folder; the
 * Debian packages' own configuration and data directories are not used.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { HOST, portOpen, running, startDaemon, stopDaemon, waitReady, which, type Component } from './common';
import { PRODUCTION, type SandboxEnvironment } from './environments';

/** The Python module graphite-web reads its settings from (GRAPHITE_SETTINGS_MODULE). */
const SETTINGS_MODULE = 'sandbox_graphite_settings';

export function graphiteUrl(env: SandboxEnvironment = PRODUCTION): string {
  return `http://${HOST}:${env.ports.graphite}`;
}

export function carbonAddress(env: SandboxEnvironment = PRODUCTION): string {
  return `${HOST}:${env.ports.carbon}`;
}

async function webReady(env: SandboxEnvironment): Promise<boolean> {
  const r = await fetch(`${graphiteUrl(env)}/render?target=sandbox.ready&format=json`, {
    signal: AbortSignal.timeout(5000),
  });
  return r.ok;
}

interface Paths {
  conf: string;
  storage: string;
  whisper: string;
  logs: string;
}

function carbonConf(env: SandboxEnvironment, p: Paths): string {
  return [
    '[cache]',
    `STORAGE_DIR = ${p.storage}/`,
    `LOCAL_DATA_DIR = ${p.whisper}/`,
    `WHITELISTS_DIR = ${p.storage}/lists/`,
    `CONF_DIR = ${p.conf}/`,
    `LOG_DIR = ${p.logs}/`,
    `PID_DIR = ${p.storage}/`,
    'ENABLE_LOGROTATION = False',
    'USER =',
    'MAX_CACHE_SIZE = inf',
    'MAX_UPDATES_PER_SECOND = 1000',
    'MAX_CREATES_PER_MINUTE = inf',
    `LINE_RECEIVER_INTERFACE = ${HOST}`,
    `LINE_RECEIVER_PORT = ${env.ports.carbon}`,
    'ENABLE_UDP_LISTENER = False',
    `PICKLE_RECEIVER_INTERFACE = ${HOST}`,
    `PICKLE_RECEIVER_PORT = ${env.ports.carbonPickle}`,
    `CACHE_QUERY_INTERFACE = ${HOST}`,
    `CACHE_QUERY_PORT = ${env.ports.carbonQuery}`,
    'LOG_LISTENER_CONN_SUCCESS = False',
    'LOG_UPDATES = False',
    'LOG_CREATES = False',
    'LOG_CACHE_HITS = False',
    '',
  ].join('\n');
}

/** Every series at the demo server's 2 s interval, kept one day. */
const STORAGE_SCHEMAS = ['[default]', 'pattern = .*', 'retentions = 2s:1d', ''].join('\n');

/** graphite-web's settings: the sandbox's storage, carbon's cache for unwritten points, no tag database. */
function webSettings(env: SandboxEnvironment, p: Paths, secretKey: string): string {
  const py = (v: unknown) => JSON.stringify(v);
  return [
    `SECRET_KEY = ${py(secretKey)}`,
    `STORAGE_DIR = ${py(p.storage)}`,
    `WHISPER_DIR = ${py(p.whisper)}`,
    `INDEX_FILE = ${py(path.join(p.storage, 'index'))}`,
    `LOG_DIR = ${py(path.join(p.logs, 'webapp'))}`,
    `CARBONLINK_HOSTS = [${py(`${HOST}:${env.ports.carbonQuery}:a`)}]`,
    'DEFAULT_XFILES_FACTOR = 0',
    "TAGDB = ''",
    `DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': ${py(path.join(p.storage, 'graphite.db'))}}}`,
    '',
  ].join('\n');
}

export function graphiteComponent(env: SandboxEnvironment): Component {
  const carbon = env.daemon('carbon');
  const web = env.daemon('graphite-web');
  return {
    name: 'graphite',
    environment: env.name,
    async up() {
      const carbonBin = which('carbon-cache');
      const gunicorn = which('gunicorn');
      if (!carbonBin || !gunicorn)
        throw new Error(
          'carbon-cache or gunicorn not found: install Debian graphite-carbon, graphite-web and gunicorn (scripts/setup.sh does)',
        );
      const dir = env.dir('graphite');
      const p: Paths = {
        conf: path.join(dir, 'conf'),
        storage: path.join(dir, 'storage'),
        whisper: path.join(dir, 'storage', 'whisper'),
        logs: path.join(dir, 'logs'),
      };
      for (const d of [p.conf, p.whisper, path.join(p.logs, 'webapp')]) mkdirSync(d, { recursive: true });
      writeFileSync(path.join(p.conf, 'carbon.conf'), carbonConf(env, p));
      writeFileSync(path.join(p.conf, 'storage-schemas.conf'), STORAGE_SCHEMAS);
      // Django wants a secret key; graphite-web signs nothing the sandbox uses, so a fixed one is enough.
      writeFileSync(path.join(p.conf, `${SETTINGS_MODULE}.py`), webSettings(env, p, `sandbox-${env.name}`));
      const PATH = process.env.PATH;
      if (!running(carbon))
        startDaemon(carbon, carbonBin, [`--config=${path.join(p.conf, 'carbon.conf')}`, '--nodaemon', 'start'], {
          env: { PATH },
        });
      if (!running(web))
        startDaemon(
          web,
          gunicorn,
          ['--bind', `${HOST}:${env.ports.graphite}`, '--workers', '2', '--timeout', '30', 'graphite.wsgi:application'],
          { env: { PATH, PYTHONPATH: p.conf, GRAPHITE_SETTINGS_MODULE: SETTINGS_MODULE }, cwd: dir },
        );
      await waitReady(carbon, () => portOpen(env.ports.carbon), 60_000, carbon);
      await waitReady(web, () => webReady(env), 60_000, web);
      return `${graphiteUrl(env)} (render API), Carbon plaintext on ${carbonAddress(env)}`;
    },
    async status() {
      const ok =
        running(carbon) &&
        running(web) &&
        (await portOpen(env.ports.carbon)) &&
        (await webReady(env).catch(() => false));
      return { ok, detail: ok ? `${graphiteUrl(env)}, Carbon ${carbonAddress(env)}` : 'down' };
    },
    async down() {
      await stopDaemon(web);
      await stopDaemon(carbon);
    },
    env() {
      return { [env.envVar('GRAPHITE_URL')]: graphiteUrl(env), [env.envVar('CARBON_ADDRESS')]: carbonAddress(env) };
    },
  };
}
