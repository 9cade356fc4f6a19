/**
 * Notifications (runbook "On-Call Runbook / Notify Team"): a Slack-compatible
 * incoming webhook and a generic JSON webhook. Best effort by design: a
 * failing receiver never fails a deployment, so notify catches everything,
 * logs it and returns counts; it never throws. Webhook URLs are secrets (they
 * carry the credential in the path): they are read from the environment
 * variables the config names and never logged or returned.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeployConfig } from '../domain/config';
import { slackPayload, webhookPayload } from '../domain/notification';
import { redact } from '../domain/verification';
import type { NotificationEvent, NotificationResult } from './contracts';
import { describeFetchError } from './clients/http';
import { activityLogger, type Logger } from './runtime';

export interface NotifyDeps {
  config: DeployConfig;
  /** The worker's environment, holding the webhook URLs. */
  env: Record<string, string | undefined>;
  log?: Logger;
  now?: () => Date;
}

type Channel = { name: 'slack' | 'webhook'; url: string; body: unknown };

interface Refusal {
  error: string;
  /** Worth another try: unreachable, no answer, 429 or 5xx. */
  transient: boolean;
}

/** POSTs JSON; resolves with why the receiver did not take it, never rejects. */
async function postOnce(url: string, body: unknown, timeoutMs: number): Promise<Refusal | undefined> {
  // A URL that does not parse is a configuration mistake, not an outage (and the value is a secret: not quoted).
  if (!URL.canParse(url)) return { error: 'the configured URL is not a valid URL', transient: false };
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'deploy-pipelines' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Read (and discard) the body so the connection is released.
    const text = await res.text().catch(() => '');
    if (res.status >= 200 && res.status < 300) return undefined;
    const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 120);
    return {
      error: `HTTP ${res.status}${snippet ? `: ${snippet}` : ''}`,
      transient: res.status === 429 || res.status >= 500,
    };
  } catch (err) {
    return { error: describeFetchError(err, timeoutMs), transient: true };
  }
}

/**
 * POSTs until the receiver takes it, a permanent refusal, or the retry window
 * is spent (backoff 0.5 s, 1 s, 2 s, 4 s). Retried here, per receiver, rather
 * than by failing the activity: a Temporal retry would send the event again
 * to the receivers that already have it.
 */
async function post(
  url: string,
  body: unknown,
  timeoutMs: number,
  retryForMs: number,
): Promise<{ error?: string; attempts: number }> {
  const started = Date.now();
  let delay = 500;
  for (let attempts = 1; ; attempts++) {
    const refused = await postOnce(url, body, timeoutMs);
    if (!refused) return { attempts };
    if (!refused.transient || Date.now() - started + delay > retryForMs) return { error: refused.error, attempts };
    await sleep(delay);
    delay = Math.min(delay * 2, 4000);
  }
}

export function notifyActivities(deps: NotifyDeps) {
  const { config, env } = deps;
  const n = config.notifications;
  const log = deps.log ?? activityLogger();
  const now = deps.now ?? (() => new Date());

  async function notify(event: NotificationEvent): Promise<NotificationResult> {
    const channels: Channel[] = [];
    const secrets: string[] = [];
    let failed = 0;
    try {
      const opts = { at: now().toISOString(), namespace: n.temporalNamespace };
      const slackUrl = n.slackWebhookEnv ? env[n.slackWebhookEnv] : undefined;
      const hookUrl = n.webhookEnv ? env[n.webhookEnv] : undefined;
      if (slackUrl) {
        secrets.push(slackUrl);
        channels.push({ name: 'slack', url: slackUrl, body: slackPayload(event, opts) });
      }
      if (hookUrl) {
        secrets.push(hookUrl);
        channels.push({ name: 'webhook', url: hookUrl, body: webhookPayload(event, opts) });
      }
    } catch (err) {
      // A malformed event still must not fail the deployment: count it against every configured receiver.
      const configured = [n.slackWebhookEnv, n.webhookEnv].filter((name) => name && env[name]).length;
      log.warn('notification could not be formatted', {
        kind: String(event?.kind),
        error: err instanceof Error ? err.message : String(err),
      });
      return { delivered: 0, failed: Math.max(1, configured) };
    }
    if (channels.length === 0) {
      log.info('no notification receivers configured', { kind: event.kind });
      return { delivered: 0, failed: 0 };
    }
    const outcomes = await Promise.all(
      channels.map(async (c) => ({ channel: c.name, ...(await post(c.url, c.body, n.timeout, n.retryFor)) })),
    );
    let delivered = 0;
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
