/**
 * Reading what the sandbox's mail server delivered (scripts/sandbox/smtp.ts):
 * where it listens and its login (from the sandbox's env file, else its
 * files), and the messages in its maildir, parsed enough to check headers and
 * the text and HTML parts (RFC 5322 headers, MIME multipart, quoted-printable
 * and base64).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

export interface SandboxSmtp {
  host: string;
  port: number;
  tlsPort: number;
  domain: string;
  username: string;
  password: string;
  caFile: string;
  maildir: string;
}

export function sandboxSmtp(env: NodeJS.ProcessEnv = process.env): SandboxSmtp {
  const dir = path.join(env.SANDBOX_DIR ?? path.resolve(__dirname, '../../.sandbox'), 'smtp');
  const passwordFile = path.join(dir, 'password');
  return {
    host: env.SMTP_HOST ?? '127.0.0.1',
    port: Number(env.SMTP_PORT ?? env.SANDBOX_SMTP_PORT ?? 2525),
    tlsPort: Number(env.SMTPS_PORT ?? env.SANDBOX_SMTPS_PORT ?? 2465),
    domain: env.SMTP_DOMAIN ?? 'example.test',
    username: env.SMTP_USERNAME ?? 'notify',
    password: env.SMTP_PASSWORD ?? (existsSync(passwordFile) ? readFileSync(passwordFile, 'utf8') : ''),
    caFile: env.SMTP_CA_FILE ?? path.join(dir, 'smtp.crt'),
    maildir: env.SMTP_MAILDIR ?? path.join(dir, 'maildir'),
  };
}

export interface Mail {
  file: string;
  raw: string;
  /** The first value of a header (unfolded), by case-insensitive name. */
  header(name: string): string | undefined;
  text: string;
  html: string;
}

interface Part {
  headers: [string, string][];
  body: string;
}

function splitPart(raw: string): Part {
  const at = raw.search(/\r?\n\r?\n/);
  const head = at < 0 ? raw : raw.slice(0, at);
  const body = at < 0 ? '' : raw.slice(at).replace(/^\r?\n\r?\n/, '');
  const headers = head
    .replace(/\r?\n[ \t]+/g, ' ')
    .split(/\r?\n/)
    .map((l) => /^([^:\s]+):\s*(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => !!m)
    .map((m): [string, string] => [m[1].toLowerCase(), m[2]]);
  return { headers, body };
}

const get = (p: Part, name: string) => p.headers.find(([k]) => k === name.toLowerCase())?.[1];

function decode(p: Part): string {
  const cte = (get(p, 'content-transfer-encoding') ?? '').toLowerCase();
  if (cte === 'base64') return Buffer.from(p.body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (cte === 'quoted-printable') {
    const latin = p.body
      .replace(/=\r?\n/g, '')
      .replace(/=([0-9A-F]{2})/gi, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(latin, 'latin1').toString('utf8');
  }
  return p.body;
}

/** Every leaf part, depth first. */
function leaves(p: Part): Part[] {
  const type = get(p, 'content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (!/^multipart\//i.test(type) || !boundary) return [p];
  return p.body
    .split(`--${boundary}`)
    .slice(1)
    .filter((s) => !s.startsWith('--'))
    .flatMap((s) => leaves(splitPart(s.replace(/^\r?\n/, ''))));
}

export function parseMail(raw: string, file = ''): Mail {
  const top = splitPart(raw);
  const parts = leaves(top);
  const of = (type: string) =>
    parts
      .filter((p) => (get(p, 'content-type') ?? 'text/plain').toLowerCase().startsWith(type))
      .map(decode)
      .join('');
  return { file, raw, header: (n) => get(top, n), text: of('text/plain'), html: of('text/html') };
}

/** The delivered messages whose raw text contains `marker` (e.g. a workflow id), oldest first. */
export function mailsWith(maildir: string, marker: string): Mail[] {
  const out: { mtime: string; mail: Mail }[] = [];
  for (const sub of ['new', 'cur']) {
    const dir = path.join(maildir, sub);
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) {
      const file = path.join(dir, f);
      const raw = readFileSync(file, 'utf8');
      if (raw.includes(marker)) out.push({ mtime: f, mail: parseMail(raw, file) });
    }
  }
  return out.map((o) => o.mail);
}

/** Waits until `count` messages containing `marker` are delivered (delivery follows the SMTP reply by a moment). */
export async function waitForMails(maildir: string, marker: string, count = 1, timeoutMs = 10_000): Promise<Mail[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = mailsWith(maildir, marker);
    if (found.length >= count) return found;
    if (Date.now() > deadline)
      throw new Error(`${found.length} of ${count} message(s) with ${marker} in ${maildir} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
