/**
 * The worker's configuration (deploy.config.yaml): what the platform is made
 * of and how it is deployed. Only the worker reads it; workflows receive the
 * resolved plan from an activity so that config is fixed in history.
 *
 * Secrets never live here: fields ending in `Env` name the environment
 * variable that holds the secret, and endpoints may use `${VAR}` references.
 */
import { z } from 'zod';
import { METRICS_PROVIDERS } from './analysis';
import { stepWeights, TRAFFIC_PROVIDERS } from './plan';
import {
  command,
  configMapSource,
  dnsName,
  duration,
  envName,
  registryHost,
  smokeCheckSchema,
  url,
} from './config-fields';
import {
  graphiteSettings,
  influxdbSettings,
  metricSchema,
  providerSettingsProblems,
  compareWindowProblems,
  webSettings,
} from './config-metrics';
import { migrationsSchema } from './config-migrations';
import { auditSchema } from './config-audit';
import { backupSchema } from './config-backup';
import { IO_METRICS_ADDRESS, MAX_CACHED_WORKFLOWS, METRICS_ADDRESS, temporalSchema } from './config-temporal';
import { orderWaves } from './waves';
import { notificationsSchema } from './config-notifications';

export { migrationsSchema };
import { environmentSchema, SECTIONS, STRATEGIES, type Section } from './config-environment';
import { environmentProblems, parseOverrides, sharingProblems } from './environment-config';

export { STRATEGIES };
export { IO_METRICS_ADDRESS, MAX_CACHED_WORKFLOWS, METRICS_ADDRESS };

const weight = z.number().int().min(1).max(100);
/** An HTTP header name (RFC 7230 token, as Gateway API and ingress-nginx accept it) and an exact value. */
const canaryHeader = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9!#$%&'*+\-.^_`|~]{1,256}$/, 'an HTTP header name such as x-canary'),
  value: z
    .string()
    .min(1)
    .max(4096)
    .regex(/^[\x20-\x7e]+$/, 'printable ASCII'),
});
/** A step with route options: `{weight: 25, header: {name: x-canary, value: always}}`, `{weight: 50, mirror: 10}`. */
const routedStep = z.strictObject({
  weight,
  header: canaryHeader.optional(),
  /** Percent of the stable traffic copied to the canary during this step. */
  mirror: z.number().int().min(1).max(100).optional(),
});
const weightSteps = z
  .array(z.union([weight, routedStep]))
  .min(1)
  .max(20)
  .refine((s) => stepWeights(s).every((w, i, all) => i === 0 || w > all[i - 1]), 'steps must increase strictly')
  .refine((s) => stepWeights(s)[s.length - 1] === 100, 'the last step must be 100');

export const serviceSchema = z.strictObject({
  name: dnsName,
  image: z.string().regex(/^[a-z0-9]+([._/-][a-z0-9]+)*$/, 'an image repository name such as ai-saas-auth-service'),
  context: z.string().min(1).max(1024),
  dockerfile: z.string().min(1).max(1024).default('Dockerfile'),
  deployment: dnsName.optional(),
  container: dnsName.optional(),
  /** Services that must be rolled out and healthy before this one starts (domain/waves.ts); none: the first wave. */
  dependsOn: z.array(dnsName).max(100).default([]),
  /**
   * ConfigMaps versioned with the release: each deployment snapshots them
   * from the release repository at its commit into immutable, content-named
   * copies and points the pod template at those, so a rollback brings the
   * old configuration back with the old images.
   */
  configMaps: z
    .array(configMapSource)
    .max(32)
    .default([])
    .refine((c) => new Set(c.map((x) => x.name)).size === c.length, 'configMaps names must be unique'),
});

