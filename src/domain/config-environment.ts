/**
 * One environment of the config (`environments.<name>`): its namespace, who
 * may steer its deployments and how they prove it (approvals), what a
 * deployment's input may not lower (policy), and the top-level sections it
 * sets differently (its cluster, database, bucket, metrics, URLs...).
 */
import { z } from 'zod';
import { dnsName, duration, url } from './config-fields';
import { freezeSchema } from './config-freeze';

const identity = z
  .string()
  .regex(
    /^[\p{L}\p{N}._@+\- ]{1,128}$|^group:[\p{L}\p{N}._@+\-/ ]{1,128}$/u,
    'an identity such as alice@example.com, or group:<name>',
  );

/** How steering messages are verified (docs/operations.md "Approvals"). */
const approvalsSchema = z
  .strictObject({
    /** none: names are taken as typed (the demo); ssh: SSH signatures; oidc: ID tokens from the team's issuer. */
    verify: z.enum(['none', 'ssh', 'oidc']).default('none'),
    /** Who may approve, abort, pause, resume and promote; empty: anyone (anyone verified, with ssh or oidc). */
    approvers: z.array(identity).max(100).default([]),
    /** Distinct people each gate and a database restore need. */
    required: z.number().int().min(1).max(10).default(1),
    /** Whether the person who requested a deployment may approve it. */
    allowSelfApproval: z.boolean().default(false),
    /** A canary paused longer than this aborts to stable. */
    maxPause: duration('approvals maxPause', 60_000).default(4 * 3_600_000),
    ssh: z
      .strictObject({
        /** An allowed_signers file (ssh-keygen(1) "ALLOWED SIGNERS"), the format git uses for signed commits. */
        allowedSigners: z.string().min(1).max(1024),
      })
      .optional(),
    oidc: z
      .strictObject({
        issuer: z.string().url('the issuer URL, exactly as the tokens name it'),
        audience: z.string().min(1).max(256),
        /** The issuer's keys: a JWKS file, or its jwks_uri. */
        jwksFile: z.string().min(1).max(1024).optional(),
        jwksUrl: url.optional(),
        /** The claim that names the person. */
        identityClaim: z.string().min(1).max(64).default('email'),
        /** A claim listing the person's groups, for `group:<name>` approvers. */
        groupsClaim: z.string().min(1).max(64).optional(),
        /** Tokens issued longer ago than this are refused. */
        maxTokenAge: duration('oidc maxTokenAge', 60_000, 24 * 3_600_000).default(60 * 60_000),
        /** Require the token's nonce claim to be the hash of the signed statement (binds a token to one message). */
        requireNonce: z.boolean().default(false),
      })
      .refine((o) => (o.jwksFile === undefined) !== (o.jwksUrl === undefined), {
        message: 'give exactly one of jwksFile or jwksUrl',
        path: ['jwksFile'],
      })
      .optional(),
  })
  .refine((a) => a.verify !== 'ssh' || a.ssh, { message: 'verify: ssh needs ssh.allowedSigners', path: ['ssh'] })
  .refine((a) => a.verify !== 'oidc' || a.oidc, {
    message: 'verify: oidc needs oidc.issuer, oidc.audience and oidc.jwksFile or jwksUrl',
    path: ['oidc'],
  })
  .refine(
    (a) =>
      a.approvers.length === 0 || a.approvers.some((x) => x.startsWith('group:')) || a.approvers.length >= a.required,
    {
      message: 'required is more than the number of approvers: no gate could ever open',
      path: ['required'],
    },
  );

export const STRATEGIES = ['rolling', 'canary', 'blue-green'] as const;

/**
 * What the requester of a deployment may not lower (domain/policy.ts): the
 * input can only tighten the config. Safe by default: a backup and the
 * migrations are required, and the strategies default to those at least as
 * safe as rollout.strategy.
 */
const policySchema = z
  .strictObject({
    /** `optional`: the input's `backup: false` may skip the backup. */
    backup: z.enum(['required', 'optional']).default('required'),
    /** `optional`: the input's `migrate: false` may skip the migrations. */
    migrations: z.enum(['required', 'optional']).default('required'),
    /** Strategies the input may choose; default: any when rollout.strategy is rolling, else canary and blue-green. */
    strategies: z
      .array(z.enum(STRATEGIES))
      .min(1)
      .max(3)
      .refine((s) => new Set(s).size === s.length, 'strategies must not repeat')
      .optional(),
  })
  .prefault({});

/**
 * The top-level sections an environment may set differently (environment-config.ts):
 * every outside system a deployment touches, and how it rolls out.
 */
export const SECTIONS = [
  'kubernetes',
  'database',
  'backup',
  'analysis',
  'verification',
  'redis',
  'traffic',
  'rollout',
  'notifications',
] as const;
export type Section = (typeof SECTIONS)[number];

/** Taken as given here; checked merged over the top level (environment-config.ts parseOverrides). */
const override = z.record(z.string(), z.unknown()).optional();

/**
 * What a release must show before it is promoted into this environment
 * (workflows/release.ts): a soak in the stage before, its analysis passing
 * over that soak, and the approvals this environment requires.
 */
const promotionSchema = z
  .strictObject({
    /** The least time the release runs in the stage before this one. */
    soak: duration('promotion soak', 1000).default(60 * 60_000),
    /** How often the stage before is analysed during the soak (its analysis.metrics against its thresholds). */
    analysisInterval: duration('promotion analysisInterval', 1000, 24 * 3_600_000).default(5 * 60_000),
    /** Whether approvals.required people approve the promotion (after the soak). */
    approval: z.boolean().default(true),
    /** A promotion not approved within this is not made (the release ends, aborted). */
    approvalTimeout: duration('promotion approvalTimeout', 60_000).default(24 * 3_600_000),
  })
  .prefault({});

/**
 * The clusters an environment spans, in rollout order (e.g. region-a, then
 * region-b): each is a wave of the whole service order. A cluster's
 * `kubernetes` is deep-merged over the environment's (its kubeconfig and
 * context); the first may set none and use the environment's own.
 */
const clusterSchema = z.strictObject({
  name: dnsName,
  kubernetes: z
    .strictObject({
      kubeconfig: z.string().min(1).max(4096).optional(),
      context: z.string().min(1).max(253).optional(),
    })
    .prefault({}),
});

/** What happens between two clusters: a pause (time to watch the first region) and, optionally, an approval. */
const betweenClustersSchema = z
  .strictObject({
    pause: duration('betweenClusters pause', 0).default(0),
    approval: z.boolean().default(false),
    /** An approval not given within this ends the deployment, rolled back. */
    approvalTimeout: duration('betweenClusters approvalTimeout', 60_000).default(24 * 3_600_000),
  })
  .prefault({});

export const environmentSchema = z.strictObject({
  namespace: dnsName,
  clusters: z
    .array(clusterSchema)
    .min(1)
    .max(20)
    .refine((c) => new Set(c.map((x) => x.name)).size === c.length, 'cluster names must be unique')
    .optional(),
  betweenClusters: betweenClustersSchema,
  promotion: promotionSchema,
  /** When deployments to this environment wait (or are refused): configured windows (domain/freeze-window.ts). */
  freeze: freezeSchema,
  ...(Object.fromEntries(SECTIONS.map((s) => [s, override])) as Record<Section, typeof override>),
  approvals: approvalsSchema.default({
    verify: 'none',
    approvers: [],
    required: 1,
    allowSelfApproval: false,
    maxPause: 4 * 3_600_000,
  }),
  policy: policySchema,
});
