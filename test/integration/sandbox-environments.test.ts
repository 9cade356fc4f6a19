/**
 * The sandbox's two environments are really separate: two Kubernetes
 * clusters (a change in one is not in the other, a credential of one is
 * refused by the other), each running the demo platform at 1.0.0; two
 * databases on one server; backups under two prefixes; two Redis servers;
 * two demo servers, each following its own cluster's VirtualService; two
 * Prometheus servers, each scraping only its own environment's demo server.
 */
import { IO_METRICS_ADDRESS, METRICS_ADDRESS } from '../../src/domain/config';
import { ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import * as k8s from '@kubernetes/client-node';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { Client } from 'pg';
import { adminKube, stagingKube } from '../helpers/e2e';
import { sandboxVar, sandboxVarOf, type SandboxEnvironmentName } from '../helpers/sandbox';
import { REPO_ROOT } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const NS = 'ai-saas';
const ENVIRONMENTS: SandboxEnvironmentName[] = ['production', 'staging'];
const SERVICES = ['auth-service', 'chat-service', 'billing-service', 'analytics-service', 'api-gateway', 'frontend'];
const VERSION_ANNOTATION = 'deploy-pipelines.dev/version';
const run = promisify(execFile);
const cli = (...args: string[]) =>
  run(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), [path.join(REPO_ROOT, 'scripts/sandbox/cli.ts'), ...args], {
    cwd: REPO_ROOT,
  });

const kube = (env: SandboxEnvironmentName) => (env === 'staging' ? stagingKube() : adminKube());
const MERGE_PATCH = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

function kubeconfig(env: SandboxEnvironmentName, name: 'KUBECONFIG' | 'KUBECONFIG_WORKER'): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(sandboxVarOf(env, name));
  return kc;
}

interface DemoState {
  weights: { stable: number; canary: number };
  versions: { stable: string; canary: string | null };
  faults: Record<string, unknown>;
}
async function demoState(env: SandboxEnvironmentName): Promise<DemoState> {
  return (await (await fetch(`${sandboxVarOf(env, 'DEMO_URL')}/__sandbox/state`)).json()) as DemoState;
}

type Series = { metric: Record<string, string>; value: [number, string] };
async function promQuery(env: SandboxEnvironmentName, query: string): Promise<Series[]> {
  const r = await fetch(`${sandboxVarOf(env, 'PROMETHEUS_URL')}/api/v1/query?query=${encodeURIComponent(query)}`);
  const j = (await r.json()) as { status: string; data: { result: Series[] } };
  expect(j.status).toBe('success');
  return j.data.result;
}

