/**
 * Fault injection on loopback for the reliability harness and the adapter
 * tests: a proxy in front of one outside system (the worker is pointed at
 * it, the system itself is never touched, so other users of a shared sandbox
 * see nothing), and a
 * webhook receiver that records what the worker sent.
 *
 * A proxy passes bytes through until told otherwise:
 *  - cut():      an outage. It stops listening and resets every open
 *                connection, so the worker sees connection refused / reset.
 *  - deny(...):  a permanent refusal that a retry cannot fix. It keeps
 *                listening and answers every new connection the way the
 *                system answers a client whose access was revoked: an HTTP
 *                status (403 from S3 or the registry) or PostgreSQL's
 *                "password authentication failed" (SQLSTATE 28P01).
 *  - cutOnUse(ms): armed: the first connection that arrives starts an
 *                outage of `ms` (that connection is reset, the listener
 *                closes), then the proxy restores itself. For a system used
 *                briefly at moments the harness cannot predict (a webhook).
 *  - restore():  back to passing bytes, on the same port.
 */
import * as http from 'node:http';
import * as net from 'node:net';

export type Denial =
  { kind: 'http'; status: number; contentType: string; body: string } | { kind: 'postgres'; message: string };

type Mode = { kind: 'pass' } | { kind: 'cut' } | { kind: 'armed'; outageMs: number } | { kind: 'deny'; denial: Denial };

export class FaultProxy {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private mode: Mode = { kind: 'pass' };
  private readonly http = http.createServer((req, res) => this.answerHttp(req, res));
  port = 0;
  /** Connections passed through, refused with a denial. */
  readonly stats = { passed: 0, denied: 0, cuts: 0 };

  constructor(
    readonly name: string,
    private readonly targetPort: number,
    private readonly targetHost = '127.0.0.1',
  ) {
    this.http.keepAliveTimeout = 0;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get state(): Mode['kind'] {
    return this.mode.kind;
  }

  /** Listens (port 0 the first time, the same port after a cut). */
  async start(): Promise<number> {
    if (this.server) return this.port;
    const server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
    return this.port;
  }

  async cut(): Promise<void> {
    this.mode = { kind: 'cut' };
    this.stats.cuts++;
    await this.closeListener();
  }

  async cutOnUse(outageMs: number): Promise<void> {
    this.mode = { kind: 'armed', outageMs };
    await this.start();
  }

  async deny(denial: Denial): Promise<void> {
    this.mode = { kind: 'deny', denial };
    this.dropAll();
    await this.start();
  }

  async restore(): Promise<void> {
    this.mode = { kind: 'pass' };
    this.dropAll();
    await this.start();
  }

  async close(): Promise<void> {
    await this.closeListener();
    this.http.close();
  }

  private dropAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private async closeListener(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    this.dropAll();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  }

  private accept(client: net.Socket): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    const mode = this.mode;
    if (mode.kind === 'cut') {
      client.destroy();
      return;
    }
    if (mode.kind === 'armed') {
      client.destroy();
      void this.cut().then(async () => {
        await new Promise((r) => setTimeout(r, mode.outageMs));
        if (this.mode.kind === 'cut') await this.restore();
      });
      return;
    }
    if (mode.kind === 'deny') {
      this.stats.denied++;
      if (mode.denial.kind === 'http') this.http.emit('connection', client);
      else refusePostgres(client, mode.denial.message);
      return;
    }
    this.stats.passed++;
    const upstream = net.connect({ host: this.targetHost, port: this.targetPort });
    this.sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream).pipe(client);
  }

  private answerHttp(req: http.IncomingMessage, res: http.ServerResponse): void {
    const mode = this.mode;
    // Read the whole request first: a client still sending its body must see the answer, not a reset.
    req.resume();
    req.on('end', () => {
      if (mode.kind !== 'deny' || mode.denial.kind !== 'http') {
        res.destroy();
        return;
      }
      const body = Buffer.from(mode.denial.body);
      res.writeHead(mode.denial.status, {
        'content-type': mode.denial.contentType,
        'content-length': body.length,
        connection: 'close',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  }
}

/**
 * Answers a PostgreSQL client the way the server answers one whose password
 * no longer works: "no" to SSL/GSS, then an ErrorResponse with SQLSTATE 28P01.
 */
function refusePostgres(client: net.Socket, message: string): void {
  let buf = Buffer.alloc(0);
  client.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 8) {
      const len = buf.readUInt32BE(0);
      if (buf.length < len) return;
      const code = buf.readUInt32BE(4);
      buf = buf.subarray(len);
      if (code === 80877103 || code === 80877104) {
        client.write('N'); // SSLRequest / GSSENCRequest: not supported
        continue;
      }
      const fields = Buffer.concat([
        field('S', 'FATAL'),
        field('V', 'FATAL'),
        field('C', '28P01'),
        field('M', message),
        Buffer.from([0]),
      ]);
      const head = Buffer.alloc(5);
      head.write('E', 0);
      head.writeUInt32BE(fields.length + 4, 1);
      client.end(Buffer.concat([head, fields]));
      return;
    }
  });
}

function field(code: string, value: string): Buffer {
  return Buffer.concat([Buffer.from(code), Buffer.from(value, 'utf8'), Buffer.from([0])]);
}

export const DENIALS = {
  s3: {
    kind: 'http',
    status: 403,
    contentType: 'application/xml',
    body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied (fault injected by the reliability harness)</Message></Error>',
  },
  registry: {
    kind: 'http',
    status: 403,
    contentType: 'application/json',
    body: '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied (fault injected by the reliability harness)"}]}',
  },
  webhook: {
    kind: 'http',
    status: 410,
    contentType: 'text/plain',
    body: 'this webhook was removed (fault injected by the reliability harness)',
  },
  prometheus: {
    kind: 'http',
    status: 503,
    contentType: 'text/plain',
    body: 'Service Unavailable (fault injected by the reliability harness)',
  },
  postgres: {
    kind: 'postgres',
    message: 'password authentication failed for user "app" (fault injected by the reliability harness)',
  },
} satisfies Record<string, Denial>;

export interface ReceivedNotification {
  at: number;
  kind: string;
  workflowId: string;
  weight?: number;
}

/** The generic JSON webhook of the notifications config: records every POST it receives. */
export class WebhookReceiver {
  readonly received: ReceivedNotification[] = [];
  private readonly server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === this.path) {
        try {
          const p = JSON.parse(body) as { kind?: string; workflowId?: string; weight?: number };
          this.received.push({
            at: Date.now(),
            kind: String(p.kind),
            workflowId: String(p.workflowId),
            ...(typeof p.weight === 'number' ? { weight: p.weight } : {}),
          });
        } catch {
          this.received.push({ at: Date.now(), kind: '(unparseable)', workflowId: '' });
        }
        res.writeHead(204).end();
      } else {
        res.writeHead(404).end();
      }
    });
  });
  port = 0;

  constructor(readonly path = `/hooks/${Math.random().toString(36).slice(2)}`) {}

  async start(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
    return this.port;
  }

  forWorkflow(workflowId: string): ReceivedNotification[] {
    return this.received.filter((r) => r.workflowId === workflowId);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
