/**
 * The one small interface every notification channel implements (Slack, the
 * generic webhook, Teams, e-mail), so that the notify activity routes, sends,
 * retries and counts alike whatever the receiver. One file per channel, one
 * factory map (factory.ts), in the style of the traffic and metrics providers.
 */
import type { NotificationsConfig } from '../../domain/config-notifications';
import type { FormatOptions, NotificationEvent } from '../../domain/notification';
import type { NotificationChannelName } from '../../domain/notification-routes';

/** Why a receiver did not take a notification. */
export interface Refusal {
  /** Without any secret: it is logged (after redaction, to be sure). */
  error: string;
  /** Worth another try: unreachable, no answer, busy (HTTP 429/5xx, SMTP 4xx). */
  transient: boolean;
}

/** One event on its way to one receiver. */
export interface Delivery {
  /** One try; resolves with why the receiver did not take it (undefined: taken), never rejects. */
  attempt(): Promise<Refusal | undefined>;
}

export interface NotificationChannel {
  name: NotificationChannelName;
  /** The values it holds that must never reach a log line (webhook URLs, the SMTP password). */
  secrets: string[];
  /** The event formatted for this receiver; throws on an event that cannot be formatted. */
  prepare(event: NotificationEvent, opts: FormatOptions): Delivery;
}

export interface ChannelContext {
  /** The environment's `notifications` section. */
  settings: NotificationsConfig;
  /** The worker's environment, holding the URLs and the password the settings name. */
  env: Record<string, string | undefined>;
}

/** The channel, or undefined when the variable holding its URL is not set on this worker (as before: nothing to send to). */
export type ChannelFactory = (ctx: ChannelContext) => NotificationChannel | undefined;