const baseSchema = z.strictObject({
  project: dnsName,
  defaultEnvironment: dnsName.default('production'),
  environments: z
    .record(dnsName, environmentSchema)
    .refine((e) => Object.keys(e).length > 0, 'at least one environment'),
  /** One release promoted through environments (deployctl release): the stages in order; default every environment in the order written. */
  release: z
    .strictObject({
      stages: z
        .array(dnsName)
        .min(1)
        .max(20)
        .refine((s) => new Set(s).size === s.length, 'stages must not repeat')
        .optional(),
      /** Where quarantined versions are recorded, in the top-level backup bucket (shared by every environment). */
      quarantinePrefix: z
        .string()
        .regex(/^([A-Za-z0-9._-]+\/)+$/, 'a key prefix ending in "/", such as quarantine/')
        .default('quarantine/'),
    })
    .prefault({}),
  temporal: temporalSchema,
  git: z.strictObject({
    /** Path of the release checkout on the worker's machine. */
    checkout: z.string().min(1).max(4096),
    remote: z.string().min(1).max(100).default('origin'),
    branch: z.string().min(1).max(255).default('main'),
  }),
  registry: z.strictObject({
    /** host[:port][/path], e.g. 127.0.0.1:5000 or ghcr.io/acme */
    host: registryHost,
    /**
     * Registries earlier releases were deployed from (one the team moved away
     * from, or the same registry under another name): a rollback may return a
     * Deployment to their images of the configured image names. No other.
     */
    previousHosts: z.array(registryHost).max(10).default([]),
    insecure: z.boolean().default(false),
    usernameEnv: envName.optional(),
    passwordEnv: envName.optional(),
  }),
  services: z
    .array(serviceSchema)
    .min(1)
    .max(100)
    .refine((s) => new Set(s.map((x) => x.name)).size === s.length, 'service names must be unique')
    .superRefine((s, ctx) => {
      const order = orderWaves(s);
      if (!order.ok) ctx.addIssue({ code: 'custom', message: order.error });
    }),
  build: z
    .strictObject({
      concurrency: z.number().int().min(1).max(32).default(4),
      /** Allow pushing a tag that already exists with another digest. */
      allowOverwrite: z.boolean().default(false),
      timeout: duration('build timeout').default(30 * 60_000),
    })
    .prefault({}),
  preDeploymentChecks: z
    .array(
      z.strictObject({
        name: z.string().min(1).max(128),
        command,
        /** Non-secret variables for the check (e.g. NODE_ENV); CI=true is always set. */
        env: z.record(envName, z.string().max(4096)).default({}),
        /** Variables copied from the worker's environment (e.g. NPM_TOKEN); besides PATH, HOME and the locale, nothing else is passed. */
        passEnv: z.array(envName).max(64).default([]),
        timeout: duration('check timeout').default(10 * 60_000),
      }),
    )
    .max(50)
    .default([]),
  database: z.strictObject({
    name: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/, 'a PostgreSQL database name'),
    /** Connection URL without a password; the password comes from PGPASSWORD or the URL in DATABASE_URL. */
    urlEnv: envName.default('DATABASE_URL'),
    verifyTables: z
      .array(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]{0,62}$/))
      .max(100)
      .default([]),
    /**
     * How the release's migrations run: each `mode` is one migrator
     * (activities/database/migrators/, built by its one factory), and this
     * union is the one place their names and settings are declared.
     */
    migrations: migrationsSchema,
    /** Growth in connections during verification above which the platform check fails. */
    maxConnectionGrowth: z.number().int().min(0).default(20),
    /** Directory of pg_dump, pg_restore and psql (not older than the server); empty means PATH. */
    clientBin: z.string().max(4096).optional(),
    /** Longest wait for a table lock (pg_dump's --lock-wait-timeout, the restore's lock_timeout); a busy database is retried later. */
    lockTimeout: duration('database lockTimeout').default(60_000),
    /** Longest wait for another migrator to finish before this one gives up (and is retried). */
    migrationLockTimeout: duration('migrationLockTimeout').default(10 * 60_000),
    /** Another environment may use the same database (otherwise refused at load: it would back up and migrate it). */
    shared: z.boolean().default(false),
  }),
  backup: backupSchema,
  kubernetes: z
    .strictObject({
      /** Path of the kubeconfig; empty means the standard loading rules (KUBECONFIG, in-cluster). */
      kubeconfig: z.string().max(4096).optional(),
      /** A context of that kubeconfig; empty means its current-context. */
      context: z.string().min(1).max(253).optional(),
      /** Another environment may deploy to the same cluster and namespace (otherwise refused at load). */
      shared: z.boolean().default(false),
      rolloutTimeout: duration('rolloutTimeout', 1000).default(10 * 60_000),
      /** Blue-green: how long the old colour stays (scaled down) before it is deleted. */
      deleteOldColourAfter: duration('deleteOldColourAfter').default(60 * 60_000),
      /** How often a rollout wait reads the Deployments (kubectl rollout status watches; we poll). */
      pollInterval: duration('pollInterval', 50, 60_000).default(1000),
      /** Each apiserver request; a request that takes longer fails as KubernetesUnavailable and is retried. */
      requestTimeout: duration('requestTimeout').default(15_000),
      /** Log lines of each pod that is not Ready attached to a failed rollout (runbook "Troubleshooting"). */
      diagnosticLogLines: z.number().int().min(0).max(500).default(20),
    })
    .prefault({}),
  traffic: z.strictObject({
    provider: z.enum(TRAFFIC_PROVIDERS).default('istio'),
    /** The service that takes canary traffic (the runbook's api-gateway). */
    service: dnsName,
    virtualService: dnsName.optional(),
    /** gateway-api: the HTTPRoute (gateway.networking.k8s.io/v1) whose backend weights move; default: the service's name. */
    httpRoute: dnsName.optional(),
    /** nginx: the stable Ingress the canary Ingress `<ingress>-canary` copies; default: the service's name. */
    ingress: dnsName.optional(),
    stableSubset: z.string().min(1).max(63).default('stable'),
    canarySubset: z.string().min(1).max(63).default('canary'),
    /** A weight change waits at most this long for its pods (replica counts, canary capacity) before it fails and is retried. */
    stepTimeout: duration('traffic stepTimeout').default(15_000),
  }),
  rollout: z
    .strictObject({
      strategy: z.enum(STRATEGIES).default('canary'),
      canary: z
        .strictObject({
          steps: weightSteps.default([5, 25, 50, 100]),
          soak: duration('canary soak', 1000, 24 * 3_600_000).default(5 * 60_000),
          analysisInterval: duration('analysis interval', 1000, 24 * 3_600_000).default(60_000),
          approval: z.enum(['none', 'before-full', 'every-step']).default('none'),
          approvalTimeout: duration('approval timeout', 1000, 7 * 24 * 3_600_000).default(60 * 60_000),
        })
        .prefault({}),
      blueGreen: z
        .strictObject({
          monitor: duration('blue-green monitoring window', 1000, 24 * 3_600_000).default(5 * 60_000),
          approval: z.boolean().default(false),
          approvalTimeout: duration('approval timeout', 1000, 7 * 24 * 3_600_000).default(60 * 60_000),
          /**
           * The new colour before the switch: a Service (yours, e.g. a copy of the traffic Service
           * without its `version` selector) that prepare points at the new colour, and the URL where it
           * answers. The smoke checks run there before any traffic moves. Without it they run only
           * on the live colour, after the switch.
           */
          preview: z.strictObject({ service: dnsName, url }).optional(),
        })
        .prefault({}),
      /** How long to wait for a database decision after an automatic rollback; on timeout the database is kept. */
      databaseDecisionTimeout: duration('databaseDecisionTimeout', 1000, 7 * 24 * 3_600_000).default(60 * 60_000),
    })
    .prefault({}),
  verification: z.strictObject({
    baseUrl: url,
    healthPath: z.string().startsWith('/').default('/health'),
    timeout: duration('health timeout').default(5000),
    smoke: z.array(smokeCheckSchema).max(100).default([]),
    /** Error lines tolerated in the new pods' logs since the rollout (runbook: `kubectl logs ... | grep -i error`). */
    maxLogErrors: z.number().int().min(0).default(0),
    /** What counts as an error line; matched case-insensitively. */
    logErrorPattern: z
      .string()
      .min(1)
      .max(512)
      .refine((p) => {
        try {
          new RegExp(p, 'i');
          return true;
        } catch {
          return false;
        }
      }, 'a JavaScript regular expression such as \\berror\\b')
      .default('\\berror\\b'),
    /** At most this much of each pod's log is read. */
    logLimitBytes: z.number().int().min(1024).max(50_000_000).default(2_000_000),
    /** Each Kubernetes API call (list pods, read a log). */
    kubernetesTimeout: duration('kubernetes timeout').default(10_000),
  }),
  analysis: z
    .strictObject({
      /** The metrics backend the analysis asks (activities/analysis/); each provider reads its own settings below. */
      provider: z.enum(METRICS_PROVIDERS).default('prometheus'),
      /** The Prometheus provider's base URL (required when provider is prometheus). */
      prometheusUrl: url.optional(),
      /** The influxdb provider: an InfluxDB 1.x server, its database, and the variables holding its credentials. */
      influxdb: influxdbSettings.optional(),
      /** The graphite provider: graphite-web's base URL (its render API). */
      graphite: graphiteSettings.optional(),
      /** The web provider: headers sent with every request, each header's value read from the variable named. */
      web: webSettings.optional(),
      window: z
        .string()
        .regex(/^\d{1,6}[smhd]$/)
        .default('1m'),
      metrics: z.array(metricSchema).min(1).max(50),
      /** Failed measurements tolerated before the analysis fails (0 = the first failure fails). */
      failureLimit: z.number().int().min(0).max(100).default(0),
      /** Consecutive inconclusive measurements (no data, NaN, errors) tolerated before the analysis fails. */
      inconclusiveLimit: z.number().int().min(0).max(100).default(2),
      /** Each query, whatever the provider; a query that times out is inconclusive. */
      queryTimeout: duration('query timeout').default(10_000),
    })
    .superRefine((a, ctx) => {
      providerSettingsProblems(a, ctx);
      compareWindowProblems(a, ctx);
    }),
  redis: z
    .strictObject({ urlEnv: envName.default('REDIS_URL'), maxMemoryRatio: z.number().gt(0).max(1).default(0.8) })
    .prefault({}),
  notifications: notificationsSchema,
  summary: z
    .strictObject({
      /** Store the summary in the backup bucket under this prefix. */
      store: z.boolean().default(true),
      prefix: z.string().max(256).default('summaries/'),
      /** Append an entry to the changelog of the release checkout, commit and push it (runbook "Update Change Log"). */
      changelog: z.boolean().default(false),
      changelogFile: z.string().min(1).max(1024).default('CHANGELOG.md'),
      commitAuthor: z
        .strictObject({
          name: z.string().min(1).max(128).default('deploy-pipelines'),
          email: z.string().min(3).max(254).default('deploy-pipelines@localhost'),
        })
        .prefault({}),
      /** Which analysis metrics (config analysis.metrics names) are the summary's error rate and P95 latency. */
      errorRateMetric: z.string().min(1).max(63).default('error-rate'),
      p95Metric: z.string().min(1).max(63).default('p95-latency'),
    })
    .prefault({}),
  /** The audit ledger (config-audit.ts). */
  audit: auditSchema,
});

