/** One POST of a JSON document to a webhook, shared by the webhook channels (Slack, generic, Teams). */
import { describeFetchError } from '../clients/http';
import type { Delivery, Refusal } from './channel';

/** A 2xx answer whose body still says the receiver did not take it (Teams' connectors answer so). */
export type BodyCheck = (text: string) => Refusal | undefined;

/** POSTs JSON once; resolves with why the receiver did not take it, never rejects. */
export async function postJson(
  url: string,
  body: unknown,
  timeoutMs: number,
  check?: BodyCheck,
): Promise<Refusal | undefined> {
  // A URL that does not parse is a configuration mistake, not an outage (and the value is a secret: not quoted).
  if (!URL.canParse(url)) return { error: 'the configured URL is not a valid URL', transient: false };
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'deploy-pipelines' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Read the body (also so the connection is released).
    const text = await res.text().catch(() => '');
    const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 120);
    if (res.status >= 200 && res.status < 300) return check?.(snippet);
    return {
      error: `HTTP ${res.status}${snippet ? `: ${snippet}` : ''}`,
      transient: res.status === 429 || res.status >= 500,
    };
  } catch (err) {
    return { error: describeFetchError(err, timeoutMs), transient: true };
  }
}

/** The delivery of one formatted document to a webhook. */
export function jsonDelivery(url: string, body: unknown, timeoutMs: number, check?: BodyCheck): Delivery {
  return { attempt: () => postJson(url, body, timeoutMs, check) };
}

/** The URL in the variable `name` names, if both are set. */
export function webhookUrl(env: Record<string, string | undefined>, name: string | undefined): string | undefined {
  return name ? env[name] || undefined : undefined;
}
