/**
 * The demo platform at v1.0.0 in each environment: the six images built from
 * the v1.0.0 tag and pushed to the shared local registry, their Deployments
 * and Services in namespace ai-saas of the environment's cluster, a
 * VirtualService, an HTTPRoute and an Ingress for api-gateway (all to stable), and the
 * environment's own demo server standing in for the public endpoints and
 * their metrics (scripts/sandbox/demo-server/index.ts), following that
 * cluster only.
 */
import * as k8s from '@kubernetes/client-node';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  ensureDir,
  HOST,
  PLATFORM_SERVICES,
  ROOT,
  running,
  sh,
  startDaemon,
  stopDaemon,
  waitReady,
  type Component,
} from './common';
import { docker, registryHost } from './docker';
import { gitPaths } from './git';
import { PRODUCTION, type SandboxCluster, type SandboxEnvironment } from './environments';
import { adminClient, adminKubeconfigPath, NAMESPACE } from './kube';
import { clearStall } from './rollout-fault';
import { authConfiguration, authReferences } from './demo-config';
import { carbonAddress } from './graphite';
import { INFLUXDB_DATABASE, INFLUXDB_USERNAME, influxdbPassword, influxdbUrl } from './influxdb';
import { httpRoute, ingress, resetRoutes } from './demo-routes';

export const SERVICES = PLATFORM_SERVICES;
export const BASE_VERSION = '1.0.0';
const VERSION_ANNOTATION = 'deploy-pipelines.dev/version';
const REPLICAS: Record<string, number> = { 'api-gateway': 4 };

export function demoUrl(env: SandboxEnvironment = PRODUCTION): string {
  return `http://${HOST}:${env.ports.demo}`;
}
function previewUrl(env: SandboxEnvironment): string {
  return `http://${HOST}:${env.ports.demoPreview}`;
}

function smokeCredentials(): { email: string; password: string } {
  const f = path.join(ensureDir('demo'), 'smoke.json');
  if (!existsSync(f))
    writeFileSync(
      f,
      JSON.stringify({ email: 'admin@ai-saas.example', password: sh('openssl', ['rand', '-hex', '12']).trim() }),
      { mode: 0o600 },
    );
  return JSON.parse(readFileSync(f, 'utf8')) as { email: string; password: string };
}

/** The key the demo servers' GET /api/metrics requires (the web metrics provider sends it from DEMO_METRICS_API_KEY). */
function metricsApiKey(): string {
  const f = path.join(ensureDir('demo'), 'metrics-api-key');
  if (!existsSync(f)) writeFileSync(f, sh('openssl', ['rand', '-hex', '16']).trim(), { mode: 0o600 });
  return readFileSync(f, 'utf8').trim();
}

export function imageRef(service: string, version: string): string {
  return `${registryHost()}/ai-saas-${service}:${version}`;
}

async function registryHasTag(service: string, version: string): Promise<boolean> {
  const r = await fetch(`http://${registryHost()}/v2/ai-saas-${service}/manifests/${version}`, {
    method: 'HEAD',
    headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
  });
  return r.ok;
}

/** Builds the six v1.0.0 images from the tag (not the branch head) and pushes them. */
async function ensureBaseImages(): Promise<number> {
  let built = 0;
  const missing: string[] = [];
  for (const s of SERVICES) if (!(await registryHasTag(s, BASE_VERSION))) missing.push(s);
  if (!missing.length) return 0;
  const src = mkdtempSync(path.join(tmpdir(), 'ai-saas-v1.0.0-'));
  try {
    sh('git', ['-C', gitPaths().checkout, 'worktree', 'add', '--detach', '-f', src, `v${BASE_VERSION}`]);
    for (const s of missing) {
      docker([
        'build',
        '-q',
        '--network',
        'none',
        '--build-arg',
        `VERSION=${BASE_VERSION}`,
        '-t',
        imageRef(s, BASE_VERSION),
        path.join(src, 'services', s),
      ]);
      docker(['push', '-q', imageRef(s, BASE_VERSION)]);
      built++;
    }
  } finally {
    sh('git', ['-C', gitPaths().checkout, 'worktree', 'remove', '--force', src]);
    rmSync(src, { recursive: true, force: true });
  }
  return built;
}

