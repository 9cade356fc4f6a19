/** Field types the config schema (config.ts, config-environment.ts) shares: names, durations, URLs. */
import { z } from 'zod';
import { formatDuration } from './duration';
import { durationField } from './duration-field';

const NAME_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const ENV_NAME_RE = /^[A-Z_][A-Z0-9_]{0,127}$/;

export const registryHost = z
  .string()
  .regex(/^[a-zA-Z0-9.-]+(:\d{1,5})?(\/[a-z0-9._/-]+)?$/, 'a registry host such as 127.0.0.1:5000');
export const dnsName = z.string().regex(NAME_RE, 'a lowercase DNS label (a-z, 0-9, "-", at most 63 characters)');
export const envName = z.string().regex(ENV_NAME_RE, 'an environment variable name such as SMOKE_PASSWORD');
const MAX_DURATION_MS = 30 * 24 * 3_600_000;
/** A duration field; below `minMs` or above `maxMs` (30 days by default) is refused, so a typo cannot make a zero soak or an endless wait. */
export const duration = (what: string, minMs = 0, maxMs = MAX_DURATION_MS) =>
  durationField(what, minMs, maxMs, (min, max) => `${formatDuration(min)} and ${formatDuration(max)}`);
export const url = z
  .string()
  .regex(/^https?:\/\/[^\s/$.?#][^\s]*$/i, 'an absolute http(s) URL such as http://127.0.0.1:9090');

/** A command as an argument array (no shell sees it). */
export const command = z
  .array(z.string().min(1).max(4096))
  .min(1, 'a command as an argument array, e.g. [npm, run, test]')
  .max(256);

/**
 * A ConfigMap name (a DNS subdomain) short enough to take the snapshot
 * suffix `-<10 hex>` and stay within the apiserver's 253 characters.
 */
export const configMapName = z
  .string()
  .max(242, 'at most 242 characters, so that `-<hash10>` still fits')
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    'a Kubernetes object name such as auth-service-config (lowercase a-z, 0-9, "-" and ".")',
  );

/**
 * A file or directory of the release repository: relative, "/"-separated,
 * with no "..", "." or empty segment, so it can never leave the checkout.
 */
export const repoPath = z
  .string()
  .min(1)
  .max(1024)
  .refine(
    (p) =>
      !p.startsWith('/') &&
      !p.includes('\\') &&
      !p.includes('\0') &&
      p.split('/').every((s) => s && s !== '.' && s !== '..'),
    'a relative path inside the release repository, such as config/auth-service (no "..", no leading "/")',
  );

/** One ConfigMap of a service whose content comes from the release repository at the deployed commit. */
export const configMapSource = z.strictObject({
  /** The name the Deployment's pod template references (e.g. auth-service-config). */
  name: configMapName,
  /** A file (one key, its basename) or a directory (one key per regular file directly in it). */
  path: repoPath,
});

/** One smoke check of `verification.smoke[]`: a request to the release and the answer it expects. */
export const smokeCheckSchema = z.strictObject({
  name: z.string().min(1).max(128),
  method: z.enum(['GET', 'POST', 'PUT', 'DELETE', 'HEAD']).default('GET'),
  path: z.string().startsWith('/').max(2048),
  /** JSON body; string values `${env:NAME}` are filled from the worker's environment at run time. */
  body: z.record(z.string(), z.unknown()).optional(),
  expectStatus: z.number().int().min(100).max(599).default(200),
  /** Store a value of the JSON response (dot path) under a name for later checks, e.g. data.token. */
  capture: z.record(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/), z.string().max(256)).optional(),
  /** Send `Authorization: Bearer <captured value>`. */
  bearer: z.string().optional(),
  timeout: duration('smoke timeout').default(5000),
});
