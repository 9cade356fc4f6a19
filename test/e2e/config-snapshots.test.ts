/**
 * Configuration that rolls back with the code (issue 19), on the sandbox's
 * production cluster: auth-service's pods read a settings ConfigMap made from
 * the release repository and a signing key from a Secret. 1.0.1 changes the
 * settings; then the Secret's source is rotated, 1.0.2 goes bad and is rolled
 * back automatically, 1.0.3 goes out, and a manual `rollback --to-revision`
 * returns to 1.0.1's revision. Each time the Deployment names the snapshots
 * of the revision it returned to, read back byte for byte; no Secret value
 * reaches a history, a result, a log line or a notification.
 */
import * as k8s from '@kubernetes/client-node';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DeployInput } from '../../src/domain/input';
import { deployWorkflow, type DeployResult } from '../../src/workflows/deploy';
import { resultOf } from '../../src/workflows/outcome';
import { rollbackWorkflow } from '../../src/workflows/rollback';
import { AUTH_CONFIG, AUTH_SECRET, AUTH_SIGNING_KEY } from '../../scripts/sandbox/demo-config';
import { adminKube, sandboxCli, startE2E, type E2E } from '../helpers/e2e';
import { formatFindings, scanForSecrets } from '../helpers/secrets';

const NS = 'ai-saas';
const ROTATED_KEY = `rotated-signing-key-${process.pid}-${Date.now()}`;

let e2e: E2E;
let hook: Server;
const notifications: string[] = [];
const logged: string[] = [];
const ran: string[] = [];

