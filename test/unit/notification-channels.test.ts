/**
 * E-mail and Teams formatting (escaping included), which channels get which
 * event (routes, per environment), and the config that is refused at load.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import type { NotificationEvent } from '../../src/activities/contracts';
import { parseConfig } from '../../src/domain/config';
import { environmentConfig } from '../../src/domain/environment-config';
import { emailMessage, escapeHtml, headerLine } from '../../src/domain/notification-email';
import { routedChannels } from '../../src/domain/notification-routes';
import { escapeTeamsMarkdown, teamsPayload } from '../../src/domain/notification-teams';
import { teamsBodyCheck } from '../../src/activities/notify/teams';
import { smtpRefusal } from '../../src/activities/notify/email';
import { REPO_ROOT } from '../helpers/tools';

const opts = { at: '2025-11-15T10:00:00.000Z', namespace: 'default' };
const approval: NotificationEvent = {
  kind: 'awaiting-approval',
  workflowId: 'deploy-ai-saas-1.0.1',
  project: 'ai-saas',
  environment: 'production',
  version: '1.0.1',
  text: 'approval to move traffic to 100%',
  weight: 50,
  uiUrl: 'http://127.0.0.1:8233',
};
const LINK = 'http://127.0.0.1:8233/namespaces/default/workflows/deploy-ai-saas-1.0.1';
const APPROVE = 'deployctl approve deploy-ai-saas-1.0.1 --by <name>';
const ABORT = 'deployctl abort deploy-ai-saas-1.0.1 --by <name> --reason <text>';

describe('e-mail', () => {
  test('an approval: the headline as subject, the facts, the exact commands and the link, in text and HTML', () => {
    const m = emailMessage(approval, opts);
    expect(m.subject).toBe('Deployment awaiting approval: ai-saas 1.0.1 on production');
    expect(m.text).toContain('approval to move traffic to 100%');
    expect(m.text).toContain('Canary traffic: 50%');
    expect(m.text).toContain(`    ${APPROVE}\n    ${ABORT}\n`);
    expect(m.text).toContain(`Open in Temporal UI: ${LINK}`);
    expect(m.html).toContain(`<pre><code>${escapeHtml(APPROVE)}\n${escapeHtml(ABORT)}</code></pre>`);
    expect(m.html).toContain('deployctl approve deploy-ai-saas-1.0.1 --by &lt;name&gt;');
    expect(m.html).toContain(`<a href="${LINK}">Open in Temporal UI</a>`);
  });

  test('text from outside is escaped in the HTML and cannot add a header', () => {
    const m = emailMessage(
      {
        ...approval,
        kind: 'failed',
        text: '<script>alert(1)</script> & "quoted" \'x\'',
        attention: '<b>rows differ</b>',
        version: '1.0.1\r\nBcc: someone@evil.test',
      },
      opts,
    );
    expect(m.html).not.toContain('<script>');
    expect(m.html).not.toContain('<b>rows');
    expect(m.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;quoted&quot; &#39;x&#39;');
    expect(m.subject).not.toMatch(/[\r\n]/);
    expect(m.subject).toBe('Deployment failed: ai-saas 1.0.1 Bcc: someone@evil.test on production (needs attention)');
    expect(headerLine('a\u0000b\tc')).toBe('a b c');
  });

  test('without a UI link and commands, neither appears', () => {
    const m = emailMessage({ ...approval, kind: 'succeeded', uiUrl: undefined }, opts);
    expect(m.text).not.toContain('deployctl');
    expect(m.text).not.toContain('Temporal UI');
    expect(m.html).not.toContain('<a ');
  });

  test.each([
    [{ responseCode: 451, message: '451 try later' }, true],
    [{ responseCode: 421, message: '421 closing' }, true],
    [{ responseCode: 550, message: '550 relay not permitted' }, false],
    [{ responseCode: 535, code: 'EAUTH', message: 'Invalid login: 535' }, false],
    [{ code: 'ESOCKET', message: 'connect ECONNREFUSED 127.0.0.1:1' }, true],
    [{ code: 'ETIMEDOUT', message: 'Greeting never received' }, true],
    [{ code: 'ESOCKET', message: 'self-signed certificate' }, false],
    [{ code: 'ETLS', message: 'STARTTLS failed' }, false],
  ])('SMTP failure %j is transient: %s', (err, transient) => {
    expect(smtpRefusal(err).transient).toBe(transient);
  });
});

describe('Teams', () => {
  test('an approval: an Adaptive Card 1.4 with the facts, the commands in monospace and a button to the workflow', () => {
    const msg = teamsPayload(approval, opts);
    expect(msg.type).toBe('message');
    expect(msg.attachments).toHaveLength(1);
    const [a] = msg.attachments;
    expect(a.contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(a.content).toMatchObject({
      type: 'AdaptiveCard',
      $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
      version: '1.4',
      actions: [{ type: 'Action.OpenUrl', title: 'Open in Temporal UI', url: LINK }],
    });
    const body = a.content.body;
    expect(body[0]).toMatchObject({ type: 'TextBlock', weight: 'Bolder', wrap: true });
    expect(body).toContainEqual({
      type: 'FactSet',
      facts: [
        { title: 'Project', value: 'ai-saas' },
        { title: 'Environment', value: 'production' },
        { title: 'Version', value: '1.0.1' },
        { title: 'Canary traffic', value: '50%' },
        { title: 'Workflow', value: 'deploy-ai-saas-1.0.1' },
      ],
    });
    const runs = body.filter((b) => b.type === 'RichTextBlock').flatMap((b) => b.inlines);
    expect(runs).toEqual([
      { type: 'TextRun', text: APPROVE, fontType: 'Monospace' },
      { type: 'TextRun', text: ABORT, fontType: 'Monospace' },
    ]);
  });

  test("text from outside cannot use Teams' markdown", () => {
    expect(escapeTeamsMarkdown('**bold** _it_ [x](http://evil) <at>all</at>')).toBe(
      '\\*\\*bold\\*\\* \\_it\\_ \\[x\\]\\(http://evil\\) \\<at\\>all\\</at\\>',
    );
    expect(escapeTeamsMarkdown('- item\n1. first\nversion 1.0.1')).toBe('\\- item\n\\1. first\nversion 1.0.1');
    const msg = teamsPayload({ ...approval, kind: 'failed', text: '[click](http://evil) **now**' }, opts);
    const texts = msg.attachments[0].content.body.filter((b) => b.type === 'TextBlock').map((b) => b.text);
    expect(texts).toContain('\\[click\\]\\(http://evil\\) \\*\\*now\\*\\*');
    expect(msg.attachments[0].content.body[0]).toMatchObject({ color: 'Attention' });
  });

  test('a 200 whose text says Teams refused the message is a refusal; 429 is worth a retry', () => {
    expect(teamsBodyCheck('1')).toBeUndefined();
    expect(teamsBodyCheck('')).toBeUndefined();
    expect(
      teamsBodyCheck('Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429'),
    ).toMatchObject({ transient: true });
    expect(
      teamsBodyCheck('Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 413'),
    ).toMatchObject({ transient: false });
  });
});

/** The example config, its notifications replaced, and staging's notifications given. */
function config(notifications: Record<string, unknown>, staging?: Record<string, unknown>): any {
  const r = parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8'));
  r.notifications = notifications;
  if (staging) {
    r.environments.staging = {
      namespace: 'ai-saas-staging',
      approvals: r.environments.production.approvals,
      database: { name: 'ai_saas_staging' },
      backup: { prefix: 'staging/postgres/' },
      notifications: staging,
    };
  }
  return r;
}
const load = (raw: unknown) => parseConfig(raw, 'deploy.config.yaml', {});