describe('Kubernetes', () => {
  test('the two apiservers are different clusters: a Deployment patched in staging does not change production', async () => {
    const [prodSystem, stagingSystem] = await Promise.all(
      ENVIRONMENTS.map((e) => kube(e).core.readNamespace({ name: 'kube-system' })),
    );
    expect(prodSystem.metadata?.uid).toBeTruthy();
    expect(stagingSystem.metadata?.uid).not.toBe(prodSystem.metadata?.uid);

    const mark = `check-${process.pid}-${Date.now()}`;
    const annotation = 'sandbox-check.deploy-pipelines.dev/mark';
    const patch = (value: string | null) =>
      stagingKube().apps.patchNamespacedDeployment(
        { name: 'frontend', namespace: NS, body: { metadata: { annotations: { [annotation]: value } } } },
        MERGE_PATCH,
      );
    try {
      const patched = await patch(mark);
      expect(patched.metadata?.annotations?.[annotation]).toBe(mark);
      const prod = await adminKube().apps.readNamespacedDeployment({ name: 'frontend', namespace: NS });
      expect(prod.metadata?.annotations?.[annotation]).toBeUndefined();
      expect(prod.metadata?.uid).not.toBe(patched.metadata?.uid);
    } finally {
      await patch(null);
    }
  });

  test('each cluster has its own credentials: production worker token is refused by the staging apiserver', async () => {
    const prodWorker = kubeconfig('production', 'KUBECONFIG_WORKER');
    const staging = kubeconfig('staging', 'KUBECONFIG');
    expect(staging.getCurrentCluster()?.server).not.toBe(prodWorker.getCurrentCluster()?.server);
    // Production's token sent to staging's apiserver (trusting staging's CA, so TLS itself succeeds).
    const crossed = new k8s.KubeConfig();
    crossed.loadFromOptions({
      clusters: [{ ...staging.getCurrentCluster()!, name: 'staging' }],
      users: [{ ...prodWorker.getCurrentUser()!, name: 'production-worker' }],
      contexts: [{ name: 'crossed', cluster: 'staging', user: 'production-worker' }],
      currentContext: 'crossed',
    });
    await expect(
      crossed.makeApiClient(k8s.AppsV1Api).listNamespacedDeployment({ namespace: NS }),
    ).rejects.toMatchObject({ code: 401 });
    // Production's CA does not vouch for staging's apiserver.
    expect(staging.getCurrentCluster()?.caData).not.toBe(prodWorker.getCurrentCluster()?.caData);
  });

  test.each(ENVIRONMENTS)('%s: the worker ServiceAccount has the same least-privilege Role', async (env) => {
    const worker = kubeconfig(env, 'KUBECONFIG_WORKER');
    await expect(
      worker.makeApiClient(k8s.AppsV1Api).listNamespacedDeployment({ namespace: NS }),
    ).resolves.toBeDefined();
    await expect(worker.makeApiClient(k8s.CoreV1Api).listNode()).rejects.toMatchObject({ code: 403 });
    await expect(worker.makeApiClient(k8s.CoreV1Api).listNamespacedSecret({ namespace: NS })).rejects.toMatchObject({
      code: 403,
    });
  });

  test.each(ENVIRONMENTS)('%s runs the demo platform at 1.0.0, Ready', async (env) => {
    const { apps, core, custom } = kube(env);
    const list = await apps.listNamespacedDeployment({ namespace: NS });
    for (const name of SERVICES) {
      const d = list.items.find((x) => x.metadata?.name === name);
      expect(d?.metadata?.annotations?.[VERSION_ANNOTATION]).toBe('1.0.0');
      expect(d?.spec?.template.spec?.containers[0].image).toMatch(new RegExp(`/ai-saas-${name}:1\\.0\\.0$`));
      expect(d?.status?.availableReplicas).toBe(d?.spec?.replicas);
    }
    await expect(core.readNamespacedService({ name: 'api-gateway-preview', namespace: NS })).resolves.toBeDefined();
    await expect(
      custom.getNamespacedCustomObject({
        group: 'networking.istio.io',
        version: 'v1beta1',
        namespace: NS,
        plural: 'virtualservices',
        name: 'api-gateway',
      }),
    ).resolves.toBeDefined();
  });
});

