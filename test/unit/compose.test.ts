/**
 * temporal-docker-compose.yml: Temporal on PostgreSQL, the Web UI, the admin
 * tools and the worker, read as data (the `yaml` package) and checked for what
 * the README promises: loopback-only ports, PostgreSQL persistence, the
 * Deploy* search attributes registered, and a worker built from this repo's
 * Dockerfile that gets every variable deploy.config.yaml names and no secret
 * written inline.
 *
 * `docker compose config -q` (Compose's own validation, with interpolation)
 * runs too when this machine's docker client has the compose plugin. Machines
 * of this kind have a docker client without it, and the project leaves no
 * skipped tests behind, so that check is part of the same test behind a plain
 * condition, and the test records which checks ran in its output.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { SEARCH_ATTRIBUTE_NAMES } from '../../src/search-attributes';
import {
  DYNAMIC_CONFIG_FILE,
  serviceConfig,
  SQL_PLUGIN,
  TEMPORAL_SERVER_VERSION,
  TEMPORAL_UI_VERSION,
} from '../../scripts/sandbox/temporal-cluster';
import { REPO_ROOT } from '../helpers/tools';

const COMPOSE_FILE = path.join(REPO_ROOT, 'temporal-docker-compose.yml');

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string } | string;
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | { target: number; published?: string | number; host_ip?: string })[];
  depends_on?: Record<string, { condition: string }> | string[];
  entrypoint?: string | string[];
  command?: string | string[];
  healthcheck?: { test: string | string[] };
  configs?: { source: string; target: string }[];
  volumes?: string[];
}
interface Compose {
  services: Record<string, Service>;
  configs?: Record<string, { content?: string; file?: string }>;
  volumes?: Record<string, unknown>;
}

const compose = parse(readFileSync(COMPOSE_FILE, 'utf8')) as Compose;

function env(name: string): Record<string, string> {
  const e = compose.services[name].environment ?? {};
  if (Array.isArray(e))
    return Object.fromEntries(e.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, String(v ?? '')]));
}

function script(name: string): string {
  const s = compose.services[name];
  return [s.entrypoint, s.command].flat().filter(Boolean).join(' ');
}

/** A whole value that is one `${VAR}` / `${VAR:-default}` reference. */
const REFERENCE = /^\$\{([A-Z_][A-Z0-9_]*)(?::?-([^}]*))?\}$/;
/** Names whose values are credentials or carry them (URLs with passwords, webhooks). */
const SECRET_NAME = /PASSWORD|SECRET|TOKEN|_KEY|API_KEY|WEBHOOK|USERNAME|DATABASE_URL|REDIS_URL|CREDENTIAL/;

/** Compose's own validation, when this machine's docker client has the compose plugin. */
function composePlugin(): boolean {
  const r = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0;
}

