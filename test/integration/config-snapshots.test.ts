/**
 * Config snapshots against the sandbox's real production control plane, as
 * the worker's least-privilege ServiceAccount under this checkout's
 * deploy/kubernetes/worker-rbac.yaml (the admin kubeconfig only sets up
 * fixtures and inspects), with ConfigMaps read from a private clone of the
 * release repository at a commit of the test's own. It runs in a namespace
 * of its own, deleted in afterAll: nobody else's Deployments are touched,
 * and a sandbox `up` from another checkout (which re-applies its own Role to
 * ai-saas) cannot change what the worker may do here mid-run.
 */
import * as k8s from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { GitRepo, ReleaseSource } from '../../src/activities/clients/git';
import type { KubernetesConfig } from '../../src/activities/clients/kube';
import { kubernetesActivities } from '../../src/activities/kubernetes';
import type { DeploymentRecord, SnapshotReference } from '../../src/activities/contracts';
import { templateReferences, SNAPSHOTS_ANNOTATION } from '../../src/domain/config-snapshots';
import { revisionOf } from '../../src/domain/rollout';
import { git, platformRepoCopy, type RepoFixture } from '../helpers/git-fixture';
import { sandboxVar } from '../helpers/sandbox';
import { workerIdentity } from '../helpers/worker-rbac';

jest.setTimeout(180_000);

const RUN = `it-cs-${process.pid}`;
const NS = RUN;
/** A name the worker's Role lets it patch (a canary copy), created here and deleted afterwards. */
const DEPLOYMENT = 'analytics-service-canary';
/** Read only (snapshots read any Deployment): for the failures. */
const OTHER = `${RUN}-other`;
const FILE_CM = `${RUN}-file`;
const DIR_CM = `${RUN}-dir`;
const SECRET = `${RUN}-secret`;
const SECRET_VALUE = `s3cr3t-${RUN}-value`;
const NEW_SECRET_VALUE = `n3w-${RUN}-value`;
const BINARY = Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]);
const image = (version: string) => `${sandboxVar('REGISTRY')}/ai-saas-analytics-service:${version}`;

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
let repo: RepoFixture;
let sourceRoot: string;
let commit: string;
const heartbeats: unknown[] = [];
let acts: ReturnType<typeof kubernetesActivities>;

const b64 = (s: string) => Buffer.from(s).toString('base64');
/** Neither the value nor its base64 appears in what an activity returned or reported. */
function expectNoSecret(value: unknown): void {
  const text = JSON.stringify(value);
  for (const v of [SECRET_VALUE, NEW_SECRET_VALUE]) {
    expect(text).not.toContain(v);
    expect(text).not.toContain(b64(v));
  }
}

function deployment(name: string, secretOptional = false): k8s.V1Deployment {
  const labels = { app: name };
  return {
    metadata: { name, labels },
    spec: {
      replicas: 1,
      revisionHistoryLimit: 10,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'analytics-service',
              image: image('1.0.0'),
              env: [{ name: 'APP', valueFrom: { configMapKeyRef: { name: FILE_CM, key: 'app.yaml' } } }],
              envFrom: [{ secretRef: { name: SECRET, optional: secretOptional } }],
              volumeMounts: [{ name: 'dir', mountPath: '/etc/dir' }],
            },
          ],
          volumes: [{ name: 'dir', configMap: { name: DIR_CM } }],
        },
      },
    },
  };
}

const sources = [
  { name: FILE_CM, path: 'config/it/app.yaml' },
  { name: DIR_CM, path: 'config/it/dir' },
];

const read = (name = DEPLOYMENT) => apps.readNamespacedDeployment({ name, namespace: NS });
const refsOf = (d: k8s.V1Deployment) =>
  templateReferences(d.spec?.template)
    .map((r) => `${r.kind}/${r.name}`)
    .sort();
const namesOf = (refs: SnapshotReference[]) => refs.map((r) => `${r.kind}/${r.to}`).sort();
const snapshot = () =>
  acts.snapshotConfiguration({
    workflowId: `${RUN}-wf`,
    namespace: NS,
    commit,
    deployments: [{ deployment: DEPLOYMENT, configMaps: sources }],
  });
