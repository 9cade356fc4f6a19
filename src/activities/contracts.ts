/**
 * Requests and results of the activities, as plain JSON types, and the
 * `Activities` interface the workflows proxy (design §3.2: workflows depend on
 * types only). createActivities(deps) returns an object of this type; tests
 * implement it with typed fakes.
 */
import type { CheckedDeployInput, DeployInput, RollbackInput } from '../domain/input';
import type { DeployPlan, PlannedService, RollbackPlan, TrafficSettings } from '../domain/plan';
import type { AnalysisRun, DeploymentStatus } from '../domain/status';
import type { Colour } from '../domain/rollout';
import type { ImagesResult } from './images';
import type {
  BlueGreenPrepared,
  BlueGreenTarget,
  ClusterState,
  DeleteColourResult,
  PatchImagesRequest,
  PatchImagesResult,
  ReadStateRequest,
  RollbackImagesRequest,
  RollbackImagesResult,
  ScaleDownResult,
  SwitchResult,
  UndoRolloutRequest,
  UndoRolloutResult,
  WaitForRolloutRequest,
  WaitForRolloutResult,
} from './kubernetes';

export type { AnalysisRun, DeployPlan };

// --- plan -------------------------------------------------------------------

export interface ResolvePlanRequest {
  workflowId: string;
  input: DeployInput | CheckedDeployInput;
}

export interface DeploymentPreview {
  tag: { name: string; commit: string; existsOnOrigin: boolean };
  images: { service: string; reference: string; exists: boolean }[];
  migrations: { pending: string[]; applied: number } | { error: string };
  deployments: { service: string; current: string[]; next: string }[];
  traffic: { strategy: string; steps: number[]; soakMs: number };
  backup: { enabled: boolean; bucket: string };
  checks: string[];
}

// --- pre-flight, checks, tag, images ----------------------------------------

export interface PreflightResult {
  database: { version: string; connections: Record<string, number>; latestBackup?: { key: string; ageMs: number } };
  cluster: { deployments: { name: string; ready: number; replicas: number; images: string[] }[]; notReadyPods: string[] };
  redis: { ok: boolean; detail: string };
  problems: string[];
}

export interface ChecksResult {
  checks: { name: string; command: string; durationMs: number }[];
}

export interface TagResult {
  tag: string;
  commit: string;
  created: boolean;
}

export type { BuiltImage, ImagesResult } from './images';

// --- database ---------------------------------------------------------------

export interface BackupResult {
  key: string;
  bytes: number;
  sha256: string;
  reused: boolean;
}

export interface MigrationStatusResult {
  applied: string[];
  pending: string[];
}

export interface MigrationsApplied {
  applied: { file: string; durationMs: number }[];
}

export interface RestoreResult {
  key: string;
  tables: Record<string, number>;
  durationMs: number;
}

// --- kubernetes (types of the adapter in kubernetes.ts) ----------------------

export type {
  BlueGreenPrepared,
  BlueGreenTarget,
  ClusterState,
  DeleteColourResult,
  DeploymentRecord,
  ImageUpdate,
  PatchImagesRequest,
  PatchImagesResult,
  ReadStateRequest,
  RollbackImagesRequest,
  RollbackImagesResult,
  ScaleDownResult,
  SwitchResult,
  UndoRolloutRequest,
  UndoRolloutResult,
  WaitForRolloutRequest,
  WaitForRolloutResult,
} from './kubernetes';
export type { Colour } from '../domain/rollout';

/** What the canary and blue-green activities act on: one service whose traffic moves. */
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

// --- verification -----------------------------------------------------------

export interface AnalysisRequest {
  workflowId: string;
  namespace: string;
  version: string;
  weight: number;
  tracks: ('stable' | 'canary')[];
  /** Version the stable track runs, for {{version}} in stable-track queries (canary queries use `version`). */
  stableVersion?: string;
  /** Range of the rate windows in the queries ({{window}}); defaults to config analysis.window. */
  window?: string;
}

export interface CheckReport {
  ok: boolean;
  /** One line per check: what passed, what failed and why. */
  lines: string[];
}

