/**
 * The one source of every activity's request and result types, and the
 * `Activities` interface the workflows proxy (design §3.2: workflows depend on
 * types only). Adapters import these types; nothing here imports an adapter.
 * createActivities(deps) returns an object of this type; tests implement it
 * with typed fakes.
 */
import type { RollbackInput } from '../../domain/input';
import type { DeployPlan, RollbackPlan, StepRoute } from '../../domain/plan';
import type { ReleasePlan } from '../../domain/release';
import type { AnalysisRun } from '../../domain/status';
import type { Colour } from '../../domain/blue-green';
import type {
  PruneConfigSnapshotsRequest,
  PruneConfigSnapshotsResult,
  SnapshotConfigurationRequest,
  SnapshotConfigurationResult,
} from './config-snapshots';
import type {
  BackupRequest,
  BackupResult,
  MigrationRequest,
  MigrationStatusResult,
  MigrationsApplied,
  RestoreRequest,
  RestoreResult,
} from './database';
import type {
  BlueGreenPrepared,
  BlueGreenState,
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
import type {
  BuildImagesRequest,
  ChecksRequest,
  ChecksResult,
  ConfirmPlanRequest,
  ConfirmRollbackRequest,
  DeploymentPreview,
  ImagesResult,
  PlanConfirmed,
  PreflightResult,
  ResolvePlanRequest,
  RollbackConfirmed,
  TagRequest,
  TagResult,
} from './plan';
import type { AuditAppendRequest, AuditAppendResult } from './audit';
import type { SenderCheck, VerifySenderRequest } from './identity';
import type { FreezerCheck, FreezerRequest, FreezeState, FreezeStateRequest } from './freeze';
import type { InEnvironment } from './scope';
import type { LiftQuarantineRequest, QuarantineOfRequest, QuarantineRecord, QuarantineRequest } from './quarantine';
import type { NotificationEvent, NotificationResult, SummaryRequest, SummaryResult } from './report';
import type { CanaryTarget, WeightResult } from './traffic';
import type {
  AnalysisRequest,
  CheckReport,
  HealthRequest,
  KubernetesHealthRequest,
  PlatformBaseline,
  PlatformHealthRequest,
  SmokeRequest,
} from './verification';

export type * from './audit';
export type * from './config-snapshots';
export type * from './database';
export type * from './freeze';
export type * from './identity';
export type * from './kubernetes';
export type * from './plan';
export type * from './quarantine';
export type * from './report';
export type * from './scope';
export type * from './traffic';
export type * from './verification';
export type { AnalysisRun, Colour, DeployPlan };

/** What the lock's lease check learns of its holder: open (Running) or not, and its status as Temporal names it. */
export interface LockHolderState {
  open: boolean;
  status: string;
}

/** Every activity the workflows call. */
export interface Activities {
  resolvePlan(req: ResolvePlanRequest): Promise<DeployPlan>;
  previewDeployment(plan: DeployPlan): Promise<DeploymentPreview>;
  verifySender(req: VerifySenderRequest): Promise<SenderCheck>;
  lockHolder(req: { environment: string }): Promise<{ workflowId?: string }>;
  lockHolderState(req: { holder: string }): Promise<LockHolderState>;
  /** Whether the environment's line is stopped (deployctl freeze), and by whom: held deployments and canaries ask. */
  freezeState(req: FreezeStateRequest): Promise<FreezeState>;
  /** Whether who asks to freeze or unfreeze an environment is one of its approvers, verified as it verifies senders. */
  verifyFreezer(req: FreezerRequest): Promise<FreezerCheck>;
  resolveRollback(req: { workflowId: string; input: RollbackInput }): Promise<RollbackPlan>;
  /** A release's plan: its stages, their promotion rules, the requester verified by each stage's verifier. */
  resolveRelease(req: { workflowId: string; input: unknown }): Promise<ReleasePlan>;
  /** A child's plan and image, confirmed against config before it changes anything. */
  confirmPlan(req: ConfirmPlanRequest): Promise<PlanConfirmed>;
  /** An automatic rollback's hand-over (plan, records, targets, backup key), confirmed before anything is rolled back. */
  confirmRollback(req: ConfirmRollbackRequest): Promise<RollbackConfirmed>;

  preflight(plan: DeployPlan): Promise<PreflightResult>;
  runPreDeploymentChecks(req: ChecksRequest): Promise<ChecksResult>;
  createReleaseTag(req: TagRequest): Promise<TagResult>;
  buildImages(req: BuildImagesRequest): Promise<ImagesResult>;

  backupDatabase(req: BackupRequest): Promise<BackupResult>;
  migrationStatus(req: MigrationRequest): Promise<MigrationStatusResult>;
  applyMigrations(req: MigrationRequest): Promise<MigrationsApplied>;
  restoreDatabase(req: RestoreRequest): Promise<RestoreResult>;

  readClusterState(req: ReadStateRequest): Promise<ClusterState>;
  patchImages(req: PatchImagesRequest): Promise<PatchImagesResult>;
  waitForRollout(req: WaitForRolloutRequest): Promise<WaitForRolloutResult>;
  rollbackImages(req: RollbackImagesRequest): Promise<RollbackImagesResult>;
  undoRollout(req: UndoRolloutRequest): Promise<UndoRolloutResult>;
  /** Immutable, content-named copies of each Deployment's ConfigMaps (from the release commit) and referenced Secrets. */
  snapshotConfiguration(req: SnapshotConfigurationRequest): Promise<SnapshotConfigurationResult>;
  /** Deletes the snapshots that neither a Deployment nor any of its ReplicaSets references any more. */
  pruneConfigSnapshots(req: PruneConfigSnapshotsRequest): Promise<PruneConfigSnapshotsResult>;

  startCanary(target: CanaryTarget): Promise<{ deployment: string }>;
  /** `route`: the step's header and mirror options, only for a step configured with them. */
  setCanaryWeight(req: { target: CanaryTarget; weight: number; route?: StepRoute }): Promise<WeightResult>;
  promoteCanary(target: CanaryTarget): Promise<void>;
  abortCanary(target: CanaryTarget): Promise<void>;

  prepareBlueGreen(target: BlueGreenTarget): Promise<BlueGreenPrepared>;
  switchBlueGreen(req: { target: BlueGreenTarget; colour: Colour }): Promise<SwitchResult>;
  scaleDownOldColour(req: { target: BlueGreenTarget; colour: Colour }): Promise<ScaleDownResult>;
  deleteOldColour(req: { target: BlueGreenTarget; colour: Colour }): Promise<DeleteColourResult>;
  abortBlueGreen(req: { target: BlueGreenTarget; colour: Colour }): Promise<SwitchResult>;
  /** Read-only: the colour the Service selects and the other colour's Deployment (manual rollback). */
  readBlueGreen(target: BlueGreenTarget): Promise<BlueGreenState>;

  /** One metrics analysis run: canary soaks, blue-green monitoring and post-deployment verification. */
  runAnalysis(req: AnalysisRequest): Promise<AnalysisRun>;
  /** @deprecated The old name of runAnalysis, kept registered for recorded histories and running workflows. */
  analyzeCanary(req: AnalysisRequest): Promise<AnalysisRun>;
  checkHealth(req: HealthRequest): Promise<CheckReport>;
  runSmokeChecks(req: SmokeRequest): Promise<CheckReport>;
  checkKubernetesHealth(req: KubernetesHealthRequest): Promise<CheckReport>;
  checkPlatformHealth(req: PlatformHealthRequest): Promise<CheckReport>;
  podRestarts(req: InEnvironment & { namespace: string; deployments: string[] }): Promise<Record<string, number>>;
  platformBaseline(req?: InEnvironment): Promise<PlatformBaseline>;

  /** A version rolled back or that failed verification: releases of it and rollbacks to it are refused until lifted. */
  quarantineVersion(req: QuarantineRequest): Promise<QuarantineRecord>;
  quarantineOf(req: QuarantineOfRequest): Promise<QuarantineRecord | undefined>;
  listQuarantine(): Promise<QuarantineRecord[]>;
  liftQuarantine(req: LiftQuarantineRequest): Promise<QuarantineRecord[]>;
  /** deployctl quarantine lift: an approver of the quarantining environment, verified as it verifies approvers, lifts it. */
  approveQuarantineLift(req: {
    workflowId: string;
    version: string;
    by: string;
    reason: string;
    proof?: unknown;
  }): Promise<QuarantineRecord[]>;

  notify(event: NotificationEvent): Promise<NotificationResult>;
  writeSummary(req: SummaryRequest): Promise<SummaryResult>;
  /** One record in the environment's audit ledger; idempotent by workflow run and event. */
  appendAudit(req: AuditAppendRequest): Promise<AuditAppendResult>;
}