const ownReplicaSets = async () => {
  const d = await read();
  const list = await apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: `app=${DEPLOYMENT}` });
  return list.items.filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.uid === d.metadata?.uid));
};
async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

beforeAll(async () => {
  admin = new k8s.KubeConfig();
  admin.loadFromFile(sandboxVar('KUBECONFIG'));
  apps = admin.makeApiClient(k8s.AppsV1Api);
  core = admin.makeApiClient(k8s.CoreV1Api);
  const worker = await workerIdentity(admin, NS);
  // The release: a file and a directory (one text and one binary file, and a subdirectory that is not a key).
  repo = platformRepoCopy();
  const dir = path.join(repo.checkout, 'config', 'it', 'dir');
  mkdirSync(path.join(dir, 'nested'), { recursive: true });
  writeFileSync(path.join(repo.checkout, 'config', 'it', 'app.yaml'), 'feature: on\nlimit: 10\n');
  writeFileSync(path.join(dir, 'a.txt'), 'hello\n');
  writeFileSync(path.join(dir, 'b.bin'), BINARY);
  writeFileSync(path.join(dir, 'nested', 'ignored.txt'), 'not a key\n');
  git(repo.checkout, 'add', '-A');
  git(repo.checkout, 'commit', '-q', '-m', 'config for the snapshot test');
  commit = git(repo.checkout, 'rev-parse', 'HEAD').trim();
  sourceRoot = mkdtempSync(path.join(tmpdir(), 'snapshot-src-'));
  const source = new ReleaseSource(new GitRepo(repo.checkout), sourceRoot);
  acts = kubernetesActivities({
    kubeConfig: worker,
    config: { kubernetes: kubernetesConfig },
    heartbeat: (d) => heartbeats.push(d),
    sourceAt: (c) => source.at(c),
  });
  await core.createNamespacedSecret({
    namespace: NS,
    body: { metadata: { name: SECRET }, type: 'Opaque', data: { TOKEN: b64(SECRET_VALUE) } },
  });
  await apps.createNamespacedDeployment({ namespace: NS, body: deployment(DEPLOYMENT) });
  await apps.createNamespacedDeployment({ namespace: NS, body: deployment(OTHER) });
  await acts.waitForRollout({ namespace: NS, deployments: [DEPLOYMENT] });
}, 200_000);

afterAll(async () => {
  await core?.deleteNamespace({ name: NS }).catch(() => undefined);
  if (repo) rmSync(path.dirname(repo.origin), { recursive: true, force: true });
  if (sourceRoot) rmSync(sourceRoot, { recursive: true, force: true });
}, 120_000);

// The tests build on each other, in order: snapshot, deploy, change the Secret, roll back, undo, prune.
let first: SnapshotReference[];
let firstRecord: DeploymentRecord;

