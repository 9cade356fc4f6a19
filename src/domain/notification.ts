/**
 * Deployment notifications as people read them (runbook "On-Call Runbook /
 * Notify Team"): a Slack-compatible incoming-webhook payload and a generic
 * JSON document for other receivers, and what every channel shows alike
 * (headline, facts, commands, link); e-mail and Teams are formatted in
 * notification-email.ts and notification-teams.ts. Pure: the notify activity
 * only sends what these functions return.
 */
import { shellCommand } from './shell';

/** Every kind of event the workflows send; routes (domain/notification-routes.ts) name these. */
export const NOTIFICATION_KINDS = [
  'started',
  'awaiting-approval',
  'step-promoted',
  'failed',
  'rolled-back',
  'succeeded',
  'aborted',
  // A stop-the-line freeze of an environment, and its end (deployctl freeze / unfreeze).
  'frozen',
  'unfrozen',
] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

export interface NotificationEvent {
  kind: NotificationKind;
  workflowId: string;
  project?: string;
  environment: string;
  version: string;
  text: string;
  weight?: number;
  /** Exact commands a person can run (approve / abort). */
  commands?: string[];
  uiUrl?: string;
  /**
   * What a person must check although the workflow ended as it says, e.g. a
   * database that was restored but whose row counts differ from the backup's.
   */
  attention?: string;
}

export interface SlackPayload {
  text: string;
  blocks?: SlackBlock[];
}

export type SlackBlock =
  | { type: 'header'; text: { type: 'plain_text'; text: string } }
  | { type: 'section'; text?: { type: 'mrkdwn'; text: string }; fields?: { type: 'mrkdwn'; text: string }[] }
  | { type: 'context'; elements: { type: 'mrkdwn'; text: string }[] }
  | { type: 'actions'; elements: { type: 'button'; text: { type: 'plain_text'; text: string }; url: string }[] };

/** What a generic webhook receives: the event plus a stable type and the workflow link. */
export interface WebhookPayload {
  type: `deployment.${NotificationKind}`;
  kind: NotificationKind;
  at: string;
  workflowId: string;
  project?: string;
  environment: string;
  version: string;
  text: string;
  headline: string;
  weight?: number;
  commands?: string[];
  workflowUrl?: string;
  attention?: string;
}

export interface FormatOptions {
  /** When the notification is sent (ISO). */
  at: string;
  /** Temporal namespace of the workflow, for the UI link. */
  namespace: string;
}

const TITLES: Record<NotificationKind, { emoji: string; title: string }> = {
  started: { emoji: ':rocket:', title: 'Deployment started' },
  'awaiting-approval': { emoji: ':raised_hand:', title: 'Deployment awaiting approval' },
  'step-promoted': { emoji: ':arrow_up:', title: 'Canary step promoted' },
  failed: { emoji: ':x:', title: 'Deployment failed' },
  'rolled-back': { emoji: ':rewind:', title: 'Deployment rolled back' },
  succeeded: { emoji: ':white_check_mark:', title: 'Deployment succeeded' },
  aborted: { emoji: ':octagonal_sign:', title: 'Deployment aborted' },
  frozen: { emoji: ':ice_cube:', title: 'Environment frozen' },
  unfrozen: { emoji: ':arrow_forward:', title: 'Environment unfrozen' },
};

/** Kinds about an environment rather than a version of the project. */
const ENVIRONMENT_KINDS: readonly NotificationKind[] = ['frozen', 'unfrozen'];

/**
 * The link to the workflow in the Temporal UI. `uiUrl` is the UI's base
 * (config temporal.uiUrl); a link that already points at a workflow is kept.
 */