/** Checks that hold of the whole file; those of one environment's settings run on its resolved config (environment-config.ts). */
export const configSchema = baseSchema.superRefine((cfg, ctx) => {
  if (!(cfg.defaultEnvironment in cfg.environments)) {
    ctx.addIssue({
      code: 'custom',
      path: ['defaultEnvironment'],
      message: `must name one of the environments (${Object.keys(cfg.environments).join(', ')})`,
    });
  }
  for (const [i, stage] of (cfg.release.stages ?? []).entries()) {
    if (!(stage in cfg.environments))
      ctx.addIssue({
        code: 'custom',
        path: ['release', 'stages', i],
        message: `must name one of the environments (${Object.keys(cfg.environments).join(', ')})`,
      });
  }
});

/** The top-level sections an environment may override (config-environment.ts SECTIONS), with their schemas. */
export const sectionSchemas = Object.fromEntries(SECTIONS.map((s) => [s, baseSchema.shape[s]])) as {
  [K in Section]: (typeof baseSchema.shape)[K];
};

type ParsedConfig = z.output<typeof configSchema>;
export type SectionsConfig = Pick<ParsedConfig, Section>;
type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;
/** What an environment sets differently from the top level: the given fields only, parsed. */
export type EnvironmentOverrides = { [K in Section]?: DeepPartial<SectionsConfig[K]> };
export type EnvironmentConfig = Omit<z.output<typeof environmentSchema>, Section> & {
  overrides?: EnvironmentOverrides;
};
export type DeployConfig = Omit<ParsedConfig, 'environments'> & { environments: Record<string, EnvironmentConfig> };
export type ServiceConfig = z.output<typeof serviceSchema>;
export type MetricConfig = z.output<typeof metricSchema>;
export type SmokeCheckConfig = z.output<typeof smokeCheckSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Replaces `${VAR}` (and `${VAR:-default}`) in every string of the parsed YAML. */
export function interpolateEnv(value: unknown, env: Record<string, string | undefined>, path: string[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, fallback?: string) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      throw new ConfigError(`${path.join('.') || '(root)'}: environment variable ${name} is not set`);
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolateEnv(v, env, [...path, String(i)]));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateEnv(v, env, [...path, k])]));
  }
  return value;
}