describe('data stores', () => {
  test('ai_saas_prod and ai_saas_staging both exist on the server, seeded, and are distinct', async () => {
    const clients = ENVIRONMENTS.map((e) => new Client({ connectionString: sandboxVarOf(e, 'DATABASE_URL') }));
    const [prod, staging] = clients;
    await Promise.all(clients.map((c) => c.connect()));
    const table = `sandbox_check_${process.pid}`;
    try {
      const names = await Promise.all(clients.map((c) => c.query<{ db: string }>('SELECT current_database() AS db')));
      expect(names.map((r) => r.rows[0].db)).toEqual(['ai_saas_prod', 'ai_saas_staging']);
      for (const c of clients) {
        const users = await c.query<{ n: string }>('SELECT count(*) AS n FROM users');
        expect(Number(users.rows[0].n)).toBeGreaterThanOrEqual(1000);
      }
      await staging.query(`CREATE TABLE ${table} (id int)`);
      const seen = await prod.query<{ t: string | null }>(`SELECT to_regclass('${table}')::text AS t`);
      expect(seen.rows[0].t).toBeNull();
    } finally {
      await staging.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
      await Promise.all(clients.map((c) => c.end()));
    }
  });

  test('each database has a recent backup under its own prefix of the shared bucket', async () => {
    const s3 = new S3Client({
      endpoint: sandboxVar('S3_ENDPOINT'),
      region: sandboxVar('AWS_REGION'),
      forcePathStyle: true,
      credentials: {
        accessKeyId: sandboxVar('AWS_ACCESS_KEY_ID'),
        secretAccessKey: sandboxVar('AWS_SECRET_ACCESS_KEY'),
      },
    });
    try {
      for (const [prefix, database] of [
        ['postgres/', 'ai_saas_prod'],
        ['staging/postgres/', 'ai_saas_staging'],
      ]) {
        const listed = await s3.send(new ListObjectsV2Command({ Bucket: sandboxVar('S3_BUCKET'), Prefix: prefix }));
        const keys = (listed.Contents ?? []).map((o) => o.Key!);
        expect(keys.some((k) => k.startsWith(`${prefix}${database}_1.0.0_`))).toBe(true);
        expect(keys.every((k) => k.startsWith(`${prefix}${database}_`))).toBe(true);
      }
    } finally {
      s3.destroy();
    }
  });

  test('each environment has its own Redis', async () => {
    const [prod, staging] = ENVIRONMENTS.map(
      (e) => new Redis(sandboxVarOf(e, 'REDIS_URL'), { lazyConnect: true, maxRetriesPerRequest: 1 }),
    );
    await Promise.all([prod.connect(), staging.connect()]);
    const key = `sandbox-check:${process.pid}`;
    try {
      expect(sandboxVarOf('staging', 'REDIS_URL')).not.toBe(sandboxVarOf('production', 'REDIS_URL'));
      await staging.set(key, 'staging', 'EX', 60);
      expect(await staging.get(key)).toBe('staging');
      expect(await prod.get(key)).toBeNull();
    } finally {
      await staging.del(key);
      prod.disconnect();
      staging.disconnect();
    }
  });
});

describe('traffic and metrics', () => {
  test.each(ENVIRONMENTS)(
    "%s's Prometheus scrapes only its own demo server (and production's the pipeline's workers)",
    async (env) => {
      const demo = new URL(sandboxVarOf(env, 'DEMO_URL'));
      const r = await fetch(`${sandboxVarOf(env, 'PROMETHEUS_URL')}/api/v1/targets?state=active`);
      const targets = (
        (await r.json()) as { data: { activeTargets: { scrapeUrl: string; labels: { job: string } }[] } }
      ).data.activeTargets;
      expect(targets.filter((t) => t.labels.job === 'ai-saas-demo').map((t) => t.scrapeUrl)).toEqual([
        `http://${demo.host}/metrics`,
      ]);
      // The workers' own /metrics, at their default addresses, on production's Prometheus only.
      expect(
        targets
          .filter((t) => t.labels.job === 'deploy-pipelines')
          .map((t) => t.scrapeUrl)
          .sort(),
      ).toEqual(
        env === 'production' ? [`http://${METRICS_ADDRESS}/metrics`, `http://${IO_METRICS_ADDRESS}/metrics`] : [],
      );
      expect(targets.map((t) => t.labels.job).filter((j) => j !== 'ai-saas-demo' && j !== 'deploy-pipelines')).toEqual(
        [],
      );
      const series = await waitFor(async () => {
        const s = await promQuery(env, 'count by (environment, instance) (http_requests_total)');
        return s.length ? s : undefined;
      }, 60_000);
      expect(series.map((s) => [s.metric.environment, s.metric.instance])).toEqual([[env, demo.host]]);
    },
  );

  test("the staging demo server splits traffic by the staging cluster's VirtualService; production is untouched", async () => {
    const { apps, custom } = stagingKube();
    const vs = {
      group: 'networking.istio.io',
      version: 'v1beta1',
      namespace: NS,
      plural: 'virtualservices',
      name: 'api-gateway',
    };
    const route = (stable: number, canary: number) => ({
      spec: {
        http: [
          {
            name: 'primary',
            match: [{ uri: { prefix: '/' } }],
            route: [
              { destination: { host: 'api-gateway', subset: 'stable' }, weight: stable },
              { destination: { host: 'api-gateway', subset: 'canary' }, weight: canary },
            ],
          },
        ],
      },
    });
    // A canary only the staging cluster has; its pods are not the stable Deployment's (own labels).
    const labels = { app: 'api-gateway-canary-check' };
    const canaryVersion = `1.0.1-check.${process.pid}`;
    try {
      await apps.createNamespacedDeployment({
        namespace: NS,
        body: {
          metadata: { name: 'api-gateway-canary', annotations: { [VERSION_ANNOTATION]: canaryVersion } },
          spec: {
            replicas: 1,
            selector: { matchLabels: labels },
            template: { metadata: { labels }, spec: { containers: [{ name: 'api-gateway', image: 'check:1' }] } },
          },
        },
      });
      await custom.patchNamespacedCustomObject({ ...vs, body: route(70, 30) }, MERGE_PATCH);
      const state = await waitFor(async () => {
        const s = await demoState('staging');
        return s.weights.canary === 30 ? s : undefined;
      }, 30_000);
      expect(state.weights).toEqual({ stable: 70, canary: 30 });
      expect(state.versions).toEqual({ stable: '1.0.0', canary: canaryVersion });
      const prodState = await demoState('production');
      expect(prodState.weights).toEqual({ stable: 100, canary: 0 });
      expect(prodState.versions.canary).toBeNull();

      // The canary's requests reach staging's Prometheus only.
      const canaryQuery = `sum by (environment) (rate(http_requests_total{track="canary",version="${canaryVersion}"}[10s]))`;
      const seen = await waitFor(async () => {
        const s = await promQuery('staging', canaryQuery);
        return s.length && Number(s[0].value[1]) > 0 ? s : undefined;
      }, 60_000);
      expect(seen.map((s) => s.metric.environment)).toEqual(['staging']);
      expect(await promQuery('production', canaryQuery)).toEqual([]);
    } finally {
      await custom.patchNamespacedCustomObject({ ...vs, body: route(100, 0) }, MERGE_PATCH);
      await apps.deleteNamespacedDeployment({ name: 'api-gateway-canary', namespace: NS }).catch(() => undefined);
    }
    await waitFor(async () => ((await demoState('staging')).weights.canary === 0 ? true : undefined), 30_000);
  });
});

