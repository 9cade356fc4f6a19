/**
 * Payload encryption on a real server (the dev server): the worker (with a
 * workflow bundle) and the client share the codec; the workflow's input, a
 * signal and the `status` query work as before, the stored history holds no
 * plaintext of what went in, a client without the key cannot read it, and
 * the codec server turns the stored payloads back into JSON for the UI.
 */
import { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { main } from '../../src/client';
import { codecFromEnv, ENCODING_ENCRYPTED, type EncryptionCodec, type JsonPayload } from '../../src/codec';
import { createCodecServer, startCodecServer } from '../../src/codec-server';
import type { DeployInput } from '../../src/domain/input';
import type { DeploymentStatus } from '../../src/domain/status';
import { deployWorkflow } from '../../src/workflows/deploy';
import { approveSignal, statusQuery } from '../../src/workflows/messages';
import { fakeActivities } from '../helpers/fake-activities';
import { testPlan } from '../helpers/plan';
import { formatFindings, scanForSecrets } from '../helpers/secrets';
import { devServerEnv, uniqueQueue, workflowBundle } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';
import { PATCH_IDS } from '../../src/workflows/patches';

const MARKER = `codec marker ${randomBytes(6).toString('hex')}`;
const NOTE = `note-marker-${randomBytes(6).toString('hex')}`;
const TOKEN = `codec-token-${randomBytes(6).toString('hex')}`;
const KEY = randomBytes(32).toString('base64');

let env: TestWorkflowEnvironment;
let codec: EncryptionCodec;
let client: Client;
let server: Server;
let codecUrl: string;

beforeAll(async () => {
  env = await devServerEnv();
  codec = codecFromEnv({ DEPLOY_CODEC_KEY: KEY, DEPLOY_CODEC_KEY_ID: 'wf-test-key' })!;
  client = new Client({ connection: env.connection, namespace: 'default', dataConverter: { payloadCodecs: [codec] } });
  server = createCodecServer({ codec, corsOrigins: ['http://127.0.0.1:8233'], authToken: TOKEN });
  codecUrl = `http://127.0.0.1:${await startCodecServer(server, 0)}`;
}, 120_000);

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await env?.teardown();
});

interface JsonHistory {
  events: Record<string, any>[];
}

/** Every payload object ({metadata: {encoding}, data}) anywhere in a proto3-JSON history, with its path. */
function payloadsOf(node: unknown, at = ''): { path: string; payload: JsonPayload }[] {
  if (!node || typeof node !== 'object') return [];
  if (Array.isArray(node)) return node.flatMap((n, i) => payloadsOf(n, `${at}[${i}]`));
  const o = node as Record<string, unknown>;
  const meta = o.metadata as Record<string, unknown> | undefined;
  if (meta && typeof meta === 'object' && typeof meta.encoding === 'string') return [{ path: at, payload: o }];
  return Object.entries(o).flatMap(([k, v]) => payloadsOf(v, `${at}.${k}`));
}

