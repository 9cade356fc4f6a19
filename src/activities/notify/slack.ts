/** Slack (and Slack-compatible, e.g. Mattermost) incoming webhooks: Block Kit with a plain-text fallback. */
import { slackPayload } from '../../domain/notification';
import type { ChannelFactory } from './channel';
import { jsonDelivery, webhookUrl } from './http';

export const slackChannel: ChannelFactory = ({ settings, env }) => {
  const url = webhookUrl(env, settings.slackWebhookEnv);
  if (!url) return undefined;
  return {
    name: 'slack',
    secrets: [url],
    prepare: (event, opts) => jsonDelivery(url, slackPayload(event, opts), settings.timeout),
  };
};
