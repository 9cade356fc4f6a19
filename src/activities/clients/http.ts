/**
 * HTTP helpers shared by the adapters that call HTTP endpoints (health and
 * smoke checks, Prometheus, webhooks): errors described without the URL,
 * which may carry a secret, and timeouts on any promise.
 */
import { invalidInput, messageOf } from '../failures';

function errorCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause;
  return typeof cause?.code === 'string' ? cause.code : undefined;
}

/** Why a fetch produced no response, in words, without the URL (which may carry a secret). */
export function describeFetchError(err: unknown, timeoutMs: number): string {
  const name = (err as { name?: unknown } | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') return `no answer within ${timeoutMs} ms`;
  const code = errorCode(err);
  const cause = (err as { cause?: { message?: unknown } } | undefined)?.cause;
  const causeMessage = typeof cause?.message === 'string' ? cause.message : undefined;
  if (code === 'ECONNREFUSED') return `connection refused (${causeMessage ?? code})`;
  if (code) return `${code}${causeMessage ? ` (${causeMessage})` : ''}`;
  return messageOf(err);
}

export function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}${path}`;
}

export function checkBaseUrl(baseUrl: string): string {
  if (!/^https?:\/\/[^\s/$.?#][^\s]*$/i.test(baseUrl)) {
    throw invalidInput(`baseUrl must be an absolute http(s) URL, got ${JSON.stringify(baseUrl)}`);
  }
  return baseUrl;
}

/** Rejects when `promise` has not settled within `ms`; the timer never outlives it. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
