/**
 * Every id the workflows pass to `patched()`, in one place (docs/operations.md,
 * "Upgrading the worker while deployments run"). A workflow whose history was
 * recorded before a change takes the old path at that point, one that starts
 * after it the new path; the SDK records each id a run passes as a marker
 * (and in the TemporalChangeVersion search attribute), so the ids are part of
 * every history that passed them: never rename or reuse one.
 */

/**
 * The analysis activity's rename from `analyzeCanary` to `runAnalysis` (it
 * was never canary-only). Histories recorded before it schedule
 * `analyzeCanary`, and replay must schedule the same; the worker registers
 * both names for one implementation.
 */
export const RUN_ANALYSIS_PATCH = 'run-analysis-activity';

/**
 * 4841158: promote {full} with `approval: every-step` stops at the gate
 * before 100%, as every other way to 100% does. Before, it skipped that gate.
 */
export const GATE_BEFORE_FULL_ON_PROMOTE_PATCH = 'canary-gate-before-full-on-promote';

/**
 * 4841158: an abort that arrives while promote {full}'s final analysis runs
 * aborts at once. Before, traffic went to 100% first (through the gate, when
 * there is one), and the abort was taken after.
 */
export const ABORT_DURING_FINAL_ANALYSIS_PATCH = 'canary-abort-during-final-analysis';

/**
 * 4841158: a canary whose start failed half-way is aborted (the canary
 * Deployment may exist; abortCanary is idempotent). Before, a failed start
 * aborted nothing.
 */
export const ABORT_AFTER_FAILED_START_PATCH = 'canary-abort-after-failed-start';

/**
 * 4841158: the automatic rollback keeps going past a step that fails (design
 * §3.9), so a traffic API that keeps failing cannot leave the other services
 * on the new images. Before, the first failed step ended the rollback.
 */
export const ROLLBACK_PAST_FAILED_STEP_PATCH = 'rollback-past-failed-step';

/**
 * Issue 16 item 4: an image update that failed half-way reports the
 * Deployments it had changed, and the saga undoes them too. Before, they
 * stayed on the new images.
 */
export const PARTIAL_IMAGE_UNDO_PATCH = 'undo-partial-image-update';

/** Issue 16 item 5: a manual rollback takes the environment lock. Before, it ran beside a deployment. */
export const ROLLBACK_LOCK_PATCH = 'manual-rollback-environment-lock';

/**
 * Issue 16 item 6: a database restore waits for the environment's
 * requiredApprovals distinct approvers. Before, one approval restored.
 */
export const RESTORE_APPROVALS_PATCH = 'restore-required-approvals';

/**
 * Issue 16 item 1: command-mode migrations whose status is not known run
 * (the tool decides what is pending), a failed or unknown migration counts as
 * a change to the database, and a change made before the rollout began is
 * offered to the database decision too. Before, command mode never ran and a
 * failure before the rollout rolled nothing back.
 */
export const COMMAND_MIGRATIONS_PATCH = 'command-migrations-apply-unknown';

/**
 * Issue 16 item 9: a workflow whose outcome is not a success (a deployment
 * rolled back, aborted, refused or failed; a canary or blue-green aborted or
 * failed; a rollback that failed) closes as Failed, with a failure named
 * after the outcome that carries the result, so the Temporal UI's list shows
 * it. Before, every one of them completed.
 */
export const CLOSE_STATUS_FOLLOWS_OUTCOME_PATCH = 'close-status-follows-outcome';

/**
 * Issue 16 item 3: blue-green smoke-tests the new colour through its preview
 * Service and URL before the switch, and skips that step (saying why) when no
 * preview is configured. Before, the step smoke-tested the live colour.
 */
export const BLUE_GREEN_PREVIEW_SMOKE_PATCH = 'blue-green-smoke-preview';

/**
 * Issue 16 item 5: a manual rollback reads which blue-green colour the traffic
 * service's Service selects; when it selects one, traffic switches back to the
 * colour that runs the previous version (verified by reading it back), or the
 * Deployment that serves is undone, instead of the idle base Deployment.
 * Before, the base Deployment was undone and traffic stayed where it was.
 */
export const ROLLBACK_BLUE_GREEN_PATCH = 'manual-rollback-blue-green-colour';

/**
 * Where the plan's environment verifies senders (approvals.verify ssh or
 * oidc), each signal's proof is checked by the verifySender activity before
 * it counts. Plans recorded before carry no policy, so their signals are
 * taken as typed, as they were.
 */
export const VERIFIED_STEERING_PATCH = 'verified-steering';

/**
 * A canary paused longer than the environment's approvals.maxPause aborts to
 * stable: the wait for resume has that timeout. Before, a pause had no limit
 * (and plans recorded before carry no maxPause).
 */
export const PAUSE_LIMIT_PATCH = 'canary-pause-limit';

/**
 * Nothing trusted from a hand-started child: canary and blue-green refuse to
 * run without a parent (ParentRequired, before anything else), and a child
 * confirms its plan and image with the confirmPlan activity before any side
 * effect. Before, they ran on whatever plan and image their input carried.
 */
export const CHILD_CONFIRMS_PLAN_PATCH = 'child-requires-parent-and-confirms-plan';