function deployment(service: string): k8s.V1Deployment {
  const labels = { app: service };
  const { container: reads, ...podReads } = authReferences(service);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: service,
      namespace: NAMESPACE,
      labels: { ...labels, 'app.kubernetes.io/part-of': 'ai-saas' },
      annotations: { [VERSION_ANNOTATION]: BASE_VERSION },
    },
    spec: {
      replicas: REPLICAS[service] ?? 2,
      revisionHistoryLimit: 10,
      progressDeadlineSeconds: 120,
      selector: { matchLabels: labels },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      template: {
        metadata: { labels: { ...labels, track: 'stable' }, annotations: { [VERSION_ANNOTATION]: BASE_VERSION } },
        spec: {
          containers: [
            {
              name: service,
              image: imageRef(service, BASE_VERSION),
              ports: [{ containerPort: 8080, name: 'http' }],
              env: [{ name: 'SERVICE_NAME', value: service }],
              ...reads,
            },
          ],
          ...podReads,
        },
      },
    },
  };
}

function service(name: string): k8s.V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NAMESPACE, labels: { app: name } },
    spec: { selector: { app: name }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
  };
}

/**
 * The blue-green preview of api-gateway (rollout.blueGreen.preview): a copy
 * of its Service without the colour, which a release points at its new colour
 * before the switch; the demo server's preview listener stands for its URL.
 */
export const PREVIEW_SERVICE = 'api-gateway-preview';
function previewService(): k8s.V1Service {
  const live = service('api-gateway');
  return { ...live, metadata: { ...live.metadata, name: PREVIEW_SERVICE, labels: { app: 'api-gateway' } } };
}

function virtualService(): k8s.KubernetesObject & { spec: unknown } {
  return {
    apiVersion: 'networking.istio.io/v1beta1',
    kind: 'VirtualService',
    metadata: { name: 'api-gateway', namespace: NAMESPACE },
    spec: {
      hosts: ['api.yourdomain.com'],
      http: [
        {
          name: 'primary',
          match: [{ uri: { prefix: '/' } }],
          route: [
            { destination: { host: 'api-gateway', subset: 'stable' }, weight: 100 },
            { destination: { host: 'api-gateway', subset: 'canary' }, weight: 0 },
          ],
        },
      ],
    },
  };
}

async function apply(kc: k8s.KubeConfig, objects: k8s.KubernetesObject[]): Promise<void> {
  const client = k8s.KubernetesObjectApi.makeApiClient(kc);
  for (const o of objects)
    await client.patch(o, undefined, undefined, 'sandbox', true, k8s.PatchStrategy.ServerSideApply);
}

/** Puts a cluster's platform objects back to v1.0.0: stable images, weights 100/0, no canary or colour Deployments. */
export async function applyPlatform(resetExtras: boolean, cluster: SandboxCluster = PRODUCTION.cluster): Promise<void> {
  const kc = adminClient(cluster);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  if (resetExtras) {
    const list = await apps.listNamespacedDeployment({ namespace: NAMESPACE });
    for (const d of list.items) {
      const name = d.metadata?.name ?? '';
      if (!SERVICES.includes(name)) await apps.deleteNamespacedDeployment({ name, namespace: NAMESPACE });
    }
    // Our own field manager may have been displaced by the worker's patches: replace, do not merge.
    for (const s of SERVICES) {
      await apps
        .replaceNamespacedDeployment({
          name: s,
          namespace: NAMESPACE,
          body: {
            ...deployment(s),
            metadata: {
              ...deployment(s).metadata,
              resourceVersion: (await apps.readNamespacedDeployment({ name: s, namespace: NAMESPACE })).metadata
                ?.resourceVersion,
            },
          },
        })
        .catch(async () => apply(kc, [deployment(s)]));
    }
    const core = kc.makeApiClient(k8s.CoreV1Api);
    for (const pristine of [...SERVICES.map(service), previewService()]) {
      const name = pristine.metadata!.name!;
      const current = await core.readNamespacedService({ name, namespace: NAMESPACE }).catch(() => undefined);
      if (current)
        await core.replaceNamespacedService({
          name,
          namespace: NAMESPACE,
          body: {
            ...pristine,
            metadata: { ...pristine.metadata, resourceVersion: current.metadata?.resourceVersion },
            spec: { ...pristine.spec, clusterIP: current.spec?.clusterIP },
          },
        });
    }
    const co = kc.makeApiClient(k8s.CustomObjectsApi);
    const vs = virtualService();
    const cur = (await co
      .getNamespacedCustomObject({
        group: 'networking.istio.io',
        version: 'v1beta1',
        namespace: NAMESPACE,
        plural: 'virtualservices',
        name: 'api-gateway',
      })
      .catch(() => undefined)) as k8s.KubernetesObject | undefined;
    if (cur) {
      await co.replaceNamespacedCustomObject({
        group: 'networking.istio.io',
        version: 'v1beta1',
        namespace: NAMESPACE,
        plural: 'virtualservices',
        name: 'api-gateway',
        body: { ...vs, metadata: { ...vs.metadata, resourceVersion: cur.metadata?.resourceVersion } },
      });
    }
    await resetRoutes(kc);
  }
  await apply(kc, [
    ...authConfiguration(),
    ...SERVICES.map(deployment),
    ...SERVICES.map(service),
    previewService(),
    virtualService(),
    httpRoute(),
    ingress(),
  ]);
}

