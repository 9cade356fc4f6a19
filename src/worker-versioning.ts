/**
 * Worker versioning (Temporal worker deployments), opt-in by environment so
 * that a worker started without it runs exactly as before:
 *
 * - `TEMPORAL_DEPLOYMENT_NAME` turns it on: the worker joins that worker
 *   deployment as one version, identified by its build id. New workflows go
 *   to the deployment's current version; a pinned run stays on the build it
 *   started on, an auto-upgrade run moves to the current one (the behaviour
 *   of each workflow type: src/workflows/support/versioning.ts).
 * - The build id: `TEMPORAL_BUILD_ID`, or else `<package version>+<commit>`
 *   from `DEPLOY_GIT_COMMIT` (the Dockerfile's GIT_COMMIT build argument;
 *   `npm start` sets TEMPORAL_BUILD_ID from the checkout).
 *
 * Pure: the worker passes its environment and package version in.
 */
import type { VersioningBehavior } from '@temporalio/common';
import type { WorkerDeploymentOptions } from '@temporalio/worker';

export class VersioningConfigError extends Error {
  override name = 'VersioningConfigError';
}

/**
 * What a versioned worker does with a run whose workflow type declares no
 * behaviour. Every product workflow declares one; the runs that reach this
 * default are those started before versioning was turned on, which the first
 * current version takes over in any case. They keep moving with the current
 * version as they did on unversioned workers (under the patched() rule),
 * rather than holding the first versioned build up until they end, which for
 * an open freeze is never.
 */
export const DEFAULT_VERSIONING_BEHAVIOR: VersioningBehavior = 'AUTO_UPGRADE';

/** Temporal's limit on a build id (and a deployment name). */
const MAX_LENGTH = 255;
const COMMIT = /^[0-9a-f]{7,40}$/i;

export interface WorkerVersioning {
  /** The build id, when one is set or derivable; logged even when versioning is off. */
  buildId?: string;
  /** Set when TEMPORAL_DEPLOYMENT_NAME is: the worker's `workerDeploymentOptions`. */
  deployment?: WorkerDeploymentOptions;
}

/**
 * `0.1.0+92624f6dbe41`: the package version, then the commit's first 12 hex
 * digits as semver build metadata (whether a full or a short sha is given,
 * the same code gets the same id), `.dirty` when the checkout has changes
 * the commit does not (a local run only: two such runs may differ).
 */
export function buildIdOf(packageVersion: string, commit: string, dirty = false): string {
  const sha = commit.trim().toLowerCase();
  if (!COMMIT.test(sha)) throw new VersioningConfigError(`"${commit}" is not a git commit id (7 to 40 hex digits)`);
  const separator = packageVersion.includes('+') ? '.' : '+';
  return `${packageVersion}${separator}${sha.slice(0, 12)}${dirty ? '.dirty' : ''}`;
}

/** Reads the versioning settings; throws VersioningConfigError with one line that says what to set. */
export function workerVersioningFromEnv(env: NodeJS.ProcessEnv, packageVersion: string): WorkerVersioning {
  const deploymentName = env.TEMPORAL_DEPLOYMENT_NAME?.trim() || undefined;
  const commit = env.DEPLOY_GIT_COMMIT?.trim() || undefined;
  let buildId = env.TEMPORAL_BUILD_ID?.trim() || undefined;
  if (!buildId && commit) {
    try {
      buildId = buildIdOf(packageVersion, commit);
    } catch (err) {
      throw new VersioningConfigError(`DEPLOY_GIT_COMMIT: ${(err as Error).message}`);
    }
  }
  if (buildId) check('TEMPORAL_BUILD_ID', buildId);
  if (!deploymentName) return buildId ? { buildId } : {};
  check('TEMPORAL_DEPLOYMENT_NAME', deploymentName);
  // Temporal names a version `<deployment>.<build id>` and refuses a deployment name with a dot in it.
  if (deploymentName.includes('.'))
    throw new VersioningConfigError(
      `TEMPORAL_DEPLOYMENT_NAME "${deploymentName}": a "." is not allowed (Temporal separates the name from the build id with it)`,
    );
  if (!buildId)
    throw new VersioningConfigError(
      'TEMPORAL_DEPLOYMENT_NAME is set but there is no build id: set TEMPORAL_BUILD_ID, or DEPLOY_GIT_COMMIT for <package version>+<commit>',
    );
  return {
    buildId,
    deployment: {
      useWorkerVersioning: true,
      version: { deploymentName, buildId },
      defaultVersioningBehavior: DEFAULT_VERSIONING_BEHAVIOR,
    },
  };
}

function check(variable: string, value: string): void {
  if (value.length > MAX_LENGTH) throw new VersioningConfigError(`${variable}: longer than ${MAX_LENGTH} characters`);
  // It is typed into `temporal worker deployment` commands and shown in the UI: no spaces, no control characters.
  if (/[\s\p{Cc}]/u.test(value))
    throw new VersioningConfigError(`${variable} "${value}": spaces and control characters are not allowed`);
}

/** The command that makes this build the deployment's current version (printed by the worker as it starts). */
export function setCurrentCommand(version: { deploymentName: string; buildId: string }): string {
  return `temporal worker deployment set-current-version --deployment-name ${version.deploymentName} --build-id ${version.buildId}`;
}
