/**
 * createActivities(deps): the activity object the worker registers (design
 * §3.4). Each adapter is a thin layer over the clients of deps.ts, built
 * once; this module only puts them together (wiring, no logic). The return type is checked against the `Activities` contract
 * the workflows proxy.
 */
import type { Activities } from './contracts';
import { analysisActivities } from './analysis';
import { auditLedger } from './audit/ledger';
import { checksActivities } from './checks';
import { createReleaseTag } from './clients/git';
import { redisPing } from './clients/redis';
import type { ActivityDeps } from './deps';
import { auditSettings } from '../domain/config-audit';
import { environmentConfig } from '../domain/environment-config';
import { identityActivities } from './identity/verifier';
import { handoverActivities } from './handover';
import { databaseAdapter, imagesAdapter } from './io';
import { kubernetesActivities } from './kubernetes';
import { notifyActivities } from './notify';
import { lockActivities } from './lock';
import { freezeActivities } from './freeze';
import { pipelineActivities } from './pipeline';
import { planActivities } from './plan';
import { redactorFor, withRedactedFailures, type Redactor } from './redactor';
import { clusterRouteOf, routeOf } from './routing';
import { approveQuarantineLift, confirmStageHandover, releaseActivities, type ReleaseDeps } from './release';
import type { QuarantineRecord } from './contracts';
import { quarantineActivities } from './quarantine';
import { reportActivities } from './report';
import { heartbeat } from './runtime';
import { trafficActivities } from './traffic';
import { verifyChecks } from './verify';

export { defaultDeps, type ActivityDeps, type ProviderRegistry } from './deps';

/**
 * The worker's activities. Each call acts on one environment's back ends: the
 * environment its request names (domain/environment-config.ts), so a staging
 * deployment's activities reach only staging's cluster, database, bucket,
 * metrics and URLs. A request that names none is the default environment's
 * (the only kind recorded before environments had their own).
 */
export function createActivities(deps: ActivityDeps): Activities {
  const redactor = deps.redactor ?? redactorFor(deps.config, deps.env);
  // One record for every environment: in the top-level bucket, through its client.
  const quarantine = quarantineActivities({
    s3: deps.s3,
    bucket: deps.config.backup.bucket,
    prefix: deps.config.release.quarantinePrefix,
  });
  // Likewise one audit ledger store for every environment (each its own chain in it), facts redacted.
  const audit = auditLedger({
    s3: deps.s3,
    ...auditSettings(deps.config),
    environments: Object.keys(deps.config.environments),
    redact: (v) => redactor.value(v),
  });
  const sets = new Map<string, Activities>();
  const setFor = (environment: string, cluster?: string): Activities => {
    const key = JSON.stringify([environment, cluster ?? null]);
    let set = sets.get(key);
    if (!set) {
      const clients = deps.environments?.[environment] ?? {};
      const kube = cluster === undefined ? clients.kube : clients.clusters?.[cluster]?.kube;
      set = activitiesOf(
        {
          ...deps,
          config: environmentConfig(deps.config, environment, cluster),
          kube: kube ?? deps.kube,
          s3: clients.s3 ?? deps.s3,
        },
        redactor,
        quarantine,
        audit,
      );
      sets.set(key, set);
    }
    return set;
  };
  const all = setFor(deps.config.defaultEnvironment);
  return Object.fromEntries(
    Object.keys(all).map((name) => [
      name,
      (...args: unknown[]) => {
        const environment = routeOf(deps.config, name, args[0]);
        const cluster = clusterRouteOf(deps.config, environment, args[0]);
        return (setFor(environment, cluster)[name as keyof Activities] as (...a: unknown[]) => Promise<unknown>)(
          ...args,
        );
      },
    ]),
  ) as unknown as Activities;
}