const decodeOverHttp = async (payloads: JsonPayload[]) => {
  const res = await fetch(`${codecUrl}/decode`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}`, 'x-namespace': 'default' },
    body: JSON.stringify({ payloads }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { payloads: JsonPayload[] }).payloads;
};

/** deployctl (src/client.ts) against this server, with the given codec settings. */
async function deployctl(args: string[], codecEnv: Record<string, string>) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(['node', 'deployctl', ...args], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { TEMPORAL_ADDRESS: env.connection.options.address, TEMPORAL_NAMESPACE: 'default', ...codecEnv },
    isTTY: false,
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

const jsonOf = (p: JsonPayload): unknown => JSON.parse(Buffer.from(p.data ?? '', 'base64').toString('utf8'));

test('encrypted end to end: input, signal and status work; the history holds no plaintext; the codec server decodes it', async () => {
  const input: DeployInput = {
    version: '1.0.1',
    requestedBy: MARKER,
    canary: { soak: '1s', analysisInterval: '1s', approval: 'before-full' },
  };
  const plan = { ...testPlan(input), environment: `codec-${randomBytes(4).toString('hex')}`, searchAttributes: false };
  const fake = fakeActivities({ plan });
  const taskQueue = uniqueQueue('codec');
  const workflowId = `deploy-codec-${taskQueue}`;
  // The same prebuilt-bundle path the production worker takes, with the codec beside it.
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: fake.activities,
    dataConverter: { payloadCodecs: [codec] },
  });

  const result = await worker.runUntil(async () => {
    const h = await client.workflow.start(deployWorkflow, { taskQueue, workflowId, args: [input] });
    const canary = client.workflow.getHandle(`${workflowId}-canary`);
    await waitFor(
      async () => (await canary.query(statusQuery).catch(() => undefined))?.phase === 'awaiting-approval',
      60_000,
      300,
    );
    // The status query answers through the codec.
    const status: DeploymentStatus = await h.query(statusQuery);
    expect(status.requestedBy).toBe(MARKER);
    expect(status.version).toBe('1.0.1');
    // A client without the key gets ciphertext it cannot read, not the status.
    const keyless = new Client({ connection: env.connection, namespace: 'default' });
    await expect(keyless.workflow.getHandle(workflowId).query(statusQuery)).rejects.toThrow(/binary\/encrypted/);
    // deployctl with the key (DEPLOY_CODEC_KEY, as the worker has it) reads the status; without it, or with another key, it cannot.
    const withKey = await deployctl(['status', workflowId, '--json'], {
      DEPLOY_CODEC_KEY: KEY,
      DEPLOY_CODEC_KEY_ID: 'wf-test-key',
    });
    expect(withKey.err).toBe('');
    expect(withKey.code).toBe(0);
    expect((JSON.parse(withKey.out) as DeploymentStatus).requestedBy).toBe(MARKER);
    const without = await deployctl(['status', workflowId, '--json'], {});
    expect(without.code).not.toBe(0);
    expect(without.out).not.toContain(MARKER);
    expect(without.err).toBe(
      "deployctl: the deployment's data is encrypted: set DEPLOY_CODEC_KEY (and DEPLOY_CODEC_KEY_ID, DEPLOY_CODEC_OLD_KEYS) as the worker has them",
    );
    const otherKey = await deployctl(['status', workflowId, '--json'], {
      DEPLOY_CODEC_KEY: randomBytes(32).toString('base64'),
    });
    expect(otherKey.code).not.toBe(0);
    expect(otherKey.err).toContain('encrypted with key id "wf-test-key", which this process does not have');
    const badKey = await deployctl(['status', workflowId], { DEPLOY_CODEC_KEY: 'short' });
    expect(badKey.code).toBe(2);
    expect(badKey.err).toMatch(/^deployctl: DEPLOY_CODEC_KEY must be 32 random bytes in base64/);
    await h.signal(approveSignal, { by: 'codec-approver', note: NOTE });
    return h.result();
  });
  expect(result.outcome).toBe('succeeded');
  expect(result.status.requestedBy).toBe(MARKER);
  const canaryResult = await client.workflow.getHandle(`${workflowId}-canary`).result();
  expect(canaryResult.status.approvals).toEqual([expect.objectContaining({ by: 'codec-approver', note: NOTE })]);
  // The activities saw the decrypted values.
  expect(fake.argsOf<{ input: { requestedBy: string } }>('resolvePlan')[0].input.requestedBy).toBe(MARKER);

  // The stored histories: every payload encrypted under our key id, no plaintext anywhere.
  const histories: { id: string; json: JsonHistory; text: string }[] = [];
  for (const id of [workflowId, `${workflowId}-canary`, `deploy-lock-${plan.environment}`]) {
    const text = historyToJSON(await client.workflow.getHandle(id).fetchHistory());
    histories.push({ id, json: JSON.parse(text) as JsonHistory, text });
  }
  const findings = scanForSecrets(
    histories.map((h) => ({ source: h.id, text: h.text })),
    [
      { name: 'marker', value: MARKER },
      { name: 'note', value: NOTE },
    ],
  );
  if (findings.length) throw new Error(`plaintext in the stored history:\n${formatFindings(findings)}`);
  const all = histories.flatMap((h) => payloadsOf(h.json.events, h.id));
  // The SDK records each patched() the workflow passed as a marker and the TemporalChangeVersion
  // search attribute, outside the data converter: they hold the patch id (a name in our code) and
  // nothing of the deployment (any of the ids in workflows/patches.ts). Every other payload must be encrypted.
  const isPatchRecord = (path: string) =>
    /markerRecordedEventAttributes\.details\.patch-data|indexedFields\.TemporalChangeVersion/.test(path);
  const patchId = new RegExp(PATCH_IDS.map((id) => id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'));
  for (const { payload } of all.filter(({ path }) => isPatchRecord(path))) {
    expect(Buffer.from(payload.data ?? '', 'base64').toString()).toMatch(patchId);
  }
  const payloads = all.filter(({ path }) => !isPatchRecord(path));
  expect(payloads.length).toBeGreaterThan(10);
  const clear = payloads.filter(
    ({ payload }) => Buffer.from(payload.metadata!.encoding, 'base64').toString() !== ENCODING_ENCRYPTED,
  );
  expect(clear.map((c) => c.path)).toEqual([]);
  expect(
    new Set(payloads.map(({ payload }) => Buffer.from(payload.metadata!['encryption-key-id'], 'base64').toString())),
  ).toEqual(new Set(['wf-test-key']));

  // The codec server (what the Temporal UI calls) decodes the stored input and the signal.
  const started = histories[0].json.events[0].workflowExecutionStartedEventAttributes;
  const [decodedInput] = await decodeOverHttp(started.input.payloads);
  expect(jsonOf(decodedInput)).toEqual(input);
  expect(Buffer.from(decodedInput.metadata!.encoding, 'base64').toString()).toBe('json/plain');
  const signalled = histories[0].json.events.find(
    (e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'approve',
  );
  const [decodedSignal] = await decodeOverHttp(signalled!.workflowExecutionSignaledEventAttributes.input.payloads);
  expect(jsonOf(decodedSignal)).toEqual({ by: 'codec-approver', note: NOTE });
  // And the SDK's own converter reads what the server returns.
  const completed = histories[0].json.events.at(-1)!.workflowExecutionCompletedEventAttributes;
  const [decodedResult] = await decodeOverHttp(completed.result.payloads);
  expect(
    defaultPayloadConverter.fromPayload<{ outcome: string }>({
      metadata: { encoding: Buffer.from(decodedResult.metadata!.encoding, 'base64') },
      data: Buffer.from(decodedResult.data!, 'base64'),
    }).outcome,
  ).toBe('succeeded');
}, 180_000);
