/**
 * A mail server (Debian's Exim) on 127.0.0.1 for the e-mail notifications:
 * plain SMTP on one port, and implicit TLS (a certificate of its own CA)
 * with a required login on another, so the password path is tested for real.
 * It is the mail host of one domain only (example.test) and delivers every
 * message into one maildir under the sandbox folder; any other domain is
 * refused (550: it never relays, and has no route off the machine), and
 * greylisted@example.test is always asked to try later (451), as greylisting
 * servers do. Spool, log, pid and configuration all live under the sandbox
 * folder, so two sandboxes on one machine never share state. `reset` leaves
 * the maildir alone: tests running meanwhile find their messages by their
 * workflow ids, and an emptied mailbox would lose them.
 */
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import {
  ensureDir,
  HOST,
  PORTS,
  running,
  sh,
  startDaemon,
  stopDaemon,
  waitReady,
  which,
  type Component,
} from './common';

export const SMTP_DOMAIN = 'example.test';
export const SMTP_USERNAME = 'notify';
/** A recipient the server always defers (451): tests of the retry of one recipient. */
export const GREYLISTED = `greylisted@${SMTP_DOMAIN}`;
const DAEMON = 'smtp';
/** The user Debian's Exim drops to when started with its own configuration (-C). */
const EXIM_USER = 'Debian-exim';

export function smtpDirs() {
  const base = ensureDir('smtp');
  return {
    base,
    config: path.join(base, 'exim.conf'),
    spool: ensureDir('smtp', 'spool'),
    maildir: path.join(base, 'maildir'),
    cert: path.join(base, 'smtp.crt'),
    key: path.join(base, 'smtp.key'),
    password: path.join(base, 'password'),
  };
}

function eximUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`${EXIM_USER}:`));
  if (!line) throw new Error(`no ${EXIM_USER} user: install Debian exim4-daemon-light (scripts/setup.sh does)`);
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** Exim's configuration: no router but local delivery, so nothing can leave the machine. */
function eximConfig(d: ReturnType<typeof smtpDirs>): string {
  return `# Written by scripts/sandbox/smtp.ts at every up.
primary_hostname = mail.${SMTP_DOMAIN}
qualify_domain = ${SMTP_DOMAIN}
spool_directory = ${d.spool}
log_file_path = ${d.spool}/%slog
pid_file_path = ${d.spool}/exim.pid
keep_environment =
local_interfaces = ${HOST}
daemon_smtp_ports = ${PORTS.SMTP} : ${PORTS.SMTPS}
tls_on_connect_ports = ${PORTS.SMTPS}
tls_certificate = ${d.cert}
tls_privatekey = ${d.key}
# No STARTTLS on the plain port (a client would meet a certificate it does not know); TLS is the other port's.
tls_advertise_hosts =
auth_advertise_hosts = \${if eq{$received_port}{${PORTS.SMTPS}}{*}{}}
host_lookup =
rfc1413_hosts =
message_size_limit = 1M
acl_smtp_mail = check_mail
acl_smtp_rcpt = check_rcpt

begin acl
check_mail:
  deny  condition = \${if eq{$received_port}{${PORTS.SMTPS}}}
        !authenticated = *
        message = authentication required
  accept

check_rcpt:
  deny  !hosts = ${HOST}
  deny  !domains = ${SMTP_DOMAIN}
        message = relay not permitted
  defer recipients = ${GREYLISTED}
        message = greylisted, try again later
  accept

begin routers
mailbox:
  driver = accept
  transport = maildir_delivery

begin transports
maildir_delivery:
  driver = appendfile
  directory = ${d.maildir}
  maildir_format
  create_directory
  envelope_to_add
  return_path_add
  user = ${EXIM_USER}

begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = \${if and{{eq{$auth2}{${SMTP_USERNAME}}}{eq{$auth3}{\${readfile{${d.password}}{}}}}}}
  server_set_id = $auth2
login:
  driver = plaintext
  public_name = LOGIN
  server_prompts = Username:: : Password::
  server_condition = \${if and{{eq{$auth1}{${SMTP_USERNAME}}}{eq{$auth2}{\${readfile{${d.password}}{}}}}}}
  server_set_id = $auth1
`;
}

/** The certificate (its own CA: clients are given the file), the password and the configuration; made once, the config at every up. */
function prepare(): ReturnType<typeof smtpDirs> {
  const d = smtpDirs();
  const { uid, gid } = eximUser();
  if (!existsSync(d.cert)) {
    sh(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '3650',
        '-subj',
        '/CN=sandbox-smtp',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
        '-keyout',
        'smtp.key',
        '-out',
        'smtp.crt',
      ],
      { cwd: d.base },
    );
  }
  if (!existsSync(d.password)) writeFileSync(d.password, randomBytes(18).toString('base64url'), { mode: 0o600 });
  ensureDir('smtp', 'maildir');
  for (const f of [d.key, d.password, d.spool, d.maildir]) chownSync(f, uid, gid);
  // Exim reads a -C file only when root owns it and nobody else may write it.
  writeFileSync(d.config, eximConfig(d), { mode: 0o644 });
  chownSync(d.config, 0, 0);
  return d;
}

/** The server's greeting, or why there is none. */
function greeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: HOST, port });
    s.setTimeout(2000, () => s.destroy(new Error('no greeting within 2 s')));
    s.once('data', (d) => {
      s.end('QUIT\r\n');
      resolve(d.toString('utf8').trim());
    });
    s.once('error', reject);
  });
}

export function smtpComponent(): Component {
  const ready = async () => (await greeting(PORTS.SMTP)).startsWith('220');
  return {
    name: 'smtp',
    async up() {
      const bin = which('exim4') ?? which('exim');
      if (!bin) throw new Error('exim4 not found: install Debian exim4-daemon-light (scripts/setup.sh does)');
      if (process.getuid?.() !== 0)
        throw new Error(`the mail server is started as root (Exim then runs as ${EXIM_USER}): run up as root`);
      const d = prepare();
      // -bdf: the listening daemon in the foreground (its pid is ours); -q1m: a deferred message is tried again.
      if (!running(DAEMON))
        startDaemon(DAEMON, bin, ['-C', d.config, '-bdf', '-q1m'], { env: { PATH: '/usr/sbin:/usr/bin:/bin' } });
      await waitReady(DAEMON, ready, 15_000, DAEMON);
      return `smtp://${HOST}:${PORTS.SMTP}, smtps://${HOST}:${PORTS.SMTPS} (login ${SMTP_USERNAME}), mail for @${SMTP_DOMAIN} into ${d.maildir}`;
    },
    async status() {
      const ok = running(DAEMON) && (await ready().catch(() => false));
      return { ok, detail: ok ? `smtp://${HOST}:${PORTS.SMTP}, smtps://${HOST}:${PORTS.SMTPS}` : 'down' };
    },
    async down() {
      await stopDaemon(DAEMON);
    },
    env() {
      const d = smtpDirs();
      return {
        SMTP_HOST: HOST,
        SMTP_PORT: String(PORTS.SMTP),
        SMTPS_PORT: String(PORTS.SMTPS),
        SMTP_DOMAIN,
        SMTP_USERNAME,
        ...(existsSync(d.password) ? { SMTP_PASSWORD: readFileSync(d.password, 'utf8') } : {}),
        SMTP_CA_FILE: d.cert,
        SMTP_MAILDIR: d.maildir,
      };
    },
  };
}
