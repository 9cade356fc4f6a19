/**
 * The Kubernetes activities against the sandbox's real control plane (kwok
 * pods turn Ready in about a second), run as the worker's least-privilege
 * ServiceAccount; the admin kubeconfig only sets up fixtures and inspects.
 * The demo platform is put back as found in afterAll, failures included: the
 * six Deployments at 1.0.0, Services selecting app=<svc>, no extra objects.
 */
import * as k8s from '@kubernetes/client-node';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { loadKubeConfig, makeKubeClients, type KubernetesConfig } from '../../src/activities/clients/kube';
import { kubernetesActivities, type KubernetesDeps } from '../../src/activities/kubernetes';
import { ErrorType } from '../../src/domain/errors';
import { rolloutStatus } from '../../src/domain/rollout';
import { sandboxVar } from '../helpers/sandbox';
import { waitFor } from '../helpers/wait';
import type { DeploymentRecord } from '../../src/activities/contracts';

jest.setTimeout(180_000);

const NS = 'ai-saas';
const SERVICES = ['auth-service', 'chat-service', 'billing-service', 'analytics-service', 'api-gateway', 'frontend'];
const REPLICAS: Record<string, number> = { 'api-gateway': 4 };
const VERSION_ANNOTATION = 'deploy-pipelines.dev/version';
const RUN = `it-k8s-${process.pid}`;
const STUCK = `${RUN}-stuck`;
const SLOW = `${RUN}-slow`;
const image = (svc: string, version: string) => `${sandboxVar('REGISTRY')}/ai-saas-${svc}:${version}`;

const kubernetesConfig: KubernetesConfig = {
  kubeconfig: sandboxVar('KUBECONFIG_WORKER'),
  rolloutTimeout: 90_000,
  deleteOldColourAfter: 3_600_000,
  pollInterval: 200,
  requestTimeout: 10_000,
  diagnosticLogLines: 5,
  shared: false,
};

let admin: k8s.KubeConfig;
let apps: k8s.AppsV1Api;
let core: k8s.CoreV1Api;
const heartbeats: unknown[] = [];

function activities(over: Partial<KubernetesDeps> = {}) {
  return kubernetesActivities({
    kubeConfig: loadKubeConfig(sandboxVar('KUBECONFIG_WORKER')),
    config: { kubernetes: kubernetesConfig },
    heartbeat: (d) => heartbeats.push(d),
    ...over,
  });
}

// --- the demo platform: taking turns with the traffic suite, and putting it back ---------------

/** The suites that change the demo platform run one at a time (jest runs files in parallel). */
const LOCK = path.join(tmpdir(), 'deploy-pipelines-ai-saas-platform.lock');

