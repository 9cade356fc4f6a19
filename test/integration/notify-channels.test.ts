/**
 * The notify activity's e-mail and Teams channels and its routes, for real:
 * mail goes to the sandbox's mail server (Exim, scripts/sandbox/smtp.ts) and
 * is read back from its maildir; Teams' webhook is a local HTTP receiver that
 * records the POST (there is no Teams server here: the card is checked
 * against the published Adaptive Card schema's shape). A refused recipient
 * or a server that is down never fails notify: it is counted and logged.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import * as path from 'node:path';
import { parse } from 'yaml';
import type { NotificationEvent, NotificationKind } from '../../src/activities/contracts';
import { notifyActivities } from '../../src/activities/notify';
import type { Logger } from '../../src/activities/runtime';
import { parseConfig, type DeployConfig } from '../../src/domain/config';
import { mailsWith, sandboxSmtp, waitForMails } from '../helpers/maildir';
import { REPO_ROOT } from '../helpers/tools';

const smtp = sandboxSmtp();
const ONCALL = `oncall@${smtp.domain}`;
const LEAD = `release-lead@${smtp.domain}`;
const FROM = `deployments@${smtp.domain}`;

interface Received {
  path: string;
  contentType: string | undefined;
  body: any;
}
let server: Server;
let base: string;
let received: Received[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (text += d));
    req.on('end', () => {
      received.push({ path: req.url ?? '', contentType: req.headers['content-type'], body: JSON.parse(text) });
      // What a Teams Workflows webhook answers.
      res.writeHead(202).end();
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
});

const TEAMS_PATH = '/webhookb2/teams-secret-7d41/IncomingWebhook/x';
const SLACK_PATH = '/services/T0/B0/slack-secret-3e9a';
const urls = () => ({ TEAMS_WEBHOOK_URL: `${base}${TEAMS_PATH}`, SLACK_WEBHOOK_URL: `${base}${SLACK_PATH}` });

/** The example config with these notifications (and staging's, when given), validated as the worker would. */
function config(notifications: Record<string, unknown>, staging?: Record<string, unknown>): DeployConfig {
  const raw = parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8'));
  raw.notifications = { retryFor: '1s', ...notifications };
  if (staging) raw.environments.staging.notifications = staging;
  return parseConfig(raw, 'deploy.config.yaml', {});
}

const plainEmail = (over: Record<string, unknown> = {}) => ({
  host: smtp.host,
  port: smtp.port,
  from: FROM,
  to: [ONCALL, LEAD],
  ...over,
});

function recordingLogger(): Logger & { text: () => string } {
  const lines: string[] = [];
  return {
    info: (m, meta) => lines.push(`${m} ${JSON.stringify(meta ?? {})}`),
    warn: (m, meta) => lines.push(`${m} ${JSON.stringify(meta ?? {})}`),
    text: () => lines.join('\n'),
  };
}

/** An event of a workflow of its own, so that its mail is told apart from any other in the shared mailbox. */
function event(kind: NotificationKind, over: Partial<NotificationEvent> = {}): NotificationEvent {
  return {
    kind,
    workflowId: `deploy-ai-saas-1.0.1-${randomUUID().slice(0, 8)}`,
    project: 'ai-saas',
    environment: 'production',
    version: '1.0.1',
    text: `ai-saas 1.0.1 ${kind}`,
    uiUrl: 'http://127.0.0.1:8233',
    ...over,
  };
}

const commandsOf = (id: string) => [
  `deployctl approve ${id} --by <name>`,
  `deployctl abort ${id} --by <name> --reason <text>`,
];

test('an approval request arrives in the mailbox: subject, recipients, the commands to answer, the link', async () => {
  const log = recordingLogger();
  const { notify } = notifyActivities({ config: config({ email: plainEmail() }), env: {}, log });
  const e = event('awaiting-approval', { text: 'approval to move traffic to 100% <now>', weight: 50 });
  await expect(notify(e)).resolves.toEqual({ delivered: 1, failed: 0 });
  // The server files one copy per recipient, each with its envelope recipient.
  const copies = await waitForMails(smtp.maildir, e.workflowId, 2);
  expect(copies.map((m) => m.header('envelope-to')).sort()).toEqual([ONCALL, LEAD].sort());
  const [mail] = copies;
  expect(mail.header('subject')).toBe('Deployment awaiting approval: ai-saas 1.0.1 on production');
  expect(mail.header('from')).toBe(FROM);
  expect(mail.header('to')).toBe(`${ONCALL}, ${LEAD}`);
  expect(mail.header('x-deployment-event')).toBe('awaiting-approval');
  for (const c of commandsOf(e.workflowId)) {
    expect(mail.text).toContain(`    ${c}\n`);
    expect(mail.html).toContain(c.replace(/</g, '&lt;').replace(/>/g, '&gt;'));
  }
  const link = `http://127.0.0.1:8233/namespaces/default/workflows/${e.workflowId}`;
  expect(mail.text).toContain(link);
  expect(mail.html).toContain(`<a href="${link}">`);
  expect(mail.html).toContain('approval to move traffic to 100% &lt;now&gt;');
  expect(mailsWith(smtp.maildir, e.workflowId)).toHaveLength(2);
  expect(log.text()).toContain('"channel":"email"');
});

