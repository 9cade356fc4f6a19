/**
 * The codec server: lets the Temporal UI (and `temporal workflow show
 * --codec-endpoint`) show encrypted payloads in clear text, without giving
 * the key to the UI or the Temporal server. The browser sends the payloads it
 * displays to POST /decode; the key stays in this process, on loopback.
 *
 * Protocol (Temporal's remote codec): POST /encode and POST /decode with
 * `{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}`,
 * answered in the same form.
 *
 * Whoever can call /decode reads every deployment's payloads, so:
 *  - a request from a browser (it has an Origin) must come from the UI's
 *    origin (DEPLOY_CODEC_CORS_ORIGINS, default TEMPORAL_UI_URL's origin);
 *    any other page is refused, not merely denied CORS headers;
 *  - the Host header must be the address it listens on (or one of
 *    DEPLOY_CODEC_ALLOWED_HOSTS, for a proxy in front): a DNS-rebinding page
 *    reaches 127.0.0.1 under its own name and is refused;
 *  - with DEPLOY_CODEC_AUTH_TOKEN set every request carries `Authorization:
 *    Bearer <token>` (the UI's "pass access token" setting), and it must be
 *    set to listen anywhere but loopback (DEPLOY_CODEC_SERVER_HOST);
 *  - /decode answers only for encrypted payloads: a plain one is refused, so
 *    the server never echoes what it was not needed for.
 *
 * Start it with `npm run codec-server`, then set the UI's codec endpoint
 * (Settings > Codec Server, or TEMPORAL_CODEC_ENDPOINT for the UI server) to
 * http://127.0.0.1:8888.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { PayloadCodec } from '@temporalio/common';
import {
  CodecConfigError,
  CodecError,
  codecFromEnv,
  ENCODING_ENCRYPTED,
  METADATA_ENCODING,
  payloadFromJson,
  payloadToJson,
  type JsonPayload,
} from './codec';

export const DEFAULT_CODEC_SERVER_PORT = 8888;
export const DEFAULT_CODEC_SERVER_HOST = '127.0.0.1';
const DEFAULT_MAX_BODY = 16 * 1024 * 1024;

export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Origins allowed to call from a browser, e.g. http://127.0.0.1:8233; '*' allows any. */
  corsOrigins: string[];
  /** When set, requests need `Authorization: Bearer <token>`; required unless `host` is loopback. */
  authToken?: string;
  /** The address it listens on (startCodecServer); default 127.0.0.1. */
  host?: string;
  /** Host headers accepted besides the listening address and port (a proxy's name), e.g. codec.example.com. */
  allowedHosts?: string[];
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

/** 127.0.0.0/8, ::1 and localhost: only this machine can connect. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** A token is what stands between the network and the key once the server is reachable from it. */
function requireTokenBeyondLoopback(host: string, authToken: string | undefined): void {
  if (!isLoopback(host) && !authToken)
    throw new CodecConfigError(
      `DEPLOY_CODEC_SERVER_HOST=${host} is not loopback: set DEPLOY_CODEC_AUTH_TOKEN (and the UI's "pass access token"), or listen on 127.0.0.1`,
    );
}

/** The Host headers a request to `host:port` carries: the address itself, and localhost's names on loopback. */
function hostHeadersFor(host: string, port: number, extra: readonly string[]): Set<string> {
  const names = isLoopback(host) ? ['127.0.0.1', 'localhost', '[::1]'] : [isIP(host) === 6 ? `[${host}]` : host];
  const allowed = new Set<string>();
  for (const n of names) {
    allowed.add(`${n}:${port}`);
    if (port === 80) allowed.add(n); // a browser leaves the default port out
  }
  for (const e of extra) allowed.add(e.toLowerCase());
  return allowed;
}

