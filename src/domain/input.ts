/**
 * Workflow inputs as people type them (Temporal UI, deployctl, CI). Every
 * field but the version is optional so that `{"version":"1.0.1"}` starts a
 * complete deployment with the config's defaults. Checked at the edge: by
 * deployctl before starting and by the resolvePlan activity before any side
 * effect, with one message naming the field.
 */
import { z } from 'zod';
import { durationField } from './duration-field';
import { parseVersion, BUMPS } from './version';
import { workflowIdProblem } from './workflow-id';

const SERVICE_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const MAX_SOAK_MS = 24 * 3_600_000;
const MAX_APPROVAL_MS = 7 * 24 * 3_600_000;

const version = z.string().transform((v, ctx) => {
  try {
    return parseVersion(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

const boundedDuration = (what: string, minMs: number, maxMs: number) =>
  durationField(what, minMs, maxMs, (min, max) => `${min}ms and ${max / 3_600_000}h`);

const steps = z
  .array(
    z
      .number()
      .int('steps must be whole percentages')
      .min(1, 'steps must be at least 1')
      .max(100, 'steps cannot exceed 100'),
  )
  .min(1)
  .max(20)
  .refine((s) => s.every((w, i) => i === 0 || w > s[i - 1]), 'steps must increase strictly, e.g. [5, 25, 50, 100]')
  .refine((s) => s[s.length - 1] === 100, 'the last step must be 100');

export const canaryOverridesSchema = z
  .object({
    steps: steps.optional(),
    soak: boundedDuration('soak', 1000, MAX_SOAK_MS).optional(),
    analysisInterval: boundedDuration('analysisInterval', 1000, MAX_SOAK_MS).optional(),
    approval: z.enum(['none', 'before-full', 'every-step']).optional(),
    approvalTimeout: boundedDuration('approvalTimeout', 1000, MAX_APPROVAL_MS).optional(),
  })
  .strict();

export const blueGreenOverridesSchema = z
  .object({
    monitor: boundedDuration('monitor', 1000, MAX_SOAK_MS).optional(),
    approval: z.boolean().optional(),
    approvalTimeout: boundedDuration('approvalTimeout', 1000, MAX_APPROVAL_MS).optional(),
  })
  .strict();

const requestedBy = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[\p{L}\p{N}._@+\- ]+$/u, 'letters, digits, spaces and . _ @ + -');
const environment = z.string().regex(SERVICE_RE, 'an environment name such as production');

export const deployInputSchema = z
  .object({
    version: version.optional(),
    bump: z.enum(BUMPS as [string, ...string[]]).optional(),
    environment: environment.optional(),
    strategy: z.enum(['rolling', 'canary', 'blue-green']).optional(),
    services: z
      .array(z.string().regex(SERVICE_RE, 'service names are lowercase DNS labels'))
      .min(1)
      .max(100)
      .refine((s) => new Set(s).size === s.length, 'services must not repeat')
      .optional(),
    backup: z.boolean().optional(),
    migrate: z.boolean().optional(),
    dryRun: z.boolean().optional(),
    requestedBy: requestedBy.optional(),
    /** Proof that requestedBy sent it (deployctl adds it); checked by the worker where the environment verifies senders. */
    requestProof: z.unknown().optional(),
    allowImageOverwrite: z.boolean().optional(),
    canary: canaryOverridesSchema.optional(),
    blueGreen: blueGreenOverridesSchema.optional(),
    /**
     * Set only by a release for its stage: the release's commit and images,
     * deployed without a new tag or build. The worker confirms each against the
     * release workflow, the tag and the registry before it is used.
     */
    release: z
      .strictObject({
        workflowId: z.string().min(1).max(200),
        commit: z.string().regex(/^[0-9a-f]{40}$/, 'a full commit hash'),
        images: z.record(z.string().regex(SERVICE_RE), z.string().min(1).max(512)),
        requestedVia: z.enum(['none', 'ssh', 'oidc']),
      })
      .optional(),
  })
  .strict()
  .refine((i) => !i.release || i.version !== undefined, {
    message: "a release stage deploys the release's version",
    path: ['version'],
  })
  .refine((i) => (i.version === undefined) !== (i.bump === undefined), {
    message: 'give exactly one of "version" (e.g. "1.0.1") or "bump" (patch, minor or major)',
    path: ['version'],
  });

export type DeployInput = z.input<typeof deployInputSchema>;
export type CheckedDeployInput = z.output<typeof deployInputSchema>;

/** A release promoted through the stages (workflows/release.ts): the Temporal UI's `{"version":"1.0.1"}` is enough. */
export const releaseInputSchema = z
  .object({
    version,
    /** The stages to go through, in the configured order (default: release.stages). */
    through: z
      .array(environment)
      .min(1)
      .max(20)
      .refine((s) => new Set(s).size === s.length, 'through must not repeat an environment')
      .optional(),
    requestedBy: requestedBy.optional(),
    /** Proof that requestedBy sent it, checked against every stage's verifier (deployctl adds it). */
    requestProof: z.unknown().optional(),
  })
  .strict();

export type ReleaseInput = z.input<typeof releaseInputSchema>;
export type CheckedReleaseInput = z.output<typeof releaseInputSchema>;

export const rollbackInputSchema = z
  .object({
    environment: environment.optional(),
    toVersion: version.optional(),
    toRevision: z.number().int().min(1).optional(),
    services: z.array(z.string().regex(SERVICE_RE)).min(1).max(100).optional(),
    restoreDatabase: z.boolean().optional(),
    backupKey: z
      .string()
      .min(1)
      .max(1024)
      .regex(/^[A-Za-z0-9._\-/]+$/, 'an S3 key')
      .optional(),
    reason: z.string().max(1000).optional(),
    requestedBy: requestedBy.optional(),
    requestProof: z.unknown().optional(),
  })
  .strict()
  .refine((i) => !(i.toVersion && i.toRevision), {
    message: 'give at most one of toVersion or toRevision',
    path: ['toVersion'],
  });

export type RollbackInput = z.input<typeof rollbackInputSchema>;
export type CheckedRollbackInput = z.output<typeof rollbackInputSchema>;

export class InputError extends Error {
  override name = 'InputError';
}

/** Parses with a schema and turns the first issue into one readable line. */
export function checkInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const field = issue.path.length ? issue.path.join('.') : '(input)';
  const msg =
    issue.code === 'unrecognized_keys'
      ? `unknown field(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`
      : issue.message;
  throw new InputError(`invalid ${what} input: ${field}: ${msg}`);
}

export type CanaryOverrides = z.input<typeof canaryOverridesSchema>;

/** `id` when it fits the workflow id rule (domain/workflow-id.ts); InputError naming `field` otherwise. */
export function checkWorkflowId(
  id: string,
  field = 'workflow id',
  o: { lock?: boolean; freeze?: boolean } = {},
): string {
  const problem = workflowIdProblem(id, o);
  if (problem) throw new InputError(`${field}: ${problem}`);
  return id;
}
