/**
 * E-mail over SMTP (nodemailer): the headline as subject, a plain-text and
 * an HTML body (domain/notification-email.ts), to every configured
 * recipient. The password only ever comes from the variable
 * `notifications.email.passwordEnv` names. Retried like the webhooks: a
 * server that is down, silent or answers 4xx is tried again within
 * `retryFor`; a 5xx refusal is final. Recipients the server took are never
 * sent the event again: a retry goes only to the ones it asked to try later.
 */
import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import type { EmailConfig, NotificationsConfig } from '../../domain/config-notifications';
import { emailMessage, headerLine, type EmailMessage } from '../../domain/notification-email';
import type { NotificationEvent } from '../../domain/notification';
import type { ChannelFactory, Delivery, Refusal } from './channel';

interface SmtpError {
  code?: string;
  responseCode?: number;
  response?: string;
  recipient?: string;
  message?: string;
  rejectedErrors?: SmtpError[];
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim().slice(0, 200);

/** Failures that another try cannot mend: the login, TLS, the configuration, the message itself. */
const PERMANENT_CODES = new Set(['EAUTH', 'ENOAUTH', 'ECONFIG', 'ETLS', 'EREQUIRETLS', 'EENVELOPE', 'EMESSAGE']);

/** A reply code decides (4xx: try later, 5xx: refused); without one, a network failure is transient. */
export function smtpRefusal(err: unknown): Refusal {
  const e = (err ?? {}) as SmtpError;
  const error = oneLine(e.message ?? String(err));
  if (typeof e.responseCode === 'number') return { error, transient: e.responseCode >= 400 && e.responseCode < 500 };
  const permanent = (e.code !== undefined && PERMANENT_CODES.has(e.code)) || /certificate/i.test(error);
  return { error, transient: !permanent };
}

function transportOptions(
  email: EmailConfig,
  settings: NotificationsConfig,
  auth: { user: string; pass: string } | undefined,
  ca: Buffer | undefined,
): SMTPTransport.Options {
  return {
    host: email.host.replace(/^\[(.*)\]$/, '$1'),
    port: email.port ?? (email.secure ? 465 : 587),
    secure: email.secure,
    requireTLS: email.requireTLS,
    ...(auth ? { auth } : {}),
    tls: { minVersion: 'TLSv1.2', ...(ca ? { ca } : {}) },
    connectionTimeout: settings.timeout,
    greetingTimeout: settings.timeout,
    socketTimeout: settings.timeout,
    // The message is built here from text: nothing in it may make nodemailer read a file or fetch a URL.
    disableFileAccess: true,
    disableUrlAccess: true,
    logger: false,
  };
}

function smtpDelivery(
  options: SMTPTransport.Options,
  email: EmailConfig,
  message: EmailMessage,
  event: NotificationEvent,
): Delivery {
  /** Recipients still to reach: all at first, then only those the server asked to try later. */
  let remaining = [...email.to];
  /** Recipients refused for good, with the server's reply. */
  const refused: string[] = [];
  return {
    async attempt() {
      const transport = nodemailer.createTransport(options);
      let rejected: SmtpError[];
      try {
        const info = await transport.sendMail({
          from: email.from,
          to: email.to,
          subject: message.subject,
          text: message.text,
          html: message.html,
          envelope: { from: email.from, to: remaining },
          headers: { 'X-Deployment-Event': event.kind, 'X-Deployment-Workflow': headerLine(event.workflowId) },
        });
        rejected = (info as { rejectedErrors?: SmtpError[] }).rejectedErrors ?? [];
      } catch (err) {
        const e = err as SmtpError;
        if (!e?.rejectedErrors?.length) {
          const r = smtpRefusal(err);
          return { ...r, error: [...refused, r.error].join('; ') };
        }
        rejected = e.rejectedErrors;
      } finally {
        transport.close();
      }
      const later: string[] = [];
      const reasons: string[] = [];
      for (const r of rejected) {
        const recipient = r.recipient ?? '(a recipient)';
        const reply = oneLine(r.response ?? r.message ?? 'refused');
        if (smtpRefusal(r).transient) {
          later.push(recipient);
          reasons.push(`${recipient}: ${reply}`);
        } else {
          refused.push(`${recipient} refused: ${reply}`);
        }
      }
      remaining = remaining.filter((a) => later.includes(a));
      if (remaining.length > 0) return { error: [...refused, ...reasons].join('; '), transient: true };
      if (refused.length > 0) return { error: refused.join('; '), transient: false };
      return undefined;
    },
  };
}

export const emailChannel: ChannelFactory = ({ settings, env }) => {
  const email = settings.email;
  if (!email) return undefined;
  const password = email.passwordEnv ? env[email.passwordEnv] || undefined : undefined;
  const username = email.usernameEnv ? env[email.usernameEnv] || undefined : undefined;
  // Configured but unusable on this worker: every event fails, saying why (never sent without the login asked for).
  let problem: string | undefined;
  if (email.passwordEnv && !password)
    problem = `${email.passwordEnv} (notifications.email.passwordEnv) is not set on the worker`;
  else if (email.usernameEnv && !username)
    problem = `${email.usernameEnv} (notifications.email.usernameEnv) is not set on the worker`;
  let ca: Buffer | undefined;
  if (!problem && email.caFile) {
    try {
      ca = readFileSync(email.caFile);
    } catch (err) {
      problem = `notifications.email.caFile ${email.caFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
    }
  }
  const auth = username && password ? { user: username, pass: password } : undefined;
  return {
    name: 'email',
    secrets: password ? [password] : [],
    prepare(event, opts) {
      const message = emailMessage(event, opts);
      if (problem) {
        const refusal = { error: problem, transient: false };
        return { attempt: () => Promise.resolve(refusal) };
      }
      return smtpDelivery(transportOptions(email, settings, auth, ca), email, message, event);
    },
  };
};
