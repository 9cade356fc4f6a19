/**
 * PostgreSQL 15 (Debian's) run as the `postgres` user on 127.0.0.1, with
 * password authentication over TCP, the application role `app` and one
 * database per environment, ai_saas_prod and ai_saas_staging, each holding
 * the platform's schema and seed rows.
 */
import { createHash } from 'node:crypto';
import { chownSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  ensureDir,
  HOST,
  PORTS,
  ROOT,
  running,
  sh,
  startDaemon,
  stopDaemon,
  waitReady,
  type Component,
} from './common';
import { ENVIRONMENTS, PRODUCTION } from './environments';

const PG_BIN = process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin';
/** Production's; each environment names its own (environments.ts). */
export const DATABASE = PRODUCTION.database;
const APP_USER = 'app';
/** The built-in migrator's record of applied files (src/activities/database/migrators/builtin.ts). */
export const MIGRATIONS_TABLE = 'schema_migrations';

function pgUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (!line) throw new Error('no postgres user: install Debian postgresql (scripts/setup.sh does)');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

function dirs() {
  const base = ensureDir('postgres');
  return { base, data: path.join(base, 'data'), socket: ensureDir('postgres', 'socket') };
}

function secret(name: string): string {
  const f = path.join(dirs().base, name);
  if (!existsSync(f)) writeFileSync(f, sh('openssl', ['rand', '-hex', '16']).trim(), { mode: 0o600 });
  return readFileSync(f, 'utf8').trim();
}

/** psql as the superuser over the unix socket (trust), argument arrays only. */
export function psqlAdmin(database: string, sql: string): string {
  const { socket } = dirs();
  return sh(
    path.join(PG_BIN, 'psql'),
    [
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-h',
      socket,
      '-p',
      String(PORTS.POSTGRES),
      '-U',
      'postgres',
      '-d',
      database,
      '-At',
      '-f',
      '-',
    ],
    { input: sql },
  );
}

export function databaseUrl(database = DATABASE): string {
  return `postgres://${APP_USER}:${secret('app.password')}@${HOST}:${PORTS.POSTGRES}/${database}`;
}

async function ready(): Promise<boolean> {
  try {
    return psqlAdmin('postgres', 'SELECT 1;').trim() === '1';
  } catch {
    return false;
  }
}

/** Drops and recreates a database (ai_saas_prod unless told) with the v1.0.0 schema and seed rows. */
export function loadDatabase(database = DATABASE): void {
  if (!/^[a-z_][a-z0-9_]*$/.test(database)) throw new Error(`not a plain database name: ${JSON.stringify(database)}`);
  psqlAdmin(
    'postgres',
    `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${database}' AND pid <> pg_backend_pid();`,
  );
  psqlAdmin('postgres', `DROP DATABASE IF EXISTS ${database};`);
  psqlAdmin('postgres', `CREATE DATABASE ${database} OWNER ${APP_USER};`);
  // The v1.0.0 state: the baseline migration applied (and recorded as the
  // built-in migrator does), then the seed rows. Owned by the application role.
  const file = '0001_baseline.sql';
  const baseline = readFileSync(path.join(ROOT, 'scripts', 'sandbox', 'demo-repo', 'migrations', file), 'utf8');
  const seed = readFileSync(path.join(ROOT, 'scripts', 'sandbox', 'sql', 'seed.sql'), 'utf8');
  const checksum = createHash('sha256').update(baseline).digest('hex');
  psqlAdmin(
    database,
    [
      `SET ROLE ${APP_USER};`,
      baseline,
      `CREATE TABLE ${MIGRATIONS_TABLE} (filename text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer NOT NULL DEFAULT 0, applied_by text NOT NULL DEFAULT '');`,
      `INSERT INTO ${MIGRATIONS_TABLE} (filename, checksum, applied_by) VALUES ('${file}', '${checksum}', 'sandbox');`,
      seed,
    ].join('\n'),
  );
}

export function postgresComponent(): Component {
  return {
    name: 'postgres',
    async up() {
      const { base, data, socket } = dirs();
      const { uid, gid } = pgUser();
      chownSync(base, uid, gid);
      chownSync(socket, uid, gid);
      if (!existsSync(path.join(data, 'PG_VERSION'))) {
        const pw = path.join(base, 'superuser.pw');
        writeFileSync(pw, secret('superuser.password'), { mode: 0o600 });
        chownSync(pw, uid, gid);
        sh('setpriv', [
          '--reuid',
          String(uid),
          '--regid',
          String(gid),
          '--clear-groups',
          path.join(PG_BIN, 'initdb'),
          '-D',
          data,
          '-U',
          'postgres',
          '--auth-local=trust',
          '--auth-host=scram-sha-256',
          `--pwfile=${pw}`,
          '-E',
          'UTF8',
          '--locale=C.UTF-8',
        ]);
      }
      if (!running('postgres')) {
        startDaemon(
          'postgres',
          path.join(PG_BIN, 'postgres'),
          [
            '-D',
            data,
            '-p',
            String(PORTS.POSTGRES),
            '-k',
            socket,
            '-c',
            `listen_addresses=${HOST}`,
            '-c',
            'max_connections=200',
            '-c',
            'fsync=off',
            '-c',
            'full_page_writes=off',
          ],
          { uid, gid, cwd: base },
        );
      }
      await waitReady('postgres', ready, 30_000, 'postgres');
      const hasRole = psqlAdmin('postgres', `SELECT 1 FROM pg_roles WHERE rolname = '${APP_USER}';`).trim() === '1';
      if (!hasRole) psqlAdmin('postgres', `CREATE ROLE ${APP_USER} LOGIN PASSWORD '${secret('app.password')}';`);
      const loaded: string[] = [];
      for (const { database } of ENVIRONMENTS) {
        const hasDb = psqlAdmin('postgres', `SELECT 1 FROM pg_database WHERE datname = '${database}';`).trim() === '1';
        if (!hasDb) loadDatabase(database);
        loaded.push(`${database} (${psqlAdmin(database, 'SELECT count(*) FROM users;').trim()} users)`);
      }
      return `${HOST}:${PORTS.POSTGRES}: ${loaded.join(', ')}`;
    },
    async status() {
      const ok = running('postgres') && (await ready());
      return {
        ok,
        detail: ok ? `${HOST}:${PORTS.POSTGRES}: ${ENVIRONMENTS.map((e) => e.database).join(', ')}` : 'down',
      };
    },
    async down() {
      await stopDaemon('postgres', 30_000);
    },
    async reset() {
      for (const { database } of ENVIRONMENTS) loadDatabase(database);
    },
    env() {
      return {
        ...Object.fromEntries(ENVIRONMENTS.map((e) => [e.envVar('DATABASE_URL'), databaseUrl(e.database)])),
        PGHOST: HOST,
        PGPORT: String(PORTS.POSTGRES),
        PG_ADMIN_SOCKET: dirs().socket,
      };
    },
  };
}