test('ConfigMaps from a file and a directory of the release, and the referenced Secret, become immutable hashed snapshots', async () => {
  const result = await snapshot();
  expectNoSecret(result);
  expectNoSecret(heartbeats);
  first = result.deployments[0].references;
  expect(first.map((r) => [r.kind, r.base, r.from])).toEqual([
    ['ConfigMap', FILE_CM, FILE_CM],
    ['ConfigMap', DIR_CM, DIR_CM],
    ['Secret', SECRET, SECRET],
  ]);
  for (const r of first) {
    expect(r.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(r.to).toBe(`${r.base}-${r.hash.slice(0, 10)}`);
  }
  const file = await core.readNamespacedConfigMap({ name: first[0].to, namespace: NS });
  expect(file.immutable).toBe(true);
  expect(file.data).toEqual({ 'app.yaml': 'feature: on\nlimit: 10\n' });
  expect(file.metadata?.labels).toMatchObject({
    'deploy-pipelines.dev/snapshot-of': FILE_CM,
    'deploy-pipelines.dev/deployment': DEPLOYMENT,
  });
  expect(file.metadata?.annotations?.['deploy-pipelines.dev/content-hash']).toBe(first[0].hash);
  const dir = await core.readNamespacedConfigMap({ name: first[1].to, namespace: NS });
  expect(dir.data).toEqual({ 'a.txt': 'hello\n' });
  expect(Buffer.from(dir.binaryData!['b.bin'], 'base64').equals(BINARY)).toBe(true);
  const secret = await core.readNamespacedSecret({ name: first[2].to, namespace: NS });
  expect(secret.immutable).toBe(true);
  expect(secret.type).toBe('Opaque');
  expect(secret.data).toEqual({ TOKEN: b64(SECRET_VALUE) });
  expect(secret.metadata?.labels?.['deploy-pipelines.dev/snapshot-of']).toBe(SECRET);
  // Recorded on the Deployment, so pruning reaches them by name.
  const recorded = JSON.parse((await read()).metadata!.annotations![SNAPSHOTS_ANNOTATION]) as unknown[];
  expect(recorded).toHaveLength(3);
});

test('taking the snapshot again is idempotent: the same names, the same objects', async () => {
  const before = await core.readNamespacedSecret({ name: first[2].to, namespace: NS });
  const again = await snapshot();
  expect(again.deployments[0].references).toEqual(first);
  const after = await core.readNamespacedSecret({ name: first[2].to, namespace: NS });
  expect(after.metadata?.uid).toBe(before.metadata?.uid);
});

test('patchImages changes the image and the references in one write: one new revision', async () => {
  const before = await read();
  const replicaSets = (await ownReplicaSets()).length;
  const { records } = await acts.patchImages({
    workflowId: `${RUN}-wf`,
    namespace: NS,
    version: '1.0.1',
    updates: [{ deployment: DEPLOYMENT, container: 'analytics-service', image: image('1.0.1'), references: first }],
  });
  expectNoSecret(records);
  firstRecord = records[0];
  expect(firstRecord.previousReferences).toEqual(first.map((r) => ({ kind: r.kind, from: r.to, to: r.from })));
  await acts.waitForRollout({ namespace: NS, deployments: [DEPLOYMENT] });
  const after = await read();
  expect(revisionOf(after)).toBe(revisionOf(before)! + 1);
  expect(after.spec?.template.spec?.containers[0].image).toBe(image('1.0.1'));
  expect(refsOf(after)).toEqual(namesOf(first));
  expect((await ownReplicaSets()).length).toBe(replicaSets + 1);
  // A retry of the same change writes nothing and still knows how to go back.
  const retry = await acts.patchImages({
    workflowId: `${RUN}-wf`,
    namespace: NS,
    version: '1.0.1',
    updates: [{ deployment: DEPLOYMENT, container: 'analytics-service', image: image('1.0.1'), references: first }],
  });
  expect(retry.records[0].changed).toBe(false);
  expect(retry.records[0].previousReferences).toEqual(firstRecord.previousReferences);
});

let second: SnapshotReference[];

test('the Secret changes; rollbackImages returns to the old snapshot, byte-identical to the original', async () => {
  await core.replaceNamespacedSecret({
    name: SECRET,
    namespace: NS,
    body: { metadata: { name: SECRET }, type: 'Opaque', data: { TOKEN: b64(NEW_SECRET_VALUE) } },
  });
  const result = await snapshot();
  expectNoSecret(result);
  second = result.deployments[0].references;
  // The ConfigMaps did not change; the Secret is re-taken from its base, not from the snapshot the template names.
  expect(second.slice(0, 2).map((r) => r.to)).toEqual(first.slice(0, 2).map((r) => r.to));
  expect(second[2]).toMatchObject({ kind: 'Secret', base: SECRET, from: first[2].to });
  expect(second[2].to).not.toBe(first[2].to);
  const { records } = await acts.patchImages({
    workflowId: `${RUN}-wf2`,
    namespace: NS,
    version: '1.0.2',
    updates: [{ deployment: DEPLOYMENT, container: 'analytics-service', image: image('1.0.2'), references: second }],
  });
  await acts.waitForRollout({ namespace: NS, deployments: [DEPLOYMENT] });
  expect(refsOf(await read())).toContain(`Secret/${second[2].to}`);
  const rolledBack = await acts.rollbackImages({ workflowId: `${RUN}-wf2`, namespace: NS, records });
  expectNoSecret(rolledBack);
  const after = await read();
  expect(after.spec?.template.spec?.containers[0].image).toBe(image('1.0.1'));
  expect(refsOf(after)).toEqual(namesOf(first));
  const old = await core.readNamespacedSecret({ name: first[2].to, namespace: NS });
  expect(Buffer.from(old.data!.TOKEN, 'base64').toString()).toBe(SECRET_VALUE);
});

test('undoRollout to the previous revision brings back its references (the snapshots still exist)', async () => {
  const undone = await acts.undoRollout({ namespace: NS, deployment: DEPLOYMENT });
  expect(undone.skipped).toBe(false);
  const after = await read();
  expect(after.spec?.template.spec?.containers[0].image).toBe(image('1.0.2'));
  expect(refsOf(after)).toEqual(namesOf(second));
  for (const r of second)
    if (r.kind === 'Secret')
      await expect(core.readNamespacedSecret({ name: r.to, namespace: NS })).resolves.toBeDefined();
    else await expect(core.readNamespacedConfigMap({ name: r.to, namespace: NS })).resolves.toBeDefined();
});

test('pruning deletes the snapshots no revision references and keeps the others', async () => {
  // A third Secret content, snapshotted but never deployed: nothing references it.
  await core.replaceNamespacedSecret({
    name: SECRET,
    namespace: NS,
    body: { metadata: { name: SECRET }, type: 'Opaque', data: { TOKEN: b64('unused') } },
  });
  const unused = (await snapshot()).deployments[0].references[2].to;
  const result = await acts.pruneConfigSnapshots({ namespace: NS, deployments: [DEPLOYMENT] });
  expectNoSecret(result);
  expect(result.deployments[0].deleted).toEqual([`Secret/${unused}`]);
  expect(result.deployments[0].kept.sort()).toEqual(
    [...new Set([...first, ...second].map((r) => `${r.kind}/${r.to}`))].sort(),
  );
  await expect(core.readNamespacedSecret({ name: unused, namespace: NS })).rejects.toMatchObject({ code: 404 });
  const recorded = JSON.parse((await read()).metadata!.annotations![SNAPSHOTS_ANNOTATION]) as unknown[];
  expect(recorded).toHaveLength(4);
  // Again: nothing left to delete.
  const again = await acts.pruneConfigSnapshots({ namespace: NS, deployments: [DEPLOYMENT] });
  expect(again.deployments[0].deleted).toEqual([]);
});

test('failures name the Deployment and the object, and are not retried', async () => {
  const notReferenced = await failureOf(
    acts.snapshotConfiguration({
      workflowId: `${RUN}-wf`,
      namespace: NS,
      commit,
      deployments: [{ deployment: OTHER, configMaps: [{ name: `${RUN}-nowhere`, path: 'config/it/app.yaml' }] }],
    }),
  );
  expect(notReferenced.type).toBe('ConfigInvalid');
  expect(notReferenced.nonRetryable).toBe(true);
  expect(notReferenced.message).toContain(OTHER);
  expect(notReferenced.message).toContain(`${RUN}-nowhere`);

  const missingPath = await failureOf(
    acts.snapshotConfiguration({
      workflowId: `${RUN}-wf`,
      namespace: NS,
      commit,
      deployments: [{ deployment: OTHER, configMaps: [{ name: FILE_CM, path: 'config/it/missing.yaml' }] }],
    }),
  );
  expect(missingPath.type).toBe('ConfigInvalid');
  expect(missingPath.message).toContain('config/it/missing.yaml');

  await core.deleteNamespacedSecret({ name: SECRET, namespace: NS });
  const missingSecret = await failureOf(
    acts.snapshotConfiguration({
      workflowId: `${RUN}-wf`,
      namespace: NS,
      commit,
      deployments: [{ deployment: OTHER, configMaps: [] }],
    }),
  );
  expect(missingSecret.type).toBe('KubernetesNotFound');
  expect(missingSecret.nonRetryable).toBe(true);
  expect(missingSecret.message).toContain(SECRET);
  expectNoSecret([notReferenced, missingPath, missingSecret].map((f) => [f.message, f.details]));

  // An optional reference to a missing Secret is skipped.
  await apps.replaceNamespacedDeployment({
    name: OTHER,
    namespace: NS,
    body: { ...(await read(OTHER)), spec: deployment(OTHER, true).spec },
  });
  const skipped = await acts.snapshotConfiguration({
    workflowId: `${RUN}-wf`,
    namespace: NS,
    commit,
    deployments: [{ deployment: OTHER, configMaps: [] }],
  });
  expect(skipped.deployments[0].references).toEqual([]);
});
