/**
 * The runbook's deployment steps, in the order deployWorkflow runs them, each
 * over the one Release it carries: what the plan says, what has been done, and
 * what the saga must undo if a later step fails. Split from deploy.ts so that
 * file reads as the pipeline and its compensation.
 */
import { ApplicationFailure } from '@temporalio/common';
import { executeChild, log, patched } from '@temporalio/workflow';
import type { BackupResult, ImagesResult, MigrationsApplied } from '../activities/contracts';
import { ErrorType } from '../domain/errors';
import { colourTarget, releaseImage, trafficService, trafficTarget, type DeployPlan } from '../domain/plan';
import { heavy, long, short } from './activity-options';
import { blueGreenWorkflow } from './blue-green';
import { canaryWorkflow } from './canary';
import type { DeployOutcome } from './deploy';
import type { AutomaticRollback } from './rollback';
import { Stop } from './support/stop';
import { describeError, Tracker } from './support/tracker';
import { verifyRelease } from './verify-release';
import { resultOf } from './outcome';
import { COMMAND_MIGRATIONS_PATCH, WAVES_PATCH } from './patches';

/** One release in flight: what the stages read, and what the saga's undo collects as they go. */
export interface Release {
  t: Tracker;
  p: DeployPlan;
  workflowId: string;
  /** What the saga undoes once the rollout has begun. */
  undo: AutomaticRollback;
  images: ImagesResult;
  backup?: BackupResult;
  rolloutBegun: boolean;
  /** Services whose traffic is served by another Deployment than their own (blue-green's green). */
  liveDeployments: Map<string, string>;
  /** The child that people's signals go to while it runs. */
  child: { active?: string };
}

/** What verification compares against: the cluster and the platform as they were when the rollout began. */
export interface RolloutStart {
  /** The cluster these were measured in (an environment of several clusters: the last one rolled out). */
  cluster?: string;
  restartsBefore: Record<string, number>;
  baseline?: { databaseConnections: number };
  since: string;
}

/** Runbook "Pre-flight checks" and the project's pre-deployment checks. */
export async function preflight({ t, p, workflowId }: Release): Promise<void> {
  t.phase('preflight');
  await t.step(
    'pre-flight',
    () => short.preflight(p),
    (r) => `PostgreSQL ${r.database.version.split(' ')[1] ?? ''}, ${r.cluster.deployments.length} deployments`,
  );
  // Every other cluster of the environment is checked before anything changes in the first.
  for (const cluster of p.clusters?.slice(1) ?? [])
    if (patched(WAVES_PATCH))
      await t.step(
        `pre-flight (${cluster})`,
        () => short.preflight({ ...p, cluster }),
        (r) => `${r.cluster.deployments.length} deployments`,
      );

  t.phase('checks');
  if (p.release) return t.skip('pre-deployment checks', `run once for the release by ${p.release.workflowId}`);
  await t.step(
    'pre-deployment checks',
    () => long.runPreDeploymentChecks({ workflowId, commit: p.commit }),
    (r) => r.checks.map((c) => c.name).join(', ') || 'none configured',
  );
}

/** Runbook "Create release tag". */
export async function tagRelease({ t, p, workflowId }: Release): Promise<void> {
  t.phase('tagging');
  // Confirmed by resolvePlan: the release's tag points at this commit.
  if (p.release) return t.skip('release tag', `${p.tag} made once by ${p.release.workflowId}`);
  await t.step(
    'release tag',
    () => short.createReleaseTag({ workflowId, version: p.version, commit: p.commit }),
    (r) => `${r.tag} at ${r.commit.slice(0, 12)}${r.created ? '' : ' (already there)'}`,
  );
}

/** Runbook "Build and push images" and "Back up the database": they do not depend on each other, so they run side by side. */
export async function buildAndBackUp(rel: Release): Promise<void> {
  const { t, p, workflowId } = rel;
  t.phase('building');
  const handed = p.release;
  if (handed) t.skip('build and push images', `built once by ${handed.workflowId}: the same digests in every stage`);
  const [built, backedUp] = await Promise.all([
    handed
      ? Promise.resolve(releaseImages(p, handed.images))
      : t.step(
          'build and push images',
          () =>
            heavy(p.ioTaskQueue).buildImages({
              workflowId,
              version: p.version,
              commit: p.commit,
              services: p.services,
              allowOverwrite: p.allowImageOverwrite,
            }),
          (r) => `${Object.keys(r).length} images (${Object.values(r).filter((i) => i.reused).length} reused)`,
        ),
    p.backup
      ? t.step(
          'database backup',
          () => heavy(p.ioTaskQueue).backupDatabase({ workflowId, environment: p.environment, version: p.version }),
          (r) => `${r.key} (${r.bytes} bytes${r.reused ? ', reused' : ''})`,
        )
      : Promise.resolve(undefined),
  ]);
  rel.images = built;
  rel.backup = backedUp;
  if (!p.backup) t.skip('database backup', 'backup: false in the input');
  if (rel.backup) {
    rel.undo.backupKey = rel.backup.key;
    rel.undo.backupSha256 = rel.backup.sha256;
  }
}

