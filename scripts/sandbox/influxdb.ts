/**
 * InfluxDB 1.x (Debian's `influxdb`), one per environment, on loopback, its
 * data under the environment's sandbox folder, with the database the demo
 * server writes its per-track figures to every 2 s (demo-server/feeds.ts),
 * so the influxdb metrics provider reads real numbers. Authentication is on,
 * as on a real server: one admin user, its password generated once and kept
 * in the sandbox folder, handed to the demo server and written to the
 * sandbox env file as INFLUXDB_USERNAME and INFLUXDB_PASSWORD.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { ensureDir, HOST, running, sh, startDaemon, stopDaemon, waitReady, which, type Component } from './common';
import { influxStringLiteral } from '../../src/domain/influxql';
import { PRODUCTION, type SandboxEnvironment } from './environments';

/** The database the demo server's figures go to. */
export const INFLUXDB_DATABASE = 'ai_saas';

export const INFLUXDB_USERNAME = 'sandbox';

/** The admin's password, shared by both environments' servers (as the smoke-test account is). */
export function influxdbPassword(): string {
  const f = path.join(ensureDir('influxdb'), 'admin-password');
  if (!existsSync(f)) writeFileSync(f, sh('openssl', ['rand', '-hex', '16']).trim(), { mode: 0o600 });
  return readFileSync(f, 'utf8').trim();
}

function basicAuth(): string {
  return `Basic ${Buffer.from(`${INFLUXDB_USERNAME}:${influxdbPassword()}`).toString('base64')}`;
}

/** One InfluxQL statement sent as the admin, or (`asAdmin` false) without credentials. */
async function influxql(env: SandboxEnvironment, q: string, asAdmin = true): Promise<Response> {
  return fetch(`${influxdbUrl(env)}/query`, {
    method: 'POST',
    body: new URLSearchParams({ q }),
    headers: asAdmin ? { authorization: basicAuth() } : {},
    signal: AbortSignal.timeout(5000),
  });
}

/**
 * The admin user, created on a fresh server: InfluxDB accepts that one
 * statement without credentials while it has no admin. An existing admin is
 * left alone.
 */
async function ensureAdmin(env: SandboxEnvironment, daemon: string): Promise<void> {
  if ((await influxql(env, 'SHOW DATABASES')).ok) return;
  const password = influxStringLiteral(influxdbPassword());
  const r = await influxql(
    env,
    `CREATE USER ${INFLUXDB_USERNAME} WITH PASSWORD ${password} WITH ALL PRIVILEGES`,
    false,
  );
  if (!r.ok)
    throw new Error(`${daemon}: cannot create its admin user: HTTP ${r.status} ${(await r.text()).slice(0, 200)}`);
}

export function influxdbUrl(env: SandboxEnvironment = PRODUCTION): string {
  return `http://${HOST}:${env.ports.influxdb}`;
}

async function ready(env: SandboxEnvironment): Promise<boolean> {
  const r = await fetch(`${influxdbUrl(env)}/ping`, { signal: AbortSignal.timeout(2000) });
  return r.status === 204;
}

/** Every listener on loopback; no usage reporting, no self-monitoring database, quiet logs. */
function configText(env: SandboxEnvironment, dir: string): string {
  const q = (p: string) => JSON.stringify(path.join(dir, p));
  return [
    'reporting-disabled = true',
    `bind-address = "${HOST}:${env.ports.influxdbRpc}"`,
    '[meta]',
    `  dir = ${q('meta')}`,
    '  logging-enabled = false',
    '[data]',
    `  dir = ${q('data')}`,
    `  wal-dir = ${q('wal')}`,
    '  query-log-enabled = false',
    '[monitor]',
    '  store-enabled = false',
    '[http]',
    `  bind-address = "${HOST}:${env.ports.influxdb}"`,
    '  log-enabled = false',
    '  auth-enabled = true',
    '[continuous_queries]',
    '  enabled = false',
    '',
  ].join('\n');
}

export function influxdbComponent(env: SandboxEnvironment): Component {
  const daemon = env.daemon('influxdb');
  return {
    name: 'influxdb',
    environment: env.name,
    async up() {
      const bin = which('influxd');
      if (!bin) throw new Error('influxd not found: install Debian influxdb (scripts/setup.sh does)');
      const dir = env.dir('influxdb');
      const cfg = path.join(dir, 'influxdb.conf');
      const text = configText(env, dir);
      const changed = !existsSync(cfg) || readFileSync(cfg, 'utf8') !== text;
      writeFileSync(cfg, text);
      // influxd reads its configuration once: a changed one (authentication turned on) needs a restart.
      if (changed && running(daemon)) await stopDaemon(daemon);
      if (!running(daemon)) startDaemon(daemon, bin, ['run', '-config', cfg], { env: { PATH: process.env.PATH } });
      await waitReady(daemon, () => ready(env), 60_000, daemon);
      await ensureAdmin(env, daemon);
      // Idempotent: an existing database is left as it is.
      const r = await influxql(env, `CREATE DATABASE ${INFLUXDB_DATABASE}`);
      if (!r.ok) throw new Error(`${daemon} refused to create database ${INFLUXDB_DATABASE}: ${await r.text()}`);
      return `${influxdbUrl(env)} database ${INFLUXDB_DATABASE}`;
    },
    async status() {
      const ok = running(daemon) && (await ready(env).catch(() => false));
      return { ok, detail: ok ? `${influxdbUrl(env)} database ${INFLUXDB_DATABASE}` : 'down' };
    },
    async down() {
      await stopDaemon(daemon);
    },
    env() {
      return {
        [env.envVar('INFLUXDB_URL')]: influxdbUrl(env),
        [env.envVar('INFLUXDB_DATABASE')]: INFLUXDB_DATABASE,
        // One admin for both servers: the names without a suffix serve both environments.
        INFLUXDB_USERNAME,
        INFLUXDB_PASSWORD: influxdbPassword(),
      };
    },
  };
}
