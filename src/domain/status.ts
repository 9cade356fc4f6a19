/**
 * The shape of what the `status` query returns, shared by every workflow and
 * by deployctl. Plain JSON so that it reads well in the Temporal UI.
 */
import type { Comparison } from './compare';

export type Phase =
  | 'planning'
  | 'preflight'
  | 'checks'
  | 'tagging'
  | 'building'
  | 'backing-up'
  | 'migrating'
  | 'rolling-out'
  | 'canary'
  | 'soaking'
  | 'awaiting-approval'
  /** The environment's line is stopped (deployctl freeze): the deployment waits, a canary holds its weight. */
  | 'frozen'
  | 'switching'
  | 'monitoring'
  | 'promoting'
  | 'verifying'
  | 'reporting'
  | 'rolling-back'
  | 'awaiting-db-decision'
  | 'restoring'
  | 'succeeded'
  | 'failed'
  | 'rolled-back'
  | 'aborted'
  | 'planned';

export const FINAL_PHASES: readonly Phase[] = ['succeeded', 'failed', 'rolled-back', 'aborted', 'planned'];

export type StepState = 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'compensated';

export interface StepRecord {
  name: string;
  state: StepState;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  attempts?: number;
  detail?: string;
  error?: string;
  /**
   * What a person must check although the step succeeded, e.g. a database
   * that was restored but whose row counts differ from the backup's.
   */
  attention?: string;
}

export interface SignalRecord {
  signal: string;
  by: string;
  at: string;
  note?: string;
  reason?: string;
  /** How `by` was verified (absent: taken as typed, the environment verifies nobody). */
  via?: 'ssh' | 'oidc';
  /** The SSH key or the token issuer that proved it. */
  credential?: string;
}

export interface IgnoredSignal extends SignalRecord {
  ignoredBecause: string;
}

export type MeasurementOutcome = 'pass' | 'fail' | 'inconclusive';

export interface Measurement {
  metric: string;
  track: string;
  value: number | null;
  threshold?: string;
  outcome: MeasurementOutcome;
  reason?: string;
  /** The backend failed (query error, unreachable), as opposed to answering with no data: counted by consecutiveErrorLimit. */
  error?: true;
  /** A dry-run metric's measurement: recorded and shown, never counted. */
  dryRun?: true;
  /** A compare metric's evidence: the verdict, U statistic, p-values and medians (domain/compare.ts). */
  comparison?: Comparison;
}

export interface AnalysisRun {
  at: string;
  outcome: MeasurementOutcome;
  measurements: Measurement[];
  weight?: number;
}

export interface CanaryState {
  steps: number[];
  stepIndex: number;
  weight: number;
  paused: boolean;
  soakEndsAt?: string;
  soakRemainingMs?: number;
  failedMeasurements: number;
  consecutiveInconclusive: number;
}

export interface WaitingFor {
  what: string;
  /** The gate's name: what a signed approval names (deployctl reads it here). */
  gate?: string;
  since: string;
  timeoutAt?: string;
  /** Exact commands a person can run to answer the wait. */
  commands?: string[];
}

export interface SteeringPolicy {
  verify: 'none' | 'ssh' | 'oidc';
  approvers: string[];
  required: number;
  allowSelfApproval: boolean;
  /** How the requester was verified. */
  requestedVia?: 'none' | 'ssh' | 'oidc';
  /** One line: what is verified and who counts. */
  summary: string;
}

/** One stage of a release (workflows/release.ts): its deployment and what it waits for. */
export interface StageStatus {
  environment: string;
  /** The stage's deployment, a child of the release. */
  workflowId: string;
  state: 'pending' | 'waiting' | 'deploying' | 'succeeded' | 'failed' | 'rolled-back' | 'aborted' | 'skipped';
  /** Before it deploys: the soak in the stage before, then the approvals it needs. */
  waitingFor?: string;
  reason?: string;
}

/** One ConfigMap or Secret reference a rollout moved to an immutable snapshot. */
export interface ConfigChange {
  cluster?: string;
  deployment: string;
  kind: 'ConfigMap' | 'Secret';
  /** What the pod template referenced before, and the snapshot it references now. */
  from: string;
  to: string;
  /** sha256 of the snapshot's content. */
  hash: string;
}

/** "auth-service: Secret auth-service-credentials → auth-service-credentials-1a2b3c4d5e (sha256 1a2b3c4d5e6f…)". */
export function configChangeLine(c: ConfigChange): string {
  return `${c.cluster ? `${c.cluster}: ` : ''}${c.deployment}: ${c.kind} ${c.from} → ${c.to} (sha256 ${c.hash.slice(0, 12)}…)`;
}

/** One wave of a rollout: its services, and how far it got. */
export interface WaveStatus {
  /** 1-based, in rollout order. */
  wave: number;
  /** The cluster it rolls out in (an environment of several clusters: each cluster a wave of the whole order). */
  cluster?: string;
  services: string[];
  state: 'pending' | 'rolling-out' | 'checking' | 'done' | 'failed' | 'rolled-back';
  startedAt?: string;
  endedAt?: string;
}

/**
 * When a deployment's milestones happened (workflow time), recorded as they
 * happen: what the DORA figures of `deployctl stats` are computed from.
 * Deployments recorded before it have none.
 */
export interface DeploymentTimeline {
  /** The release commit's committer time (git %cI). */
  committedAt?: string;
  /** The first change to a workload: the rollout began. */
  rolloutStartedAt?: string;
  /** A success: verification passed and the version is live. */
  liveAt?: string;
  /** The first failure or abort once the rollout had begun. */
  failedAt?: string;
  /** After such a failure: the workloads and traffic back on the previous version. */
  stableAt?: string;
}

export interface DeploymentStatus {
  workflow: 'deploy' | 'canary' | 'blue-green' | 'rollback' | 'release';
  workflowId: string;
  version: string;
  environment: string;
  strategy?: string;
  requestedBy?: string;
  phase: Phase;
  startedAt: string;
  endedAt?: string;
  steps: StepRecord[];
  canary?: CanaryState;
  waitingFor?: WaitingFor;
  /** Who may steer this deployment and how they prove it; absent until the plan is known. */
  steering?: SteeringPolicy;
  approvals: SignalRecord[];
  aborts: SignalRecord[];
  pauses: SignalRecord[];
  ignoredSignals: IgnoredSignal[];
  lastAnalysis?: AnalysisRun;
  notificationFailures: number;
  error?: string;
  children: string[];
  /** A release: every stage in order. */
  stages?: StageStatus[];
  /** Configuration versioned with the release: each reference a rollout moved, by name and hash (never a value). */
  configuration?: ConfigChange[];
  /** A deployment whose services roll out in waves (config dependsOn): each wave in order. */
  waves?: WaveStatus[];
  /** A release: its commit and the image digests every stage deploys. */
  release?: { commit: string; images: Record<string, string> };
  /** A deployment's milestones, for the DORA figures (deployctl stats). */
  timeline?: DeploymentTimeline;
}

/** "region-a, wave 1: auth-service, chat-service: done": one wave as the status and the summary show it. */
export function waveLine(w: WaveStatus): string {
  return `${w.cluster ? `${w.cluster}, ` : ''}wave ${w.wave}: ${w.services.join(', ')}: ${w.state}`;
}
