/**
 * The wait of a deployment whose environment's line is stopped (deployctl
 * freeze): it asks the freezeState activity, and while the environment is
 * frozen it shows phase `frozen`, what it waits for (who froze it, why, and
 * the exact unfreeze command) and looks again every
 * `plan.freeze.checkIntervalMs` (one minute by default) on a durable timer.
 * An abort ends the wait at once, whatever the timer: stopping the line
 * never stops anyone from going back to stable.
 *
 * The deploy workflow holds here before it starts anything; the canary
 * before each weight increase after its first step. Each calls it behind a
 * patch of its own: the check is an activity and the wait a timer, both new
 * commands.
 */
import { CancellationScope, condition, log } from '@temporalio/workflow';
import type { FrozenBy } from '../../activities/contracts';
import { formatDuration } from '../../domain/duration';
import { frozenLine, unfreezeCommand } from '../../domain/freeze';
import { policyOf, proofFlags, type ApprovalPolicy } from '../../domain/identity';
import { shellCommand } from '../../domain/shell';
import { lease } from '../activity-options';
import { signalTargetId } from './steering';
import { describeError, type Tracker } from './tracker';

/** How often a held deployment looks again when the plan does not say (plans recorded before freezes). */
export const DEFAULT_FREEZE_CHECK_MS = 60_000;

/** What the hold reads from a plan (a DeployPlan has it all). */
export interface FreezeHoldPlan {
  environment: string;
  freeze?: { checkIntervalMs: number };
  approvals?: ApprovalPolicy;
  approvers?: string[];
  requiredApprovals?: number;
}

export interface FreezeHoldOptions {
  /** What holds, as the status says it: "the deployment waits" (default), "the canary holds at 25%". */
  holding?: string;
}

/**
 * Waits while `plan.environment` is frozen; 'clear' once it is not (at once
 * when it never was), 'aborted' as soon as `aborted()` is true. A check that
 * cannot be answered changes nothing: a hold goes on holding and a clear
 * line stays clear, and the next check asks again.
 */
export async function holdWhileFrozen(
  t: Tracker,
  plan: FreezeHoldPlan,
  aborted: () => boolean,
  o: FreezeHoldOptions = {},
): Promise<'clear' | 'aborted'> {
  const every = Math.max(1000, plan.freeze?.checkIntervalMs ?? DEFAULT_FREEZE_CHECK_MS);
  const policy = policyOf(plan);
  const before = t.status.phase;
  let holding: FrozenBy | undefined;
  for (;;) {
    if (aborted()) return leave('aborted');
    // Racing the abort: a check that is slow (retrying) never delays an abort. The race's wait for the abort is
    // cancelled after it (no command: it has no timer), so a hold of days leaves no waits behind.
    const check = lease.freezeState({ environment: plan.environment }).catch((err: unknown) => {
      log.warn('freeze check failed; nothing changes until the next one', { error: describeError(err) });
      return undefined;
    });
    const abortWait = new CancellationScope();
    const state = await Promise.race([
      check,
      abortWait
        .run(() => condition(aborted))
        .then(
          () => undefined,
          () => undefined,
        ),
    ]);
    abortWait.cancel();
    if (aborted()) return leave('aborted');
    const frozen = state ? state.frozen : holding;
    if (!frozen) return leave('clear');
    if (!holding || holding.by !== frozen.by || holding.reason !== frozen.reason || holding.at !== frozen.at) {
      t.phase('frozen');
      t.waitFor(
        frozenLine(
          plan.environment,
          frozen,
          o.holding ?? 'the deployment waits',
          unfreezeCommand(plan.environment, policy),
        ),
        undefined,
        [
          unfreezeCommand(plan.environment, policy),
          `${shellCommand(['deployctl', 'abort', signalTargetId(), '--by'])} <name> --reason <text>${proofFlags(policy)}`,
        ],
      );
    }
    holding = frozen;
    if (
      await condition(aborted, every, {
        summary: `${plan.environment} is frozen by ${frozen.by}: looks again in ${formatDuration(every)}`,
      })
    )
      return leave('aborted');
  }

  /** Ends the hold: what it showed goes, and a clear line gives the caller back its phase. */
  function leave(how: 'clear' | 'aborted'): 'clear' | 'aborted' {
    if (holding) {
      t.doneWaiting();
      if (how === 'clear') t.phase(before);
    }
    return how;
  }
}
