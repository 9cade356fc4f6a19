/**
 * Stop the line: `deployctl freeze --env production --reason ...` starts this
 * workflow under the environment's reserved id (`deploy-freeze-<env>`), so
 * Temporal itself refuses a second freeze of it while one runs. It first
 * verifies who asks (the verifyFreezer activity: the environment's
 * approvers, by the rules that govern approving, with the proof deployctl
 * made where the environment verifies senders); a refused freeze ends at
 * once, having stopped nothing. A valid one holds, durably and without a
 * timer, until a verified approver sends `unfreeze`; any other unfreeze is
 * recorded as ignored with why, never thrown.
 *
 * While it holds, the freezeState activity (which asks Temporal for this
 * workflow and its `status`) reports the environment frozen: new
 * deployments wait at their start and running canaries hold their weight
 * (support/freeze.ts). An abort still works on them during a freeze.
 */
import {
  allHandlersFinished,
  condition,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, FreezerCheck } from '../activities/contracts';
import { ErrorType } from '../domain/errors';
import {
  describeFreezePolicy,
  unfreezeCommand,
  unfreezeGate,
  whoFroze,
  type FreezeRecord,
  type FreezeResult,
  type FreezeStatus,
} from '../domain/freeze';
import { NO_GATE } from '../domain/identity';
import { checkSignal, type FreezePayload } from '../domain/signals';
import type { IgnoredSignal } from '../domain/status';
import { freezeWorkflowId, workflowIdProblem } from '../domain/workflow-id';
import { notifier, SHORT } from './activity-options';
import { AUDIT_PATCH } from './patches';
import { freezeChanged } from './support/metrics';
import { recordAudit } from './support/audit';
import { freezeFacts } from '../domain/audit-facts';
import { freezeStatusQuery, unfreezeSignal } from './messages';
import { outcomeFailure } from './outcome';
import { MAX_SIGNALS } from './support/steering';
import { describeError, nowIso } from './support/tracker';

export { freezeWorkflowId } from '../domain/workflow-id';

/** What deployctl freeze starts (a person may type it in the Temporal UI too, under the reserved id). */
export interface FreezeInput {
  environment: string;
  by: string;
  reason: string;
  /** Proof of who freezes (deployctl --ssh-key / --oidc-token-file), where the environment verifies senders. */
  proof?: unknown;
}

/** The most ignored unfreezes the status keeps (the oldest go first). */
const MAX_IGNORED = 200;

// A quick local check; a verifier that cannot run is retried a little, then the message does not count, with why.
const { verifyFreezer } = proxyActivities<Pick<Activities, 'verifyFreezer'>>({
  ...SHORT,
  retry: { ...SHORT.retry, maximumAttempts: 3 },
});

