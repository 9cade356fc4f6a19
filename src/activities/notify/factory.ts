/**
 * The one place that maps a channel name (domain/notification-routes.ts
 * NOTIFICATION_CHANNELS, which the config schema uses) to its
 * implementation. Adding a channel: its file, one line here, its name there,
 * its settings in domain/config-notifications.ts, and its tests.
 */
import type { NotificationChannelName } from '../../domain/notification-routes';
import type { ChannelFactory } from './channel';
import { emailChannel } from './email';
import { slackChannel } from './slack';
import { teamsChannel } from './teams';
import { webhookChannel } from './webhook';

/** One factory per declared channel: the type refuses a name without one. */
export const NOTIFICATION_CHANNEL_FACTORIES: Readonly<Record<NotificationChannelName, ChannelFactory>> = {
  slack: slackChannel,
  webhook: webhookChannel,
  teams: teamsChannel,
  email: emailChannel,
};