export interface KubernetesHealthRequest {
  namespace: string;
  deployments: string[];
  /** Restart counts per pod when the rollout began. */
  baselineRestarts: Record<string, number>;
  since: string;
}

export interface PlatformHealthRequest {
  /** Database connections when the rollout began: growth beyond the configured limit fails the check. */
  baselineConnections?: number;
}

// --- notifications and summary ----------------------------------------------

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

export interface SummaryRequest {
  plan: DeployPlan;
  status: DeploymentStatus;
  migrations: string[];
  backupKey?: string;
}

export interface SummaryResult {
  markdown: string;
  key?: string;
  changelogCommit?: string;
}

/** Every activity the workflows call. */
export interface Activities {
  resolvePlan(req: ResolvePlanRequest): Promise<DeployPlan>;
  previewDeployment(plan: DeployPlan): Promise<DeploymentPreview>;
  lockHolder(req: { environment: string }): Promise<{ workflowId?: string }>;
  resolveRollback(req: { workflowId: string; input: RollbackInput }): Promise<RollbackPlan>;

  preflight(plan: DeployPlan): Promise<PreflightResult>;
  runPreDeploymentChecks(req: { workflowId: string; commit: string }): Promise<ChecksResult>;
  createReleaseTag(req: { workflowId: string; version: string; commit: string }): Promise<TagResult>;
  buildImages(req: { workflowId: string; version: string; commit: string; services: PlannedService[]; allowOverwrite: boolean }): Promise<ImagesResult>;

  backupDatabase(req: { workflowId: string; version: string }): Promise<BackupResult>;
  migrationStatus(req: { workflowId: string; commit: string }): Promise<MigrationStatusResult>;
  applyMigrations(req: { workflowId: string; commit: string }): Promise<MigrationsApplied>;
  restoreDatabase(req: { workflowId: string; key: string; confirmKey: string }): Promise<RestoreResult>;

  readClusterState(req: ReadStateRequest): Promise<ClusterState>;
  patchImages(req: PatchImagesRequest): Promise<PatchImagesResult>;
  waitForRollout(req: WaitForRolloutRequest): Promise<WaitForRolloutResult>;
  rollbackImages(req: RollbackImagesRequest): Promise<RollbackImagesResult>;
  undoRollout(req: UndoRolloutRequest): Promise<UndoRolloutResult>;

  startCanary(target: CanaryTarget): Promise<{ deployment: string }>;
  setCanaryWeight(req: { target: CanaryTarget; weight: number }): Promise<WeightResult>;
  promoteCanary(target: CanaryTarget): Promise<void>;
  abortCanary(target: CanaryTarget): Promise<void>;

  prepareBlueGreen(target: BlueGreenTarget): Promise<BlueGreenPrepared>;
  switchBlueGreen(req: { target: BlueGreenTarget; colour: Colour }): Promise<SwitchResult>;
  scaleDownOldColour(req: { target: BlueGreenTarget; colour: Colour }): Promise<ScaleDownResult>;
  deleteOldColour(req: { target: BlueGreenTarget; colour: Colour }): Promise<DeleteColourResult>;
  abortBlueGreen(req: { target: BlueGreenTarget; colour: Colour }): Promise<SwitchResult>;

  /** One metrics analysis run: canary soaks, blue-green monitoring and post-deployment verification. */
  runAnalysis(req: AnalysisRequest): Promise<AnalysisRun>;
  /** @deprecated The old name of runAnalysis, kept registered for recorded histories and running workflows. */
  analyzeCanary(req: AnalysisRequest): Promise<AnalysisRun>;
  checkHealth(req: { workflowId: string }): Promise<CheckReport>;
  runSmokeChecks(req: { workflowId: string; baseUrl?: string }): Promise<CheckReport>;
  checkKubernetesHealth(req: KubernetesHealthRequest): Promise<CheckReport>;
  checkPlatformHealth(req: PlatformHealthRequest): Promise<CheckReport>;
  podRestarts(req: { namespace: string; deployments: string[] }): Promise<Record<string, number>>;
  platformBaseline(): Promise<{ at: string; databaseConnections: number }>;

  notify(event: NotificationEvent): Promise<NotificationResult>;
  writeSummary(req: SummaryRequest): Promise<SummaryResult>;
}
