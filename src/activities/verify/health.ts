/**
 * The health endpoint (runbook "Post-Deployment Verification"): GET
 * verification.healthPath must answer 200 {"status":"ok"} within the timeout.
 * A failure is a report the workflow acts on, never a throw; only a base URL
 * that is not http(s) is refused (InvalidInput).
 */
import { describeBody, redact } from '../../domain/verification';
import { checkBaseUrl, describeFetchError, joinUrl } from '../clients/http';
import type { HealthReport, HealthRequest } from '../contracts';
import type { CheckContext } from './context';

/** The checkHealth activity over `ctx`. */
export function healthCheck(ctx: CheckContext) {
  const { log, envSecrets } = ctx;
  const v = ctx.config.verification;

  return async function checkHealth(req: HealthRequest): Promise<HealthReport> {
    const url = joinUrl(checkBaseUrl(req.baseUrl ?? v.baseUrl), v.healthPath);
    const shownUrl = redact(url, envSecrets());
    const started = Date.now();
    let r: Omit<HealthReport, 'lines'>;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(v.timeout), headers: { accept: 'application/json' } });
      const text = await res.text();
      const latencyMs = Date.now() - started;
      const body = describeBody(text, envSecrets());
      let status: unknown;
      try {
        status = (JSON.parse(text) as { status?: unknown }).status;
      } catch {
        status = undefined;
      }
      if (res.status === 200 && status === 'ok') r = { ok: true, url: shownUrl, status: res.status, latencyMs, body };
      else
        r = {
          ok: false,
          url: shownUrl,
          status: res.status,
          latencyMs,
          body,
          reason: `expected 200 {"status":"ok"}, got ${res.status} ${body}`,
        };
    } catch (err) {
      r = {
        ok: false,
        url: shownUrl,
        status: null,
        latencyMs: Date.now() - started,
        reason: redact(describeFetchError(err, v.timeout), envSecrets()),
      };
    }
    const line = r.ok
      ? `GET ${shownUrl}: ${r.status} ${r.body} in ${r.latencyMs} ms`
      : `GET ${shownUrl}: failed: ${r.reason}`;
    if (r.ok) log.info('health check passed', { url: shownUrl, latencyMs: r.latencyMs });
    else log.warn('health check failed', { url: shownUrl, reason: r.reason });
    return { ...r, lines: [line] };
  };
}
