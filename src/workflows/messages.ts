/**
 * Signal and query definitions shared by every workflow and by deployctl
 * (design §4). The names are a contract: people type them in the Temporal UI.
 * Payloads are `unknown` on purpose: handlers check them and record bad ones
 * as ignored instead of failing the workflow task.
 */
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { FreezeStatus } from '../domain/freeze';
import type { DeploymentStatus } from '../domain/status';

export const approveSignal = defineSignal<[unknown]>('approve');
export const abortSignal = defineSignal<[unknown]>('abort');
export const pauseSignal = defineSignal<[unknown]>('pause');
export const resumeSignal = defineSignal<[unknown]>('resume');
export const promoteSignal = defineSignal<[unknown]>('promote');

export const statusQuery = defineQuery<DeploymentStatus>('status');

/** Ends an environment's stop-the-line freeze (workflows/freeze.ts): {by, reason, proof?} from a verified approver. */
export const unfreezeSignal = defineSignal<[unknown]>('unfreeze');
/** The freeze's answer to `status` (its own shape, `workflow: 'freeze'`): same name, so the UI and deployctl ask alike. */
export const freezeStatusQuery = defineQuery<FreezeStatus>('status');