async function acquirePlatform(): Promise<void> {
  const deadline = Date.now() + 170_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(path.join(LOCK, 'pid'), String(process.pid));
      return;
    } catch {
      let owner = 0;
      try {
        owner = Number(readFileSync(path.join(LOCK, 'pid'), 'utf8'));
        process.kill(owner, 0);
      } catch {
        if (owner) rmSync(LOCK, { recursive: true, force: true }); // its owner is gone
      }
      if (Date.now() > deadline) throw new Error(`the demo platform is still locked by process ${owner} (${LOCK})`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

function releasePlatform(): void {
  try {
    if (Number(readFileSync(path.join(LOCK, 'pid'), 'utf8')) === process.pid)
      rmSync(LOCK, { recursive: true, force: true });
  } catch {
    // not ours, or already gone
  }
}

const OUR_ANNOTATIONS = [
  'kubernetes.io/change-cause',
  'deploy-pipelines.dev/workflow-id',
  'deploy-pipelines.dev/previous-images',
  'deploy-pipelines.dev/previous-version',
  'deploy-pipelines.dev/scaled-down-replicas',
  'deploy-pipelines.dev/scaled-down-at',
];

/** The six Deployments at 1.0.0 (image, version annotations, labels, replicas), Services selecting app=<svc>, our extra Deployments gone. */
async function restorePlatform(extras: string[]): Promise<void> {
  for (const name of extras)
    await apps
      .deleteNamespacedDeployment({ name, namespace: NS, propagationPolicy: 'Background' })
      .catch(() => undefined);
  for (const svc of SERVICES) {
    for (let attempt = 0; ; attempt++) {
      const d = await apps.readNamespacedDeployment({ name: svc, namespace: NS });
      const t = d.spec!.template;
      const labels: Record<string, string> = { ...(t.metadata?.labels ?? {}), app: svc, track: 'stable' };
      delete labels.version;
      const annotations: Record<string, string> = { ...(d.metadata?.annotations ?? {}), [VERSION_ANNOTATION]: '1.0.0' };
      for (const k of OUR_ANNOTATIONS) delete annotations[k];
      const metaLabels = { ...(d.metadata?.labels ?? {}) };
      delete metaLabels.version;
      d.metadata = { ...d.metadata, labels: metaLabels, annotations };
      d.spec = {
        ...d.spec!,
        replicas: REPLICAS[svc] ?? 2,
        paused: false,
        template: {
          ...t,
          metadata: {
            ...t.metadata,
            labels,
            annotations: { ...(t.metadata?.annotations ?? {}), [VERSION_ANNOTATION]: '1.0.0' },
          },
          spec: {
            ...t.spec!,
            containers: t.spec!.containers.map((c) => (c.name === svc ? { ...c, image: image(svc, '1.0.0') } : c)),
          },
        },
      };
      try {
        await apps.replaceNamespacedDeployment({ name: svc, namespace: NS, body: d });
        break;
      } catch (err) {
        if ((err as { code?: number }).code !== 409 || attempt > 10) throw err;
      }
    }
    const s = await core.readNamespacedService({ name: svc, namespace: NS });
    if (JSON.stringify(s.spec?.selector) !== JSON.stringify({ app: svc })) {
      await core.patchNamespacedService(
        { name: svc, namespace: NS, body: [{ op: 'replace', path: '/spec/selector', value: { app: svc } }] },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch),
      );
    }
  }
  await waitFor(async () => {
    const list = await apps.listNamespacedDeployment({ namespace: NS });
    return SERVICES.every((s) => {
      const d = list.items.find((x) => x.metadata?.name === s);
      return d && rolloutStatus(d).done;
    });
  }, 120_000);
}

async function readDeployment(name: string): Promise<k8s.V1Deployment> {
  return apps.readNamespacedDeployment({ name, namespace: NS });
}

function imagesOf(d: k8s.V1Deployment): Record<string, string> {
  return Object.fromEntries((d.spec?.template.spec?.containers ?? []).map((c) => [c.name, c.image ?? '']));
}

/** A Deployment whose pod is never scheduled: no node matches its nodeSelector, so it stays Pending and never Ready. */
async function createUnschedulable(name: string, progressDeadlineSeconds: number): Promise<void> {
  const labels = { app: name };
  await apps.createNamespacedDeployment({
    namespace: NS,
    body: {
      metadata: { name, labels },
      spec: {
        replicas: 1,
        progressDeadlineSeconds,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            nodeSelector: { 'deploy-pipelines.dev/no-such-node': 'true' },
            containers: [{ name: 'app', image: image('frontend', '1.0.0') }],
          },
        },
      },
    },
  });
}

beforeAll(async () => {
  admin = new k8s.KubeConfig();
  admin.loadFromFile(sandboxVar('KUBECONFIG'));
  apps = admin.makeApiClient(k8s.AppsV1Api);
  core = admin.makeApiClient(k8s.CoreV1Api);
  await acquirePlatform();
}, 200_000);

afterAll(async () => {
  try {
    await restorePlatform([STUCK, SLOW, 'frontend-green']);
  } finally {
    releasePlatform();
  }
}, 200_000);

// --- tests ---------------------------------------------------------------------------------

