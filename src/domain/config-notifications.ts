/**
 * The `notifications` section: the channels (Slack, a generic webhook,
 * Microsoft Teams, e-mail over SMTP), how long a receiver is retried, and
 * which kinds of event go to which channel. An environment may set any of it
 * differently (`environments.<name>.notifications`), held to the same rules.
 * Secrets stay out: webhook URLs and the SMTP password come from the
 * variables these fields name.
 */
import { z } from 'zod';
import { duration, envName } from './config-fields';
import { NOTIFICATION_KINDS } from './notification';
import { KIND_LIST, NOTIFICATION_CHANNELS, routeProblems } from './notification-routes';

/** A bare address (no display name, no line breaks): it goes into the envelope and the From/To headers as is. */
const address = z.email('an e-mail address such as oncall@example.com');

const host = z
  .string()
  .regex(
    /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$|^\[[0-9a-fA-F:.]+\]$/,
    'a host name or address such as smtp.example.com',
  );

export const emailSchema = z
  .strictObject({
    host,
    /** Default: 465 with `secure`, else 587. */
    port: z.number().int().min(1).max(65535).optional(),
    /** Implicit TLS from the first byte (port 465). */
    secure: z.boolean().default(false),
    /** Refuse to send unless the server upgrades the connection with STARTTLS. */
    requireTLS: z.boolean().default(false),
    usernameEnv: envName.optional(),
    passwordEnv: envName.optional(),
    /** PEM file of the CA that signed the server's certificate, when it is not a public one. */
    caFile: z.string().min(1).max(4096).optional(),
    from: address,
    to: z
      .array(address)
      .min(1)
      .max(50)
      .refine((t) => new Set(t.map((a) => a.toLowerCase())).size === t.length, 'recipients must not repeat'),
  })
  .refine((e) => (e.usernameEnv === undefined) === (e.passwordEnv === undefined), {
    message: 'give both usernameEnv and passwordEnv, or neither',
    path: ['passwordEnv'],
  })
  .refine((e) => e.passwordEnv === undefined || e.secure || e.requireTLS, {
    message: 'a password needs secure: true or requireTLS: true, or it could cross the network in clear',
    path: ['passwordEnv'],
  })
  .refine((e) => !(e.secure && e.requireTLS), {
    message: 'secure (implicit TLS) and requireTLS (STARTTLS) exclude each other: give one',
    path: ['requireTLS'],
  });

const routeSchema = z.strictObject({
  events: z
    .array(z.enum(NOTIFICATION_KINDS, { error: () => `an event kind: ${KIND_LIST}` }))
    .min(1)
    .max(NOTIFICATION_KINDS.length)
    .refine((e) => new Set(e).size === e.length, 'events must not repeat'),
  channels: z
    .array(z.enum(NOTIFICATION_CHANNELS, { error: () => `a channel: ${NOTIFICATION_CHANNELS.join(', ')}` }))
    .min(1)
    .max(NOTIFICATION_CHANNELS.length)
    .refine((c) => new Set(c).size === c.length, 'channels must not repeat'),
});

export const notificationsSchema = z
  .strictObject({
    slackWebhookEnv: envName.optional(),
    webhookEnv: envName.optional(),
    /** A Microsoft Teams incoming-webhook URL (a Teams Workflows or connector webhook). */
    teamsWebhookEnv: envName.optional(),
    email: emailSchema.optional(),
    timeout: duration('webhook timeout').default(5000),
    /** How long a receiver that is down, slow or answers 429/5xx (SMTP: 4xx) is retried (inside one activity attempt, per receiver, so the others get no duplicate). */
    retryFor: duration('webhook retry window', 0, 15_000).default(10_000),
    /** Temporal namespace, for the link to the workflow in the Temporal UI. */
    temporalNamespace: z.string().min(1).max(255).default('default'),
    /** Which kinds of event go to which channels; none: every configured channel gets every event. */
    routes: z.array(routeSchema).min(1).max(50).optional(),
  })
  .superRefine((n, ctx) => {
    for (const p of routeProblems(n)) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
  })
  .prefault({});

export type NotificationsConfig = z.output<typeof notificationsSchema>;
export type EmailConfig = z.output<typeof emailSchema>;
