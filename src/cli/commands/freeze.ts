/**
 * deployctl freeze and unfreeze: stop an environment's line (new deployments
 * wait at their start, running canaries hold their weight, abort still
 * works) and start it again. The freeze is a workflow under the
 * environment's reserved id (workflows/freeze.ts) that verifies who asks;
 * these commands start or signal it and wait for its verdict, so the exit
 * code says whether the line is stopped.
 */
import { WorkflowExecutionAlreadyStartedError, type WorkflowHandle } from '@temporalio/client';
import { Command, Option } from 'commander';
import { isFreezeStatus, whoFroze, type FreezeResult, type FreezeStatus } from '../../domain/freeze';
import { NO_GATE } from '../../domain/identity';
import { shellCommand } from '../../domain/shell';
import { checkSignal, type FreezeMessage, type FreezePayload } from '../../domain/signals';
import type { IgnoredSignal } from '../../domain/status';
import { freezeWorkflowId } from '../../domain/workflow-id';
import { resultOf } from '../../workflows/outcome';
import { ExitCode } from '../exit-codes';
import { makeProof, oidcTokenOption, proofOptions, sshKeyOption } from '../proof';
import { CliError, defaultUser, taskQueue, uiLink, withClient, type Ctx } from '../session';

/** How long deployctl waits for the freeze's verdict (a verified sender, a closed freeze) before it says so. */
const VERDICT_WAIT_MS = 60_000;
const ENV_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

function environmentOf(o: Record<string, unknown>): string {
  const env = o.env as string;
  if (!ENV_RE.test(env))
    throw new CliError(
      `invalid --env ${JSON.stringify(env)}: an environment name (a lowercase DNS label)`,
      ExitCode.BadInput,
    );
  return env;
}

function payloadOf(name: FreezeMessage, o: Record<string, unknown>): FreezePayload {
  const c = checkSignal<FreezePayload>(name, { by: o.by, reason: o.reason });
  if (!c.ok) throw new CliError(c.reason, ExitCode.BadInput);
  return c.value;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The freeze's status, or undefined when it cannot be read now (no worker yet, say). */
async function freezeStatusOf(handle: WorkflowHandle): Promise<FreezeStatus | undefined> {
  const s = await handle.query<unknown>('status').catch(() => undefined);
  return isFreezeStatus(s) ? s : undefined;
}

async function closedResult(handle: WorkflowHandle): Promise<FreezeResult | undefined> {
  const d = await handle.describe();
  if (d.status.name === 'RUNNING') return undefined;
  return resultOf(handle.result() as Promise<FreezeResult>).catch(() => undefined);
}

/** One line on an existing freeze: who froze it, how verified, since when and why. */
function frozenBy(s: FreezeStatus): string {
  return s.frozen
    ? `${s.environment} is already frozen by ${whoFroze(s.frozen)} since ${s.frozen.at}: ${s.frozen.reason}`
    : `a freeze of ${s.environment} is being verified (${s.workflowId})`;
}

export function addFreezeCommands(program: Command, ctx: Ctx, exit: { code: number }): void {
  const byOption = () =>
    new Option('--by <name>', 'who (recorded; the SSH principal with --ssh-key)').default(
      defaultUser(),
      'your OS user',
    );

  program
    .command('freeze')
    .description(
      "Stop the line: the environment's new deployments wait at their start and running canaries hold their weight until unfrozen (abort still works).",
    )
    .requiredOption('--env <name>', 'the environment')
    .requiredOption('--reason <text>', 'why (people see it while their deployments wait)')
    .addOption(byOption())
    .addOption(sshKeyOption())
    .addOption(oidcTokenOption())
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      [
        '',
        'Example:',
        '  deployctl freeze --env production --by alice --reason "incident 4711: payments failing"',
        '',
        'Exit codes: 0 frozen, 2 refused (not an approver, not verified, unknown environment),',
        '6 already frozen (who froze it and why are printed), 8 Temporal unreachable.',
      ].join('\n'),
    )
    .action(async (o: Record<string, unknown>) => {
      const environment = environmentOf(o);
      const p = payloadOf('freeze', o);
      const workflowId = freezeWorkflowId(environment);
      const proof = await makeProof(proofOptions(o, ctx.env), {
        workflowId,
        signal: 'freeze',
        by: p.by,
        gate: NO_GATE,
        reason: p.reason,
      });
      exit.code = await withClient(ctx, async (client, namespace) => {
        const handle = client.workflow.getHandle(workflowId);
        try {
          await client.workflow.start('freezeWorkflow', {
            taskQueue: taskQueue(ctx.env),
            workflowId,
            args: [{ environment, by: p.by, reason: p.reason, ...(proof ? { proof } : {}) }],
            workflowIdConflictPolicy: 'FAIL',
            staticSummary: `stop-the-line freeze of ${environment}: ${p.reason}`.slice(0, 200),
            staticDetails: `**asked by:** ${p.by} (from deployctl)\n**reason:** ${p.reason}`,
          });
        } catch (err) {
          if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
          const s = await freezeStatusOf(handle);
          throw new CliError(
            `refused: ${s ? frozenBy(s) : `${environment} is already frozen (${workflowId})`}; ${
              s?.unfreezeCommand
                ? `unfreeze it with ${s.unfreezeCommand}`
                : `see ${shellCommand(['deployctl', 'status', workflowId])}`
            }`,
            ExitCode.Refused,
          );
        }
        const s = await verdict(ctx, handle);
        if (s.phase !== 'frozen' || !s.frozen)
          throw new CliError(`refused: ${s.refused ?? s.phase} (${environment} is not frozen)`, ExitCode.BadInput);
        if (o.json) {
          ctx.out(
            JSON.stringify({
              workflowId,
              environment,
              frozen: s.frozen,
              unfreezeCommand: s.unfreezeCommand,
              ui: uiLink(ctx.env, namespace, workflowId),
            }),
          );
        } else {
          ctx.out(
            [
              `frozen ${environment} by ${whoFroze(s.frozen)} at ${s.frozen.at}: ${s.frozen.reason}`,
              '  new deployments wait at their start; running canaries hold their weight; abort still works',
              `  workflow: ${workflowId}`,
              `  unfreeze: ${s.unfreezeCommand ?? shellCommand(['deployctl', 'unfreeze', '--env', environment])}`,
              `  status:   ${shellCommand(['deployctl', 'status', workflowId])}`,
              `  UI:       ${uiLink(ctx.env, namespace, workflowId)}`,
            ].join('\n'),
          );
        }
        return ExitCode.Ok;
      });
    });

  program
    .command('unfreeze')
    .description("Start the line again: ends the environment's freeze (an approver of the environment).")
    .requiredOption('--env <name>', 'the environment')
    .requiredOption('--reason <text>', 'why now (recorded)')
    .addOption(byOption())
    .addOption(sshKeyOption())
    .addOption(oidcTokenOption())
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      [
        '',
        'Example:',
        '  deployctl unfreeze --env production --by bob --reason "incident 4711 resolved"',
        '',
        'Exit codes: 0 unfrozen, 2 not frozen, or the unfreeze did not count (the reason is printed),',
        '8 Temporal unreachable.',
      ].join('\n'),
    )
    .action(async (o: Record<string, unknown>) => {
      const environment = environmentOf(o);
      const p = payloadOf('unfreeze', o);
      const workflowId = freezeWorkflowId(environment);
      exit.code = await withClient(ctx, async (client) => {
        const handle = client.workflow.getHandle(workflowId);
        const running = await handle.describe().then(
          (d) => d.status.name === 'RUNNING',
          () => false,
        );
        if (!running) throw new CliError(`${environment} is not frozen (no freeze is running)`, ExitCode.BadInput);
        const s = await freezeStatusOf(handle);
        if (!s)
          throw new CliError(
            `the freeze of ${environment} does not answer its status query now; try again`,
            ExitCode.Error,
          );
        if (s.phase !== 'frozen')
          throw new CliError(`${environment} is not frozen yet (${s.phase}): try again in a moment`, ExitCode.BadInput);
        const lastBefore = s.ignoredSignals.at(-1);
        const proof = await makeProof(proofOptions(o, ctx.env), {
          workflowId,
          signal: 'unfreeze',
          by: p.by,
          gate: s.gate ?? NO_GATE,
          reason: p.reason,
        });
        await handle.signal('unfreeze', proof ? { ...p, proof } : p);
        const outcome = await unfreezeOutcome(ctx, handle, lastBefore);
        if ('ignored' in outcome)
          throw new CliError(`not unfrozen: ${outcome.ignored.ignoredBecause}`, ExitCode.BadInput);
        const u = outcome.status.unfrozen;
        ctx.out(
          o.json
            ? JSON.stringify({ workflowId, environment, frozen: outcome.status.frozen, unfrozen: u })
            : `unfrozen ${environment} by ${u ? `${whoFroze(u)} at ${u.at}: ${u.reason}` : '(unknown)'}${
                outcome.status.frozen
                  ? ` (frozen by ${whoFroze(outcome.status.frozen)} since ${outcome.status.frozen.at})`
                  : ''
              }`,
        );
        return ExitCode.Ok;
      });
    });
}

