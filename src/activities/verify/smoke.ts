/**
 * Smoke checks (runbook "Post-Deployment Verification": sign in, take the
 * token, call the API): each configured request in order, a later one using
 * what an earlier one captured. Bodies take `${env:NAME}` values from the
 * worker's environment; those values and every captured value are secrets,
 * removed from whatever is reported or logged.
 */
import type { SmokeCheckConfig } from '../../domain/config';
import { describeBody, redact, resolveEnvPlaceholders, valueAtPath } from '../../domain/verification';
import { checkBaseUrl, describeFetchError, joinUrl } from '../clients/http';
import { configInvalid } from '../failures';
import type { SmokeCheckResult, SmokeReport, SmokeRequest } from '../contracts';
import type { CheckContext } from './context';

/** The runSmokeChecks activity over `ctx`. */
export function smokeChecks(ctx: CheckContext) {
  const { env, log, envSecrets } = ctx;
  const v = ctx.config.verification;

  async function runSmokeCheck(
    base: string,
    check: SmokeCheckConfig,
    captured: Record<string, string>,
    secrets: string[],
  ): Promise<SmokeCheckResult> {
    const head = { name: check.name, method: check.method, path: check.path };
    if (check.bearer && captured[check.bearer] === undefined) {
      return {
        ...head,
        outcome: 'skipped',
        status: null,
        latencyMs: null,
        reason: `needs "${check.bearer}", which no earlier check captured`,
      };
    }
    let body: string | undefined;
    if (check.body !== undefined) {
      const resolved = resolveEnvPlaceholders(check.body, env);
      if (resolved.missing.length > 0) {
        return {
          ...head,
          outcome: 'fail',
          status: null,
          latencyMs: null,
          reason: `environment variable${resolved.missing.length > 1 ? 's' : ''} ${resolved.missing.join(', ')} not set on the worker`,
        };
      }
      secrets.push(...resolved.secrets);
      body = JSON.stringify(resolved.value);
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (check.bearer) headers.authorization = `Bearer ${captured[check.bearer]}`;
    const started = Date.now();
    let res: Response;
    let text: string;
    try {
      res = await fetch(joinUrl(base, check.path), {
        method: check.method,
        headers,
        body,
        signal: AbortSignal.timeout(check.timeout),
      });
      text = await res.text();
    } catch (err) {
      return {
        ...head,
        outcome: 'fail',
        status: null,
        latencyMs: Date.now() - started,
        reason: redact(describeFetchError(err, check.timeout), secrets),
      };
    }
    const latencyMs = Date.now() - started;
    if (res.status !== check.expectStatus) {
      return {
        ...head,
        outcome: 'fail',
        status: res.status,
        latencyMs,
        reason: `expected ${check.expectStatus}, got ${res.status}: ${describeBody(text, secrets)}`,
      };
    }
    if (check.capture) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return {
          ...head,
          outcome: 'fail',
          status: res.status,
          latencyMs,
          reason: `response is not JSON, cannot capture ${Object.values(check.capture).join(', ')}: ${describeBody(text, secrets)}`,
        };
      }
      for (const [name, path] of Object.entries(check.capture)) {
        const value = valueAtPath(json, path);
        if ((typeof value !== 'string' && typeof value !== 'number') || value === '') {
          return { ...head, outcome: 'fail', status: res.status, latencyMs, reason: `response has no ${path}` };
        }
        captured[name] = String(value);
        secrets.push(String(value));
      }
    }
    return { ...head, outcome: 'pass', status: res.status, latencyMs };
  }

  return async function runSmokeChecks(req: SmokeRequest): Promise<SmokeReport> {
    const previewUrl = ctx.config.rollout.blueGreen.preview?.url;
    if (req.preview && !previewUrl)
      throw configInvalid('smoke checks on the new colour need rollout.blueGreen.preview in the config');
    const base = checkBaseUrl(req.preview ? previewUrl! : v.baseUrl);
    const captured: Record<string, string> = {};
    const secrets = envSecrets();
    const checks: SmokeCheckResult[] = [];
    // In order: a later check may use what an earlier one captured (sign in -> token -> API).
    for (const check of v.smoke) checks.push(await runSmokeCheck(base, check, captured, secrets));
    const lines = checks.map((c) => {
      const what = `${c.method} ${c.path}${c.status !== null ? ` ${c.status}` : ''}${c.latencyMs !== null ? ` in ${c.latencyMs} ms` : ''}`;
      return `${c.name}: ${c.outcome === 'pass' ? 'pass' : c.outcome === 'skipped' ? 'skipped, not run' : 'failed'} (${what})${c.reason ? `: ${c.reason}` : ''}`;
    });
    if (checks.length === 0) lines.push('no smoke checks configured (verification.smoke)');
    for (const c of checks) {
      const meta = {
        check: c.name,
        outcome: c.outcome,
        status: c.status,
        latencyMs: c.latencyMs,
        ...(c.reason ? { reason: c.reason } : {}),
      };
      if (c.outcome === 'pass') log.info('smoke check passed', meta);
      else log.warn('smoke check failed', meta);
    }
    return { ok: checks.every((c) => c.outcome === 'pass'), lines, checks };
  };
}
