/**
 * One GET of a metrics backend's JSON answer, shared by the providers that
 * are not Prometheus: never throws, and tells a backend failure (unreachable,
 * timed out, not JSON) from an answer, which each provider classifies. No
 * header value reaches a reason: `secrets` are cut out of any body quoted.
 */
import { describeBody } from '../../domain/verification';
import { describeFetchError } from '../clients/http';

export type Fetched =
  { kind: 'answer'; status: number; body: unknown; text: string } | { kind: 'none'; reason: string; error: true };

export async function getJson(
  url: string,
  opts: { backend: string; timeoutMs: number; headers?: Record<string, string>; secrets?: readonly string[] },
): Promise<Fetched> {
  const secrets = opts.secrets ?? [];
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      signal: AbortSignal.timeout(opts.timeoutMs),
      headers: { accept: 'application/json', ...opts.headers },
      // A redirect could carry the headers to another host: it is an answer to report, not to follow.
      redirect: 'manual',
    });
    text = await res.text();
  } catch (err) {
    return {
      kind: 'none',
      reason: `${opts.backend} unreachable: ${describeBody(describeFetchError(err, opts.timeoutMs), secrets, 200)}`,
      error: true,
    };
  }
  try {
    return {
      kind: 'answer',
      status: res.status,
      body: JSON.parse(text) as unknown,
      text: describeBody(text, secrets, 160),
    };
  } catch {
    return {
      kind: 'none',
      reason: `${opts.backend} answered HTTP ${res.status} that is not JSON: ${describeBody(text, secrets, 120)}`,
      error: true,
    };
  }
}
