/**
 * How each workflow type's runs move between builds of the worker when it
 * runs with worker versioning (src/worker-versioning.ts; the table and the
 * upgrade procedure: docs/operations.md, "Upgrading the worker while
 * deployments run").
 *
 * - PINNED: a run finishes on the build it started on, so a worker upgrade
 *   never replays it through other code. For the bounded workflows: a
 *   deployment and the children it starts on the same task queue (canary,
 *   blue-green, rollback, its environment lock), which start on the
 *   deployment's build, so one deployment is one build end to end.
 * - AUTO_UPGRADE: a run moves to the current build at its next workflow
 *   task. For the workflows that may stay open for days or until a person
 *   acts (a release between stages, a freeze, a retired colour's delay):
 *   pinned, they would keep an old build's workers running all that time.
 *   Moving is safe because every change to their commands ships behind
 *   patched() and their waiting points are replayed in CI (test/replay).
 */
import type { VersioningBehavior } from '@temporalio/common';
import { setWorkflowOptions, workflowInfo } from '@temporalio/workflow';

const declared = new WeakMap<object, VersioningBehavior>();

/**
 * Declares `workflow`'s behaviour. It is sent only from a versioned worker:
 * the server rejects every workflow task of a run that names a behaviour from
 * an unversioned worker, and those workers must keep running as before. An
 * unversioned worker reports a version with no deployment name (its build id
 * is the bundle's checksum); a versioned one, its deployment.
 */
export function declareVersioning<A extends unknown[], R>(
  workflow: (...args: A) => Promise<R>,
  behavior: VersioningBehavior,
): void {
  declared.set(workflow, behavior);
  setWorkflowOptions(
    () => ({ versioningBehavior: workflowInfo().currentDeploymentVersion?.deploymentName ? behavior : undefined }),
    workflow,
  );
}

/** What `workflow` declared (the tests hold every registered workflow to one, and the docs' table to these). */
export function declaredVersioning(workflow: unknown): VersioningBehavior | undefined {
  return typeof workflow === 'function' ? declared.get(workflow) : undefined;
}
