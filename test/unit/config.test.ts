import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { ConfigError, parseConfig } from '../../src/domain/config';
import { loadConfig } from '../../src/load-config';
import { REPO_ROOT } from '../helpers/tools';

const EXAMPLE = path.join(REPO_ROOT, 'deploy.config.yaml');
const raw = () => parse(readFileSync(EXAMPLE, 'utf8'));

test('the example config describes the runbook platform', () => {
  const c = loadConfig(EXAMPLE, { REGISTRY: '127.0.0.1:5000' });
  expect(c.environments.production.namespace).toBe('ai-saas');
  expect(c.services.map((s) => s.name)).toEqual([
    'auth-service',
    'chat-service',
    'billing-service',
    'analytics-service',
    'api-gateway',
    'frontend',
  ]);
  expect(c.database.name).toBe('ai_saas_prod');
  expect(c.backup.bucket).toBe('ai-saas-backups');
  expect(c.rollout.canary.steps).toEqual([5, 25, 50, 100]);
  expect(c.rollout.canary.soak).toBe(5 * 60_000);
  expect(c.analysis.metrics.map((m) => [m.name, m.max])).toEqual([
    ['error-rate', 0.01],
    ['p95-latency', 500],
    ['p99-latency', 1000],
  ]);
  expect(c.registry.host).toBe('127.0.0.1:5000');
  // The worker's workflow cache: bounded by default (1000 soaking canaries under 512 MiB), not the SDK's thousands.
  expect(c.temporal.maxCachedWorkflows).toBe(500);
  expect(c.build.concurrency).toBe(6);
  expect(c.verification.smoke[0].body).toEqual({ email: '${env:SMOKE_EMAIL}', password: '${env:SMOKE_PASSWORD}' });
});

test('${VAR} references are filled from the environment, with defaults', () => {
  const c = loadConfig(EXAMPLE, { PROMETHEUS_URL: 'http://127.0.0.1:19090' });
  expect(c.analysis.prometheusUrl).toBe('http://127.0.0.1:19090');
  expect(c.backup.endpoint).toBe('http://127.0.0.1:9000');
});

test('a missing ${VAR} without default names the field and the variable', () => {
  const r = raw();
  r.backup.endpoint = '${MY_S3}';
  expect(() => parseConfig(r, 'x.yaml', {})).toThrow('x.yaml: backup.endpoint: environment variable MY_S3 is not set');
});

test.each([
  [
    'rollout.canary.steps',
    (r: any) => (r.rollout.canary.steps = [5, 50, 25, 100]),
    /rollout\.canary\.steps: steps must increase strictly/,
  ],
  ['rollout.canary.steps', (r: any) => (r.rollout.canary.steps = [5, 25, 50]), /the last step must be 100/],
  [
    'rollout.canary.soak',
    (r: any) => (r.rollout.canary.soak = 'five'),
    /rollout\.canary\.soak: canary soak must look like "30s"/,
  ],
  ['services', (r: any) => r.services.push({ ...r.services[0] }), /services: service names must be unique/],
  ['services.0.name', (r: any) => (r.services[0].name = 'Auth_Service'), /services\.0\.name: a lowercase DNS label/],
  ['traffic.service', (r: any) => (r.traffic.service = 'nope'), /traffic\.service: must name one of the services/],
  [
    'analysis.prometheusUrl',
    (r: any) => (r.analysis.prometheusUrl = 'prometheus:9090'),
    /analysis\.prometheusUrl: an absolute http\(s\) URL/,
  ],
  [
    'preDeploymentChecks.0.command',
    (r: any) => (r.preDeploymentChecks[0].command = 'npm run test'),
    /preDeploymentChecks\.0\.command/,
  ],
  ['database.name', (r: any) => (r.database.name = 'ai-saas; drop'), /database\.name: a PostgreSQL database name/],
  [
    'services (a dependsOn cycle)',
    (r: any) => {
      r.services[0].dependsOn = ['api-gateway'];
      r.services[4].dependsOn = ['chat-service'];
      r.services[1].dependsOn = ['auth-service'];
    },
    /services: dependsOn has a cycle: auth-service → api-gateway → chat-service → auth-service/,
  ],
  [
    'services (a dependsOn on an unknown service)',
    (r: any) => (r.services[4].dependsOn = ['auth-servce']),
    /services: dependsOn names a service the config does not have: api-gateway → auth-servce/,
  ],
  [
    'temporal.maxCachedWorkflows',
    (r: any) => (r.temporal = { ...r.temporal, maxCachedWorkflows: -1 }),
    /temporal\.maxCachedWorkflows/,
  ],
  [
    'defaultEnvironment',
    (r: any) => (r.defaultEnvironment = 'qa'),
    /defaultEnvironment: must name one of the environments/,
  ],
])('an invalid %s is refused with the file, the field and what was expected', (_field, mutate, message) => {
  const r = raw();
  mutate(r);
  expect(() => parseConfig(r, 'deploy.config.yaml', {})).toThrow(ConfigError);
  expect(() => parseConfig(r, 'deploy.config.yaml', {})).toThrow(message);
});