async function platformReady(cluster: SandboxCluster): Promise<boolean> {
  const apps = adminClient(cluster).makeApiClient(k8s.AppsV1Api);
  const list = await apps.listNamespacedDeployment({ namespace: NAMESPACE });
  return SERVICES.every((s) => {
    const d = list.items.find((x) => x.metadata?.name === s);
    return (
      d &&
      d.status?.observedGeneration === d.metadata?.generation &&
      d.status?.updatedReplicas === d.spec?.replicas &&
      d.status?.availableReplicas === d.spec?.replicas
    );
  });
}

/** Deletes registry tags other than v1.0.0 (the registry has deletes enabled). */
async function pruneRegistry(): Promise<void> {
  for (const s of SERVICES) {
    const repo = `ai-saas-${s}`;
    const r = await fetch(`http://${registryHost()}/v2/${repo}/tags/list`);
    if (!r.ok) continue;
    const tags = ((await r.json()) as { tags?: string[] | null }).tags ?? [];
    const keep = await fetch(`http://${registryHost()}/v2/${repo}/manifests/${BASE_VERSION}`, {
      method: 'HEAD',
      headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    const keepDigest = keep.headers.get('docker-content-digest');
    for (const t of tags.filter((x) => x !== BASE_VERSION)) {
      const h = await fetch(`http://${registryHost()}/v2/${repo}/manifests/${t}`, {
        method: 'HEAD',
        headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' },
      });
      const digest = h.headers.get('docker-content-digest');
      if (digest && digest !== keepDigest)
        await fetch(`http://${registryHost()}/v2/${repo}/manifests/${digest}`, { method: 'DELETE' });
    }
  }
}

async function demoServerReady(env: SandboxEnvironment): Promise<boolean> {
  const r = await fetch(`${demoUrl(env)}/health`);
  return r.ok;
}

/** Sends a control request (/__sandbox/...) to an environment's demo server. */
export async function demoControl(
  pathname: string,
  body: unknown,
  env: SandboxEnvironment = PRODUCTION,
): Promise<unknown> {
  const r = await fetch(`${demoUrl(env)}${pathname}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`demo server refused ${pathname}: ${text}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

/** The folder of an environment's container logs, which its kwok serves (kwok.ts). */
function logDir(env: SandboxEnvironment): string {
  return path.dirname(env.containerLog('api-gateway'));
}

export function demoComponent(env: SandboxEnvironment): Component {
  const daemon = env.daemon('demo-server');
  return {
    name: 'demo',
    environment: env.name,
    async up() {
      const built = await ensureBaseImages();
      await applyPlatform(false, env.cluster);
      await waitReady(`${env.name} demo platform Deployments`, () => platformReady(env.cluster), 120_000);
      // One smoke-test account for both environments: the config's smoke checks read the same variables.
      const creds = smokeCredentials();
      if (!running(daemon)) {
        startDaemon(
          daemon,
          path.join(ROOT, 'node_modules', '.bin', 'tsx'),
          [path.join(ROOT, 'scripts', 'sandbox', 'demo-server', 'index.ts')],
          {
            cwd: ROOT,
            env: {
              ...process.env,
              DEMO_PORT: String(env.ports.demo),
              DEMO_HOST: HOST,
              KUBECONFIG: adminKubeconfigPath(env.cluster),
              DEMO_NAMESPACE: NAMESPACE,
              DEMO_SERVICE: 'api-gateway',
              SMOKE_EMAIL: creds.email,
              SMOKE_PASSWORD: creds.password,
              DEMO_STATE_FILE: path.join(env.dir('demo'), 'faults.json'),
              DEMO_LOG_DIR: logDir(env),
              DEMO_CONTAINERS: PLATFORM_SERVICES.join(','),
              DEMO_PREVIEW_PORT: String(env.ports.demoPreview),
              DEMO_INFLUXDB_URL: influxdbUrl(env),
              DEMO_INFLUXDB_DATABASE: INFLUXDB_DATABASE,
              DEMO_INFLUXDB_USERNAME: INFLUXDB_USERNAME,
              DEMO_INFLUXDB_PASSWORD: influxdbPassword(),
              DEMO_CARBON_ADDRESS: carbonAddress(env),
              DEMO_METRICS_API_KEY: metricsApiKey(),
            },
          },
        );
      }
      await waitReady(daemon, () => demoServerReady(env), 30_000, daemon);
      return `${SERVICES.length} Deployments at ${BASE_VERSION}${built ? ` (${built} images built)` : ''}, endpoints ${demoUrl(env)}`;
    },
    async status() {
      try {
        const server = running(daemon) && (await demoServerReady(env));
        const platform = await platformReady(env.cluster);
        return {
          ok: server && platform,
          detail: `platform ${platform ? 'ready' : 'not ready'}, endpoints ${server ? demoUrl(env) : 'down'}`,
        };
      } catch (err) {
        return { ok: false, detail: (err as Error).message };
      }
    },
    async down() {
      await stopDaemon(daemon);
    },
    async reset() {
      await demoControl('/__sandbox/fault', { clear: true }, env).catch(() => undefined);
      await demoControl('/__sandbox/health', { fail: false }, env).catch(() => undefined);
      // The registry is shared: its tags are pruned once, with production's reset.
      if (env === PRODUCTION) await pruneRegistry();
      await clearStall(adminClient(env.cluster), NAMESPACE);
      await applyPlatform(true, env.cluster);
      await waitReady(`${env.name} demo platform Deployments`, () => platformReady(env.cluster), 120_000);
      // The platform starts again: so do its containers' logs (an earlier fault's error lines go with them).
      for (const c of PLATFORM_SERVICES) if (existsSync(env.containerLog(c))) writeFileSync(env.containerLog(c), '');
    },
    env() {
      const c = smokeCredentials();
      return {
        [env.envVar('DEMO_URL')]: demoUrl(env),
        [env.envVar('DEMO_PREVIEW_URL')]: previewUrl(env),
        SMOKE_EMAIL: c.email,
        SMOKE_PASSWORD: c.password,
        DEMO_METRICS_API_KEY: metricsApiKey(),
      };
    },
  };
}

/**
 * The demo platform's objects in a cluster with no demo server of its own
 * (production-b, another region of production): the same Deployments,
 * Services and VirtualService at v1.0.0 as its environment's cluster, their
 * pods' logs served from that environment's files (kwok.ts). Its reset also
 * lifts a rollout stall left on (rollout-fault.ts).
 */
export function platformComponent(cluster: SandboxCluster): Component {
  const ready = () => waitReady(`${cluster.name} demo platform Deployments`, () => platformReady(cluster), 120_000);
  return {
    name: 'demo',
    environment: cluster.name,
    async up() {
      // The images are its environment's, already in the shared registry: only checked here.
      await ensureBaseImages();
      await applyPlatform(false, cluster);
      await ready();
      return `${SERVICES.length} Deployments at ${BASE_VERSION}, pod logs from ${cluster.environment}'s`;
    },
    async status() {
      try {
        const platform = await platformReady(cluster);
        return { ok: platform, detail: `platform ${platform ? 'ready' : 'not ready'} (no demo server of its own)` };
      } catch (err) {
        return { ok: false, detail: (err as Error).message };
      }
    },
    async down() {
      // Objects only, kept in the cluster's etcd: nothing runs.
    },
    async reset() {
      await clearStall(adminClient(cluster), NAMESPACE);
      await applyPlatform(true, cluster);
      await ready();
    },
  };
}