/**
 * Nothing trusted from a hand-started rollback: `automatic` input is refused
 * without a parent, and a deployment's hand-over (plan, records, traffic
 * targets, backup key) is confirmed with the confirmRollback activity before
 * anything is rolled back, which then acts on the confirmed records. A
 * rollback refused before it changed anything (this, or a manual rollback's
 * bad input) closes as RollbackRefused with `refused` in its result.
 * Before, the hand-over was acted on as given, and a refusal closed as
 * RollbackFailed.
 */
export const ROLLBACK_CONFIRMS_HANDOVER_PATCH = 'rollback-confirms-handover';

/**
 * A deployment or a manual rollback whose workflow id is outside the id rule
 * (domain/workflow-id.ts: letters, digits, "." and "-") or takes a reserved
 * prefix (the lock's; later the freeze's too) fails at once with
 * InvalidWorkflowId, before any activity. Before, it ran under any id. Only
 * such ids pass this patch (an id under the freeze prefix that ran before it
 * was reserved passed no marker, and replays as it ran).
 */
export const WORKFLOW_ID_RULE_PATCH = 'workflow-id-rule';

/**
 * An environment lock not started by its holder (no parent, or a parent that
 * is not the holder it names, or another id than its environment's lock)
 * ends at once holding nothing. Before, it held the environment until
 * released. Only such locks pass this patch.
 */
export const LOCK_HOLDER_PATCH = 'environment-lock-started-by-holder';

/**
 * The environment lock's lease: a timer every leaseCheckIntervalMs and the
 * lockHolderState activity, releasing the lock once its holder is no longer
 * open, and continue-as-new when its history grows long. Before, the lock
 * only waited for the release signal (or its parent's close).
 */
export const LOCK_LEASE_PATCH = 'environment-lock-lease';

/**
 * A deployment whose environment is inside a configured freeze window waits
 * for its end (or is refused, by config) before it takes the lock, and one
 * that rolled back or failed verification quarantines its version. Before,
 * neither happened.
 */
export const FREEZE_WINDOWS_PATCH = 'deploy-waits-out-freeze-windows';
export const QUARANTINE_PATCH = 'deploy-quarantines-rolled-back-version';

/**
 * Stop the line: before each weight increase after its first step (and
 * before promote {full}'s 100%), the canary asks the freezeState activity
 * whether its environment is frozen (deployctl freeze) and, while it is,
 * holds its weight, looking again every freeze.checkIntervalMs on a timer
 * that an abort ends at once. Before, nothing stopped a running canary.
 */
export const CANARY_HOLDS_WHILE_FROZEN_PATCH = 'canary-holds-while-frozen';

/**
 * A plan whose services are ordered (config dependsOn) rolls out wave by wave:
 * each wave's images, its rollout and, but for the last, its checks before the
 * next starts; the rollback restores the waves last first. Plans from before
 * have no waves and roll out as one.
 */
export const WAVES_PATCH = 'deploy-rolls-out-in-waves';

/**
 * Before a Deployment's images change, its configuration is snapshotted
 * (ConfigMaps from the release commit, the Secrets it references) and the
 * same write points it at the snapshots; after a success, snapshots no
 * revision references any more are pruned. Before, configuration was never touched.
 */
export const CONFIG_SNAPSHOTS_PATCH = 'deploy-snapshots-configuration';

/**
 * Issue 23 items 4 and 5: each finished deployment, rollback, release stage
 * and approval, and each freeze and unfreeze, appends its record to the
 * environment's audit ledger (the appendAudit activity); a freeze notifies
 * when it freezes and unfreezes, and a manual rollback when it starts, as a
 * deployment does. Before, none of them did.
 */
export const AUDIT_PATCH = 'audit-ledger-and-notifications';

/** Every patch id above: what a history's patch markers may hold. */
export const PATCH_IDS: readonly string[] = [
  RUN_ANALYSIS_PATCH,
  GATE_BEFORE_FULL_ON_PROMOTE_PATCH,
  ABORT_DURING_FINAL_ANALYSIS_PATCH,
  ABORT_AFTER_FAILED_START_PATCH,
  ROLLBACK_PAST_FAILED_STEP_PATCH,
  PARTIAL_IMAGE_UNDO_PATCH,
  ROLLBACK_LOCK_PATCH,
  RESTORE_APPROVALS_PATCH,
  COMMAND_MIGRATIONS_PATCH,
  CLOSE_STATUS_FOLLOWS_OUTCOME_PATCH,
  BLUE_GREEN_PREVIEW_SMOKE_PATCH,
  ROLLBACK_BLUE_GREEN_PATCH,
  VERIFIED_STEERING_PATCH,
  PAUSE_LIMIT_PATCH,
  CHILD_CONFIRMS_PLAN_PATCH,
  ROLLBACK_CONFIRMS_HANDOVER_PATCH,
  WORKFLOW_ID_RULE_PATCH,
  LOCK_HOLDER_PATCH,
  LOCK_LEASE_PATCH,
  FREEZE_WINDOWS_PATCH,
  QUARANTINE_PATCH,
  CANARY_HOLDS_WHILE_FROZEN_PATCH,
  WAVES_PATCH,
  CONFIG_SNAPSHOTS_PATCH,
  AUDIT_PATCH,
];
