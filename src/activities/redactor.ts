/**
 * The worker's one redactor. Command output (pre-deployment checks, migration
 * tools, pg_dump, docker builds) and error messages are written by programs
 * that may print anything they can see, and what an activity throws ends up
 * in the workflow history (kept for the namespace's retention, in clear text:
 * failure messages are not encrypted by the payload codec), the status, the
 * summary and the notifications. So every secret the worker holds is
 * replaced by `***` before any of it leaves an activity.
 *
 * The secrets are found, not listed by hand: every variable an `*Env` field
 * of the config names, the variables a check or migration command is given
 * (`passEnv`), the `${env:NAME}` values of smoke-check bodies, the codec and
 * Temporal keys, the kubeconfig's credentials, and any variable whose name
 * says it is secret. Built once per worker in deps.ts.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { readFileSync } from 'node:fs';
import type { DeployConfig } from '../domain/config';
import { environmentConfig } from '../domain/environment-config';
import { redact } from '../domain/verification';

/** Shorter values would garble ordinary output when replaced (and are not worth the name "secret"). */
export const MIN_REDACTED_LENGTH = 6;

/** Variables whose names say they hold a secret, whatever the config says. */
const SECRET_NAME_RE = /(PASSWORD|PASSWD|SECRET|TOKEN|WEBHOOK|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_KEY)/i;

/** The worker's own secrets that the config does not name. */
const WORKER_SECRET_VARS = [
  'DEPLOY_CODEC_KEY',
  'DEPLOY_CODEC_AUTH_TOKEN',
  'TEMPORAL_API_KEY',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'PGPASSWORD',
];

/** Where a ServiceAccount token is mounted when the worker runs in a pod (loadFromCluster reads it per request). */
const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

const ENV_PLACEHOLDER_RE = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

export interface Redactor {
  /** The text with every secret, and any URL's password, replaced by ***. */
  text(text: string): string;
  /** A copy of a JSON-like value with every string redacted. */
  value<T>(value: T): T;
  /** The same failure with its message, details and stack redacted (type and retryability kept). */
  error(err: unknown): unknown;
}

/** Every `*Env` field of the config, wherever it is: what a new field names is covered without a change here. */
function envFieldNames(value: unknown, out: Set<string>): void {
  if (Array.isArray(value)) {
    for (const v of value) envFieldNames(v, out);
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k.endsWith('Env') && typeof v === 'string' && v) {
        out.add(v);
      } else if (k === 'passEnv' && Array.isArray(v)) {
        for (const n of v) if (typeof n === 'string') out.add(n);
      } else {
        envFieldNames(v, out);
      }
    }
  }
}

function urlPassword(value: string): string | undefined {
  try {
    const p = new URL(value).password;
    return p ? decodeURIComponent(p) : undefined;
  } catch {
    return undefined;
  }
}

function codecKeys(list: string | undefined): string[] {
  return (list ?? '')
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .map((e) => (e.includes(':') ? e.slice(e.indexOf(':') + 1) : e));
}

function kubeCredentials(kc: KubeConfig | undefined): string[] {
  const user = kc?.getCurrentUser();
  const found = [user?.token, user?.password, user?.keyData];
  try {
    found.push(readFileSync(IN_CLUSTER_TOKEN, 'utf8').trim());
  } catch {
    // not in a pod
  }
  return found.filter((v): v is string => !!v);
}

/**
 * The secret values the worker holds, from its config, its environment and
 * its kubeconfig. Database and Redis URLs count by their password only (the
 * rest of the URL says where, which a failure should keep); a webhook URL is
 * a secret whole, and so is its path on its own.
 */
