/**
 * The activities that move bulk data: image builds, backups and restores.
 * With temporal.ioTaskQueue they run in an I/O worker of their own
 * (src/io-worker.ts): a process without the workflow bundle, the cluster
 * clients or the traffic, analysis and verification adapters, so what a
 * backup holds in memory is the backup's (docs/benchmarks.md, backup). The
 * full worker (index.ts) builds the same two adapters through the same
 * functions, so both run them alike.
 *
 * Nothing here may import @kubernetes/client-node or deps.ts: that module
 * alone is 60 MiB of the I/O worker's memory.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import Docker from 'dockerode';
import type { DeployConfig } from '../domain/config';
import { environmentConfig } from '../domain/environment-config';
import type { Activities, ImagesProgress } from './contracts';
import { GitRepo, ReleaseSource } from './clients/git';
import { RegistryClient, registryCredentials, type RegistryAuth } from './clients/registry';
import { createS3Client } from './clients/s3';
import { databaseActivities } from './database';
import type { MigratorFactory } from './database/migrators/migrator';
import { imagesActivities } from './images';
import { redactorFor, withRedactedFailures, type Redactor } from './redactor';
import { routeOf } from './routing';
import { currentActivity, heartbeat } from './runtime';

/** What an I/O worker registers, and the workflows send to temporal.ioTaskQueue (workflows/activity-options.ts heavy). */
export const IO_ACTIVITY_NAMES = ['buildImages', 'backupDatabase', 'restoreDatabase'] as const;
export type IoActivities = Pick<Activities, (typeof IO_ACTIVITY_NAMES)[number]>;

/** The clients both kinds of worker build alike: the release repository, Docker, the registry and the object stores. */
export interface IoClients {
  config: DeployConfig;
  env: NodeJS.ProcessEnv;
  git: GitRepo;
  source: ReleaseSource;
  docker: Docker;
  registry: RegistryClient;
  registryAuth?: RegistryAuth;
  /** The default environment's bucket, and every environment's that sets none of its own. */
  s3: S3Client;
  /** The object store of each environment whose backup section differs, built when first used. */
  environments?: Record<string, { s3?: S3Client }>;
  providers?: { migrators?: Record<string, MigratorFactory> };
  redactor?: Redactor;
}

/** One S3 client per distinct object store (endpoint, region, path style), shared by the environments that use it. */
export function s3ClientsFor(env: NodeJS.ProcessEnv): (c: DeployConfig) => S3Client {
  const clients = new Map<string, S3Client>();
  return (c) => {
    const b = c.backup;
    const key = JSON.stringify([b.endpoint ?? '', b.region, b.forcePathStyle]);
    let s3 = clients.get(key);
    if (!s3) clients.set(key, (s3 = createS3Client(b, env)));
    return s3;
  };
}

/** The clients of an I/O worker, from config and environment; `s3Of` shares the full worker's object-store clients. */
export function ioClients(
  config: DeployConfig,
  env: NodeJS.ProcessEnv = process.env,
  s3Of = s3ClientsFor(env),
): IoClients {
  const git = new GitRepo(config.git.checkout, config.git.remote, config.git.branch);
  const { host, insecure, usernameEnv, passwordEnv } = config.registry;
  const registryAuth = registryCredentials(host, env, usernameEnv, passwordEnv);
  const environments: Record<string, { s3?: S3Client }> = {};
  for (const name of Object.keys(config.environments)) {
    let s3: S3Client | undefined;
    environments[name] = {
      get s3() {
        return (s3 ??= s3Of(environmentConfig(config, name)));
      },
    };
  }
  return {
    config,
    env,
    git,
    source: new ReleaseSource(git),
    // DOCKER_HOST (and DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) as the docker CLI reads them.
    docker: new Docker(),
    registry: new RegistryClient(host, insecure, registryAuth),
    ...(registryAuth ? { registryAuth } : {}),
    s3: s3Of(config),
    environments,
  };
}

/** The database adapter of one environment (its config and bucket). */
export function databaseAdapter(deps: IoClients, config: DeployConfig, s3: S3Client, redact: (t: string) => string) {
  return databaseActivities({
    config,
    databaseUrl: deps.env[config.database.urlEnv] ?? '',
    s3,
    releaseDir: (commit) => deps.source.at(commit),
    env: deps.env,
    redact,
    ...(deps.providers?.migrators ? { migrators: deps.providers.migrators } : {}),
  });
}

/** The image adapter (one registry for every environment). */
export function imagesAdapter(deps: IoClients, config: DeployConfig, redact: (t: string) => string) {
  return imagesActivities({
    docker: deps.docker,
    registry: deps.registry,
    registryHost: config.registry.host,
    ...(deps.registryAuth ? { registryAuth: deps.registryAuth } : {}),
    sourceAt: (c) => deps.source.at(c),
    concurrency: config.build.concurrency,
    heartbeat,
    previous: () => currentActivity()?.info.heartbeatDetails as ImagesProgress | undefined,
    redact,
  });
}

/**
 * The I/O worker's activities. A backup or restore acts on the environment
 * its request names (as in the full worker: routing.ts), with that
 * environment's database and bucket; failures leave redacted.
 */
export function createIoActivities(deps: IoClients): IoActivities {
  const redactor = deps.redactor ?? redactorFor(deps.config, deps.env);
  const redact = (text: string) => redactor.text(text);
  const sets = new Map<string, IoActivities>();
  const setFor = (environment: string): IoActivities => {
    let set = sets.get(environment);
    if (!set) {
      const config = environmentConfig(deps.config, environment);
      const database = databaseAdapter(deps, config, deps.environments?.[environment]?.s3 ?? deps.s3, redact);
      const images = imagesAdapter(deps, config, redact);
      set = withRedactedFailures<IoActivities>(
        {
          buildImages: (req) => images.buildImages(req),
          backupDatabase: (req) => database.backupDatabase(req),
          restoreDatabase: (req) => database.restoreDatabase(req),
        },
        redactor,
      );
      sets.set(environment, set);
    }
    return set;
  };
  return Object.fromEntries(
    IO_ACTIVITY_NAMES.map((name) => [
      name,
      (...args: unknown[]) =>
        (setFor(routeOf(deps.config, name, args[0]))[name] as (...a: unknown[]) => Promise<unknown>)(...args),
    ]),
  ) as unknown as IoActivities;
}