test('reads the namespace: images, revisions, rollout status, pods Ready and restart counts', async () => {
  const state = await activities().readClusterState({ namespace: NS, deployments: SERVICES });
  expect(state.deployments.map((d) => d.name).sort()).toEqual([...SERVICES].sort());
  for (const d of state.deployments) {
    expect(d.images[d.name]).toBe(image(d.name, '1.0.0'));
    expect(d.version).toBe('1.0.0');
    expect(d.revision).toBeGreaterThanOrEqual(1);
    expect(d.selector).toEqual({ app: d.name });
  }
  const gateway = state.pods.filter((p) => p.deployment === 'api-gateway');
  expect(gateway).toHaveLength(4);
  expect(gateway.every((p) => p.ready && p.node?.startsWith('kwok-node-'))).toBe(true);
  expect(state.notReady).toEqual([]);
  expect(state.restartCount).toBe(0);
  expect(state.services.find((s) => s.name === 'frontend')?.selector).toEqual({ app: 'frontend' });
});

test('rolling update of the six services to 1.0.1 and back to the recorded images', async () => {
  const acts = activities();
  const started = Date.now();
  const updates = SERVICES.map((s) => ({ deployment: s, container: s, image: image(s, '1.0.1') }));
  const patched = await acts.patchImages({ workflowId: `${RUN}-rolling`, namespace: NS, version: '1.0.1', updates });
  expect(patched.records).toHaveLength(6);
  for (const r of patched.records) {
    expect(r).toMatchObject({
      changed: true,
      previousImages: { [r.deployment]: image(r.deployment, '1.0.0') },
      previousVersion: '1.0.0',
      images: { [r.deployment]: image(r.deployment, '1.0.1') },
    });
    expect(r.revision).toBeGreaterThanOrEqual(1);
  }
  heartbeats.length = 0;
  const waited = await acts.waitForRollout({ namespace: NS, deployments: SERVICES });
  expect(waited.deployments.every((d) => d.message.endsWith('successfully rolled out'))).toBe(true);
  expect(heartbeats.length).toBeGreaterThan(0);
  const gw = await readDeployment('api-gateway');
  expect(gw.metadata?.annotations?.[VERSION_ANNOTATION]).toBe('1.0.1');
  expect(gw.spec?.template.metadata?.annotations?.[VERSION_ANNOTATION]).toBe('1.0.1');
  expect(gw.metadata?.annotations?.['kubernetes.io/change-cause']).toBe(
    `deploy-pipelines: deploy 1.0.1 (workflow ${RUN}-rolling)`,
  );
  expect(gw.status?.readyReplicas).toBe(4);

  // A retry after a crash changes nothing and still knows what it replaced.
  const again = await acts.patchImages({ workflowId: `${RUN}-rolling`, namespace: NS, version: '1.0.1', updates });
  expect(
    again.records.every((r) => !r.changed && r.previousImages[r.deployment] === image(r.deployment, '1.0.0')),
  ).toBe(true);

  const back = await acts.rollbackImages({ workflowId: `${RUN}-rolling`, namespace: NS, records: patched.records });
  expect(back.deployments.map((d) => d.images[d.deployment])).toEqual(SERVICES.map((s) => image(s, '1.0.0')));
  for (const s of SERVICES) {
    const d = await readDeployment(s);
    expect(imagesOf(d)[s]).toBe(image(s, '1.0.0'));
    expect(d.metadata?.annotations?.[VERSION_ANNOTATION]).toBe('1.0.0');
    expect(d.spec?.template.metadata?.annotations?.[VERSION_ANNOTATION]).toBe('1.0.0');
  }
  console.log(`rolling update of 6 services to 1.0.1 and back: ${Date.now() - started} ms`);
});

