/**
 * A deployment notification for a Microsoft Teams incoming webhook: a
 * message whose one attachment is an Adaptive Card (schema version 1.4):
 * the headline, the event's text, its facts, the commands that answer an
 * approval, and a button to the workflow. TextBlock and FactSet text is
 * Teams' markdown subset, so whatever we did not write is escaped; the
 * commands are TextRuns (plain text, never markdown) in monospace, so they
 * read exactly as a person must type them.
 */
import {
  clip,
  commandsFor,
  eventFacts,
  headline,
  workflowUrl,
  type FormatOptions,
  type NotificationEvent,
} from './notification';

export const ADAPTIVE_CARD_CONTENT_TYPE = 'application/vnd.microsoft.card.adaptive';
export const ADAPTIVE_CARD_SCHEMA = 'http://adaptivecards.io/schemas/adaptive-card.json';

export type CardElement =
  | {
      type: 'TextBlock';
      text: string;
      wrap: true;
      weight?: 'Bolder';
      size?: 'Small' | 'Medium' | 'Large';
      style?: 'heading';
      color?: 'Warning' | 'Attention';
      isSubtle?: boolean;
    }
  | { type: 'FactSet'; facts: { title: string; value: string }[] }
  | { type: 'RichTextBlock'; inlines: { type: 'TextRun'; text: string; fontType: 'Monospace' }[] };

export interface AdaptiveCard {
  type: 'AdaptiveCard';
  $schema: typeof ADAPTIVE_CARD_SCHEMA;
  version: '1.4';
  body: CardElement[];
  actions?: { type: 'Action.OpenUrl'; title: string; url: string }[];
}

export interface TeamsMessage {
  type: 'message';
  attachments: [{ contentType: typeof ADAPTIVE_CARD_CONTENT_TYPE; contentUrl: null; content: AdaptiveCard }];
}

/**
 * Teams renders bold, italic, lists and links in TextBlocks: the characters
 * that start them are backslash-escaped (CommonMark escapes), and so is a
 * list or heading marker at the start of a line.
 */
export function escapeTeamsMarkdown(text: string): string {
  return text
    .replace(/[\\`*_~[\]()<>|#]/g, '\\$&')
    .replace(/^(\s*)([-+]|\d+\.)(?=\s)/gm, (_m, space: string, marker: string) => `${space}\\${marker}`);
}

const text = (t: string, extra: Partial<Extract<CardElement, { type: 'TextBlock' }>> = {}): CardElement => ({
  type: 'TextBlock',
  text: t,
  wrap: true,
  ...extra,
});

export function teamsPayload(event: NotificationEvent, opts: FormatOptions): TeamsMessage {
  const esc = escapeTeamsMarkdown;
  const link = workflowUrl(event.uiUrl, opts.namespace, event.workflowId);
  const commands = commandsFor(event);
  const failing = event.kind === 'failed' || event.kind === 'rolled-back' || event.kind === 'aborted';
  const body: CardElement[] = [
    text(esc(headline(event)), {
      weight: 'Bolder',
      size: 'Medium',
      style: 'heading',
      ...(failing ? { color: 'Attention' as const } : {}),
    }),
    text(clip(esc(event.text), 4000)),
  ];
  if (event.attention)
    body.push(text(`**Needs attention:** ${clip(esc(event.attention), 4000)}`, { color: 'Warning' }));
  body.push({ type: 'FactSet', facts: eventFacts(event).map((f) => ({ title: esc(f.label), value: esc(f.value) })) });
  if (commands.length > 0) {
    body.push(text('**To answer, run one of:**'));
    // One RichTextBlock per command: each is its own line to copy.
    for (const c of commands)
      body.push({ type: 'RichTextBlock', inlines: [{ type: 'TextRun', text: c, fontType: 'Monospace' }] });
  }
  body.push(text(esc(opts.at), { isSubtle: true, size: 'Small' }));
  const card: AdaptiveCard = {
    type: 'AdaptiveCard',
    $schema: ADAPTIVE_CARD_SCHEMA,
    version: '1.4',
    body,
    ...(link ? { actions: [{ type: 'Action.OpenUrl' as const, title: 'Open in Temporal UI', url: link }] } : {}),
  };
  return {
    type: 'message',
    attachments: [{ contentType: ADAPTIVE_CARD_CONTENT_TYPE, contentUrl: null, content: card }],
  };
}