/** Waits until the new freeze is frozen or refused; says so when it takes too long (no worker, a slow verifier). */
async function verdict(ctx: Ctx, handle: WorkflowHandle): Promise<FreezeStatus> {
  const deadline = Date.now() + VERDICT_WAIT_MS;
  for (;;) {
    const closed = await closedResult(handle);
    if (closed) return closed.status;
    const s = await freezeStatusOf(handle);
    if (s && s.phase !== 'verifying') return s;
    if (Date.now() > deadline)
      throw new CliError(
        `started ${handle.workflowId}, but it has not verified who froze it within ${VERDICT_WAIT_MS / 1000}s (is a worker running?): see ${shellCommand(['deployctl', 'status', handle.workflowId])}`,
        ExitCode.Error,
      );
    await sleep(ctx.pollMs ?? 500);
  }
}

/** Waits until the freeze has ended, or has recorded this unfreeze as ignored. */
async function unfreezeOutcome(
  ctx: Ctx,
  handle: WorkflowHandle,
  lastBefore: IgnoredSignal | undefined,
): Promise<{ status: FreezeStatus } | { ignored: IgnoredSignal }> {
  const deadline = Date.now() + VERDICT_WAIT_MS;
  const seen = JSON.stringify(lastBefore ?? null);
  for (;;) {
    const closed = await closedResult(handle);
    if (closed) return { status: closed.status };
    const s = await freezeStatusOf(handle);
    const last = s?.ignoredSignals.at(-1);
    if (last && JSON.stringify(last) !== seen) return { ignored: last };
    if (Date.now() > deadline)
      throw new CliError(
        `sent unfreeze to ${handle.workflowId}, but it has not ended within ${VERDICT_WAIT_MS / 1000}s (is a worker running?): see ${shellCommand(['deployctl', 'status', handle.workflowId])}`,
        ExitCode.Error,
      );
    await sleep(ctx.pollMs ?? 500);
  }
}
