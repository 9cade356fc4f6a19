import type { NotificationEvent } from '../../src/activities/contracts';
import {
  approvalCommands,
  commandsFor,
  escapeMrkdwn,
  headline,
  slackPayload,
  webhookPayload,
  workflowUrl,
} from '../../src/domain/notification';

const opts = { at: '2025-11-15T10:00:00.000Z', namespace: 'default' };
const base: NotificationEvent = {
  kind: 'started',
  workflowId: 'deploy-ai-saas-1.0.1',
  project: 'ai-saas',
  environment: 'production',
  version: '1.0.1',
  text: 'deploying 1.0.1',
  uiUrl: 'http://127.0.0.1:8233',
};

test('the Temporal UI link points at the workflow', () => {
  expect(workflowUrl('http://127.0.0.1:8233/', 'default', 'deploy ai/1')).toBe(
    'http://127.0.0.1:8233/namespaces/default/workflows/deploy%20ai%2F1',
  );
  expect(workflowUrl('http://ui/namespaces/x/workflows/abc', 'default', 'other')).toBe(
    'http://ui/namespaces/x/workflows/abc',
  );
  expect(workflowUrl(undefined, 'default', 'x')).toBeUndefined();
});

test('an approval gate carries the exact approve / abort commands and the workflow link', () => {
  const e: NotificationEvent = {
    ...base,
    kind: 'awaiting-approval',
    text: 'approval to move traffic to 100%',
    weight: 50,
  };
  const slack = slackPayload(e, opts);
  expect(slack.text).toContain('deployctl approve deploy-ai-saas-1.0.1 --by <name>');
  expect(slack.text).toContain('deployctl abort deploy-ai-saas-1.0.1 --by <name> --reason <text>');
  expect(slack.text).toContain('http://127.0.0.1:8233/namespaces/default/workflows/deploy-ai-saas-1.0.1');
  expect(JSON.stringify(slack.blocks)).toContain('Open in Temporal UI');
  expect(JSON.stringify(slack.blocks)).toContain('*Canary traffic*\\n50%');
  const hook = webhookPayload(e, opts);
  expect(hook).toMatchObject({
    type: 'deployment.awaiting-approval',
    kind: 'awaiting-approval',
    at: opts.at,
    workflowId: 'deploy-ai-saas-1.0.1',
    weight: 50,
    commands: approvalCommands('deploy-ai-saas-1.0.1'),
    workflowUrl: 'http://127.0.0.1:8233/namespaces/default/workflows/deploy-ai-saas-1.0.1',
  });
});

test("the event's own commands win over the default pair", () => {
  expect(commandsFor({ ...base, kind: 'awaiting-approval', commands: ['deployctl approve x --by <name>'] })).toEqual([
    'deployctl approve x --by <name>',
  ]);
  expect(commandsFor(base)).toEqual([]);
});

test.each([
  ['started', 'Deployment started'],
  ['step-promoted', 'Canary step promoted'],
  ['failed', 'Deployment failed'],
  ['rolled-back', 'Deployment rolled back'],
  ['succeeded', 'Deployment succeeded'],
  ['aborted', 'Deployment aborted'],
] as const)('%s has its own headline', (kind, title) => {
  expect(headline({ ...base, kind })).toBe(`${title}: ai-saas 1.0.1 on production`);
  expect(slackPayload({ ...base, kind }, opts).text.split('\n')[0]).toContain(title);
  expect(webhookPayload({ ...base, kind }, opts).type).toBe(`deployment.${kind}`);
});

test('text from outside cannot inject Slack markup', () => {
  expect(escapeMrkdwn('<!channel> & <http://evil|click>')).toBe('&lt;!channel&gt; &amp; &lt;http://evil|click&gt;');
  const slack = slackPayload({ ...base, text: '<!channel> failed' }, opts);
  expect(JSON.stringify(slack.blocks)).not.toContain('<!channel>');
});

test('optional fields stay out of the generic payload when absent', () => {
  const hook = webhookPayload(
    { kind: 'failed', workflowId: 'w', environment: 'prod', version: '2.0.0', text: 'boom' },
    opts,
  );
  expect(hook).toEqual({
    type: 'deployment.failed',
    kind: 'failed',
    at: opts.at,
    workflowId: 'w',
    environment: 'prod',
    version: '2.0.0',
    text: 'boom',
    headline: 'Deployment failed: 2.0.0 on prod',
  });
});

test('issue 16 item 8: what a person must check is in the headline, a Slack block of its own and the generic payload', () => {
  const attention =
    "database restored from postgres/ai_saas_prod_1.0.1_1.dump; row counts differ from the backup's: users 1000 → 998; check before reopening traffic";
  const event: NotificationEvent = { ...base, kind: 'rolled-back', text: `rollback: ${attention}`, attention };
  expect(headline(event)).toMatch(/^Deployment rolled back: .* \(needs attention\)$/);
  const slack = slackPayload(event, opts);
  expect(slack.text).toContain(`:warning: Needs attention: ${attention}`);
  expect(slack.blocks).toContainEqual({
    type: 'section',
    text: { type: 'mrkdwn', text: `:warning: *Needs attention*\n${attention}` },
  });
  expect(webhookPayload(event, opts)).toMatchObject({ kind: 'rolled-back', attention });
  expect(webhookPayload(base, opts)).not.toHaveProperty('attention');
});
