/**
 * Which channels get which kinds of event (config `notifications.routes`,
 * overridable per environment). Without routes every configured channel gets
 * every event, as before routes existed, so a config that names none keeps
 * working unchanged. Pure: the config schema uses routeProblems at load, the
 * notify activity routedChannels at send time.
 */
import { NOTIFICATION_KINDS, type NotificationKind } from './notification';

/** The channels a deployment can notify; the notify activity has one implementation each (activities/notify/). */
export const NOTIFICATION_CHANNELS = ['slack', 'webhook', 'teams', 'email'] as const;
export type NotificationChannelName = (typeof NOTIFICATION_CHANNELS)[number];

export interface NotificationRoute {
  events: readonly NotificationKind[];
  channels: readonly NotificationChannelName[];
}

/** What routing needs of the `notifications` section: which channels it configures, and its routes. */
export interface ChannelSettings {
  slackWebhookEnv?: string | undefined;
  webhookEnv?: string | undefined;
  teamsWebhookEnv?: string | undefined;
  email?: unknown;
  routes?: readonly NotificationRoute[] | undefined;
}

/** The channels the section configures (a variable named, an email server given), in NOTIFICATION_CHANNELS order. */
export function configuredChannels(n: ChannelSettings): NotificationChannelName[] {
  const set: Record<NotificationChannelName, boolean> = {
    slack: !!n.slackWebhookEnv,
    webhook: !!n.webhookEnv,
    teams: !!n.teamsWebhookEnv,
    email: n.email !== undefined,
  };
  return NOTIFICATION_CHANNELS.filter((c) => set[c]);
}

/**
 * The channels an event of `kind` goes to: without routes every configured
 * channel; with routes the configured channels of every route naming the
 * kind (none when no route names it), each once, in NOTIFICATION_CHANNELS order.
 */
export function routedChannels(kind: NotificationKind, n: ChannelSettings): NotificationChannelName[] {
  const configured = configuredChannels(n);
  if (!n.routes) return configured;
  const wanted = new Set(n.routes.filter((r) => r.events.includes(kind)).flatMap((r) => r.channels));
  return configured.filter((c) => wanted.has(c));
}

export interface RouteProblem {
  path: (string | number)[];
  message: string;
}

/**
 * Routes that could never deliver: a channel the section does not configure
 * (a typo, or a channel set up in another environment only). Event kinds and
 * channel names are checked by the schema's enums.
 */
export function routeProblems(n: ChannelSettings): RouteProblem[] {
  const configured = configuredChannels(n);
  const problems: RouteProblem[] = [];
  for (const [i, route] of (n.routes ?? []).entries()) {
    for (const [j, channel] of route.channels.entries()) {
      if (!configured.includes(channel))
        problems.push({
          path: ['routes', i, 'channels', j],
          message: `channel ${channel} is not configured here (${CHANNEL_SETTING[channel]} is not set; configured: ${configured.join(', ') || 'none'})`,
        });
    }
  }
  return problems;
}

/** The field that configures each channel, for the messages. */
const CHANNEL_SETTING: Record<NotificationChannelName, string> = {
  slack: 'notifications.slackWebhookEnv',
  webhook: 'notifications.webhookEnv',
  teams: 'notifications.teamsWebhookEnv',
  email: 'notifications.email',
};

/** The kinds, for the schema's message. */
export const KIND_LIST = NOTIFICATION_KINDS.join(', ');
