/**
 * Requests and results of the configuration snapshots: immutable,
 * content-named copies of a Deployment's ConfigMaps and Secrets that the
 * image patch points its pod template at, so a rollback returns the
 * configuration with the code. Names and hashes only: a Secret's value never
 * enters a request, a result, a heartbeat or a failure, so it never reaches
 * workflow history.
 */
import type { InEnvironment } from './scope';
import type { ConfigKind } from '../../domain/config-snapshots';

export type { ConfigKind, ReferenceRename } from '../../domain/config-snapshots';

/** A ConfigMap whose content is a file or directory of the release repository (config services[].configMaps). */
export interface ConfigMapSource {
  /** The name the Deployment's pod template references. */
  name: string;
  /** Relative to the repository root, at the request's commit. */
  path: string;
}

export interface SnapshotConfigurationRequest extends InEnvironment {
  workflowId: string;
  namespace: string;
  /** The release commit (40 hex digits) whose files the ConfigMaps are made of. */
  commit: string;
  deployments: { deployment: string; configMaps: ConfigMapSource[] }[];
}

/** One reference to move: what the template names now (`from`) and the snapshot to name instead (`to`). */
export interface SnapshotReference {
  kind: ConfigKind;
  /** The object the snapshot was taken from. */
  base: string;
  /** The name the pod template references now: the base, or an older snapshot of it. */
  from: string;
  /** The snapshot, `<base>-<hash10>`. */
  to: string;
  /** sha256 (hex) of the content: names what the snapshot holds without holding it. */
  hash: string;
}

export interface DeploymentSnapshots {
  deployment: string;
  /** Pass these as the deployment's `references` to patchImages (kind, from and to are what it reads). */
  references: SnapshotReference[];
}

export interface SnapshotConfigurationResult {
  deployments: DeploymentSnapshots[];
}

export interface PruneConfigSnapshotsRequest extends InEnvironment {
  namespace: string;
  deployments: string[];
}

export interface PrunedSnapshots {
  deployment: string;
  /** `<kind>/<name>` of the snapshots deleted now (or found already gone). */
  deleted: string[];
  /** `<kind>/<name>` of the snapshots that the Deployment or one of its ReplicaSets still references. */
  kept: string[];
}

export interface PruneConfigSnapshotsResult {
  deployments: PrunedSnapshots[];
}