/** A release's images in the shape the build returns (resolvePlan confirmed each digest against the registry). */
function releaseImages(p: DeployPlan, images: Record<string, string>): ImagesResult {
  return Object.fromEntries(
    p.services.map((s) => {
      const reference = images[s.name];
      return [
        s.name,
        { service: s.name, reference, tagReference: s.reference, digest: reference.split('@')[1] ?? '', reused: true },
      ];
    }),
  );
}

/**
 * Runbook "Run migrations": what is pending, or everything when the status is
 * not known (a command without a status command: the tool decides). What ran,
 * and whether the database may have changed, is what a restore would undo;
 * a migration that failed may have changed it too.
 */
export async function migrate({ t, p, workflowId, undo }: Release): Promise<void> {
  if (!p.migrate) return t.skip('migrations', 'migrate: false in the input');
  t.phase('migrating');
  const pending = await t.step(
    'migration status',
    () => short.migrationStatus({ workflowId, environment: p.environment, commit: p.commit }),
    (r) => (r.known ? `${r.pending.length} pending: ${r.pending.join(', ') || 'none'}` : 'not known: the command runs'),
  );
  // Histories from before command mode ran skipped it when its status was not known.
  if (!pending.pending.length && (pending.known || !patched(COMMAND_MIGRATIONS_PATCH))) return;
  let applied: MigrationsApplied;
  try {
    applied = await t.step(
      'migrations',
      () => long.applyMigrations({ workflowId, environment: p.environment, commit: p.commit }),
      (r) => r.applied.map((a) => a.file).join(', ') || (r.changed ? 'ran (what it applied is not known)' : 'none'),
    );
  } catch (err) {
    if (mayHaveChangedDatabase(err) && patched(COMMAND_MIGRATIONS_PATCH)) undo.databaseChanged = true;
    throw err;
  }
  undo.migrationsApplied = applied.applied.map((a) => a.file);
  if (applied.changed) undo.databaseChanged = true;
}

/** A migration failure whose details say the database may have changed (`{ changed: true }`). */
function mayHaveChangedDatabase(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause)
    if (e instanceof ApplicationFailure && e.type === ErrorType.MigrationFailed)
      return (e.details ?? []).some((d) => (d as { changed?: unknown } | null)?.changed === true);
  return false;
}

/**
 * The records patchImages attached to its failure for the Deployments it had
 * changed before another failed (`{ changedBeforeFailure: [...] }` among the
 * failure's details). Only Deployments this release meant to change count:
 * the details are read, never trusted to name others.
 */
export function changedBeforeFailure(err: unknown, services: { deployment: string }[]): AutomaticRollback['records'] {
  const planned = new Set(services.map((s) => s.deployment));
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    if (!(e instanceof ApplicationFailure)) continue;
    for (const d of e.details ?? []) {
      const list = (d as { changedBeforeFailure?: unknown } | null)?.changedBeforeFailure;
      if (!Array.isArray(list)) continue;
      return list.filter(
        (r): r is AutomaticRollback['records'][number] =>
          typeof r === 'object' &&
          r !== null &&
          typeof (r as { deployment?: unknown }).deployment === 'string' &&
          planned.has((r as { deployment: string }).deployment) &&
          typeof (r as { previousImages?: unknown }).previousImages === 'object' &&
          (r as { previousImages?: unknown }).previousImages !== null,
      );
    }
  }
  return [];
}