/** The activities of one environment: its config and clients. */
function activitiesOf(
  deps: ActivityDeps,
  redactor: Redactor,
  quarantine: ReturnType<typeof quarantineActivities>,
  audit: ReturnType<typeof auditLedger>,
): Activities {
  const { config, env } = deps;
  const providers = deps.providers ?? {};
  const redact = (text: string) => redactor.text(text);
  const kube = kubernetesActivities({ clients: deps.kube, config, sourceAt: (c) => deps.source.at(c) });
  const trafficActs = trafficActivities({
    clients: deps.kube,
    config,
    ...(providers.traffic ? { providers: providers.traffic } : {}),
  });
  const database = databaseAdapter(deps, config, deps.s3, redact);
  const verify = verifyChecks({ config, env, kubeClients: deps.kube });
  const analysis = analysisActivities({ config, env, ...(providers.metrics ? { providers: providers.metrics } : {}) });
  const images = imagesAdapter(deps, config, redact);
  const checks = checksActivities({
    checks: config.preDeploymentChecks.map((c) => ({
      name: c.name,
      command: c.command,
      timeoutMs: c.timeout,
      env: c.env,
      passEnv: c.passEnv,
    })),
    sourceAt: (c) => deps.source.at(c),
    heartbeat,
    env,
    redact,
  });
  const identity = identityActivities({ config, env });
  const pipeline = pipelineActivities({
    config,
    verifySender: identity.verifySender,
    git: deps.git,
    registry: deps.registry,
    ...(deps.temporal ? { temporal: deps.temporal } : {}),
    databasePreflight: (req) => database.databasePreflight(req),
    migrationStatus: (req) => database.migrationStatus(req),
    readClusterState: (req) => kube.readClusterState(req),
    redisPing: () => redisPing(env[config.redis.urlEnv]),
    backupExists: (key) => database.backupExists(key),
    quarantineOf: (version) => quarantine.quarantineOf({ version }),
  });
  const releaseDeps: ReleaseDeps = {
    config,
    branchHead: () => deps.git.remoteBranchHead(),
    remoteTagCommit: (tag) => deps.git.remoteTagCommit(tag),
    imageDigest: (image, tag) => deps.registry.digest(image, tag),
    verifySender: identity.verifySender,
    quarantineOf: (version) => quarantine.quarantineOf({ version }),
    ...(deps.temporal ? { temporal: deps.temporal } : {}),
  };
  const handover = handoverActivities({
    config,
    imageDigest: (image, tag) => deps.registry.digest(image, tag),
    backupExists: (key) => database.backupExists(key),
  });
  // Every failure leaves redacted, whatever built its message (redactor.ts).
  return withRedactedFailures<Activities>(
    {
      ...planActivities({
        config,
        listTags: () => deps.git.remoteTags(),
        branchHead: () => deps.git.remoteBranchHead(),
        commitTime: (sha) => deps.git.commitTime(sha),
        verifySender: identity.verifySender,
        confirmHandover: (input, plan) => confirmStageHandover(releaseDeps, input, plan),
      }),
      ...releaseActivities(releaseDeps),
      ...quarantine,
      approveQuarantineLift: (req) =>
        approveQuarantineLift(
          {
            config,
            verifySender: identity.verifySender,
            quarantineOf: (version) => quarantine.quarantineOf({ version }),
            lift: (r) => quarantine.liftQuarantine(r),
          },
          req,
        ) as Promise<QuarantineRecord[]>,
      verifySender: identity.verifySender,
      ...pipeline,
      ...handover,
      ...lockActivities({ ...(deps.temporal ? { temporal: deps.temporal } : {}) }),
      ...freezeActivities({
        config,
        verifySender: identity.verifySender,
        ...(deps.temporal ? { temporal: deps.temporal } : {}),
      }),
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
      snapshotConfiguration: kube.snapshotConfiguration,
      pruneConfigSnapshots: kube.pruneConfigSnapshots,
      prepareBlueGreen: kube.prepareBlueGreen,
      switchBlueGreen: kube.switchBlueGreen,
      scaleDownOldColour: kube.scaleDownOldColour,
      deleteOldColour: kube.deleteOldColour,
      abortBlueGreen: kube.abortBlueGreen,
      readBlueGreen: kube.readBlueGreen,
      ...trafficActs,
      runAnalysis: analysis.runAnalysis,
      // The old name, for workflows started before the rename and for the recorded histories.
      analyzeCanary: analysis.runAnalysis,
      ...verify,
      ...notifyActivities({ config, env }),
      writeSummary: reportActivities({ config, env, s3: deps.s3 }).writeSummary,
      appendAudit: audit.appendAudit,
    },
    redactor,
  );
}
