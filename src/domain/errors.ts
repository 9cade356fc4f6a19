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
} as const;

export type ErrorTypeName = (typeof ErrorType)[keyof typeof ErrorType];

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
];
