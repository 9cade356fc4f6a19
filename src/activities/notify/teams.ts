/**
 * Microsoft Teams incoming webhooks (a Workflows webhook or a channel
 * connector): a message with an Adaptive Card (domain/notification-teams.ts).
 */
import { teamsPayload } from '../../domain/notification-teams';
import type { ChannelFactory } from './channel';
import { jsonDelivery, webhookUrl, type BodyCheck } from './http';

/**
 * Teams' connectors answer 200 with an error text when Teams itself refused
 * the message ("Webhook message delivery failed with error: Microsoft Teams
 * endpoint returned HTTP error 429 ..."): that is a refusal, retried when
 * Teams was only busy.
 */
export const teamsBodyCheck: BodyCheck = (text) => {
  if (!/delivery failed|returned HTTP error/i.test(text)) return undefined;
  const status = /HTTP error (\d{3})/i.exec(text)?.[1];
  return { error: `Teams: ${text}`, transient: status === undefined || status === '429' || status.startsWith('5') };
};

export const teamsChannel: ChannelFactory = ({ settings, env }) => {
  const url = webhookUrl(env, settings.teamsWebhookEnv);
  if (!url) return undefined;
  return {
    name: 'teams',
    secrets: [url],
    prepare: (event, opts) => jsonDelivery(url, teamsPayload(event, opts), settings.timeout, teamsBodyCheck),
  };
};