export function workerSecretValues(config: DeployConfig, env: NodeJS.ProcessEnv, kc?: KubeConfig): string[] {
  const names = new Set<string>(WORKER_SECRET_VARS);
  envFieldNames(config, names);
  for (const check of config.verification.smoke)
    for (const m of JSON.stringify(check.body ?? {}).matchAll(ENV_PLACEHOLDER_RE)) names.add(m[1]);
  for (const name of Object.keys(env)) if (SECRET_NAME_RE.test(name)) names.add(name);
  const urls = new Set([config.database.urlEnv, config.redis.urlEnv]);
  const values: string[] = [];
  for (const name of names) {
    const v = env[name];
    if (!v) continue;
    if (urls.has(name)) {
      const p = urlPassword(v);
      if (p) values.push(p);
      continue;
    }
    if (name === 'DEPLOY_CODEC_OLD_KEYS') {
      values.push(...codecKeys(v));
      continue;
    }
    values.push(v);
    // A webhook's path is its credential: it must not appear on its own either.
    if (/^https?:\/\//i.test(v)) {
      const p = urlPassword(v);
      if (p) values.push(p);
      try {
        const path = new URL(v).pathname;
        if (path.length > 8) values.push(path);
      } catch {
        // not a URL after all
      }
    }
  }
  values.push(...codecKeys(env.DEPLOY_CODEC_OLD_KEYS), ...kubeCredentials(kc));
  return [...new Set(values)].filter((v) => v.length >= MIN_REDACTED_LENGTH);
}

/** Each secret as it appears in output: plain, URL-encoded and JSON-escaped. */
function forms(values: readonly string[]): string[] {
  const all = new Set<string>();
  for (const v of values) {
    all.add(v);
    all.add(encodeURIComponent(v));
    all.add(JSON.stringify(v).slice(1, -1));
  }
  return [...all];
}

function redactDeep(value: unknown, text: (s: string) => string): unknown {
  if (typeof value === 'string') return text(value);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, text));
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, text)]));
  return value;
}

/** A redactor for these secret values (plus the password of any URL in the text). */
export function createRedactor(values: readonly string[]): Redactor {
  const needles = forms(values.filter((v) => v.length >= MIN_REDACTED_LENGTH));
  const text = (s: string): string => redact(s, needles);
  return {
    text,
    value: <T>(v: T) => redactDeep(v, text) as T,
    error(err: unknown): unknown {
      if (err instanceof CancelledFailure) return err;
      if (err instanceof ApplicationFailure) {
        const out = ApplicationFailure.create({
          type: err.type ?? undefined,
          message: text(err.message),
          nonRetryable: err.nonRetryable ?? undefined,
          details: err.details ? (redactDeep([...err.details], text) as unknown[]) : undefined,
          ...(err.nextRetryDelay != null ? { nextRetryDelay: err.nextRetryDelay } : {}),
        });
        return out;
      }
      if (err instanceof Error) {
        const message = text(err.message);
        if (message === err.message && !(err.stack && text(err.stack) !== err.stack)) return err;
        const out = new Error(message);
        out.name = err.name;
        out.stack = err.stack ? text(err.stack) : undefined;
        return out;
      }
      return typeof err === 'string' ? text(err) : err;
    },
  };
}

/** The worker's redactor: its secrets found from the config, the environment and the kubeconfig. */
export function redactorFor(
  config: DeployConfig,
  env: NodeJS.ProcessEnv,
  kubeConfigs?: KubeConfig | readonly KubeConfig[],
): Redactor {
  // Every environment's: a staging database URL or cluster token is as secret as production's.
  const kcs: readonly KubeConfig[] =
    kubeConfigs === undefined ? [] : kubeConfigs instanceof Array ? kubeConfigs : [kubeConfigs];
  const values = Object.keys(config.environments).flatMap((name) =>
    workerSecretValues(environmentConfig(config, name), env),
  );
  for (const kc of kcs) values.push(...workerSecretValues(config, env, kc));
  if (kcs.length === 0) values.push(...workerSecretValues(config, env));
  return createRedactor([...new Set(values)]);
}

type AnyActivity = (...args: never[]) => Promise<unknown>;

/**
 * Every activity with its failures redacted on the way out: the last line of
 * defence for a message built from output or an error no adapter redacted,
 * before the SDK logs it and records it in the history.
 */
export function withRedactedFailures<T extends { [K in keyof T]: AnyActivity }>(activities: T, redactor: Redactor): T {
  return Object.fromEntries(
    Object.entries<AnyActivity>(activities).map(([name, fn]) => [
      name,
      async (...args: never[]) => {
        try {
          return await fn(...args);
        } catch (err) {
          throw redactor.error(err);
        }
      },
    ]),
  ) as T;
}