test('undo to a given revision and to the previous one, as kubectl rollout undo', async () => {
  const acts = activities();
  const svc = 'billing-service';
  const start = (await acts.readClusterState({ namespace: NS, deployments: [svc] })).deployments[0].revision!;
  const step = async (version: string) => {
    await acts.patchImages({
      workflowId: `${RUN}-undo`,
      namespace: NS,
      version,
      updates: [{ deployment: svc, container: svc, image: image(svc, version) }],
    });
    return (await acts.waitForRollout({ namespace: NS, deployments: [svc] })).deployments[0].revision!;
  };
  const r101 = await step('1.0.1');
  await step('1.0.2');

  const toGiven = await acts.undoRollout({ namespace: NS, deployment: svc, toRevision: r101 });
  expect(toGiven).toMatchObject({ toRevision: r101, skipped: false, images: { [svc]: image(svc, '1.0.1') } });
  expect((await readDeployment(svc)).metadata?.annotations?.[VERSION_ANNOTATION]).toBe('1.0.1'); // annotations come back from the ReplicaSet

  const toPrevious = await acts.undoRollout({ namespace: NS, deployment: svc });
  expect(toPrevious.images[svc]).toBe(image(svc, '1.0.2'));

  const toStart = await acts.undoRollout({ namespace: NS, deployment: svc, toRevision: start });
  expect(toStart.images[svc]).toBe(image(svc, '1.0.0'));
  const d = await readDeployment(svc);
  expect(d.metadata?.annotations?.[VERSION_ANNOTATION]).toBe('1.0.0');
  expect(rolloutStatus(d).done).toBe(true);

  const skipped = await acts.undoRollout({ namespace: NS, deployment: svc, toRevision: toStart.revision });
  expect(skipped.skipped).toBe(true);
  await expect(acts.undoRollout({ namespace: NS, deployment: svc, toRevision: 9999 })).rejects.toMatchObject({
    type: ErrorType.InvalidInput,
    nonRetryable: true,
    message: expect.stringMatching(/unable to find the specified revision 9999/),
  });
});

test('a rollout whose pods never get Ready fails at its progress deadline with the reason and diagnostics', async () => {
  await createUnschedulable(STUCK, 3);
  const started = Date.now();
  const err: unknown = await activities()
    .waitForRollout({ namespace: NS, deployments: [STUCK], timeoutMs: 60_000 })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ApplicationFailure);
  const f = err as ApplicationFailure;
  expect(f.type).toBe(ErrorType.RolloutFailed);
  expect(f.nonRetryable).toBe(true);
  expect(f.message).toMatch(
    new RegExp(
      `deployment "${STUCK}" exceeded its progress deadline: ReplicaSet "${STUCK}-[a-z0-9]+" has timed out progressing`,
    ),
  );
  expect(f.message).toMatch(/not Ready \(PodScheduled=False Unschedulable: 0\/3 nodes are available/);
  expect(f.message).toMatch(/logs unavailable: /);
  expect(f.message).toMatch(/FailedScheduling/);
  const diag = f.details?.[0] as {
    notReadyPods: { name: string; logsUnavailable?: string }[];
    events: { reason: string }[];
    conditions: string[];
  };
  expect(diag.notReadyPods).toHaveLength(1);
  expect(diag.notReadyPods[0].logsUnavailable).toBeTruthy();
  expect(diag.events.some((e) => e.reason === 'FailedScheduling')).toBe(true);
  expect(diag.conditions.some((c) => c.includes('ProgressDeadlineExceeded'))).toBe(true);
  expect(Date.now() - started).toBeLessThan(30_000);
});

test('the wait heartbeats its progress and stops when the activity is cancelled', async () => {
  await createUnschedulable(SLOW, 600);
  const env = new MockActivityEnvironment();
  const seen: unknown[] = [];
  env.on('heartbeat', (d: unknown) => {
    seen.push(d);
    if (seen.length === 2) env.cancel();
  });
  // No heartbeat in deps: the activity uses Temporal's activity context.
  const acts = kubernetesActivities({
    kubeConfig: loadKubeConfig(sandboxVar('KUBECONFIG_WORKER')),
    config: { kubernetes: kubernetesConfig },
  });
  const started = Date.now();
  await expect(env.run(acts.waitForRollout, { namespace: NS, deployments: [SLOW] })).rejects.toBeInstanceOf(
    CancelledFailure,
  );
  expect(Date.now() - started).toBeLessThan(5_000);
  expect(seen[0]).toMatchObject({ waiting: { [SLOW]: expect.stringMatching(/waiting for deployment|spec update/) } });
});

