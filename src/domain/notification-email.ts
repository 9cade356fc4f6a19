/**
 * A deployment notification as an e-mail: the headline as subject, a
 * plain-text body for every mail reader and the same content as HTML.
 * Everything in the HTML that we did not write is escaped (the event's text
 * comes from failures and people); the subject is one line, so nothing in it
 * can start another header.
 */
import {
  commandsFor,
  eventFacts,
  headline,
  workflowUrl,
  type FormatOptions,
  type NotificationEvent,
} from './notification';

export interface EmailMessage {
  subject: string;
  text: string;
  html: string;
}

/** The five characters that mean something in HTML text and attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** One header line: control characters (CR and LF above all) become spaces, at most 250 characters. */
export function headerLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  const line = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return line.length > 250 ? `${line.slice(0, 247)}...` : line;
}

const COMMANDS_INTRO = 'To answer, run one of these commands (fill in <name> and <text>):';

export function emailMessage(event: NotificationEvent, opts: FormatOptions): EmailMessage {
  const head = headline(event);
  const link = workflowUrl(event.uiUrl, opts.namespace, event.workflowId);
  const commands = commandsFor(event);
  const facts = eventFacts(event);

  const text = [head, '', event.text];
  if (event.attention) text.push('', `Needs attention: ${event.attention}`);
  text.push('', ...facts.map((f) => `${f.label}: ${f.value}`), `At: ${opts.at}`);
  if (commands.length > 0) text.push('', COMMANDS_INTRO, '', ...commands.map((c) => `    ${c}`));
  if (link) text.push('', `Open in Temporal UI: ${link}`);

  const e = escapeHtml;
  const html = [
    '<!DOCTYPE html>',
    '<html><body style="font-family: sans-serif">',
    `<h2>${e(head)}</h2>`,
    `<p style="white-space: pre-wrap">${e(event.text)}</p>`,
    ...(event.attention ? [`<p><strong>Needs attention:</strong> ${e(event.attention)}</p>`] : []),
    '<table>',
    ...facts.map((f) => `<tr><th align="left">${e(f.label)}</th><td>${e(f.value)}</td></tr>`),
    `<tr><th align="left">At</th><td>${e(opts.at)}</td></tr>`,
    '</table>',
    ...(commands.length > 0
      ? [`<p>${e(COMMANDS_INTRO)}</p>`, `<pre><code>${commands.map(e).join('\n')}</code></pre>`]
      : []),
    ...(link ? [`<p><a href="${e(link)}">Open in Temporal UI</a></p>`] : []),
    '</body></html>',
  ].join('\n');

  return { subject: headerLine(head), text: text.join('\n') + '\n', html: html + '\n' };
}