test('over implicit TLS with a login: delivered; a wrong password is refused once, never retried, never logged', async () => {
  const tls = plainEmail({
    port: smtp.tlsPort,
    secure: true,
    caFile: smtp.caFile,
    usernameEnv: 'SMTP_USERNAME',
    passwordEnv: 'SMTP_PASSWORD',
    to: [ONCALL],
  });
  const log = recordingLogger();
  const good = notifyActivities({
    config: config({ email: tls }),
    env: { SMTP_USERNAME: smtp.username, SMTP_PASSWORD: smtp.password },
    log,
  });
  const e = event('failed');
  await expect(good.notify(e)).resolves.toEqual({ delivered: 1, failed: 0 });
  const [mail] = await waitForMails(smtp.maildir, e.workflowId);
  expect(mail.header('subject')).toBe('Deployment failed: ai-saas 1.0.1 on production');
  expect(mail.raw).not.toContain(smtp.password);

  const wrong = 'not-the-password-5c8e1';
  const bad = notifyActivities({
    config: config({ email: tls }),
    env: { SMTP_USERNAME: smtp.username, SMTP_PASSWORD: wrong },
    log,
  });
  await expect(bad.notify(event('failed'))).resolves.toEqual({ delivered: 0, failed: 1 });
  expect(log.text()).toMatch(/notification not delivered .*"attempts":1,.*535/);
  expect(log.text()).not.toContain(wrong);
  expect(log.text()).not.toContain(smtp.password);

  // requireTLS against a server that offers no STARTTLS: refused before anything is sent, not retried.
  const clear = notifyActivities({
    config: config({ email: plainEmail({ requireTLS: true }) }),
    env: {},
    log,
  });
  const notInClear = event('failed');
  await expect(clear.notify(notInClear)).resolves.toEqual({ delivered: 0, failed: 1 });
  expect(log.text()).toMatch(/"attempts":1,.*STARTTLS/);
  expect(mailsWith(smtp.maildir, notInClear.workflowId)).toHaveLength(0);

  // The variable the config names is not set: refused without a try, saying which.
  const unset = notifyActivities({ config: config({ email: tls }), env: { SMTP_USERNAME: smtp.username }, log });
  await expect(unset.notify(event('failed'))).resolves.toEqual({ delivered: 0, failed: 1 });
  expect(log.text()).toContain('SMTP_PASSWORD (notifications.email.passwordEnv) is not set on the worker');
});

test('a refused recipient and a server that is down do not fail notify: counted, and the reason logged', async () => {
  const log = recordingLogger();
  const elsewhere = notifyActivities({
    config: config({ email: plainEmail({ to: ['someone@elsewhere.test'] }) }),
    env: {},
    log,
  });
  await expect(elsewhere.notify(event('failed'))).resolves.toEqual({ delivered: 0, failed: 1 });
  expect(log.text()).toMatch(/"attempts":1,.*550 relay not permitted/);

  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const closed = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  const down = notifyActivities({
    config: config({ email: plainEmail({ port: closed }), retryFor: '600ms', timeout: '1s' }),
    env: {},
    log,
  });
  const started = Date.now();
  await expect(down.notify(event('failed'))).resolves.toEqual({ delivered: 0, failed: 1 });
  expect(Date.now() - started).toBeLessThan(3000);
  expect(log.text()).toMatch(/"attempts":2,.*ECONNREFUSED/);
});

