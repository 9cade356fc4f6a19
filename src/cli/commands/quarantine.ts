/**
 * deployctl quarantine list | lift: the quarantine of versions (a version
 * rolled back, or whose verification failed, anywhere), read and lifted
 * through the worker's quarantineWorkflow, which holds the store and the
 * verifiers. A lift is a workflow of its own, so its history records who
 * lifted what and why; its proof is made for that workflow's id.
 */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure, TimeoutFailure } from '@temporalio/common';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { Command, Option } from 'commander';
import type { QuarantineRecord } from '../../activities/contracts';
import { NO_GATE } from '../../domain/identity';
import { parseVersion } from '../../domain/version';
import type { QuarantineInput, QuarantineResult } from '../../workflows/quarantine';
import { ExitCode } from '../exit-codes';
import { formatQuarantine, liftedLine } from '../format';
import { makeProof, oidcTokenOption, proofOptions, sshKeyOption } from '../proof';
import { CliError, defaultUser, taskQueue, withClient, type Ctx } from '../session';

/** How long deployctl waits for the worker to list or lift; a worker that is not running ends it with a line that says so. */
const ANSWER_WITHIN = '2m';

const BY_RE = /^[\p{L}\p{N}._@+\- ]{1,128}$/u;
const MAX_REASON = 1000;

/** quarantine-<action>[-<version>]-<UTC timestamp>-<random>: unique per run, within the id rule. */
export function quarantineWorkflowId(action: 'list' | 'lift', version?: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').slice(0, 15);
  return `quarantine-${action}${version ? `-${version}` : ''}-${stamp}-${randomBytes(3).toString('hex')}`;
}

/** What a lift lifted, one record each. */
export function formatLifted(records: QuarantineRecord[]): string {
  return records
    .map(
      (r) => `${r.version}: quarantine in ${r.environment} (${r.reason}) ${r.lifted ? liftedLine(r.lifted) : 'lifted'}`,
    )
    .join('\n');
}

export function addQuarantineCommands(program: Command, ctx: Ctx): void {
  const quarantine = program
    .command('quarantine')
    .description(
      'Versions held back: rolled back, or failed verification, anywhere. A release of one, and a rollback to one, are refused until an approver lifts it.',
    )
    .addHelpText(
      'after',
      '\nExamples:\n  deployctl quarantine list\n  deployctl quarantine lift 1.0.1 --by alice --reason "the fix is in the config, not the image"',
    );

  quarantine
    .command('list')
    .description('List quarantined versions: where and why, by which workflow, since when, and who lifted them.')
    .option('--json', 'the records as JSON')
    .addHelpText('after', '\nExamples:\n  deployctl quarantine list\n  deployctl quarantine list --json')
    .action(async (o: { json?: boolean }) => {
      await withClient(ctx, async (client) => {
        const r = await runQuarantine(ctx, client, quarantineWorkflowId('list'), { action: 'list' });
        ctx.out(o.json ? JSON.stringify(r.records, null, 2) : formatQuarantine(r.records));
      });
    });

  quarantine
    .command('lift')
    .description(
      'Lift the quarantine of a version: an approver of the environment that quarantined it, verified as that environment verifies its approvers.',
    )
    .argument('<version>', 'the quarantined version, e.g. 1.0.1', (v: string) => {
      try {
        return parseVersion(v);
      } catch (err) {
        throw new CliError((err as Error).message, ExitCode.BadInput);
      }
    })
    .addOption(
      new Option('--by <name>', 'who lifts it (the SSH principal with --ssh-key)').default(
        defaultUser(),
        'your OS user',
      ),
    )
    .requiredOption('--reason <text>', 'why it may be released again (recorded with the lift)')
    .addOption(sshKeyOption())
    .addOption(oidcTokenOption())
    .option('--json', 'what was lifted, as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  deployctl quarantine lift 1.0.1 --by alice --reason "the fix is in the config, not the image"\n  deployctl quarantine lift 1.0.1 --by alice --reason "flaky probe" --ssh-key ~/.ssh/id_ed25519',
    )
    .action(async (version: string, o: Record<string, unknown>) => {
      const by = String(o.by);
      const reason = String(o.reason);
      if (!BY_RE.test(by))
        throw new CliError(
          `invalid --by ${JSON.stringify(by)}: the name of the person (letters, digits, spaces, . _ @ + -, at most 128)`,
          ExitCode.BadInput,
        );
      if (!reason.trim() || reason.length > MAX_REASON)
        throw new CliError(`--reason must be text of 1 to ${MAX_REASON} characters`, ExitCode.BadInput);
      const workflowId = quarantineWorkflowId('lift', version);
      // The statement the worker checks: this lift's workflow id, "lift", who and why.
      const proof = await makeProof(proofOptions(o, ctx.env), {
        workflowId,
        signal: 'lift',
        by,
        gate: NO_GATE,
        reason,
      });
      await withClient(ctx, async (client) => {
        const r = await runQuarantine(ctx, client, workflowId, {
          action: 'lift',
          version,
          by,
          reason,
          ...(proof ? { proof } : {}),
        });
        ctx.out(o.json ? JSON.stringify({ workflowId, lifted: r.records }, null, 2) : formatLifted(r.records));
      });
    });
}

/**
 * Runs quarantineWorkflow to its end. A refusal from the worker (not an
 * approver, not verified, not quarantined) is its one line and exit 2.
 */
async function runQuarantine(
  ctx: Ctx,
  client: Client,
  workflowId: string,
  input: QuarantineInput,
): Promise<QuarantineResult> {
  const queue = taskQueue(ctx.env);
  try {
    return await client.workflow.execute<(input: QuarantineInput) => Promise<QuarantineResult>>('quarantineWorkflow', {
      taskQueue: queue,
      workflowId,
      args: [input],
      workflowExecutionTimeout: ANSWER_WITHIN,
      staticSummary:
        input.action === 'lift'
          ? `lift the quarantine of ${input.version} (by ${input.by}): ${input.reason}`.slice(0, 200)
          : 'list quarantined versions',
    });
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    if (err.cause instanceof TimeoutFailure)
      throw new CliError(
        `no worker answered within ${ANSWER_WITHIN} on task queue ${queue}: is the worker running (npm start)? set TEMPORAL_TASK_QUEUE if it polls another queue`,
        ExitCode.Error,
      );
    const cause = applicationCause(err);
    if (cause?.type === 'InvalidInput') throw new CliError(cause.message, ExitCode.BadInput);
    throw new CliError(
      `${workflowId} failed: ${cause ? `${cause.type ?? 'error'}: ${cause.message}` : err.message}`,
      ExitCode.Error,
    );
  }
}

/** The ApplicationFailure behind a workflow's failure (through the activity failure around it). */
function applicationCause(err: unknown): ApplicationFailure | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++)
    if (e instanceof ApplicationFailure) return e;
  return undefined;
}
