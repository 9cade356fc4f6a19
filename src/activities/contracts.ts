/**
 * Requests and results of the activities, as plain JSON types. Workflows
 * depend on these types only (design §3.2): the implementations live in the
 * adapter files and are assembled by createActivities(deps).
 */
import type { DeployPlan, TrafficSettings } from '../domain/plan';
import type { AnalysisRun } from '../domain/status';
import type { CheckedDeployInput, DeployInput } from '../domain/input';

export interface ResolvePlanRequest {
  workflowId: string;
  input: DeployInput | CheckedDeployInput;
}

/** What the canary activities act on: one service whose traffic is shifted. */
export interface CanaryTarget {
  workflowId: string;
  namespace: string;
  version: string;
  /** The Deployment (and Service) that takes traffic, e.g. api-gateway. */
  service: string;
  container: string;
  /** New image reference, digest-pinned when known. */
  image: string;
  traffic: TrafficSettings;
}

export interface WeightResult {
  weight: number;
  /** The weights read back from the API after the change. */
  observed: { stable: number; canary: number };
}

export interface AnalysisRequest {
  workflowId: string;
  namespace: string;
  version: string;
  weight: number;
  tracks: ('stable' | 'canary')[];
}

export type NotificationKind = 'started' | 'awaiting-approval' | 'step-promoted' | 'failed' | 'rolled-back' | 'succeeded' | 'aborted';

export interface NotificationEvent {
  kind: NotificationKind;
  workflowId: string;
  project?: string;
  environment: string;
  version: string;
  text: string;
  weight?: number;
  /** Exact commands a person can run (approve / abort). */
  commands?: string[];
  uiUrl?: string;
}

export interface NotificationResult {
  delivered: number;
  failed: number;
}

export type { AnalysisRun, DeployPlan };

/**
 * Every activity the workflows call. createActivities(deps) returns an object
 * of this type; tests implement it with typed fakes.
 */
export interface Activities {
  resolvePlan(req: ResolvePlanRequest): Promise<DeployPlan>;
  startCanary(target: CanaryTarget): Promise<{ deployment: string }>;
  setCanaryWeight(req: { target: CanaryTarget; weight: number }): Promise<WeightResult>;
  analyzeCanary(req: AnalysisRequest): Promise<AnalysisRun>;
  promoteCanary(target: CanaryTarget): Promise<void>;
  abortCanary(target: CanaryTarget): Promise<void>;
  notify(event: NotificationEvent): Promise<NotificationResult>;
}