test('backups are compressed with zstd -1 unless the config says otherwise; gzip and none stay available', () => {
  const c = loadConfig(EXAMPLE, {});
  expect(c.backup).toMatchObject({ codec: 'zstd', compressionLevel: 1 });
  const r = raw();
  delete r.backup.codec;
  delete r.backup.compressionLevel;
  expect(parseConfig(r, 'x.yaml', {}).backup).toMatchObject({ codec: 'zstd', compressionLevel: 1 });
  for (const [codec, level] of [
    ['gzip', 0],
    ['gzip', 9],
    ['zstd', 19],
    ['none', 0],
  ] as const) {
    r.backup.codec = codec;
    r.backup.compressionLevel = level;
    expect(parseConfig(r, 'x.yaml', {}).backup).toMatchObject({ codec, compressionLevel: level });
  }
});

test.each([
  [(b: any) => (b.codec = 'lz4'), /x\.yaml: backup\.codec: .*"zstd".*"gzip".*"none"/],
  [(b: any) => (b.codec = 'gzip'), undefined],
  [
    (b: any) => ((b.codec = 'zstd'), (b.compressionLevel = 0)),
    /x\.yaml: backup\.compressionLevel: compressionLevel 0 does not suit codec zstd: it takes 1-19 \(for an uncompressed dump, set codec: none\)/,
  ],
  [(b: any) => ((b.codec = 'zstd'), (b.compressionLevel = 22)), /x\.yaml: backup\.compressionLevel: .*19/],
  [
    (b: any) => ((b.codec = 'gzip'), (b.compressionLevel = 12)),
    /x\.yaml: backup\.compressionLevel: compressionLevel 12 does not suit codec gzip: it takes 0-9/,
  ],
])('a backup codec or level the tools do not take is refused at load (%#)', (mutate, message) => {
  const r = raw();
  mutate(r.backup);
  if (!message) return expect(() => parseConfig(r, 'x.yaml', {})).not.toThrow();
  expect(() => parseConfig(r, 'x.yaml', {})).toThrow(ConfigError);
  expect(() => parseConfig(r, 'x.yaml', {})).toThrow(message);
});

test("an environment's backup codec is checked merged over the top level's", () => {
  const r = raw();
  r.environments.staging = { ...(r.environments.staging ?? {}), backup: { codec: 'gzip', compressionLevel: 12 } };
  expect(() => parseConfig(r, 'x.yaml', {})).toThrow(
    /backup\.compressionLevel: compressionLevel 12 does not suit codec gzip/,
  );
});

test('an unreadable or non-YAML file says so in one line', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cfg-'));
  expect(() => loadConfig(path.join(dir, 'missing.yaml'), {})).toThrow(
    /missing\.yaml: cannot read the file \(ENOENT\)/,
  );
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, 'project: [unclosed\n');
  expect(() => loadConfig(bad, {})).toThrow(/bad\.yaml: not valid YAML/);
});

test('a pre-deployment check gets the variables its config names: env (values) and passEnv (names), nothing by default', () => {
  const r = raw();
  r.preDeploymentChecks[0].env = { NODE_ENV: 'test' };
  r.preDeploymentChecks[0].passEnv = ['NPM_TOKEN'];
  const c = parseConfig(r, 'deploy.config.yaml', {});
  expect(c.preDeploymentChecks[0]).toMatchObject({ env: { NODE_ENV: 'test' }, passEnv: ['NPM_TOKEN'] });
  expect(c.preDeploymentChecks[1]).toMatchObject({ env: {}, passEnv: [] });
  const bad = raw();
  bad.preDeploymentChecks[0].passEnv = ['npm token'];
  expect(() => parseConfig(bad, 'deploy.config.yaml', {})).toThrow(
    /preDeploymentChecks\.0\.passEnv\.0: an environment variable name/,
  );
});
