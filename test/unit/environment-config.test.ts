import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../../src/domain/config';
import { deepMerge, environmentConfig } from '../../src/domain/environment-config';
import { REPO_ROOT } from '../helpers/tools';

/** The example config with production only, and a staging built by each test. */
function twoEnvironments(staging: Record<string, unknown>, production: Record<string, unknown> = {}): any {
  const r = parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8'));
  const prod = r.environments.production;
  r.environments = {
    staging: { namespace: 'ai-saas', approvals: prod.approvals, ...staging },
    production: { ...prod, ...production },
  };
  return r;
}

const SEPARATE = {
  kubernetes: { kubeconfig: '/etc/deploy/staging.kubeconfig', rolloutTimeout: '2m' },
  database: { name: 'ai_saas_staging' },
  backup: { prefix: 'staging/postgres/' },
  analysis: { prometheusUrl: 'http://127.0.0.1:19090' },
  verification: { baseUrl: 'http://127.0.0.1:18080' },
  redis: { urlEnv: 'REDIS_URL_STAGING' },
  rollout: { canary: { soak: '30s' } },
};

test('an environment sees its own back ends, with the top level as defaults', () => {
  const c = parseConfig(twoEnvironments(SEPARATE), 'x.yaml', {});
  const staging = environmentConfig(c, 'staging');
  const production = environmentConfig(c, 'production');
  expect(staging.database.name).toBe('ai_saas_staging');
  expect(production.database.name).toBe('ai_saas_prod');
  // What staging does not set comes from the top level, parsed (durations in ms, defaults filled).
  expect(staging.database.urlEnv).toBe('DATABASE_URL');
  expect(staging.database.verifyTables).toEqual(production.database.verifyTables);
  expect(staging.kubernetes).toMatchObject({ kubeconfig: '/etc/deploy/staging.kubeconfig', rolloutTimeout: 120_000 });
  expect(staging.kubernetes.pollInterval).toBe(production.kubernetes.pollInterval);
  expect(staging.backup).toMatchObject({ bucket: 'ai-saas-backups', prefix: 'staging/postgres/' });
  expect(staging.analysis.prometheusUrl).toBe('http://127.0.0.1:19090');
  expect(staging.analysis.metrics).toEqual(production.analysis.metrics);
  expect(staging.verification.baseUrl).toBe('http://127.0.0.1:18080');
  expect(staging.redis.urlEnv).toBe('REDIS_URL_STAGING');
  expect(staging.rollout.canary).toMatchObject({ soak: 30_000, steps: [5, 25, 50, 100] });
  expect(production.rollout.canary.soak).toBe(300_000);
  // Only the given fields are kept as the override: a test or tool that changes the top level still reaches staging.
  expect(c.environments.staging.overrides?.rollout).toEqual({ canary: { soak: 30_000 } });
  expect(c.environments.production.overrides).toBeUndefined();
});

test('an override is held to the top level’s rules, and its error names the environment’s field', () => {
  expect(() =>
    parseConfig(twoEnvironments({ ...SEPARATE, rollout: { canary: { soak: 'five' } } }), 'x.yaml', {}),
  ).toThrow(/x\.yaml: environments\.staging\.rollout\.canary\.soak: canary soak must look like "30s"/);
  expect(() =>
    parseConfig(twoEnvironments({ ...SEPARATE, database: { name: 'ai_saas_staging', port: 5 } }), 'x.yaml', {}),
  ).toThrow(/environments\.staging\.database: Unrecognized key: "port"/);
  expect(() => parseConfig(twoEnvironments({ ...SEPARATE, registry: { host: 'x' } }), 'x.yaml', {})).toThrow(
    /environments\.staging: Unrecognized key: "registry"/,
  );
  expect(() => parseConfig(twoEnvironments({ ...SEPARATE, traffic: { service: 'nope' } }), 'x.yaml', {})).toThrow(
    /environments\.staging\.traffic\.service: must name one of the services/,
  );
});

test.each([
  [
    'the same database',
    { ...SEPARATE, database: {} },
    /environments\.production\.database: environments staging and production share the database \$DATABASE_URL\/ai_saas_prod/,
  ],
  [
    'the same backup prefix',
    { ...SEPARATE, backup: {} },
    /environments\.production\.backup\.prefix: environments staging and production keep backups under the same place/,
  ],
  [
    'a prefix inside the other',
    { ...SEPARATE, backup: { prefix: 'postgres/staging/' } },
    /keep backups under the same place/,
  ],
  [
    'the same cluster and namespace',
    { ...SEPARATE, kubernetes: {} },
    /environments\.production\.namespace: environments staging and production deploy to the same cluster and namespace \(ai-saas\)/,
  ],
])('two environments that share %s without saying so are refused', (_what, staging, message) => {
  expect(() => parseConfig(twoEnvironments(staging), 'x.yaml', {})).toThrow(message);
});

test('the database is identified by its server and name, whatever the variable is called', () => {
  const env = { DATABASE_URL: 'postgres://u@db.internal:5432/x', STAGING_DB: 'postgres://u@db.internal/x' };
  const sameServer = { ...SEPARATE, database: { name: 'ai_saas_prod', urlEnv: 'STAGING_DB' } };
  expect(() => parseConfig(twoEnvironments(sameServer), 'x.yaml', env)).toThrow(
    /share the database db\.internal:5432\/ai_saas_prod/,
  );
  const otherServer = { STAGING_DB: 'postgres://u@staging-db.internal/x', DATABASE_URL: env.DATABASE_URL };
  expect(parseConfig(twoEnvironments(sameServer), 'x.yaml', otherServer).environments.staging).toBeDefined();
});

test('sharing is allowed when both environments say so', () => {
  const shared = { ...SEPARATE, database: { shared: true }, backup: { shared: true } };
  const c = parseConfig(
    twoEnvironments(shared, { database: { shared: true }, backup: { shared: true } }),
    'x.yaml',
    {},
  );
  expect(environmentConfig(c, 'staging').database.name).toBe(environmentConfig(c, 'production').database.name);
  // One side alone is not enough.
  expect(() => parseConfig(twoEnvironments(shared), 'x.yaml', {})).toThrow(/share the database/);
});

test('a cluster is told apart by kubeconfig and context', () => {
  const byContext = { ...SEPARATE, kubernetes: { context: 'staging' } };
  const c = parseConfig(twoEnvironments(byContext), 'x.yaml', {});
  expect(environmentConfig(c, 'staging').kubernetes.context).toBe('staging');
  expect(environmentConfig(c, 'production').kubernetes.context).toBeUndefined();
});

test('deepMerge merges objects and replaces lists and values', () => {
  expect(deepMerge({ a: { b: 1, c: [1, 2] }, d: 'x' }, { a: { c: [3] }, d: undefined })).toEqual({
    a: { b: 1, c: [3] },
    d: 'x',
  });
});
