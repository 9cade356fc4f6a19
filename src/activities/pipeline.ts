/**
 * Activities that look across several systems for one decision: pre-flight
 * (runbook "Verify Current State"), the dry-run preview, the environment
 * lock's holder and the resolution of a manual rollback. Thin compositions
 * of the single-system adapters.
 */
import type { WorkflowClient } from '@temporalio/client';
import type { DeployConfig } from '../domain/config';
import { checkInput, InputError, rollbackInputSchema } from '../domain/input';
import type { DeployPlan, RollbackPlan } from '../domain/plan';
import { approvalPolicy, plannedService } from '../domain/planner';
import { backupKeyProblem } from '../domain/rollback-handover';
import type { DeploymentPreview, PreflightResult } from './contracts';
import type {
  ClusterState,
  DatabasePreflightResult,
  MigrationStatusResult,
  SenderCheck,
  VerifySenderRequest,
} from './contracts';
import type { GitRepo } from './clients/git';
import type { RegistryClient } from './clients/registry';
import { fail } from './failures';
import { quarantinedMessage, type QuarantineHold } from './release';
import { verifiedRequester } from './identity/requester';

export interface PipelineDeps {
  config: DeployConfig;
  git: GitRepo;
  registry: RegistryClient;
  temporal?: WorkflowClient;
  databasePreflight(req: { workflowId: string }): Promise<DatabasePreflightResult>;
  migrationStatus(req: { environment: string; workflowId: string; commit: string }): Promise<MigrationStatusResult>;
  readClusterState(req: { environment: string; namespace: string; deployments?: string[] }): Promise<ClusterState>;
  redisPing(): Promise<string>;
  verifySender(req: VerifySenderRequest): Promise<SenderCheck>;
  /** Whether the backup bucket holds `key` (HEAD). */
  backupExists(key: string): Promise<boolean>;
  /** A quarantined version is never a rollback's target (release.ts quarantinedMessage). */
  quarantineOf?(version: string): Promise<QuarantineHold | undefined>;
}

