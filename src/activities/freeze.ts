/**
 * The stop-the-line freeze's two questions, answered on the worker:
 *
 * - freezeState: is the environment frozen, and by whom? Asked of Temporal
 *   itself through the worker's client (describe, then the freeze's `status`
 *   query), so the answer is the server's record of the freeze workflow,
 *   not anything a deployment or a person says. Only a running
 *   `freezeWorkflow` under the environment's reserved id that has verified
 *   its freezer counts.
 * - verifyFreezer: may this person freeze or unfreeze the environment? The
 *   environment's approvers, by the same rules as approving a deployment:
 *   with `verify: none` the name is taken as typed; with ssh or oidc the
 *   proof deployctl made is checked by the environment's verifier and its
 *   identity replaces the typed name.
 */
import { WorkflowNotFoundError, type WorkflowClient } from '@temporalio/client';
import type { DeployConfig } from '../domain/config';
import { isFreezeStatus } from '../domain/freeze';
import { mayApprove } from '../domain/identity';
import { approvalPolicy } from '../domain/planner';
import { freezeWorkflowId } from '../domain/workflow-id';
import type {
  FreezerCheck,
  FreezerRequest,
  FreezeState,
  FreezeStateRequest,
  SenderCheck,
  VerifySenderRequest,
} from './contracts';

export interface FreezeDeps {
  config: DeployConfig;
  /** The worker's sender check (identity/verifier.ts). */
  verifySender(req: VerifySenderRequest): Promise<SenderCheck>;
  /** The worker's client; without one no environment is ever seen frozen. */
  temporal?: WorkflowClient;
}

/** The workflow type a freeze runs as (workflows/freeze.ts); another type under the reserved id stops nothing. */
const FREEZE_TYPE = 'freezeWorkflow';

export function freezeActivities(deps: FreezeDeps) {
  return {
    async freezeState(req: FreezeStateRequest): Promise<FreezeState> {
      if (!deps.temporal) return {};
      const workflowId = freezeWorkflowId(req.environment);
      const handle = deps.temporal.getHandle(workflowId);
      let running: boolean;
      let type: string;
      try {
        const d = await handle.describe();
        running = d.status.name === 'RUNNING';
        type = d.type;
      } catch (err) {
        // Never frozen, or gone past retention: the line runs.
        if (err instanceof WorkflowNotFoundError) return {};
        throw err;
      }
      if (!running || type !== FREEZE_TYPE) return {};
      const s = await handle.query<unknown>('status');
      // Still verifying its freezer (or refused): nothing is stopped yet.
      if (!isFreezeStatus(s) || s.phase !== 'frozen' || !s.frozen) return {};
      const { by, via, reason, at } = s.frozen;
      return { frozen: { by, via, reason, at, workflowId } };
    },

    async verifyFreezer(req: FreezerRequest): Promise<FreezerCheck> {
      const { environment, by, reason, proof } = req.input ?? {};
      const env =
        typeof environment === 'string' && Object.hasOwn(deps.config.environments, environment)
          ? deps.config.environments[environment]
          : undefined;
      if (!env)
        return {
          ok: false,
          reason: `unknown environment ${JSON.stringify(environment)}: configured are ${Object.keys(deps.config.environments).join(', ')}`,
        };
      const approvals = approvalPolicy(env.approvals);
      if (typeof by !== 'string' || typeof reason !== 'string')
        return { ok: false, reason: `${req.signal} needs "by" and "reason"`, approvals };
      const notApprover = (who: string) => `${who} is not an approver for ${environment}`;
      if (approvals.verify === 'none')
        return mayApprove(approvals, by, [])
          ? { ok: true, by, via: 'none', approvals }
          : { ok: false, reason: notApprover(by), approvals };
      const r = await deps.verifySender({
        environment,
        message: { workflowId: req.workflowId, signal: req.signal, by, reason },
        proof,
      });
      if (!r.ok) return { ok: false, reason: `not verified: ${r.reason}`, approvals };
      const sender = r.sender;
      // A signed unfreeze counts only for the freeze it was signed for, never for a later one of the same id.
      if (sender.gate !== req.gate)
        return {
          ok: false,
          reason: `signed for gate ${sender.gate}, but this ${req.signal} answers gate ${req.gate}: sign it again for this freeze`,
          approvals,
        };
      if (!mayApprove(approvals, sender.identity, sender.groups))
        return { ok: false, reason: notApprover(sender.identity), approvals };
      return {
        ok: true,
        by: sender.identity,
        via: sender.via,
        ...(sender.credential ? { credential: sender.credential } : {}),
        approvals,
      };
    },
  };
}