/**
 * Validates parsed YAML. Throws ConfigError with one line naming the file, the
 * field and what was expected, so a bad file stops the worker with a message
 * a person can act on.
 */
export function parseConfig(raw: unknown, file: string, env: Record<string, string | undefined>): DeployConfig {
  let interpolated: unknown;
  try {
    interpolated = interpolateEnv(raw, env);
  } catch (err) {
    throw new ConfigError(`${file}: ${(err as Error).message}`);
  }
  const result = configSchema.safeParse(interpolated);
  if (!result.success) {
    const issue = result.error.issues[0];
    const more = result.error.issues.length > 1 ? ` (and ${result.error.issues.length - 1} more)` : '';
    throw configError(file, issue.path as (string | number)[], issue.message + more);
  }
  const rawTop = interpolated as Record<string, unknown>;
  const rawEnvironments = rawTop.environments as Record<string, Record<string, unknown>>;
  const environments: DeployConfig['environments'] = {};
  for (const [name, parsed] of Object.entries(result.data.environments)) {
    const given = parseOverrides(rawTop, rawEnvironments[name], sectionSchemas);
    if ('issue' in given) throw configError(file, ['environments', name, ...given.issue.path], given.issue.message);
    const rest = Object.fromEntries(
      Object.entries(parsed).filter(([k]) => !(SECTIONS as readonly string[]).includes(k)),
    );
    const hasOverrides = Object.keys(given.overrides).length > 0;
    environments[name] = {
      ...(rest as Omit<EnvironmentConfig, 'overrides'>),
      ...(hasOverrides ? { overrides: given.overrides } : {}),
    };
  }
  const config: DeployConfig = { ...result.data, environments };
  const problem = [...environmentProblems(config), ...sharingProblems(config, env)][0];
  if (problem) throw configError(file, problem.path, problem.message);
  return config;
}

function configError(file: string, path: (string | number)[], message: string): ConfigError {
  return new ConfigError(`${file}: ${path.length ? path.join('.') : '(root)'}: ${message}`);
}