export function pipelineActivities(deps: PipelineDeps) {
  const { config } = deps;
  return {
    /** Runbook "Verify Current State": database, backups, cluster and Redis, all before anything changes. */
    async preflight(plan: DeployPlan): Promise<PreflightResult> {
      const [db, cluster, redis] = await Promise.all([
        deps.databasePreflight({ workflowId: plan.workflowId }),
        deps.readClusterState({ environment: plan.environment, namespace: plan.namespace }),
        deps.redisPing().then(
          (r) => ({ ok: r === 'PONG', detail: r }),
          (err: unknown) => ({ ok: false, detail: (err as Error).message }),
        ),
      ]);
      const problems = [...db.problems];
      const present = new Set(cluster.deployments.map((d) => d.name));
      const missing = plan.services.filter((s) => !present.has(s.deployment)).map((s) => s.deployment);
      if (missing.length) problems.push(`deployments missing in namespace ${plan.namespace}: ${missing.join(', ')}`);
      // Runbook: "kubectl get pods -n ai-saas # all pods Running". A Deployment to change whose pods are
      // not Ready is already broken or mid-rollout; changing it now would hide why.
      const planned = new Set(plan.services.map((s) => s.deployment));
      const unready = cluster.pods.filter(
        (p) => p.deployment && planned.has(p.deployment) && !p.ready && !p.terminating,
      );
      if (unready.length)
        problems.push(
          `pods not Ready in ${plan.namespace}: ${unready.map((p) => `${p.name} (${p.phase})`).join(', ')}`,
        );
      if (!redis.ok) problems.push(`redis: ${redis.detail}`);
      // After a blue-green release the Service selects a colour's Deployment; a rolling or
      // canary change of the service's own Deployment would not reach the traffic.
      const selector = cluster.services.find((x) => x.name === plan.traffic.service)?.selector ?? {};
      if (
        plan.strategy !== 'blue-green' &&
        selector.version &&
        plan.services.some((x) => x.name === plan.traffic.service)
      ) {
        problems.push(
          `service ${plan.traffic.service} is served by the blue-green colour "${selector.version}": deploy it with strategy blue-green (or leave it out with --services)`,
        );
      }
      const result: PreflightResult = {
        database: {
          version: db.version,
          connections: db.connections,
          ...(db.latestBackup ? { latestBackup: { key: db.latestBackup.key, ageMs: db.latestBackup.ageMs } } : {}),
        },
        cluster: {
          deployments: cluster.deployments.map((d) => ({
            name: d.name,
            ready: d.readyReplicas,
            replicas: d.replicas,
            images: Object.values(d.images),
          })),
          notReadyPods: cluster.notReady,
        },
        redis,
        problems,
      };
      if (problems.length) {
        throw fail.PreflightFailed(`pre-flight failed: ${problems.join('; ')}`, result);
      }
      return result;
    },

    /** What a deployment would do, with nothing done: the dry run. */
    async previewDeployment(plan: DeployPlan): Promise<DeploymentPreview> {
      const [tagCommit, images, migrations, cluster] = await Promise.all([
        deps.git.remoteTagCommit(plan.tag),
        Promise.all(
          plan.services.map(async (s) => ({
            service: s.name,
            reference: s.reference,
            exists: (await deps.registry.digest(s.image, plan.version).catch(() => undefined)) !== undefined,
          })),
        ),
        deps.migrationStatus({ environment: plan.environment, workflowId: plan.workflowId, commit: plan.commit }).then(
          (m) => ({ pending: m.pending, applied: m.applied.length }),
          (err: unknown) => ({ error: (err as Error).message }),
        ),
        deps.readClusterState({
          environment: plan.environment,
          namespace: plan.namespace,
          deployments: plan.services.map((s) => s.deployment),
        }),
      ]);
      return {
        tag: { name: plan.tag, commit: plan.commit, existsOnOrigin: tagCommit !== undefined },
        images,
        migrations,
        deployments: plan.services.map((s) => {
          const d = cluster.deployments.find((x) => x.name === s.deployment);
          return { service: s.name, current: d ? Object.values(d.images) : ['(missing)'], next: s.reference };
        }),
        // The order the services roll out in: one wave of all of them unless the config orders them.
        waves: plan.waves ?? [plan.services.map((s) => s.name)],
        traffic: {
          strategy: plan.strategy,
          steps: plan.strategy === 'canary' ? plan.canary.steps : plan.strategy === 'blue-green' ? [0, 100] : [100],
          soakMs: plan.canary.soakMs,
        },
        backup: { enabled: plan.backup, bucket: config.backup.bucket },
        checks: config.preDeploymentChecks.map((c) => c.command.join(' ')),
      };
    },

    /** The deployment holding an environment's lock (the parent of `deploy-lock-<env>`). */
    async lockHolder(req: { environment: string }): Promise<{ workflowId?: string }> {
      if (!deps.temporal) return {};
      try {
        const d = await deps.temporal.getHandle(`deploy-lock-${req.environment}`).describe();
        const holder = d.parentExecution?.workflowId;
        return holder ? { workflowId: holder } : {};
      } catch {
        return {};
      }
    },

    /** A manual rollback's plan: environment, services, target and (when asked) the backup to restore. */
    async resolveRollback(req: { workflowId: string; input: unknown }): Promise<RollbackPlan> {
      let input;
      try {
        input = checkInput(rollbackInputSchema, req.input, 'rollback');
      } catch (err) {
        if (err instanceof InputError) throw fail.InvalidInput(err.message);
        throw err;
      }
      const environment = input.environment ?? config.defaultEnvironment;
      const env = config.environments[environment];
      if (!env)
        throw fail.InvalidInput(
          `unknown environment "${environment}": configured are ${Object.keys(config.environments).join(', ')}`,
        );
      const approvals = approvalPolicy(env.approvals);
      let requester;
      try {
        requester = await verifiedRequester(
          { kind: 'rollback', environment, workflowId: req.workflowId, policy: approvals, input },
          (r) => deps.verifySender(r),
        );
      } catch (err) {
        if (err instanceof InputError) throw fail.InvalidInput(err.message);
        throw err;
      }
      const held = input.toVersion ? await deps.quarantineOf?.(input.toVersion) : undefined;
      if (held) throw fail.InvalidInput(`toVersion: ${quarantinedMessage(held)}`);
      const known = new Map(config.services.map((s) => [s.name, s]));
      for (const n of input.services ?? []) {
        if (!known.has(n))
          throw fail.InvalidInput(`unknown service "${n}": configured are ${[...known.keys()].join(', ')}`);
      }
      const chosen = config.services.filter((s) => !input.services || input.services.includes(s.name));
      let backupKey = input.backupKey;
      // A key typed by a person names a backup of this database under the configured prefix, and exists.
      if (backupKey !== undefined) {
        const problem = backupKeyProblem(backupKey, { prefix: config.backup.prefix, database: config.database.name });
        if (problem)
          throw fail.InvalidInput(`${problem} (deployctl rollback --restore-db without a key takes the newest)`);
        if (!(await deps.backupExists(backupKey)))
          throw fail.InvalidInput(
            `backupKey ${backupKey} is not in s3://${config.backup.bucket}: give a key that exists, or --restore-db without a key for the newest`,
          );
      }
      if (input.restoreDatabase && !backupKey) {
        const db = await deps.databasePreflight({ workflowId: req.workflowId });
        backupKey = db.latestBackup?.key;
      }
      return {
        workflowId: req.workflowId,
        project: config.project,
        environment,
        namespace: env.namespace,
        services: chosen.map((s) => plannedService(s, config.registry.host, input.toVersion)),
        target: input.toVersion
          ? { kind: 'version', version: input.toVersion }
          : input.toRevision
            ? { kind: 'revision', revision: input.toRevision }
            : { kind: 'previous' },
        restoreDatabase: input.restoreDatabase ?? false,
        ...(backupKey ? { backupKey } : {}),
        reason: input.reason ?? 'manual rollback',
        ...requester,
        approvals,
        databaseDecisionTimeoutMs: config.rollout.databaseDecisionTimeout,
        rolloutTimeoutMs: config.kubernetes.rolloutTimeout,
        traffic: {
          provider: config.traffic.provider,
          service: config.traffic.service,
          ...(config.traffic.virtualService ? { virtualService: config.traffic.virtualService } : {}),
          stableSubset: config.traffic.stableSubset,
          canarySubset: config.traffic.canarySubset,
        },
        registry: config.registry.host,
        ...(config.temporal.uiUrl ? { uiUrl: config.temporal.uiUrl } : {}),
        ...(config.temporal.ioTaskQueue ? { ioTaskQueue: config.temporal.ioTaskQueue } : {}),
        searchAttributes: config.temporal.searchAttributes,
      };
    },
  };
}