test('the compose file runs Temporal on PostgreSQL with the UI, the admin tools and the worker, on loopback only, without inline secrets', () => {
  const ran: string[] = [];

  // The services the README names.
  expect(Object.keys(compose.services)).toEqual(
    expect.arrayContaining(['temporal', 'postgresql', 'temporal-ui', 'temporal-admin-tools', 'worker']),
  );
  ran.push('services');

  // Images are pinned (no :latest, no untagged image).
  for (const [name, s] of Object.entries(compose.services)) {
    if (s.image) expect([name, s.image]).toEqual([name, expect.stringMatching(/^[a-z0-9./-]+:(?!latest$)[\w.-]+$/)]);
  }
  ran.push('pinned images');

  // PostgreSQL persistence for the server, with the database it waits for, and a healthcheck.
  const temporal = env('temporal');
  expect(temporal).toMatchObject({
    DB: 'postgres12',
    DB_PORT: '5432',
    POSTGRES_SEEDS: 'postgresql',
    POSTGRES_USER: 'temporal',
  });
  expect(temporal.POSTGRES_PWD).toMatch(REFERENCE);
  expect(compose.services.postgresql.image).toMatch(/^postgres:/);
  expect(compose.services.postgresql.healthcheck?.test).toBeDefined();
  expect(compose.services.postgresql.volumes?.some((v) => v.endsWith(':/var/lib/postgresql/data'))).toBe(true);
  expect(compose.services.temporal.healthcheck?.test).toBeDefined();
  // The schema is in place before the server starts (temporalio/server does not create it).
  const schemaJob = Object.entries(compose.services).find(([, s]) =>
    /temporal-sql-tool/.test([s.entrypoint, s.command].flat().join(' ')),
  );
  expect(schemaJob).toBeDefined();
  expect(script(schemaJob![0])).toMatch(/postgres12/);
  expect(compose.services.temporal.depends_on).toMatchObject({
    [schemaJob![0]]: { condition: 'service_completed_successfully' },
  });
  // The dynamic config file the server is told to read is mounted.
  const dynamicConfig = temporal.DYNAMIC_CONFIG_FILE_PATH;
  expect(compose.services.temporal.configs?.map((c) => c.target)).toContain(dynamicConfig);
  ran.push('postgres persistence');

  // Published ports: only 7233 (frontend), 8233 (UI) and 9464 (the worker's /metrics), all on 127.0.0.1.
  const published: string[] = [];
  for (const [name, s] of Object.entries(compose.services)) {
    for (const p of s.ports ?? []) {
      if (typeof p !== 'string') throw new Error(`${name}: use the short "127.0.0.1:host:container" port syntax`);
      expect([name, p]).toEqual([name, expect.stringMatching(/^127\.0\.0\.1:\d+:\d+$/)]);
      published.push(p.split(':')[1]);
    }
  }
  expect(published.sort()).toEqual(['7233', '8233', '9464']);
  expect(compose.services.temporal.ports).toEqual(['127.0.0.1:7233:7233']);
  expect(compose.services['temporal-ui'].ports).toEqual(['127.0.0.1:8233:8080']);
  // The worker's /metrics: every interface inside its container, the host's loopback outside.
  expect(compose.services.worker.ports).toEqual(['127.0.0.1:9464:9464']);
  expect(env('worker').DEPLOY_METRICS_ADDRESS).toBe('0.0.0.0:9464');
  ran.push('loopback ports');

  // The UI keeps the forms people use (start, signal) enabled.
  expect(env('temporal-ui')).toMatchObject({
    TEMPORAL_ADDRESS: 'temporal:7233',
    TEMPORAL_DISABLE_WRITE_ACTIONS: 'false',
    TEMPORAL_START_WORKFLOW_DISABLED: 'false',
    TEMPORAL_WORKFLOW_SIGNAL_DISABLED: 'false',
  });
  ran.push('ui write actions');

  // The admin tools register every search attribute the workflows upsert, as Keyword, and the namespace.
  const admin = script('temporal-admin-tools');
  expect(env('temporal-admin-tools').TEMPORAL_ADDRESS).toBe('temporal:7233');
  expect(admin).toMatch(/temporal operator search-attribute create\b.*--type Keyword/);
  expect(admin).toMatch(/temporal operator namespace create --namespace default/);
  for (const name of SEARCH_ATTRIBUTE_NAMES) expect(admin).toContain(name);
  ran.push('search attributes');

  // The worker: this repo's Dockerfile, the compose network's Temporal, after the search attributes exist.
  const worker = compose.services.worker;
  expect(worker.build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
  const dockerfile = readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
  expect(dockerfile).toMatch(/RUN npm run build/);
  expect(dockerfile).toMatch(/CMD \["node", .*"dist\/src\/worker\.js"\]/);
  const workerEnv = env('worker');
  expect(workerEnv.TEMPORAL_ADDRESS).toBe('temporal:7233');
  expect(worker.depends_on).toMatchObject({ 'temporal-admin-tools': { condition: 'service_healthy' } });
  ran.push('worker build');

  // No secret value inline: every credential-like variable is a bare reference with an empty default.
  for (const [name, value] of Object.entries(workerEnv)) {
    if (!SECRET_NAME.test(name)) continue;
    const m = REFERENCE.exec(value);
    expect([name, m?.[1]]).toEqual([name, name]);
    expect([name, m?.[2] ?? '']).toEqual([name, '']);
  }
  // ...and nothing that looks like a credential anywhere in the worker's literals.
  for (const [name, value] of Object.entries(workerEnv)) {
    if (REFERENCE.test(value)) continue;
    expect([name, value]).not.toEqual([name, expect.stringMatching(/:\/\/[^/\s:@]+:[^@\s]+@|^(AKIA|ghp_|xox[bp]-)/)]);
  }
  ran.push('no inline secrets');

  // Every variable deploy.config.yaml reads (${VAR}, ${env:VAR}, and the *Env fields) reaches the worker.
  const named = new Set<string>();
  const walk = (v: unknown, key = ''): void => {
    if (typeof v === 'string') {
      for (const m of v.matchAll(/\$\{(?:env:)?([A-Z_][A-Z0-9_]*)(?::-[^}]*)?\}/g)) named.add(m[1]);
      if (key.endsWith('Env')) named.add(v);
    } else if (Array.isArray(v)) v.forEach((x) => walk(x));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
  };
  walk(parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8')));
  named.add('DATABASE_URL'); // database.urlEnv's default
  named.add('REDIS_URL'); // redis.urlEnv's default
  expect([...named].filter((n) => !(n in workerEnv)).sort()).toEqual([]);
  // The files it reads are mounted where the variables point.
  expect(worker.volumes?.some((v) => v.endsWith(`:${workerEnv.KUBECONFIG_WORKER}:ro`))).toBe(true);
  expect(worker.volumes?.some((v) => v.endsWith(`:${workerEnv.GIT_CHECKOUT}`))).toBe(true);
  ran.push('worker variables');

  if (composePlugin()) {
    execFileSync('docker', ['compose', '-f', COMPOSE_FILE, 'config', '-q'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    });
    ran.push('docker compose config -q');
  } else {
    ran.push('NOT RUN: docker compose config -q (no compose plugin in this docker client)');
  }
  console.log(`compose checks: ${ran.join('; ')}`);
  expect(ran.filter((r) => !r.startsWith('NOT RUN')).length).toBeGreaterThanOrEqual(9);
});

test("the compose file runs the sandbox cluster's Temporal: the same server and UI versions, the same dynamic config, the same SQL plugin", () => {
  // Versions: the images the compose file pulls are the versions the sandbox builds from the Go module proxy.
  for (const name of ['temporal', 'temporal-schema', 'temporal-admin-tools'])
    expect([name, compose.services[name].image?.split(':')[1]]).toEqual([name, TEMPORAL_SERVER_VERSION]);
  expect(compose.services['temporal-ui'].image).toBe(`temporalio/ui:${TEMPORAL_UI_VERSION}`);
  // Dynamic config: the compose file mounts the one file the sandbox cluster reads.
  const source = compose.services.temporal.configs?.find((c) => c.target === env('temporal').DYNAMIC_CONFIG_FILE_PATH);
  expect(source).toBeDefined();
  const file = compose.configs?.[source!.source]?.file;
  expect(file && path.resolve(REPO_ROOT, file)).toBe(DYNAMIC_CONFIG_FILE);
  // Persistence: the same plugin and SQL visibility, with the schema tool run on both databases.
  expect(env('temporal').DB).toBe(SQL_PLUGIN);
  const config = serviceConfig(
    {
      dir: '/unused',
      ports: {
        grpc: { frontend: 1, history: 2, matching: 3, worker: 4 },
        membership: { frontend: 5, history: 6, matching: 7, worker: 8 },
        metrics: { frontend: 9, history: 10, matching: 11, worker: 12 },
        http: 13,
      },
      database: { host: '127.0.0.1', port: 5432, user: 'temporal', password: 'x', name: 'temporal' },
    },
    'frontend',
  ) as { persistence: { datastores: Record<string, { sql: { pluginName: string; databaseName: string } }> } };
  const stores = Object.values(config.persistence.datastores).map((d) => d.sql);
  expect(stores.map((s) => s.pluginName)).toEqual([SQL_PLUGIN, SQL_PLUGIN]);
  expect(stores.map((s) => s.databaseName)).toEqual([env('temporal').DBNAME, env('temporal').VISIBILITY_DBNAME]);
  expect(script('temporal-schema')).toContain(`--plugin ${SQL_PLUGIN}`);
});
