/**
 * createActivities(deps): the activity object the worker registers (design
 * §3.4). Each adapter is a thin layer over an injected client; this module
 * builds the real clients from config and environment and puts them
 * together. The return type is checked against the `Activities` contract
 * the workflows proxy.
 */
import { currentActivity, heartbeat } from './heartbeat';
import type { WorkflowClient } from '@temporalio/client';
import Docker from 'dockerode';
import Redis from 'ioredis';
import type { DeployConfig } from '../domain/config';
import { checksActivities } from './checks';
import type { Activities } from './contracts';
import { createBackupS3Client, databaseActivities } from './database';
import { createReleaseTag, GitRepo, ReleaseSource } from './git';
import { imagesActivities, type ImagesProgress } from './images';
import { kubernetesActivities, loadKubeConfig } from './kubernetes';
import { notifyActivities } from './notify';
import { pipelineActivities } from './pipeline';
import { planActivities } from './plan';
import { RegistryClient, registryCredentials } from './registry';
import { reportActivities } from './report';
import { trafficActivities } from './traffic';
import { verifyActivities } from './verify';

export interface ActivityDeps {
  config: DeployConfig;
  env: NodeJS.ProcessEnv;
  git: GitRepo;
  source: ReleaseSource;
  docker: Docker;
  registry: RegistryClient;
  /** For looking up which deployment holds an environment (optional). */
  temporal?: WorkflowClient;
}

async function redisPing(url: string | undefined): Promise<string> {
  if (!url) throw new Error('no Redis URL in the environment (config redis.urlEnv)');
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 3000 });
  try {
    await redis.connect();
    return await redis.ping();
  } finally {
    redis.disconnect();
  }
}

export function createActivities(deps: ActivityDeps): Activities {
  const { config, env } = deps;
  const kubeConfig = loadKubeConfig(config.kubernetes.kubeconfig || undefined);
  const kube = kubernetesActivities({ kubeConfig, config });
  const trafficActs = trafficActivities({ kubeConfig, config });
  const database = databaseActivities({
    config,
    databaseUrl: env[config.database.urlEnv] ?? '',
    s3: createBackupS3Client(config.backup),
    releaseDir: (commit) => deps.source.at(commit),
    env,
  });
  const verify = verifyActivities({ config, env });
  const registryHost = config.registry.host;
  const images = imagesActivities({
    docker: deps.docker,
    registry: deps.registry,
    registryHost,
    ...((): { registryAuth?: { username: string; password: string } } => {
      const auth = registryCredentials(registryHost, env, config.registry.usernameEnv, config.registry.passwordEnv);
      return auth ? { registryAuth: auth } : {};
    })(),
    sourceAt: (c) => deps.source.at(c),
    concurrency: config.build.concurrency,
    heartbeat,
    previous: () => currentActivity()?.info.heartbeatDetails as ImagesProgress | undefined,
  });
  const checks = checksActivities({
    checks: config.preDeploymentChecks.map((c) => ({ name: c.name, command: c.command, timeoutMs: c.timeout })),
    sourceAt: (c) => deps.source.at(c),
    heartbeat,
    env,
  });
  const pipeline = pipelineActivities({
    config,
    git: deps.git,
    registry: deps.registry,
    ...(deps.temporal ? { temporal: deps.temporal } : {}),
    databasePreflight: (req) => database.databasePreflight(req),
    migrationStatus: (req) => database.migrationStatus(req),
    readClusterState: (req) => kube.readClusterState(req),
    redisPing: () => redisPing(env[config.redis.urlEnv]),
  });
  return {
    ...planActivities({ config, listTags: () => deps.git.remoteTags(), branchHead: () => deps.git.remoteBranchHead() }),
    ...pipeline,
    runPreDeploymentChecks: checks.runPreDeploymentChecks,
    createReleaseTag: (req) => createReleaseTag(deps.git, req),
    buildImages: images.buildImages,
    backupDatabase: database.backupDatabase,
    migrationStatus: database.migrationStatus,
    applyMigrations: database.applyMigrations,
    restoreDatabase: database.restoreDatabase,
    readClusterState: kube.readClusterState,
    patchImages: kube.patchImages,
    waitForRollout: kube.waitForRollout,
    rollbackImages: kube.rollbackImages,
    undoRollout: kube.undoRollout,
    prepareBlueGreen: kube.prepareBlueGreen,
    switchBlueGreen: kube.switchBlueGreen,
    scaleDownOldColour: kube.scaleDownOldColour,
    deleteOldColour: kube.deleteOldColour,
    abortBlueGreen: kube.abortBlueGreen,
    ...trafficActs,
    ...verify,
    runAnalysis: verify.analyzeCanary,
    analyzeCanary: verify.analyzeCanary,
    ...notifyActivities({ config, env }),
    writeSummary: reportActivities({ config, env }).writeSummary,
  };
}

/** Builds the real clients from config and environment (used by the worker). */
export function defaultDeps(config: DeployConfig, env: NodeJS.ProcessEnv = process.env, temporal?: WorkflowClient): ActivityDeps {
  const git = new GitRepo(config.git.checkout, config.git.remote, config.git.branch);
  return {
    config,
    env,
    git,
    source: new ReleaseSource(git),
    // DOCKER_HOST (and DOCKER_TLS_VERIFY / DOCKER_CERT_PATH) as the docker CLI reads them.
    docker: new Docker(),
    registry: new RegistryClient(config.registry.host, config.registry.insecure, registryCredentials(config.registry.host, env, config.registry.usernameEnv, config.registry.passwordEnv)),
    ...(temporal ? { temporal } : {}),
  };
}