export function createCodecServer(opts: CodecServerOptions): Server {
  const limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const log = opts.log ?? (() => undefined);
  const host = opts.host ?? DEFAULT_CODEC_SERVER_HOST;
  requireTokenBeyondLoopback(host, opts.authToken);

  /** A browser request from a page other than the UI is refused outright: CORS alone would still let it send. */
  function checkOrigin(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    if (!origin) return;
    res.setHeader('Vary', 'Origin');
    if (!opts.corsOrigins.includes('*') && !opts.corsOrigins.includes(origin))
      throw new HttpError(
        403,
        `origin ${origin.slice(0, 200)} is not allowed (allowed: ${opts.corsOrigins.join(', ')}); set DEPLOY_CODEC_CORS_ORIGINS to the Temporal UI's URL`,
      );
    res.setHeader('Access-Control-Allow-Origin', origin);
    res.setHeader('Access-Control-Allow-Credentials', 'true');
    res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Authorization, X-Namespace');
    res.setHeader('Access-Control-Max-Age', '600');
  }

  /** DNS rebinding: a page whose name now resolves to 127.0.0.1 still sends its own name as Host. */
  function checkHost(req: IncomingMessage, server: Server): void {
    const port = (server.address() as AddressInfo | null)?.port ?? 0;
    const given = (req.headers.host ?? '').toLowerCase();
    if (!hostHeadersFor(host, port, opts.allowedHosts ?? []).has(given))
      throw new HttpError(
        403,
        `Host "${given.slice(0, 200)}" is not the address this server listens on (${host}:${port}); a proxy's name goes in DEPLOY_CODEC_ALLOWED_HOSTS`,
      );
  }

  /** The key is only needed for encrypted payloads: a plain one is refused, never echoed back as "decoded". */
  function checkEncrypted(payloads: { metadata?: Record<string, Uint8Array> | null }[]): void {
    payloads.forEach((p, i) => {
      const encoding = p.metadata?.[METADATA_ENCODING];
      if (!encoding || Buffer.from(encoding).toString('utf8') !== ENCODING_ENCRYPTED)
        throw new HttpError(
          400,
          `payload ${i + 1} of ${payloads.length} is not encrypted (encoding is not ${ENCODING_ENCRYPTED}): the codec server decodes only what the worker encrypted`,
        );
    });
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

  async function handle(req: IncomingMessage, res: ServerResponse, server: Server): Promise<void> {
    checkHost(req, server);
    checkOrigin(req, res);
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
    if (op === 'decode') checkEncrypted(payloads);
    const out = op === 'encode' ? await opts.codec.encode(payloads) : await opts.codec.decode(payloads);
    send(res, 200, { payloads: out.map(payloadToJson) });
    log(`${op} ${payloads.length} payload(s) for namespace ${String(req.headers['x-namespace'] ?? '-')}`);
  }

  const server = createServer((req, res) => {
    handle(req, res, server).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : err instanceof CodecError ? 400 : 500;
      const message = err instanceof Error ? err.message : String(err);
      log(`${req.method ?? '?'} ${req.url ?? '?'}: ${status} ${message}`);
      if (!res.headersSent) send(res, status, { error: message });
      else res.end();
    });
  });
  return server;
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

export async function startCodecServer(
  server: Server,
  port: number,
  host: string = DEFAULT_CODEC_SERVER_HOST,
): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

export interface CodecServerSettings {
  host: string;
  port: number;
  corsOrigins: string[];
  authToken?: string;
  allowedHosts: string[];
}

/** The server's settings from the environment; a host beyond loopback without a token is refused here, before it listens. */
export function codecServerSettings(env: Record<string, string | undefined>): CodecServerSettings {
  const port = Number(env.DEPLOY_CODEC_SERVER_PORT ?? DEFAULT_CODEC_SERVER_PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new CodecConfigError(
      `DEPLOY_CODEC_SERVER_PORT must be a port number, got ${JSON.stringify(env.DEPLOY_CODEC_SERVER_PORT)}`,
    );
  const host = env.DEPLOY_CODEC_SERVER_HOST?.trim() || DEFAULT_CODEC_SERVER_HOST;
  const authToken = env.DEPLOY_CODEC_AUTH_TOKEN || undefined;
  requireTokenBeyondLoopback(host, authToken);
  const allowedHosts = (env.DEPLOY_CODEC_ALLOWED_HOSTS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return { host, port, corsOrigins: corsOriginsFromEnv(env), ...(authToken ? { authToken } : {}), allowedHosts };
}

async function run(): Promise<void> {
  const env = process.env;
  const settings = codecServerSettings(env);
  const codec = codecFromEnv(env);
  if (!codec)
    throw new CodecConfigError('DEPLOY_CODEC_KEY is not set: the codec server needs the key the worker encrypts with');
  const { host, port, corsOrigins, authToken, allowedHosts } = settings;
  const server = createCodecServer({
    codec,
    corsOrigins,
    host,
    allowedHosts,
    ...(authToken ? { authToken } : {}),
    log: (l) => console.log(`codec-server: ${l}`),
  });
  const bound = await startCodecServer(server, port, host);
  const shown = isIP(host) === 6 ? `[${host}]` : host;
  console.log(
    `codec-server: http://${shown}:${bound} (key id ${codec.keyId}; origins ${corsOrigins.join(', ')}; ${authToken ? 'bearer token required' : 'no token required (loopback only)'})`,
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