export function workflowUrl(uiUrl: string | undefined, namespace: string, workflowId: string): string | undefined {
  if (!uiUrl) return undefined;
  if (/\/workflows\/[^/]/.test(uiUrl)) return uiUrl;
  return `${uiUrl.replace(/\/+$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/**
 * The commands that answer an approval gate, as the gates put them in their
 * status: shell-quoted, with `<name>` and `<text>` left for the person to fill in.
 */
export function approvalCommands(workflowId: string): string[] {
  return [
    `${shellCommand(['deployctl', 'approve', workflowId, '--by'])} <name>`,
    `${shellCommand(['deployctl', 'abort', workflowId, '--by'])} <name> --reason <text>`,
  ];
}

/** Commands to show: the event's own, or for an approval gate the standard approve / abort pair. */
export function commandsFor(event: NotificationEvent): string[] {
  if (event.commands && event.commands.length > 0) return event.commands;
  return event.kind === 'awaiting-approval' ? approvalCommands(event.workflowId) : [];
}

export function headline(event: NotificationEvent): string {
  const { title } = TITLES[event.kind];
  if (ENVIRONMENT_KINDS.includes(event.kind)) return `${title}: ${event.environment}`;
  const who = event.project ? `${event.project} ${event.version}` : event.version;
  return `${title}: ${who} on ${event.environment}${event.attention ? ' (needs attention)' : ''}`;
}

/** Slack mrkdwn treats &, < and > as markup; everything we did not write is escaped. */
export function escapeMrkdwn(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** What every channel lists about the deployment, as label and value, in this order. */
export function eventFacts(event: NotificationEvent): { label: string; value: string }[] {
  return [
    ...(event.project ? [{ label: 'Project', value: event.project }] : []),
    { label: 'Environment', value: event.environment },
    ...(event.version ? [{ label: 'Version', value: event.version }] : []),
    ...(event.weight !== undefined ? [{ label: 'Canary traffic', value: `${event.weight}%` }] : []),
    { label: 'Workflow', value: event.workflowId },
  ];
}

export function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

export function slackPayload(event: NotificationEvent, opts: FormatOptions): SlackPayload {
  const { emoji } = TITLES[event.kind];
  const head = headline(event);
  const link = workflowUrl(event.uiUrl, opts.namespace, event.workflowId);
  const commands = commandsFor(event);

  // The fallback text carries everything a person needs when blocks are not shown.
  // Escaped as well: Slack renders <!channel> in the fallback text of push notifications too.
  const textLines = [`${emoji} ${escapeMrkdwn(head)}`, escapeMrkdwn(event.text)];
  if (event.attention) textLines.push(`:warning: Needs attention: ${escapeMrkdwn(event.attention)}`);
  if (commands.length > 0) textLines.push(...commands);
  if (link) textLines.push(link);

  const fields = [
    ...(event.project ? [{ type: 'mrkdwn' as const, text: `*Project*\n${escapeMrkdwn(event.project)}` }] : []),
    { type: 'mrkdwn' as const, text: `*Environment*\n${escapeMrkdwn(event.environment)}` },
    { type: 'mrkdwn' as const, text: `*Version*\n${escapeMrkdwn(event.version)}` },
    ...(event.weight !== undefined ? [{ type: 'mrkdwn' as const, text: `*Canary traffic*\n${event.weight}%` }] : []),
  ];
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(head, 150) } },
    { type: 'section', text: { type: 'mrkdwn', text: clip(`${emoji} ${escapeMrkdwn(event.text)}`, 3000) }, fields },
  ];
  if (event.attention) {
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: clip(`:warning: *Needs attention*\n${escapeMrkdwn(event.attention)}`, 3000) },
    });
  }
  if (commands.length > 0) {
    // Inside a code block Slack shows the text literally, so <name> needs no markup.
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: clip(`*Commands*\n\`\`\`${commands.join('\n')}\`\`\``, 3000) },
    });
  }
  if (link)
    blocks.push({
      type: 'actions',
      elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open in Temporal UI' }, url: link }],
    });
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: `workflow \`${escapeMrkdwn(event.workflowId)}\` · ${opts.at}` }],
  });
  return { text: textLines.join('\n'), blocks };
}

export function webhookPayload(event: NotificationEvent, opts: FormatOptions): WebhookPayload {
  const link = workflowUrl(event.uiUrl, opts.namespace, event.workflowId);
  const commands = commandsFor(event);
  return {
    type: `deployment.${event.kind}`,
    kind: event.kind,
    at: opts.at,
    workflowId: event.workflowId,
    ...(event.project ? { project: event.project } : {}),
    environment: event.environment,
    version: event.version,
    text: event.text,
    headline: headline(event),
    ...(event.weight !== undefined ? { weight: event.weight } : {}),
    ...(commands.length > 0 ? { commands } : {}),
    ...(link ? { workflowUrl: link } : {}),
    ...(event.attention ? { attention: event.attention } : {}),
  };
}