beforeAll(async () => {
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      notifications.push(body);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/hook`;
  e2e = await startE2E({
    config: (c) => ({ ...c, notifications: { ...c.notifications, webhookEnv: 'E2E_CONFIG_WEBHOOK' } }),
    env: (e) => ({ ...e, E2E_CONFIG_WEBHOOK: url }),
  });
  // What the worker logs in this process (the SDK's logger writes through the console).
  for (const level of ['log', 'warn', 'error', 'info'] as const) {
    const original = console[level].bind(console);
    jest.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      logged.push(
        args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a, Object.getOwnPropertyNames(a ?? {})))).join(' '),
      );
      original(...args);
    });
  }
}, 180_000);
afterAll(async () => {
  jest.restoreAllMocks();
  await sandboxCli('fault', '--clear').catch(() => undefined);
  await e2e?.stop();
  await new Promise((r) => hook?.close(r));
  await sandboxCli('reset');
}, 180_000);

const kube = () => adminKube('production');

/** The ConfigMap and Secret auth-service's pod template names now. */
async function references(): Promise<{ configMap: string; secret: string }> {
  const d = await kube().apps.readNamespacedDeployment({ name: 'auth-service', namespace: NS });
  const spec = d.spec!.template.spec!;
  return {
    configMap: spec.volumes!.find((v) => v.name === 'settings')!.configMap!.name!,
    secret: spec.containers[0].envFrom![0].secretRef!.name!,
  };
}

/** The bytes of what they name, read back from the apiserver. */
async function contents(refs: { configMap: string; secret: string }) {
  const [cm, secret] = await Promise.all([
    kube().core.readNamespacedConfigMap({ name: refs.configMap, namespace: NS }),
    kube().core.readNamespacedSecret({ name: refs.secret, namespace: NS }),
  ]);
  return {
    settings: cm.data?.['settings.json'],
    key: secret.data?.JWT_SIGNING_KEY,
    immutable: [cm.immutable, secret.immutable],
  };
}

async function deploy(version: string, extra: Partial<DeployInput> = {}): Promise<DeployResult> {
  const workflowId = `deploy-config-e2e-${version}-${Date.now()}`;
  ran.push(workflowId);
  return resultOf(
    e2e.env.client.workflow.execute(deployWorkflow, {
      taskQueue: e2e.taskQueue,
      workflowId,
      args: [{ version, strategy: 'rolling', requestedBy: 'e2e', migrate: false, ...extra }],
    }),
  );
}

/** auth-service's image now. */
async function image(): Promise<string> {
  const d = await kube().apps.readNamespacedDeployment({ name: 'auth-service', namespace: NS });
  return d.spec!.template.spec!.containers[0].image!;
}

/**
 * The revision of auth-service's ReplicaSet that runs `image` and reads
 * `secret`: one template, so one ReplicaSet (snapshots are named by content,
 * so earlier runs' ReplicaSets may read the same snapshot with other images).
 */
async function revisionOf(runs: string, secret: string): Promise<number> {
  const list = await kube().apps.listNamespacedReplicaSet({ namespace: NS, labelSelector: 'app=auth-service' });
  const rs = list.items.filter(
    (r) =>
      r.spec?.template?.spec?.containers[0].image === runs &&
      r.spec?.template?.spec?.containers[0].envFrom?.[0]?.secretRef?.name === secret,
  );
  expect(rs).toHaveLength(1);
  return Number(rs[0].metadata!.annotations!['deployment.kubernetes.io/revision']);
}

test('a ConfigMap and a Secret snapshot return with the code: automatic rollback and rollback --to-revision', async () => {
  await sandboxCli('reset');
  const original = await contents({ configMap: AUTH_CONFIG, secret: AUTH_SECRET });
  expect(Buffer.from(original.key!, 'base64').toString()).toBe(AUTH_SIGNING_KEY);

  // 1.0.1: its settings from the release commit, the signing key copied as it is now.
  const first = await deploy('1.0.1');
  expect({ outcome: first.outcome, reason: first.reason }).toEqual({ outcome: 'succeeded' });
  const v1 = await references();
  const v1Image = await image();
  expect(v1.configMap).toMatch(new RegExp(`^${AUTH_CONFIG}-[0-9a-f]{10}$`));
  expect(v1.secret).toMatch(new RegExp(`^${AUTH_SECRET}-[0-9a-f]{10}$`));
  const v1Contents = await contents(v1);
  expect(v1Contents.immutable).toEqual([true, true]);
  expect(v1Contents.settings).toContain('"tokenTtlSeconds": 900');
  expect(v1Contents.key).toBe(original.key);
  expect(first.status.configuration?.map((c) => `${c.kind} ${c.from} → ${c.to}`)).toEqual([
    `ConfigMap ${AUTH_CONFIG} → ${v1.configMap}`,
    `Secret ${AUTH_SECRET} → ${v1.secret}`,
  ]);
  expect(first.summary).toContain('## Configuration');

  // Someone rotates the key at its source; 1.0.2 snapshots the new one and goes bad in its second wave.
  await kube().core.patchNamespacedSecret(
    {
      name: AUTH_SECRET,
      namespace: NS,
      body: { data: { JWT_SIGNING_KEY: Buffer.from(ROTATED_KEY).toString('base64') } },
    },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
  await sandboxCli('fault', '--log-errors', 'api-gateway');
  const bad = await deploy('1.0.2');
  await sandboxCli('fault', '--clear');
  expect(bad.outcome).toBe('rolled-back');
  const moved = bad.status.configuration?.find((c) => c.kind === 'Secret');
  expect(moved?.from).toBe(v1.secret);
  expect(moved?.to).not.toBe(v1.secret);
  // Back on 1.0.1's snapshots, byte for byte, though the source changed since.
  expect(await references()).toEqual(v1);
  expect(await contents(v1)).toEqual(v1Contents);

  // 1.0.3 goes out with the rotated key; a manual rollback to 1.0.1's revision brings back its snapshots.
  const third = await deploy('1.0.3');
  expect({ outcome: third.outcome, reason: third.reason }).toEqual({ outcome: 'succeeded' });
  const v3 = await references();
  expect(v3.secret).not.toBe(v1.secret);
  expect(Buffer.from((await contents(v3)).key!, 'base64').toString()).toBe(ROTATED_KEY);
  const revision = await revisionOf(v1Image, v1.secret);
  const rollbackId = `rollback-config-e2e-${Date.now()}`;
  ran.push(rollbackId);
  const back = await resultOf(
    e2e.env.client.workflow.execute(rollbackWorkflow, {
      taskQueue: e2e.taskQueue,
      workflowId: rollbackId,
      args: [{ toRevision: revision, services: ['auth-service'], reason: 'e2e: back to 1.0.1', requestedBy: 'e2e' }],
    }),
  );
  expect({ outcome: back.outcome, reason: back.reason }).toEqual(expect.objectContaining({ outcome: 'rolled-back' }));
  expect(await references()).toEqual(v1);
  expect(await image()).toBe(v1Image);
  expect(await contents(v1)).toEqual(v1Contents);

  // No Secret value anywhere a person or a machine reads.
  const histories = await Promise.all(
    ran.map(async (id) => ({
      source: `history ${id}`,
      text: historyToJSON(await e2e.env.client.workflow.getHandle(id).fetchHistory()),
    })),
  );
  const texts = [
    ...histories,
    { source: 'results', text: JSON.stringify([first, bad, third, back]) },
    { source: 'notifications', text: notifications.join('\n') },
    { source: 'worker log', text: logged.join('\n') },
  ];
  expect(notifications.length).toBeGreaterThan(0);
  const findings = scanForSecrets(texts, [
    { name: 'the original signing key', value: AUTH_SIGNING_KEY },
    { name: 'the rotated signing key', value: ROTATED_KEY },
  ]);
  expect(formatFindings(findings)).toBe('');
}, 1_200_000);
