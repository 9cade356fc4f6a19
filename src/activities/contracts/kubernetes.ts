/** Requests and results of the Kubernetes activities: cluster state, image updates, rollout waits, undo, blue-green. */
import type { InEnvironment } from './scope';
import type { Colour } from '../../domain/blue-green';
import type { ColourTarget } from '../../domain/plan';
import type { ReferenceRename } from '../../domain/config-snapshots';

export interface RolloutOutcome {
  deployment: string;
  revision?: number;
  images: Record<string, string>;
  readyReplicas: number;
  message: string;
}

export interface ReadStateRequest extends InEnvironment {
  namespace: string;
  /** Only these Deployments (default: all in the namespace). */
  deployments?: string[];
}

export interface DeploymentState {
  name: string;
  revision?: number;
  generation: number;
  observedGeneration: number;
  replicas: number;
  readyReplicas: number;
  updatedReplicas: number;
  availableReplicas: number;
  /** container -> image: the record of the version that runs. */
  images: Record<string, string>;
  version?: string;
  selector: Record<string, string>;
  rolledOut: boolean;
  status: string;
}

export interface PodState {
  name: string;
  deployment?: string;
  phase: string;
  ready: boolean;
  /** Being deleted (kubectl shows Terminating): on its way out, not a pod that failed to start. */
  terminating?: boolean;
  restarts: number;
  node?: string;
  images: Record<string, string>;
}

export interface ClusterState {
  namespace: string;
  deployments: DeploymentState[];
  pods: PodState[];
  services: { name: string; selector: Record<string, string> }[];
  /** Pods that are not Ready. */
  notReady: string[];
  restartCount: number;
}

export interface ImageUpdate {
  deployment: string;
  container: string;
  /** Digest-pinned (`repo:tag@sha256:...`) when the build step knows the digest. */
  image: string;
  /**
   * ConfigMap/Secret references of this Deployment's pod template to rename
   * in the same write as the image (snapshotConfiguration's references), so
   * code and configuration change in one revision. Those of all updates of a
   * Deployment are applied together.
   */
  references?: ReferenceRename[];
}

export interface PatchImagesRequest extends InEnvironment {
  workflowId: string;
  namespace: string;
  version: string;
  updates: ImageUpdate[];
}

/** What one Deployment ran before the change: enough to roll back without the cluster's history. */
export interface DeploymentRecord {
  deployment: string;
  /** Revision before the change. */
  revision?: number;
  previousImages: Record<string, string>;
  previousVersion?: string;
  /**
   * The renames that put back the ConfigMap/Secret references this change
   * replaced (present when the change renamed any); rollbackImages applies
   * them with the previous images.
   */
  previousReferences?: ReferenceRename[];
  images: Record<string, string>;
  /** False when the Deployment already had this change (a retry). */
  changed: boolean;
}

export interface PatchImagesResult {
  records: DeploymentRecord[];
}

export interface WaitForRolloutRequest extends InEnvironment {
  namespace: string;
  deployments: string[];
  /** Default: kubernetes.rolloutTimeout. */
  timeoutMs?: number;
}

export interface WaitForRolloutResult {
  deployments: RolloutOutcome[];
}

export interface RollbackImagesRequest extends InEnvironment {
  workflowId: string;
  namespace: string;
  records: Pick<DeploymentRecord, 'deployment' | 'previousImages' | 'previousVersion' | 'previousReferences'>[];
  timeoutMs?: number;
}

export interface RollbackImagesResult {
  deployments: RolloutOutcome[];
}

export interface UndoRolloutRequest extends InEnvironment {
  namespace: string;
  deployment: string;
  /** A revision from `kubectl rollout history`; default the previous one. */
  toRevision?: number;
  workflowId?: string;
  timeoutMs?: number;
}

export interface UndoRolloutResult {
  deployment: string;
  fromRevision?: number;
  toRevision: number;
  /** The Deployment already had that revision's template (kubectl: "skipped rollback"). */
  skipped: boolean;
  images: Record<string, string>;
  /** The revision number the Deployment has after the undo (the old revision comes back under a new number). */
  revision?: number;
}

/** What the blue-green activities act on (built by domain/plan.ts colourTarget). */
export type BlueGreenTarget = ColourTarget;

export interface ColourState {
  colour: Colour;
  deployment: string;
}

export interface BlueGreenPrepared {
  /** The colour serving traffic, its images and version: where an abort goes back to. */
  active: ColourState & { replicas: number; images: Record<string, string>; version?: string };
  /** The colour now running the new version, ready, with no traffic yet. */
  target: ColourState;
  /** The active colour already runs this image: nothing to switch. */
  alreadyActive: boolean;
  /** The preview Service, now selecting the new colour (when the target names one). */
  preview?: { service: string; colour: Colour };
}

/** One colour's Deployment as a manual rollback reads it. */
export interface ColourDeploymentState extends ColourState {
  version?: string;
  replicas: number;
  readyReplicas: number;
  images: Record<string, string>;
}

/**
 * Which colour a Service sends its traffic to, and the other colour's
 * Deployment when it exists: what a manual rollback switches back to.
 */
export interface BlueGreenState {
  service: string;
  selector: Record<string, string>;
  /** The colour the Service selects; absent when it pins none (no blue-green release, or back to `app=<service>`). */
  live?: ColourDeploymentState;
  /** The other colour's Deployment, when it exists (a retired green is deleted; the base, blue, never is). */
  other?: ColourDeploymentState;
}

export interface SwitchResult {
  colour: Colour;
  selector: Record<string, string>;
}

export interface ScaleDownResult {
  deployment: string;
  previousReplicas: number;
  /** kubernetes.deleteOldColourAfter: the workflow sleeps this long, durably, before deleteOldColour. */
  deleteAfterMs: number;
}

export interface DeleteColourResult {
  deployment: string;
  deleted: boolean;
  reason?: string;
}
