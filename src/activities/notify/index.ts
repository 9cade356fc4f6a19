/**
 * Notifications (runbook "On-Call Runbook / Notify Team"): Slack, a generic
 * JSON webhook, Microsoft Teams and e-mail over SMTP, each a channel
 * (channel.ts, factory.ts), and which kinds of event go to which channels
 * (notifications.routes, per environment). Best effort by design: a failing
 * receiver never fails a deployment, so notify catches everything, logs it
 * and returns counts; it never throws. Webhook URLs and the SMTP password are
 * secrets: they are read from the environment variables the config names and
 * never logged or returned.
 */
import type { DeployConfig } from '../../domain/config';
import { environmentConfig } from '../../domain/environment-config';
import { NOTIFICATION_KINDS } from '../../domain/notification';
import { configuredChannels, routedChannels } from '../../domain/notification-routes';
import { redact } from '../../domain/verification';
import type { NotificationEvent, NotificationResult } from '../contracts';
import { activityLogger, type Logger } from '../runtime';
import type { Delivery, NotificationChannel } from './channel';
import { NOTIFICATION_CHANNEL_FACTORIES } from './factory';
import { deliver } from './retry';

export interface NotifyDeps {
  config: DeployConfig;
  /** The worker's environment, holding the webhook URLs and the SMTP password. */
  env: Record<string, string | undefined>;
  log?: Logger;
  now?: () => Date;
}

export function notifyActivities(deps: NotifyDeps) {
  const { config, env } = deps;
  const log = deps.log ?? activityLogger();
  const now = deps.now ?? (() => new Date());

  /** The settings of the event's environment: it may route, or configure channels, differently. */
  function settingsOf(event: NotificationEvent) {
    const name = event?.environment;
    return typeof name === 'string' && Object.hasOwn(config.environments, name)
      ? environmentConfig(config, name).notifications
      : config.notifications;
  }

  async function notify(event: NotificationEvent): Promise<NotificationResult> {
    const n = settingsOf(event);
    // The channels this worker can reach: configured, and their variables set.
    const active = configuredChannels(n)
      .map((name) => NOTIFICATION_CHANNEL_FACTORIES[name]({ settings: n, env }))
      .filter((c): c is NotificationChannel => c !== undefined);
    const secrets = active.flatMap((c) => c.secrets);
    let deliveries: { channel: string; delivery: Delivery }[];
    try {
      if (!(NOTIFICATION_KINDS as readonly string[]).includes(event.kind))
        throw new Error(`unknown kind of event ${JSON.stringify(event.kind)}`);
      const opts = { at: now().toISOString(), namespace: n.temporalNamespace };
      const routed = routedChannels(event.kind, n);
      deliveries = active
        .filter((c) => routed.includes(c.name))
        .map((c) => ({ channel: c.name, delivery: c.prepare(event, opts) }));
    } catch (err) {
      // A malformed event still must not fail the deployment: count it against every reachable receiver.
      log.warn('notification could not be formatted', {
        kind: String(event?.kind),
        error: redact(err instanceof Error ? err.message : String(err), secrets),
      });
      return { delivered: 0, failed: Math.max(1, active.length) };
    }
    if (deliveries.length === 0) {
      log.info(active.length > 0 ? 'notification routed to no channel' : 'no notification receivers configured', {
        kind: event.kind,
      });
      return { delivered: 0, failed: 0 };
    }
    const outcomes = await Promise.all(
      deliveries.map(async (d) => ({ channel: d.channel, ...(await deliver(d.delivery, n.retryFor)) })),
    );
    let delivered = 0;
    let failed = 0;
    for (const o of outcomes) {
      if (o.error === undefined) {
        delivered++;
        log.info('notification delivered', {
          channel: o.channel,
          kind: event.kind,
          workflowId: event.workflowId,
          attempts: o.attempts,
        });
      } else {
        failed++;
        log.warn('notification not delivered', {
          channel: o.channel,
          kind: event.kind,
          workflowId: event.workflowId,
          attempts: o.attempts,
          error: redact(o.error, secrets),
        });
      }
    }
    return { delivered, failed };
  }

  return { notify };
}

export type NotifyActivities = ReturnType<typeof notifyActivities>;