/** The traffic service by its strategy: the canary or blue-green child, steered by people through this workflow. */
export async function shiftTraffic(rel: Release, cluster?: string): Promise<void> {
  const { t, workflowId, undo } = rel;
  // In an environment of several clusters the child acts in this one: the plan it is handed names it.
  const p: DeployPlan = cluster ? { ...rel.p, cluster } : rel.p;
  const service = trafficService(p);
  if (!service) return;
  const target = trafficTarget(p, workflowId, releaseImage(service, rel.images));
  // The stable images before the traffic strategy runs: what the saga returns to after a promotion.
  const state = await short.readClusterState({
    environment: p.environment,
    ...(cluster ? { cluster } : {}),
    namespace: p.namespace,
    deployments: [service.deployment],
  });
  const current = state.deployments.find((d) => d.name === service.deployment);
  const childId = cluster ? `${workflowId}-${p.strategy}-${cluster}` : `${workflowId}-${p.strategy}`;
  t.status.children.push(childId);
  rel.child.active = childId;
  const args = { version: p.version, plan: p, image: target.image, searchAttributes: p.searchAttributes };
  if (p.strategy === 'canary') {
    undo.canary = target;
    // Recorded before the child runs: a promotion that fails half-way has already changed stable.
    if (current)
      undo.records.push({
        deployment: current.name,
        previousImages: current.images,
        ...(current.version ? { previousVersion: current.version } : {}),
        ...(cluster ? { cluster } : {}),
      });
    const r = await t
      .step(
        'canary',
        () =>
          resultOf(
            executeChild(canaryWorkflow, {
              workflowId: childId,
              args: [args],
              staticSummary: `${p.project}: canary of ${service.name} ${p.version} on ${p.environment}${cluster ? ` (${cluster})` : ''}`,
            }),
          ),
        (x) => `${x.outcome} at ${x.weight}%`,
      )
      .finally(() => (rel.child.active = undefined));
    t.adoptPeople(r.status);
    if (r.outcome !== 'promoted')
      throw new Stop(
        r.outcome === 'aborted' ? 'aborted' : 'failed',
        r.reason ?? `canary ${r.outcome}`,
        r.timedOut === true,
      );
  } else {
    const r = await t
      .step(
        'blue-green',
        () =>
          resultOf(
            executeChild(blueGreenWorkflow, {
              workflowId: childId,
              args: [args],
              staticSummary: `${p.project}: blue-green of ${service.name} ${p.version} on ${p.environment}${cluster ? ` (${cluster})` : ''}`,
            }),
          ),
        (x) => `${x.outcome}${x.live ? `, live: ${x.live}` : ''}`,
      )
      .finally(() => (rel.child.active = undefined));
    t.adoptPeople(r.status);
    if (r.outcome !== 'switched')
      throw new Stop(
        r.outcome === 'aborted' ? 'aborted' : 'failed',
        r.reason ?? `blue-green ${r.outcome}`,
        r.timedOut === true,
      );
    // After a switch the saga's undo is a switch back to the colour that served before. The target names the
    // Service only, as this saga has always recorded it (abortBlueGreen then takes the Service's name as blue's).
    if (r.previous) {
      // A switch in an earlier cluster is undone too: it moves aside for this cluster's.
      if (undo.blueGreen) undo.earlierBlueGreen = [...(undo.earlierBlueGreen ?? []), undo.blueGreen];
      undo.blueGreen = { target: colourTarget(target), back: r.previous };
    }
    if (r.liveDeployment) rel.liveDeployments.set(service.name, r.liveDeployment);
  }
}

/** Runbook "Post-deployment verification": every check against the Deployments that now serve the release. */
export async function verify({ t, p, workflowId, liveDeployments }: Release, start: RolloutStart): Promise<void> {
  t.phase('verifying');
  const deployments = p.services.map((s) => liveDeployments.get(s.name) ?? s.deployment);
  const verdict = await verifyRelease(t, {
    ...(start.cluster ? { cluster: start.cluster } : {}),
    workflowId,
    plan: p,
    deployments,
    restartsBefore: start.restartsBefore,
    since: start.since,
    ...(start.baseline ? { baselineConnections: start.baseline.databaseConnections } : {}),
  });
  if (!verdict.ok)
    throw ApplicationFailure.create({
      type: ErrorType.VerificationFailed,
      message: verdict.reason,
      nonRetryable: true,
    });
}

/** Best effort: a summary that cannot be written never fails the deployment. */
export async function writeSummary(
  t: Tracker,
  plan: DeployPlan,
  migrations: string[],
  backupKey: string | undefined,
  outcome?: DeployOutcome,
): Promise<string | undefined> {
  try {
    // The summary states the outcome the deployment is about to end with.
    const status = outcome && outcome !== 'planned' ? { ...t.status, phase: outcome } : t.status;
    const r = await t.step(
      'summary',
      () => short.writeSummary({ plan, status, migrations, ...(backupKey ? { backupKey } : {}) }),
      (s) => s.key,
    );
    return r.markdown;
  } catch (err) {
    log.warn('summary failed', { error: describeError(err) });
    return undefined;
  }
}