const EMAIL = { host: 'smtp.example.com', from: 'deploy@example.com', to: ['oncall@example.com'] };
const ALL = {
  slackWebhookEnv: 'SLACK_WEBHOOK_URL',
  webhookEnv: 'DEPLOY_WEBHOOK_URL',
  teamsWebhookEnv: 'TEAMS_URL',
  email: EMAIL,
};

describe('routes', () => {
  test('without routes every configured channel gets every event', () => {
    const c = load(config({ slackWebhookEnv: 'SLACK_WEBHOOK_URL', email: EMAIL }));
    expect(routedChannels('started', c.notifications)).toEqual(['slack', 'email']);
    expect(routedChannels('failed', c.notifications)).toEqual(['slack', 'email']);
  });

  test('with routes, each kind goes to the channels of the routes that name it, and nowhere else', () => {
    const c = load(
      config({
        ...ALL,
        routes: [
          { events: ['awaiting-approval'], channels: ['slack'] },
          { events: ['failed', 'rolled-back'], channels: ['slack', 'email'] },
          { events: ['rolled-back'], channels: ['teams', 'email'] },
        ],
      }),
    );
    expect(routedChannels('awaiting-approval', c.notifications)).toEqual(['slack']);
    expect(routedChannels('failed', c.notifications)).toEqual(['slack', 'email']);
    expect(routedChannels('rolled-back', c.notifications)).toEqual(['slack', 'teams', 'email']);
    expect(routedChannels('started', c.notifications)).toEqual([]);
  });

  test('an environment routes differently; the others keep the top-level routes', () => {
    const top = { ...ALL, routes: [{ events: ['failed'], channels: ['slack'] }] };
    const c = load(config(top, { routes: [{ events: ['failed'], channels: ['webhook'] }] }));
    expect(routedChannels('failed', environmentConfig(c, 'staging').notifications)).toEqual(['webhook']);
    expect(routedChannels('failed', environmentConfig(c, 'production').notifications)).toEqual(['slack']);
    // The rest of the section stays the top level's.
    expect(environmentConfig(c, 'staging').notifications.email).toEqual(c.notifications.email);
  });

  test('an environment may configure a channel of its own and route to it', () => {
    const c = load(
      config(
        { slackWebhookEnv: 'SLACK_WEBHOOK_URL' },
        { teamsWebhookEnv: 'TEAMS_STAGING_URL', routes: [{ events: ['failed'], channels: ['teams'] }] },
      ),
    );
    expect(routedChannels('failed', environmentConfig(c, 'staging').notifications)).toEqual(['teams']);
    expect(routedChannels('failed', c.notifications)).toEqual(['slack']);
  });
});

