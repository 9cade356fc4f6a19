/**
 * The codec server: lets the Temporal UI (and `temporal workflow show
 * --codec-endpoint`) show encrypted payloads in clear text, without giving
 * the key to the UI or the Temporal server. The browser sends the payloads it
 * displays to POST /decode; the key stays in this process, on loopback.
 *
 * Protocol (Temporal's remote codec): POST /encode and POST /decode with
 * `{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}`,
 * answered in the same form. CORS is allowed only for the UI's origin
 * (DEPLOY_CODEC_CORS_ORIGINS, default TEMPORAL_UI_URL's origin), and with
 * DEPLOY_CODEC_AUTH_TOKEN set every request must carry `Authorization:
 * Bearer <token>` (the UI's "pass access token" setting).
 *
 * Start it with `npm run codec-server`, then set the UI's codec endpoint
 * (Settings > Codec Server, or TEMPORAL_CODEC_ENDPOINT for the UI server) to
 * http://127.0.0.1:8888.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { PayloadCodec } from '@temporalio/common';
import { CodecConfigError, CodecError, codecFromEnv, payloadFromJson, payloadToJson, type JsonPayload } from './codec';

export const DEFAULT_CODEC_SERVER_PORT = 8888;
const DEFAULT_MAX_BODY = 16 * 1024 * 1024;

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Origins allowed to call from a browser, e.g. http://127.0.0.1:8233; '*' allows any. */
  corsOrigins: string[];
  /** When set, requests need `Authorization: Bearer <token>`. */
  authToken?: string;
  maxBodyBytes?: number;
  log?: (line: string) => void;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Constant-time comparison of the bearer token (hashed first so lengths do not leak). */
function authorized(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return !!m && timingSafeEqual(digest(m[1].trim()), digest(token));
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      // Past the limit the rest is read and dropped, so the 413 still reaches the caller.
      if (size > limit) return;
      size += c.length;
      if (size > limit) {
        chunks.length = 0;
        reject(new HttpError(413, `request body larger than ${limit} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parsePayloads(text: string): JsonPayload[] {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'the body must be JSON: {"payloads": [{"metadata": {...}, "data": "<base64>"}]}');
  }
  const payloads = body && typeof body === 'object' ? (body as { payloads?: unknown }).payloads : undefined;
  if (!Array.isArray(payloads)) throw new HttpError(400, 'the body must have "payloads": an array of {metadata, data}');
  return payloads as JsonPayload[];
}

export function createCodecServer(opts: CodecServerOptions): Server {
  const limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const log = opts.log ?? (() => undefined);

  function cors(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    if (!origin) return;
    if (opts.corsOrigins.includes('*') || opts.corsOrigins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Authorization, X-Namespace');
      res.setHeader('Access-Control-Max-Age', '600');
    }
    res.setHeader('Vary', 'Origin');
  }

  function send(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-store',
    });
    res.end(text);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    cors(req, res);
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '');
    const op = path === '/encode' ? 'encode' : path === '/decode' ? 'decode' : undefined;
    if (req.method === 'OPTIONS') {
      res.writeHead(op ? 204 : 404);
      res.end();
      return;
    }
    if (!op) throw new HttpError(404, 'not found: POST /encode or POST /decode');
    if (req.method !== 'POST') {
      res.setHeader('Allow', 'POST, OPTIONS');
      throw new HttpError(405, `${op} takes POST`);
    }
    if (opts.authToken && !authorized(req.headers.authorization, opts.authToken)) {
      res.setHeader('WWW-Authenticate', 'Bearer');
      throw new HttpError(401, 'missing or wrong bearer token');
    }
    const json = parsePayloads(await readBody(req, limit));
    let payloads;
    try {
      payloads = json.map((p) => payloadFromJson(p));
    } catch (err) {
      throw new HttpError(400, (err as Error).message);
    }
    const out = op === 'encode' ? await opts.codec.encode(payloads) : await opts.codec.decode(payloads);
    send(res, 200, { payloads: out.map(payloadToJson) });
    log(`${op} ${payloads.length} payload(s) for namespace ${String(req.headers['x-namespace'] ?? '-')}`);
  }

  return createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : err instanceof CodecError ? 400 : 500;
      const message = err instanceof Error ? err.message : String(err);
      log(`${req.method ?? '?'} ${req.url ?? '?'}: ${status} ${message}`);
      if (!res.headersSent) send(res, status, { error: message });
      else res.end();
    });
  });
}

/** The UI origins allowed by default: TEMPORAL_UI_URL's, else the local dev server's UI. */
export function corsOriginsFromEnv(env: Record<string, string | undefined>): string[] {
  const origin = (value: string, variable: string): string => {
    if (value === '*') return value;
    try {
      return new URL(value).origin;
    } catch {
      throw new CodecConfigError(
        `${variable}: ${JSON.stringify(value.slice(0, 100))} is not a URL such as http://127.0.0.1:8233`,
      );
    }
  };
  const list = env.DEPLOY_CODEC_CORS_ORIGINS?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (list?.length) return list.map((o) => origin(o, 'DEPLOY_CODEC_CORS_ORIGINS'));
  if (env.TEMPORAL_UI_URL) return [origin(env.TEMPORAL_UI_URL, 'TEMPORAL_UI_URL')];
  return ['http://127.0.0.1:8233', 'http://localhost:8233'];
}

export async function startCodecServer(server: Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

async function run(): Promise<void> {
  const env = process.env;
  const codec = codecFromEnv(env);
  if (!codec)
    throw new CodecConfigError('DEPLOY_CODEC_KEY is not set: the codec server needs the key the worker encrypts with');
  const port = Number(env.DEPLOY_CODEC_SERVER_PORT ?? DEFAULT_CODEC_SERVER_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new CodecConfigError(
      `DEPLOY_CODEC_SERVER_PORT must be a port number, got ${JSON.stringify(env.DEPLOY_CODEC_SERVER_PORT)}`,
    );
  const corsOrigins = corsOriginsFromEnv(env);
  const authToken = env.DEPLOY_CODEC_AUTH_TOKEN || undefined;
  const server = createCodecServer({
    codec,
    corsOrigins,
    ...(authToken ? { authToken } : {}),
    log: (l) => console.log(`codec-server: ${l}`),
  });
  const bound = await startCodecServer(server, port);
  console.log(
    `codec-server: http://127.0.0.1:${bound} (key id ${codec.keyId}; CORS for ${corsOrigins.join(', ')}; ${authToken ? 'bearer token required' : 'no token required'})`,
  );
  const stop = () => {
    server.close();
    server.closeAllConnections();
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  await new Promise((resolve) => server.once('close', resolve));
}

if (require.main === module) {
  run().catch((err: unknown) => {
    console.error(err instanceof CodecConfigError ? `codec-server: ${err.message}` : err);
    process.exit(1);
  });
}
