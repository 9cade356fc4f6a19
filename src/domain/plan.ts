/**
 * The deployment plan: everything a workflow decides on, computed once by the
 * resolvePlan activity (domain/planner.ts) from the worker's config and the
 * workflow input, then fixed in history. Types and tiny helpers only, with no
 * imports, so the workflow bundle stays small.
 */

export type Strategy = 'rolling' | 'canary' | 'blue-green';
export type ApprovalMode = 'none' | 'before-full' | 'every-step';

export interface PlannedService {
  name: string;
  image: string;
  context: string;
  dockerfile: string;
  deployment: string;
  container: string;
  /** registry/image:version */
  reference: string;
}

export interface CanarySettings {
  steps: number[];
  soakMs: number;
  analysisIntervalMs: number;
  approval: ApprovalMode;
  approvalTimeoutMs: number;
  failureLimit: number;
  inconclusiveLimit: number;
}

/**
 * The traffic providers, named once: the config schema's enum, the plan's
 * type and the activities' factory (which must have one constructor per name)
 * all derive from this list, so adding a provider starts here.
 */
export const TRAFFIC_PROVIDERS = ['istio', 'replicas'] as const;
export type TrafficProviderName = (typeof TRAFFIC_PROVIDERS)[number];

export interface TrafficSettings {
  provider: TrafficProviderName;
  service: string;
  virtualService?: string;
  stableSubset: string;
  canarySubset: string;
}

export interface DeployPlan {
  workflowId: string;
  project: string;
  environment: string;
  namespace: string;
  version: string;
  tag: string;
  /** The release commit (head of the release branch on origin when planned): tagged, built and migrated. */
  commit: string;
  previousVersion?: string;
  strategy: Strategy;
  requestedBy: string;
  dryRun: boolean;
  backup: boolean;
  migrate: boolean;
  allowImageOverwrite: boolean;
  registry: string;
  services: PlannedService[];
  canary: CanarySettings;
  blueGreen: { monitorMs: number; analysisIntervalMs: number; approval: boolean; approvalTimeoutMs: number; deleteAfterMs: number };
  traffic: TrafficSettings;
  approvers: string[];
  requiredApprovals: number;
  databaseDecisionTimeoutMs: number;
  rolloutTimeoutMs: number;
  uiUrl?: string;
  taskQueue: string;
  /** Upsert the Deploy* search attributes (the server must have them registered). */
  searchAttributes: boolean;
}

export type RollbackTarget = { kind: 'previous' } | { kind: 'revision'; revision: number } | { kind: 'version'; version: string };

/** A manual rollback, resolved by the resolveRollback activity from config and input. */
export interface RollbackPlan {
  workflowId: string;
  project: string;
  environment: string;
  namespace: string;
  services: PlannedService[];
  target: RollbackTarget;
  /** A restore was asked for: it still waits for an approval. */
  restoreDatabase: boolean;
  backupKey?: string;
  reason: string;
  requestedBy: string;
  approvers: string[];
  databaseDecisionTimeoutMs: number;
  rolloutTimeoutMs: number;
  traffic: TrafficSettings;
  registry: string;
  uiUrl?: string;
  searchAttributes: boolean;
}

export interface PlanFacts {
  workflowId: string;
  /** Tags present in the release repository, for `bump` and the previous version. */
  tags: string[];
  /** Head of the release branch on origin. */
  commit: string;
}

/** Which canary steps wait for a person before traffic moves to them. */
export function needsApprovalBefore(weight: number, mode: ApprovalMode): boolean {
  return mode === 'every-step' || (mode === 'before-full' && weight === 100);
}