describe('refused at load, with one line naming the field', () => {
  test.each([
    [
      'a route to a channel that is not configured',
      config({ slackWebhookEnv: 'SLACK_WEBHOOK_URL', routes: [{ events: ['failed'], channels: ['slack', 'email'] }] }),
      'deploy.config.yaml: notifications.routes.0.channels.1: channel email is not configured here (notifications.email is not set; configured: slack)',
    ],
    [
      'an unknown event kind',
      config({ slackWebhookEnv: 'SLACK_WEBHOOK_URL', routes: [{ events: ['exploded'], channels: ['slack'] }] }),
      'deploy.config.yaml: notifications.routes.0.events.0: an event kind: started, awaiting-approval, step-promoted, failed, rolled-back, succeeded, aborted',
    ],
    [
      'an unknown channel',
      config({ slackWebhookEnv: 'SLACK_WEBHOOK_URL', routes: [{ events: ['failed'], channels: ['pager'] }] }),
      'deploy.config.yaml: notifications.routes.0.channels.0: a channel: slack, webhook, teams, email',
    ],
    [
      "an environment's route to a channel configured nowhere",
      config({ slackWebhookEnv: 'SLACK_WEBHOOK_URL' }, { routes: [{ events: ['failed'], channels: ['teams'] }] }),
      'deploy.config.yaml: environments.staging.notifications.routes.0.channels.0: channel teams is not configured here (notifications.teamsWebhookEnv is not set; configured: slack)',
    ],
    [
      'a password that could cross the network in clear',
      config({ email: { ...EMAIL, usernameEnv: 'SMTP_USERNAME', passwordEnv: 'SMTP_PASSWORD' } }),
      'deploy.config.yaml: notifications.email.passwordEnv: a password needs secure: true or requireTLS: true, or it could cross the network in clear',
    ],
    [
      'a password without a user name',
      config({ email: { ...EMAIL, secure: true, passwordEnv: 'SMTP_PASSWORD' } }),
      'deploy.config.yaml: notifications.email.passwordEnv: give both usernameEnv and passwordEnv, or neither',
    ],
    [
      'a password written in the file',
      config({ email: { ...EMAIL, secure: true, password: 'hunter22' } }),
      'deploy.config.yaml: notifications.email: Unrecognized key: "password"',
    ],
    [
      'a recipient that is not an address',
      config({ email: { ...EMAIL, to: ['oncall@example.com\r\nBcc: x@evil.test'] } }),
      'deploy.config.yaml: notifications.email.to.0: an e-mail address such as oncall@example.com',
    ],
  ])('%s', (_what, raw, message) => {
    expect(() => load(raw)).toThrow(message);
  });
});
