/**
 * Sending one notification to one receiver until it takes it, refuses it for
 * good, or the retry window is spent (backoff 0.5 s, 1 s, 2 s, 4 s). Retried
 * here, per receiver, rather than by failing the activity: a Temporal retry
 * would send the event again to the receivers that already have it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Delivery } from './channel';

export async function deliver(delivery: Delivery, retryForMs: number): Promise<{ error?: string; attempts: number }> {
  const started = Date.now();
  let delay = 500;
  for (let attempts = 1; ; attempts++) {
    const refused = await delivery.attempt();
    if (!refused) return { attempts };
    if (!refused.transient || Date.now() - started + delay > retryForMs) return { error: refused.error, attempts };
    await sleep(delay);
    delay = Math.min(delay * 2, 4000);
  }
}