test('blue-green: green beside blue, switch, scale blue down, switch back, delete green; every step idempotent', async () => {
  const acts = activities();
  const target = {
    workflowId: `${RUN}-bg`,
    namespace: NS,
    service: 'frontend',
    container: 'frontend',
    image: image('frontend', '1.0.1'),
    version: '1.0.1',
  };

  const prepared = await acts.prepareBlueGreen(target);
  expect(prepared).toMatchObject({
    active: { colour: 'blue', deployment: 'frontend', replicas: 2, version: '1.0.0' },
    target: { colour: 'green', deployment: 'frontend-green' },
    alreadyActive: false,
  });
  const green = await readDeployment('frontend-green');
  expect(green.spec?.selector.matchLabels).toEqual({ app: 'frontend', version: 'green' });
  expect(green.spec?.template.metadata?.labels).toMatchObject({ app: 'frontend', version: 'green' });
  expect(imagesOf(green).frontend).toBe(image('frontend', '1.0.1'));
  expect(green.status?.readyReplicas).toBe(2);
  const blue = await readDeployment('frontend');
  expect(blue.spec?.selector.matchLabels).toEqual({ app: 'frontend' }); // immutable, untouched
  expect(blue.spec?.template.metadata?.labels?.version).toBe('blue');
  // Pinned to blue before green existed: green's pods get no traffic yet.
  expect((await core.readNamespacedService({ name: 'frontend', namespace: NS })).spec?.selector).toEqual({
    app: 'frontend',
    version: 'blue',
  });
  const blueRevision = blue.metadata?.annotations?.['deployment.kubernetes.io/revision'];
  expect(await acts.prepareBlueGreen(target)).toEqual(prepared); // re-run after a crash
  expect((await readDeployment('frontend')).metadata?.annotations?.['deployment.kubernetes.io/revision']).toBe(
    blueRevision,
  );

  const selected = async () => {
    const pods = await core.listNamespacedPod({ namespace: NS, labelSelector: 'app=frontend,version=green' });
    const s = (await core.readNamespacedService({ name: 'frontend', namespace: NS })).spec?.selector;
    return { selector: s, greenPods: pods.items.length };
  };
  expect(await acts.switchBlueGreen({ target, colour: 'green' })).toEqual({
    colour: 'green',
    selector: { app: 'frontend', version: 'green' },
  });
  expect(await acts.switchBlueGreen({ target, colour: 'green' })).toEqual({
    colour: 'green',
    selector: { app: 'frontend', version: 'green' },
  });
  expect(await selected()).toEqual({ selector: { app: 'frontend', version: 'green' }, greenPods: 2 });

  await expect(acts.scaleDownOldColour({ target, colour: 'green' })).rejects.toMatchObject({
    type: ErrorType.InvalidInput,
  });
  expect(await acts.scaleDownOldColour({ target, colour: 'blue' })).toEqual({
    deployment: 'frontend',
    previousReplicas: 2,
    deleteAfterMs: 3_600_000,
  });
  expect(await acts.scaleDownOldColour({ target, colour: 'blue' })).toEqual({
    deployment: 'frontend',
    previousReplicas: 2,
    deleteAfterMs: 3_600_000,
  });
  expect((await readDeployment('frontend')).spec?.replicas).toBe(0);
  expect(await acts.deleteOldColour({ target, colour: 'blue' })).toEqual({
    deployment: 'frontend',
    deleted: false,
    reason: 'the base Deployment is kept at 0 replicas as the next blue',
  });

  // Abort: blue back to full size and Ready before the Service points at it, then green to zero.
  const aborted = await acts.abortBlueGreen({ target, colour: 'blue' });
  expect(aborted).toEqual({
    colour: 'blue',
    selector: { app: 'frontend', version: 'blue' },
    scaledDown: 'frontend-green',
  });
  const blueAgain = await readDeployment('frontend');
  expect(blueAgain.spec?.replicas).toBe(2);
  expect(blueAgain.status?.readyReplicas).toBe(2);
  expect((await readDeployment('frontend-green')).spec?.replicas).toBe(0);
  expect(await acts.abortBlueGreen({ target, colour: 'blue' })).toMatchObject({ colour: 'blue' });

  expect(await acts.deleteOldColour({ target, colour: 'blue' })).toMatchObject({
    deleted: false,
    reason: 'service frontend selects blue',
  });
  expect(await acts.deleteOldColour({ target, colour: 'green' })).toEqual({
    deployment: 'frontend-green',
    deleted: true,
  });
  expect(await acts.deleteOldColour({ target, colour: 'green' })).toEqual({
    deployment: 'frontend-green',
    deleted: false,
    reason: 'already deleted',
  });
});

