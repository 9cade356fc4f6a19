/**
 * Stable names of the failures this product raises. Activities throw
 * ApplicationFailure with one of these `type`s; workflows and deployctl match
 * on them. Non-retryable ones are listed once here and used in every retry
 * policy, so a permanent failure is never retried by accident.
 */
export const ErrorType = {
  InvalidInput: 'InvalidInput',
  ConfigInvalid: 'ConfigInvalid',
  TagConflict: 'TagConflict',
  ImageTagConflict: 'ImageTagConflict',
  BuildFailed: 'BuildFailed',
  /** The registry refused the worker (401/403, or a push denied): a credential or permission to fix, not an outage. */
  RegistryAccessDenied: 'RegistryAccessDenied',
  PreDeploymentCheckFailed: 'PreDeploymentCheckFailed',
  PreflightFailed: 'PreflightFailed',
  BackupFailed: 'BackupFailed',
  BackupNotVerified: 'BackupNotVerified',
  /** The object store failed (network, 5xx) during a backup, restore or listing: retried. */
  StorageUnavailable: 'StorageUnavailable',
  /** The database could not be reached or was busy (connection refused, lock timeout): retried. */
  DatabaseUnavailable: 'DatabaseUnavailable',
  RestoreNotConfirmed: 'RestoreNotConfirmed',
  RestoreFailed: 'RestoreFailed',
  MigrationFailed: 'MigrationFailed',
  MigrationChanged: 'MigrationChanged',
  /** Another migrator held the lock for longer than the configured wait: retried. */
  MigrationLocked: 'MigrationLocked',
  RolloutFailed: 'RolloutFailed',
  KubernetesNotFound: 'KubernetesNotFound',
  KubernetesForbidden: 'KubernetesForbidden',
  /** The apiserver did not answer, answered 429/5xx, or kept reporting conflicts: retried. */
  KubernetesUnavailable: 'KubernetesUnavailable',
  TrafficNotApplied: 'TrafficNotApplied',
  VerificationFailed: 'VerificationFailed',
  DeploymentInProgress: 'DeploymentInProgress',
  /** A canary, blue-green or automatic rollback started by hand: they run only as a deployment's children. */
  ParentRequired: 'ParentRequired',
  /** What a workflow was handed (a plan, an image, a rollback's records or backup key) is not what config decides. */
  PlanMismatch: 'PlanMismatch',
  /** A deployment or rollback under an id outside the workflow id rule (domain/workflow-id.ts) or the lock prefix. */
  InvalidWorkflowId: 'InvalidWorkflowId',
  // How a workflow that did not succeed closes (workflows/outcome.ts): its close status is Failed, so the Temporal
  // UI's list and `ExecutionStatus="Failed"` show it, and its result is the failure's first detail.
  DeploymentRolledBack: 'DeploymentRolledBack',
  DeploymentAborted: 'DeploymentAborted',
  DeploymentFailed: 'DeploymentFailed',
  DeploymentRefused: 'DeploymentRefused',
  CanaryAborted: 'CanaryAborted',
  CanaryFailed: 'CanaryFailed',
  BlueGreenAborted: 'BlueGreenAborted',
  BlueGreenFailed: 'BlueGreenFailed',
  RollbackFailed: 'RollbackFailed',
  /** A rollback refused before it changed anything: bad input, or a hand-over config does not confirm. */
  RollbackRefused: 'RollbackRefused',
  /** A stop-the-line freeze whose sender is not a verified approver of the environment: it never froze anything. */
  FreezeRefused: 'FreezeRefused',
  /** A lift of a version's quarantine when no quarantine of it is active: nothing to lift. */
  NotQuarantined: 'NotQuarantined',
  /** A build, backup or restore sent to temporal.ioTaskQueue that no I/O worker took (workflows/activity-options.ts heavy). */
  NoIoWorker: 'NoIoWorker',
  /**
   * An environment's audit ledger does not verify where an append joins it (a record or HEAD edited or
   * deleted): appending to it would hide the break, so a person must look (deployctl audit verify).
   */
  AuditLedgerBroken: 'AuditLedgerBroken',
} as const;

export type ErrorTypeName = (typeof ErrorType)[keyof typeof ErrorType];

/** The failures a workflow closes with when its outcome is not a success; each carries the workflow's result. */
export const OUTCOME_FAILURE_TYPES: readonly ErrorTypeName[] = [
  ErrorType.DeploymentRolledBack,
  ErrorType.DeploymentAborted,
  ErrorType.DeploymentFailed,
  ErrorType.DeploymentRefused,
  ErrorType.CanaryAborted,
  ErrorType.CanaryFailed,
  ErrorType.BlueGreenAborted,
  ErrorType.BlueGreenFailed,
  ErrorType.RollbackFailed,
  ErrorType.RollbackRefused,
  ErrorType.FreezeRefused,
];

/** Failures that retrying cannot fix: a person or a code change must act. */
export const NON_RETRYABLE_ERROR_TYPES: ErrorTypeName[] = [
  ErrorType.InvalidInput,
  ErrorType.ConfigInvalid,
  ErrorType.TagConflict,
  ErrorType.ImageTagConflict,
  ErrorType.BuildFailed,
  ErrorType.RegistryAccessDenied,
  ErrorType.PreDeploymentCheckFailed,
  ErrorType.PreflightFailed,
  ErrorType.BackupFailed,
  ErrorType.RestoreNotConfirmed,
  ErrorType.RestoreFailed,
  ErrorType.MigrationFailed,
  ErrorType.MigrationChanged,
  ErrorType.RolloutFailed,
  ErrorType.KubernetesNotFound,
  ErrorType.KubernetesForbidden,
  ErrorType.VerificationFailed,
  ErrorType.DeploymentInProgress,
  ErrorType.ParentRequired,
  ErrorType.PlanMismatch,
  ErrorType.InvalidWorkflowId,
  ErrorType.NotQuarantined,
  ErrorType.AuditLedgerBroken,
];
