/**
 * Notifications to real HTTP receivers on loopback: a Slack-compatible
 * incoming webhook and a generic JSON webhook get every kind of event; a
 * failing, unreachable or silent receiver is counted, never thrown, and the
 * webhook URLs (secrets) never reach a log line or a result.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as path from 'node:path';
import type { NotificationEvent, NotificationKind } from '../../src/activities/contracts';
import { notifyActivities } from '../../src/activities/notify';
import type { Logger } from '../../src/activities/runtime';
import type { DeployConfig } from '../../src/domain/config';
import { loadConfig } from '../../src/load-config';
import { REPO_ROOT } from '../helpers/tools';

interface Received {
  path: string;
  contentType: string | undefined;
  body: any;
}

const SLACK_PATH = '/services/T0000/B0000/slack-secret-token-5f2a';
const HOOK_PATH = '/hooks/deploy/hook-secret-9c1e';

let server: Server;
let base: string;
let received: Received[] = [];
/** Path -> how the receiver answers. */
const behaviour = new Map<string, 'ok' | 'fail' | 'hang' | 'not-found' | 'busy-twice'>();
/** Requests per path, including the refused ones. */
const hits = new Map<string, number>();

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (s += d));
    req.on('end', () => resolve(s));
  });
}

beforeAll(async () => {
  server = createServer((req, res) => {
    void readBody(req).then((text) => {
      const p = req.url ?? '';
      const how = behaviour.get(p) ?? 'ok';
      hits.set(p, (hits.get(p) ?? 0) + 1);
      if (how === 'hang') return; // never answers
      if (how === 'busy-twice' && (hits.get(p) ?? 0) <= 2) {
        res.writeHead(503, { 'retry-after': '1' });
        res.end('overloaded');
        return;
      }
      received.push({ path: p, contentType: req.headers['content-type'], body: JSON.parse(text) });
      if (how === 'not-found') {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('no_service');
      } else if (how === 'fail') {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('invalid_payload');
      } else {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('ok');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  received = [];
  behaviour.clear();
  hits.clear();
});

const config = (): DeployConfig => loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), {});
const urls = () => ({ SLACK_WEBHOOK_URL: `${base}${SLACK_PATH}`, DEPLOY_WEBHOOK_URL: `${base}${HOOK_PATH}` });

function recordingLogger(): Logger & { text: () => string } {
  const lines: string[] = [];
  return {
    info: (m, meta) => lines.push(`${m} ${JSON.stringify(meta ?? {})}`),
    warn: (m, meta) => lines.push(`${m} ${JSON.stringify(meta ?? {})}`),
    text: () => lines.join('\n'),
  };
}

const event = (kind: NotificationKind, over: Partial<NotificationEvent> = {}): NotificationEvent => ({
  kind,
  workflowId: 'deploy-ai-saas-1.0.1',
  project: 'ai-saas',
  environment: 'production',
  version: '1.0.1',
  text: `ai-saas 1.0.1 ${kind}`,
  uiUrl: 'http://127.0.0.1:8233',
  ...over,
});

const KINDS: NotificationKind[] = [
  'started',
  'awaiting-approval',
  'step-promoted',
  'failed',
  'rolled-back',
  'succeeded',
  'aborted',
];

test('both receivers get every kind of notification', async () => {
  const log = recordingLogger();
  const { notify } = notifyActivities({
    config: config(),
    env: urls(),
    log,
    now: () => new Date('2025-11-15T10:00:00Z'),
  });
  for (const kind of KINDS) {
    await expect(notify(event(kind, kind === 'step-promoted' ? { weight: 25 } : {}))).resolves.toEqual({
      delivered: 2,
      failed: 0,
    });
  }
  const slack = received.filter((r) => r.path === SLACK_PATH);
  const hook = received.filter((r) => r.path === HOOK_PATH);
  expect(slack).toHaveLength(KINDS.length);
  expect(hook.map((r) => r.body.type)).toEqual(KINDS.map((k) => `deployment.${k}`));
  expect(received.every((r) => r.contentType === 'application/json')).toBe(true);
  expect(slack.every((r) => typeof r.body.text === 'string' && Array.isArray(r.body.blocks))).toBe(true);
  expect(hook.find((r) => r.body.kind === 'step-promoted')?.body).toMatchObject({
    weight: 25,
    at: '2025-11-15T10:00:00.000Z',
    project: 'ai-saas',
    version: '1.0.1',
  });
  expect(log.text()).not.toContain('secret');
});

test('awaiting approval carries the exact deployctl commands and the Temporal UI link', async () => {
  const { notify } = notifyActivities({ config: config(), env: urls(), log: recordingLogger() });
  const commands = [
    'deployctl approve deploy-ai-saas-1.0.1 --by <name>',
    'deployctl abort deploy-ai-saas-1.0.1 --by <name> --reason <text>',
  ];
  await notify(event('awaiting-approval', { text: 'approval to move traffic to 100%', commands, weight: 50 }));
  const link = 'http://127.0.0.1:8233/namespaces/default/workflows/deploy-ai-saas-1.0.1';
  const slack = received.find((r) => r.path === SLACK_PATH)!.body;
  for (const c of commands) expect(slack.text).toContain(c);
  expect(slack.text).toContain(link);
  expect(JSON.stringify(slack.blocks)).toContain(link);
  const hook = received.find((r) => r.path === HOOK_PATH)!.body;
  expect(hook).toMatchObject({ type: 'deployment.awaiting-approval', commands, workflowUrl: link, weight: 50 });
});

test('a failing receiver is retried within the window, then counted, not thrown, and its URL is not logged', async () => {
  behaviour.set(SLACK_PATH, 'fail');
  const log = recordingLogger();
  const c = config();
  c.notifications.retryFor = 1200; // tries at 0, +0.5 s, +1.5 s is past the window
  const { notify } = notifyActivities({ config: c, env: urls(), log });
  await expect(notify(event('failed'))).resolves.toEqual({ delivered: 1, failed: 1 });
  expect(hits.get(SLACK_PATH)).toBe(2);
  expect(hits.get(HOOK_PATH)).toBe(1);
  expect(log.text()).toContain('HTTP 500: invalid_payload');
  expect(log.text()).not.toContain(SLACK_PATH);
  expect(log.text()).not.toContain('slack-secret-token');
});

test('a receiver busy for a moment (503) gets the event on a retry, exactly once, and the other receiver is not sent it again', async () => {
  behaviour.set(HOOK_PATH, 'busy-twice');
  const log = recordingLogger();
  const { notify } = notifyActivities({ config: config(), env: urls(), log });
  await expect(notify(event('step-promoted', { weight: 25 }))).resolves.toEqual({ delivered: 2, failed: 0 });
  expect(hits.get(HOOK_PATH)).toBe(3);
  expect(received.filter((r) => r.path === HOOK_PATH)).toHaveLength(1);
  expect(received.filter((r) => r.path === SLACK_PATH)).toHaveLength(1);
  expect(log.text()).toContain('"attempts":3');
});

test('a receiver that refuses the request (404) is not retried', async () => {
  behaviour.set(HOOK_PATH, 'not-found');
  const log = recordingLogger();
  const { notify } = notifyActivities({ config: config(), env: urls(), log });
  await expect(notify(event('started'))).resolves.toEqual({ delivered: 1, failed: 1 });
  expect(hits.get(HOOK_PATH)).toBe(1);
  expect(log.text()).toContain('HTTP 404: no_service');
});

test('a receiver that comes back within the window gets the event', async () => {
  // A port with nothing on it for the first second, then a receiver.
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  let got = 0;
  const late = createServer((req, res) => {
    got++;
    req.resume();
    res.end('ok');
  });
  const timer = setTimeout(() => late.listen(port, '127.0.0.1'), 1000);
  try {
    const { notify } = notifyActivities({
      config: config(),
      env: { DEPLOY_WEBHOOK_URL: `http://127.0.0.1:${port}${HOOK_PATH}` },
      log: recordingLogger(),
    });
    await expect(notify(event('succeeded'))).resolves.toEqual({ delivered: 1, failed: 0 });
    expect(got).toBe(1);
  } finally {
    clearTimeout(timer);
    late.closeAllConnections();
    await new Promise((resolve) => late.close(resolve));
  }
});

test('unreachable and silent receivers are counted within the configured timeout', async () => {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const closed = (s.address() as AddressInfo).port;
  await new Promise((resolve) => s.close(resolve));
  behaviour.set(HOOK_PATH, 'hang');
  const c = config();
  c.notifications.timeout = 300;
  c.notifications.retryFor = 0;
  const log = recordingLogger();
  const { notify } = notifyActivities({
    config: c,
    env: { SLACK_WEBHOOK_URL: `http://127.0.0.1:${closed}${SLACK_PATH}`, DEPLOY_WEBHOOK_URL: `${base}${HOOK_PATH}` },
    log,
  });
  const started = Date.now();
  await expect(notify(event('rolled-back'))).resolves.toEqual({ delivered: 0, failed: 2 });
  expect(Date.now() - started).toBeLessThan(3000);
  expect(log.text()).toContain('connection refused');
  expect(log.text()).toContain('no answer within 300 ms');
  expect(log.text()).not.toContain('secret');
});

test('a URL that is not a URL is a failure, and the bad value is not logged', async () => {
  const log = recordingLogger();
  const { notify } = notifyActivities({
    config: config(),
    env: { SLACK_WEBHOOK_URL: 'not a url with-secret-xyz' },
    log,
  });
  await expect(notify(event('started'))).resolves.toEqual({ delivered: 0, failed: 1 });
  expect(log.text()).not.toContain('with-secret-xyz');
});

test('no receivers configured: nothing sent, nothing failed', async () => {
  const { notify } = notifyActivities({ config: config(), env: {}, log: recordingLogger() });
  await expect(notify(event('started'))).resolves.toEqual({ delivered: 0, failed: 0 });
  expect(received).toHaveLength(0);
});

test('a malformed event is counted as failed, never thrown', async () => {
  const { notify } = notifyActivities({ config: config(), env: urls(), log: recordingLogger() });
  await expect(notify({ ...event('started'), kind: 'exploded' as NotificationKind })).resolves.toEqual({
    delivered: 0,
    failed: 2,
  });
});

test('inside an activity context (MockActivityEnvironment)', async () => {
  const { notify } = notifyActivities({ config: config(), env: urls() });
  const logged: string[] = [];
  const rec = (message: string) => void logged.push(message);
  const logger = {
    log: (_l: string, message: string) => rec(message),
    trace: rec,
    debug: rec,
    info: rec,
    warn: rec,
    error: rec,
  };
  const r = await new MockActivityEnvironment(undefined, { logger }).run(notify, event('succeeded'));
  expect(r).toEqual({ delivered: 2, failed: 0 });
  expect(logged.filter((m) => m === 'notification delivered')).toHaveLength(2);
});