describe('the command line', () => {
  test('status lists each environment and exits 0', async () => {
    const { stdout } = await cli('status');
    for (const name of ['kubernetes', 'backup', 'redis', 'prometheus', 'demo'])
      for (const env of ENVIRONMENTS) expect(stdout).toMatch(new RegExp(`^up\\s+${name} \\(${env}\\)`, 'm'));
    for (const name of ['docker', 'postgres', 's3', 'git'])
      expect(stdout).toMatch(new RegExp(`^up\\s+${name}\\b`, 'm'));
  }, 60_000);

  test('fault --env staging changes only the staging demo server', async () => {
    try {
      await cli('fault', '--env', 'staging', '--track', 'stable', '--error-rate', '0.2');
      expect((await demoState('staging')).faults.stable).toMatchObject({ errorRate: 0.2 });
      expect((await demoState('production')).faults.stable).toBeUndefined();
      await expect(cli('fault', '--env', 'qa', '--clear')).rejects.toMatchObject({
        stderr: expect.stringContaining('qa'),
      });
    } finally {
      await cli('fault', '--env', 'staging', '--clear');
    }
    expect((await demoState('staging')).faults.stable).toBeUndefined();
  }, 60_000);

  test("fault --env staging --log-errors reaches the staging pods' logs only (each cluster's kwok serves its own)", async () => {
    const podLog = async (env: SandboxEnvironmentName) => {
      const { core } = kube(env);
      const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=auth-service' });
      const name = pods.items[0].metadata!.name!;
      return core.readNamespacedPodLog({ name, namespace: NS, container: 'auth-service', sinceSeconds: 5 });
    };
    const injected = 'fault injected';
    try {
      await cli('fault', '--env', 'staging', '--log-errors', 'auth-service');
      await waitFor(async () => (await podLog('staging')).includes(injected), 30_000, 500);
      expect(await podLog('production')).not.toContain(injected);
    } finally {
      await cli('fault', '--env', 'staging', '--log-errors', '');
    }
  }, 60_000);
});
