/** A generic JSON webhook: one document per event, `type: deployment.<kind>`, for any receiver. */
import { webhookPayload } from '../../domain/notification';
import type { ChannelFactory } from './channel';
import { jsonDelivery, webhookUrl } from './http';

export const webhookChannel: ChannelFactory = ({ settings, env }) => {
  const url = webhookUrl(env, settings.webhookEnv);
  if (!url) return undefined;
  return {
    name: 'webhook',
    secrets: [url],
    prepare: (event, opts) => jsonDelivery(url, webhookPayload(event, opts), settings.timeout),
  };
};