test('a concurrent edit between the read and the write is re-read and retried, not overwritten', async () => {
  const clients = makeKubeClients(loadKubeConfig(sandboxVar('KUBECONFIG_WORKER')));
  const original = clients.apps.patchNamespacedDeployment.bind(clients.apps);
  let calls = 0;
  jest
    .spyOn(clients.apps, 'patchNamespacedDeployment')
    .mockImplementation(async (...args: Parameters<typeof original>) => {
      calls++;
      // Someone else edits the Deployment after our read, before our write.
      if (calls === 1)
        await apps.patchNamespacedDeployment(
          {
            name: 'chat-service',
            namespace: NS,
            body: { metadata: { annotations: { 'example.com/edited-by': 'someone-else' } } },
          },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        );
      return original(...args);
    });
  const acts = activities({ clients, kubeConfig: undefined });
  try {
    const r = await acts.patchImages({
      workflowId: `${RUN}-conflict`,
      namespace: NS,
      version: '1.0.1',
      updates: [{ deployment: 'chat-service', container: 'chat-service', image: image('chat-service', '1.0.1') }],
    });
    expect(calls).toBe(2);
    expect(r.records[0]).toMatchObject({
      changed: true,
      previousImages: { 'chat-service': image('chat-service', '1.0.0') },
    });
    const d = await readDeployment('chat-service');
    expect(imagesOf(d)['chat-service']).toBe(image('chat-service', '1.0.1'));
    expect(d.metadata?.annotations?.['example.com/edited-by']).toBe('someone-else');
  } finally {
    await apps.patchNamespacedDeployment(
      { name: 'chat-service', namespace: NS, body: { metadata: { annotations: { 'example.com/edited-by': null } } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
  }
  await activities().rollbackImages({
    workflowId: `${RUN}-conflict`,
    namespace: NS,
    records: [
      {
        deployment: 'chat-service',
        previousImages: { 'chat-service': image('chat-service', '1.0.0') },
        previousVersion: '1.0.0',
      },
    ],
  });
});

test('issue 16 item 4: an image update that fails half-way names the Deployments it changed, so they can be undone', async () => {
  const acts = activities();
  const before = (await acts.readClusterState({ namespace: NS, deployments: ['frontend'] })).deployments[0];
  const [container, image] = Object.entries(before.images)[0];
  const err: unknown = await acts
    .patchImages({
      workflowId: `${RUN}-half`,
      namespace: NS,
      version: '1.0.9',
      updates: [
        { deployment: 'frontend', container, image: image.replace(/:[^:@/]+$/, ':1.0.9') },
        { deployment: 'no-such-service', container: 'x', image: 'x:1' },
      ],
    })
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(err).toMatchObject({ type: ErrorType.KubernetesNotFound, nonRetryable: true });
  const details = (err as { details?: unknown[] }).details ?? [];
  const changed = details.flatMap(
    (d) => (d as { changedBeforeFailure?: DeploymentRecord[] } | null)?.changedBeforeFailure ?? [],
  );
  expect(changed).toEqual([
    expect.objectContaining({ deployment: 'frontend', changed: true, previousImages: { [container]: image } }),
  ]);
  await acts.rollbackImages({ workflowId: `${RUN}-half`, namespace: NS, records: changed });
  const after = (await acts.readClusterState({ namespace: NS, deployments: ['frontend'] })).deployments[0];
  expect(after.images).toEqual(before.images);
});

test('a missing Deployment is KubernetesNotFound and another namespace is KubernetesForbidden, both permanent', async () => {
  const acts = activities();
  await expect(
    acts.patchImages({
      workflowId: RUN,
      namespace: NS,
      version: '1.0.1',
      updates: [{ deployment: 'no-such-service', container: 'x', image: 'x:1' }],
    }),
  ).rejects.toMatchObject({
    type: ErrorType.KubernetesNotFound,
    nonRetryable: true,
    message: expect.stringMatching(/get deployments "no-such-service" in namespace ai-saas: not found/),
  });
  await expect(
    acts.patchImages({
      workflowId: RUN,
      namespace: NS,
      version: '1.0.1',
      updates: [{ deployment: 'frontend', container: 'nope', image: 'x:1' }],
    }),
  ).rejects.toMatchObject({ type: ErrorType.InvalidInput, message: expect.stringMatching(/no container "nope"/) });
  await expect(acts.readClusterState({ namespace: 'default' })).rejects.toMatchObject({
    type: ErrorType.KubernetesForbidden,
    nonRetryable: true,
    message: expect.stringMatching(
      /the worker may not list (deployments|replicasets|pods|services) in namespace default/,
    ),
  });
  await expect(acts.waitForRollout({ namespace: 'kube-system', deployments: ['coredns'] })).rejects.toMatchObject({
    type: ErrorType.KubernetesForbidden,
    message: expect.stringMatching(/may not get deployments in namespace kube-system/),
  });
});

test('issue 16 item 3: prepare points the preview Service at the new colour (the live one keeps its colour); a missing preview Service is a clear error', async () => {
  const acts = activities();
  const preview = 'frontend-preview';
  const target = {
    workflowId: `${RUN}-bg-preview`,
    namespace: NS,
    service: 'frontend',
    container: 'frontend',
    image: image('frontend', '1.0.1'),
    version: '1.0.1',
  };
  await expect(acts.prepareBlueGreen({ ...target, previewService: preview })).rejects.toMatchObject({
    type: ErrorType.InvalidInput,
    message: expect.stringContaining(`preview service ${preview} not found in ${NS}`),
  });
  await core.createNamespacedService({
    namespace: NS,
    body: {
      metadata: { name: preview },
      spec: { selector: { app: 'frontend' }, ports: [{ port: 80, targetPort: 8080 }] },
    },
  });
  try {
    const prepared = await acts.prepareBlueGreen({ ...target, previewService: preview });
    expect(prepared).toMatchObject({ target: { colour: 'green' }, preview: { service: preview, colour: 'green' } });
    const selector = async (name: string) => (await core.readNamespacedService({ name, namespace: NS })).spec?.selector;
    expect(await selector(preview)).toEqual({ app: 'frontend', version: 'green' });
    expect(await selector('frontend')).toEqual({ app: 'frontend', version: 'blue' });
    await expect(acts.prepareBlueGreen({ ...target, previewService: 'frontend' })).rejects.toMatchObject({
      type: ErrorType.InvalidInput,
      message: 'the preview service must not be the live service frontend',
    });
  } finally {
    await acts.abortBlueGreen({ target, colour: 'blue' }).catch(() => undefined);
    await acts.deleteOldColour({ target, colour: 'green' }).catch(() => undefined);
    await core.deleteNamespacedService({ name: preview, namespace: NS }).catch(() => undefined);
  }
});