/** Holds the environment's line stopped from a verified freeze until a verified unfreeze. */
export async function freezeWorkflow(input: FreezeInput): Promise<FreezeResult> {
  const info = workflowInfo();
  const environment = typeof input?.environment === 'string' ? input.environment : String(input?.environment);
  const status: FreezeStatus = {
    workflow: 'freeze',
    workflowId: info.workflowId,
    environment,
    phase: 'verifying',
    startedAt: nowIso(),
    ignoredSignals: [],
  };
  // Registered before the first await (design §3.7); queries never mutate.
  setHandler(freezeStatusQuery, () => status);
  const show = () => setCurrentDetails(details(status));
  const ignore = (by: string, because: string, reason?: string) => {
    const rec: IgnoredSignal = {
      signal: 'unfreeze',
      by,
      at: nowIso(),
      ignoredBecause: because,
      ...(reason ? { reason } : {}),
    };
    if (status.ignoredSignals.length >= MAX_IGNORED) status.ignoredSignals.shift();
    status.ignoredSignals.push(rec);
    show();
  };
  /** The gate a signed unfreeze names: this freeze's own (its first run's id), so a proof for an earlier freeze never counts. */
  const gate = unfreezeGate(info.firstExecutionRunId);
  const check = async (signal: 'freeze' | 'unfreeze', p: FreezePayload, proof: unknown): Promise<FreezerCheck> => {
    try {
      return await verifyFreezer({
        workflowId: info.workflowId,
        signal,
        gate: signal === 'freeze' ? NO_GATE : gate,
        input: { environment, by: p.by, reason: p.reason, ...(proof !== undefined ? { proof } : {}) },
      });
    } catch (err) {
      return { ok: false, reason: `the sender could not be verified: ${describeError(err)}` };
    }
  };

  let received = 0;
  setHandler(unfreezeSignal, async (payload: unknown) => {
    received++;
    if (received > MAX_SIGNALS) {
      if (received === MAX_SIGNALS + 1)
        ignore(
          '(any)',
          `more than ${MAX_SIGNALS} signals reached this freeze; later ones are dropped unread (terminate this workflow to end the freeze)`,
        );
      return;
    }
    const c = checkSignal<FreezePayload>('unfreeze', payload);
    if (!c.ok) return ignore(c.by, c.reason);
    const p = c.value;
    const notNow = () =>
      status.unfrozen
        ? `already unfrozen by ${status.unfrozen.by}`
        : status.phase === 'verifying'
          ? 'the freeze is still verifying who froze it; send it again once it is frozen'
          : `nothing to unfreeze (the freeze was ${status.phase})`;
    if (status.phase !== 'frozen' || status.unfrozen) return ignore(p.by, notNow(), p.reason);
    const r = await check('unfreeze', p, (payload as { proof?: unknown }).proof);
    if (!r.ok) return ignore(p.by, r.reason, p.reason);
    // Two unfreezes verified at once: the first one counts.
    if (status.unfrozen) return ignore(r.by, notNow(), p.reason);
    status.unfrozen = record(r, p.reason);
    show();
  });

  // --- who froze it --------------------------------------------------------------
  let configured = false;
  const refuse: (reason: string) => never = (reason) => {
    status.phase = 'refused';
    status.refused = reason;
    status.endedAt = nowIso();
    show();
    log.warn('freeze refused', { environment, reason });
    // The environment is a label once the verifier found it configured (it answered with its approvals).
    freezeChanged(configured ? environment : 'unknown', 'refused');
    const result: FreezeResult = { outcome: 'refused', reason, status };
    throw outcomeFailure(ErrorType.FreezeRefused, `refused: ${reason}`, result);
  };
  show();
  const idProblem = workflowIdProblem(info.workflowId, { freeze: true });
  if (idProblem) refuse(idProblem);
  if (info.workflowId !== freezeWorkflowId(environment))
    refuse(
      `a freeze of ${JSON.stringify(environment)} runs as ${freezeWorkflowId(environment)}, not ${info.workflowId}: start it with deployctl freeze --env <env>`,
    );
  const c = checkSignal<FreezePayload>('freeze', input);
  if (!c.ok) refuse(c.reason);
  const asked = c.value;
  const ok = await check('freeze', asked, input.proof);
  configured = ok.approvals !== undefined;
  if (ok.approvals) status.steering = describeFreezePolicy(environment, ok.approvals);
  if (!ok.ok) refuse(ok.reason);

  // --- frozen until a verified unfreeze ------------------------------------------------
  status.frozen = record(ok, asked.reason);
  status.phase = 'frozen';
  status.gate = gate;
  status.unfreezeCommand = unfreezeCommand(environment, ok.approvals);
  show();
  log.info('environment frozen', { environment, by: ok.by, via: ok.via });
  freezeChanged(environment, 'freeze');
  const observed = patched(AUDIT_PATCH);
  if (observed) {
    await recordAudit(environment, 'freeze', 'freeze', freezeFacts(status.frozen, 'frozen'));
    await announce('frozen', environment, status.frozen);
  }
  await condition(() => status.unfrozen !== undefined);
  // The unfreezes still being verified are recorded (as ignored: it is already unfrozen) before the run ends.
  await condition(allHandlersFinished);
  status.phase = 'unfrozen';
  status.endedAt = nowIso();
  show();
  log.info('environment unfrozen', { environment, by: status.unfrozen?.by });
  freezeChanged(environment, 'unfreeze');
  if (observed) {
    await recordAudit(environment, 'unfreeze', 'unfreeze', freezeFacts(status.unfrozen!, 'unfrozen'));
    await announce('unfrozen', environment, status.unfrozen!);
  }
  return { outcome: 'unfrozen', status };
}

/** Tells the environment's channels who froze or unfroze it and why; best effort, as every notification. */
async function announce(kind: 'frozen' | 'unfrozen', environment: string, r: FreezeRecord): Promise<void> {
  try {
    await notifier.notify({
      kind,
      workflowId: workflowInfo().workflowId,
      environment,
      version: '',
      text: `${kind} by ${whoFroze(r)}: ${r.reason}`,
    });
  } catch (err) {
    log.warn('notification failed', { kind, error: describeError(err) });
  }
}

function record(r: Extract<FreezerCheck, { ok: true }>, reason: string): FreezeRecord {
  return {
    by: r.by,
    via: r.via,
    reason,
    at: nowIso(),
    ...(r.credential ? { credential: r.credential } : {}),
  };
}

/** The Temporal UI's current details of a freeze: who froze it and why, and how to end it. */
function details(s: FreezeStatus): string {
  const lines = [`**${s.phase}** — stop-the-line freeze of ${s.environment}`];
  if (s.frozen) lines.push(`**frozen by** ${whoFroze(s.frozen)} at ${s.frozen.at}: ${s.frozen.reason}`);
  if (s.phase === 'frozen') {
    lines.push('new deployments wait at their start; running canaries hold their weight; abort still works');
    if (s.unfreezeCommand) lines.push(`- \`${s.unfreezeCommand}\``);
  }
  if (s.refused) lines.push(`**refused:** ${s.refused} (nothing was frozen)`);
  if (s.unfrozen) lines.push(`**unfrozen by** ${whoFroze(s.unfrozen)} at ${s.unfrozen.at}: ${s.unfrozen.reason}`);
  if (s.steering) lines.push(`steering: ${s.steering}`);
  const last = s.ignoredSignals.at(-1);
  if (last) lines.push(`**last ignored unfreeze:** from ${last.by}: ${last.ignoredBecause}`);
  return lines.join('\n');
}