test('a recipient the server defers (451) is retried alone: the others get the event exactly once', async () => {
  const log = recordingLogger();
  const { notify } = notifyActivities({
    config: config({ email: plainEmail({ to: [ONCALL, `greylisted@${smtp.domain}`] }), retryFor: '1200ms' }),
    env: {},
    log,
  });
  const e = event('rolled-back');
  await expect(notify(e)).resolves.toEqual({ delivered: 0, failed: 1 });
  expect(log.text()).toMatch(/"attempts":2,.*greylisted@example.test: 451/);
  const mails = await waitForMails(smtp.maildir, e.workflowId);
  expect(mails).toHaveLength(1);
  expect(mails[0].header('envelope-to')).toBe(ONCALL);
  // Every recipient is named in the message, including the one still to reach.
  expect(mails[0].header('to')).toBe(`${ONCALL}, greylisted@${smtp.domain}`);
});

test('Teams gets an Adaptive Card with the facts, the commands in monospace and the link', async () => {
  const log = recordingLogger();
  const { notify } = notifyActivities({
    config: config({ teamsWebhookEnv: 'TEAMS_WEBHOOK_URL' }),
    env: urls(),
    log,
  });
  const e = event('awaiting-approval', { text: 'approval to move traffic to **100%**', weight: 50 });
  await expect(notify(e)).resolves.toEqual({ delivered: 1, failed: 0 });
  expect(received).toHaveLength(1);
  const [r] = received;
  expect(r.path).toBe(TEAMS_PATH);
  expect(r.contentType).toBe('application/json');
  expect(r.body.type).toBe('message');
  expect(r.body.attachments).toHaveLength(1);
  const [a] = r.body.attachments;
  expect(a.contentType).toBe('application/vnd.microsoft.card.adaptive');
  const card = a.content;
  expect(card).toMatchObject({
    type: 'AdaptiveCard',
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    version: '1.4',
    actions: [
      {
        type: 'Action.OpenUrl',
        url: `http://127.0.0.1:8233/namespaces/default/workflows/${e.workflowId}`,
      },
    ],
  });
  // Every element is one the 1.4 schema defines, with the properties it requires.
  for (const el of card.body) {
    expect(['TextBlock', 'FactSet', 'RichTextBlock']).toContain(el.type);
    if (el.type === 'TextBlock') expect(typeof el.text).toBe('string');
    if (el.type === 'FactSet')
      expect(el.facts.every((f: any) => typeof f.title === 'string' && typeof f.value === 'string')).toBe(true);
  }
  const runs = card.body.filter((b: any) => b.type === 'RichTextBlock').flatMap((b: any) => b.inlines);
  expect(runs).toEqual(commandsOf(e.workflowId).map((text) => ({ type: 'TextRun', text, fontType: 'Monospace' })));
  expect(card.body.map((b: any) => b.text)).toContain('approval to move traffic to \\*\\*100%\\*\\*');
  expect(log.text()).not.toContain('teams-secret');
});

test('routes: approvals go to Teams only, failures to Slack and e-mail; staging routes its own way', async () => {
  const log = recordingLogger();
  const cfg = config(
    {
      slackWebhookEnv: 'SLACK_WEBHOOK_URL',
      teamsWebhookEnv: 'TEAMS_WEBHOOK_URL',
      email: plainEmail({ to: [ONCALL] }),
      routes: [
        { events: ['awaiting-approval'], channels: ['teams'] },
        { events: ['failed', 'rolled-back'], channels: ['slack', 'email'] },
      ],
    },
    { routes: [{ events: ['failed'], channels: ['teams'] }] },
  );
  const { notify } = notifyActivities({ config: cfg, env: urls(), log });

  const approval = event('awaiting-approval');
  await expect(notify(approval)).resolves.toEqual({ delivered: 1, failed: 0 });
  expect(received.map((r) => r.path)).toEqual([TEAMS_PATH]);

  const failure = event('failed', { workflowId: approval.workflowId });
  await expect(notify(failure)).resolves.toEqual({ delivered: 2, failed: 0 });
  expect(received.map((r) => r.path)).toEqual([TEAMS_PATH, SLACK_PATH]);
  // One message for this workflow: the failure's (the approval was not routed to e-mail).
  const mails = await waitForMails(smtp.maildir, approval.workflowId);
  expect(mails.map((m) => m.header('x-deployment-event'))).toEqual(['failed']);

  // A kind no route names goes nowhere.
  await expect(notify(event('started'))).resolves.toEqual({ delivered: 0, failed: 0 });

  received = [];
  await expect(notify(event('failed', { environment: 'staging' }))).resolves.toEqual({ delivered: 1, failed: 0 });
  expect(received.map((r) => r.path)).toEqual([TEAMS_PATH]);
  expect(log.text()).not.toContain('secret');
});
