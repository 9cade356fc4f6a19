/** HTTP plumbing for the demo server: bodies, replies, auth helpers and routing. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Validation } from './faults';
import { describeError } from './util';

const MAX_BODY_BYTES = 64 * 1024;

/** Thrown by a handler to answer with `status` and `{ error: message }`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Answers one request; may throw HttpError. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** The handlers of one path, by method. */
export type MethodHandlers = Partial<Record<string, Handler>>;

/** Handlers by path, then by method. */
export type Routes = Map<string, MethodHandlers>;

/** A whole response that no cache keeps. */
export function sendText(res: ServerResponse, status: number, contentType: string, text: string): void {
  res.writeHead(status, {
    'content-type': contentType,
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** A JSON response that no cache keeps. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  sendText(res, status, 'application/json; charset=utf-8', JSON.stringify(body));
}

/** The request body parsed as JSON; 413 when too large, 400 when not JSON. */
export async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buffer.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpError(400, 'request body must be valid JSON');
  }
}

/** The checked value; a refusal becomes a 400 carrying its reason. */
export function validOr400<T>(checked: Validation<T>): T {
  if (!checked.ok) throw new HttpError(400, checked.error);
  return checked.value;
}

/** Compares digests so the time taken does not reveal how much of a secret matched. */
export function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** The token of an `Authorization: Bearer` header, if any. */
export function bearerToken(req: IncomingMessage): string | null {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return match ? match[1] : null;
}

/**
 * Dispatches to `routes`: 404 for an unknown path, 405 for an unknown method,
 * the HttpError's status when a handler throws one, 500 (and a log line) for
 * anything else.
 */
export function createRequestListener(
  routes: Routes,
  log: (line: string) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  const dispatch = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    const methods = routes.get(pathname);
    if (!methods) throw new HttpError(404, `no route for ${pathname}`);
    const handler = methods[req.method ?? 'GET'];
    if (!handler) {
      res.setHeader('allow', Object.keys(methods).join(', '));
      throw new HttpError(405, `${req.method ?? ''} not allowed on ${pathname}`);
    }
    await handler(req, res);
  };
  return (req, res) => {
    void dispatch(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
      } else if (err instanceof HttpError) {
        sendJson(res, err.status, { error: err.message });
      } else {
        log(`demo: ${req.method ?? ''} ${req.url ?? ''} failed: ${describeError(err)}`);
        sendJson(res, 500, { error: 'internal error' });
      }
    });
  };
}
