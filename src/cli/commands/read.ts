/**
 * deployctl status, watch, list and history: reading deployments and releases, never changing them.
 */
import { Command, Option } from 'commander';
import { parseVersion } from '../../domain/version';
import type { DeploymentStatus } from '../../domain/status';
import type { DeployResult } from '../../workflows/deploy';
import type { ReleaseResult } from '../../workflows/release';
import { resultInFailure, resultOf } from '../../workflows/outcome';
import { ExitCode, exitCodeFor } from '../exit-codes';
import { isFreezeStatus } from '../../domain/freeze';
import { formatFreezeStatus, formatStatus, formatTable } from '../format';
import { CliError, follow, queryStatus, readStatus, statusJson, withClient, workflowIdArg, type Ctx } from '../session';

export function addReadCommands(program: Command, ctx: Ctx, exit: { code: number }): void {
  program
    .command('status')
    .description(
      "Show a deployment, a release or a freeze: phase, steps, canary weight, soak, analysis, what it waits for; a release's stages and images.",
    )
    .argument(
      '<workflowId>',
      'the deployment, release or freeze workflow id',
      workflowIdArg({ lock: true, freeze: true }),
    )
    .option('--json', 'print the status as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  deployctl status deploy-production-1.0.1\n  deployctl status deploy-production-1.0.1 --json\n  deployctl status release-1.0.1',
    )
    .action(async (workflowId: string, o: { json?: boolean }) => {
      await withClient(ctx, async (client) => {
        // A stop-the-line freeze answers `status` with its own shape.
        const raw = await readStatus<unknown>(client, workflowId);
        if (isFreezeStatus(raw))
          return ctx.out(o.json ? JSON.stringify(raw, null, 2) : formatFreezeStatus(raw, { colour: ctx.isTTY }));
        const s = await queryStatus(client, workflowId, { status: raw as DeploymentStatus });
        ctx.out(
          o.json
            ? JSON.stringify(statusJson(s), null, 2)
            : formatStatus(s.status, { colour: ctx.isTTY }, s.child, s.grandchild),
        );
      });
    });

  program
    .command('watch')
    .description('Follow a deployment live until it ends; exits with its outcome.')
    .argument('<workflowId>', 'the deployment workflow id', workflowIdArg({ lock: true, freeze: true }))
    .addHelpText('after', '\nExample:\n  deployctl watch deploy-production-1.0.1')
    .action(async (workflowId: string) => {
      exit.code = await withClient(ctx, async (client) => {
        await follow(ctx, client, workflowId, false);
        const handle = client.workflow.getHandle(workflowId);
        const desc = await handle.describe();
        // A workflow that closed as Failed for its outcome (workflows/outcome.ts) ended with a result, as one that
        // completed did before: the exit code of other workflow types stays what it was for it.
        if (desc.type !== 'deployWorkflow' && desc.type !== 'releaseWorkflow')
          return desc.status.name === 'COMPLETED' || (await endedWithResult(handle.result()))
            ? ExitCode.Ok
            : ExitCode.Failed;
        const r = await resultOf(handle.result() as Promise<DeployResult | ReleaseResult>);
        ctx.out(`${r.outcome}${r.reason ? `: ${r.reason}` : ''}`);
        return exitCodeFor(r);
      });
    });

  program
    .command('list')
    .description(
      'List deployments, rollbacks and releases by the Deploy* search attributes; --release: one release and its stage deployments.',
    )
    .option('--env <name>', 'only this environment')
    .option('--release <version>', "a release's workflow and each of its stage deployments")
    .addOption(
      new Option('--status <status>', 'only workflows in this state').choices([
        'running',
        'completed',
        'failed',
        'terminated',
        'canceled',
        'timed-out',
      ]),
    )
    .option('--limit <n>', 'at most this many', (v) => Number(v), 20)
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nExamples:\n  deployctl list --env production --status running\n  deployctl list --release 1.0.1\n  deployctl list --json',
    )
    .action(async (o: { env?: string; release?: string; status?: string; limit: number; json?: boolean }) => {
      if (o.env !== undefined && !/^[a-z0-9-]{1,63}$/.test(o.env))
        throw new CliError(`invalid --env ${JSON.stringify(o.env)}`, ExitCode.BadInput);
      const release = o.release === undefined ? undefined : releaseVersion(o.release);
      // A release's workflow and its stages' deployments carry its version as DeployRelease.
      const clauses = release
        ? [`DeployRelease = '${release}'`]
        : [`WorkflowType IN ('deployWorkflow', 'rollbackWorkflow', 'releaseWorkflow')`];
      if (o.env) clauses.push(`DeployEnvironment = '${o.env}'`);
      if (o.status)
        clauses.push(
          `ExecutionStatus = '${{ running: 'Running', completed: 'Completed', failed: 'Failed', terminated: 'Terminated', canceled: 'Canceled', 'timed-out': 'TimedOut' }[o.status]}'`,
        );
      await withClient(ctx, async (client) => {
        let rows: Record<string, string>[] = [];
        for await (const w of client.workflow.list({ query: clauses.join(' AND ') })) {
          const sa = (k: string) => String(w.searchAttributes?.[k]?.[0] ?? '');
          rows.push({
            workflowId: w.workflowId,
            type: w.type,
            status: w.status.name,
            environment: sa('DeployEnvironment'),
            version: sa('DeployVersion'),
            strategy: sa('DeployStrategy'),
            phase: sa('DeployPhase'),
            ...(release ? { stage: sa('DeployStage') } : {}),
            started: w.startTime.toISOString(),
          });
          if (rows.length >= o.limit) break;
        }
        if (release) rows = releaseOrder(rows);
        if (o.json) return ctx.out(JSON.stringify(rows, null, 2));
        if (!rows.length) return ctx.out(release ? `no release ${release}` : 'no deployments');
        const cols = release
          ? RELEASE_LIST_COLUMNS
          : ['workflowId', 'status', 'environment', 'version', 'strategy', 'phase', 'started'];
        for (const line of formatTable(cols, rows)) ctx.out(line);
      });
    });

  program
    .command('history')
    .description('The event history of a workflow: activities, timers, signals, children, in order.')
    .argument('<workflowId>', 'the workflow id', workflowIdArg({ lock: true, freeze: true }))
    .option('--json', 'the raw history as JSON')
    .action(async (workflowId: string, o: { json?: boolean }) => {
      await withClient(ctx, async (client) => {
        const h = await client.workflow.getHandle(workflowId).fetchHistory();
        if (o.json) return ctx.out(JSON.stringify(h, null, 2));
        const activities = new Map<string, string>();
        for (const e of h.events ?? []) {
          const at = e.eventTime?.seconds ? new Date(Number(e.eventTime.seconds) * 1000).toISOString() : '';
          const type = String(e.eventType ?? '').replace(/^EVENT_TYPE_/, '');
          let what = '';
          if (e.activityTaskScheduledEventAttributes) {
            what = e.activityTaskScheduledEventAttributes.activityType?.name ?? '';
            activities.set(String(e.eventId), what);
          } else if (e.activityTaskCompletedEventAttributes)
            what = activities.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId)) ?? '';
          else if (e.activityTaskFailedEventAttributes)
            what = `${activities.get(String(e.activityTaskFailedEventAttributes.scheduledEventId)) ?? ''}: ${e.activityTaskFailedEventAttributes.failure?.message ?? ''}`;
          else if (e.workflowExecutionSignaledEventAttributes)
            what = e.workflowExecutionSignaledEventAttributes.signalName ?? '';
          else if (e.timerStartedEventAttributes) what = `timer ${e.timerStartedEventAttributes.timerId ?? ''}`;
          else if (e.startChildWorkflowExecutionInitiatedEventAttributes)
            what = e.startChildWorkflowExecutionInitiatedEventAttributes.workflowId ?? '';
          if (/WORKFLOW_TASK/.test(type)) continue;
          ctx.out(`${String(e.eventId).padStart(4)} ${at} ${type}${what ? `  ${what}` : ''}`);
        }
      });
    });
}

/** The columns of `list --release`: the release first, then its stages' deployments in the order they started. */
export const RELEASE_LIST_COLUMNS = ['workflowId', 'type', 'stage', 'status', 'phase', 'started'];

/** The release's own workflow first, then the rest in the order they started. */
export function releaseOrder(rows: Record<string, string>[]): Record<string, string>[] {
  const rank = (r: Record<string, string>) => (r.type === 'releaseWorkflow' ? 0 : 1);
  return [...rows].sort((a, b) => rank(a) - rank(b) || a.started.localeCompare(b.started));
}

/** --release: a version as releases are named (a leading "v" is dropped); anything else is exit 2 before connecting. */
function releaseVersion(v: string): string {
  try {
    return parseVersion(v);
  } catch (err) {
    throw new CliError(`invalid --release: ${(err as Error).message}`, ExitCode.BadInput);
  }
}

/** Whether a closed workflow's failure carries its result (it closed as Failed for its outcome). */
async function endedWithResult(result: Promise<unknown>): Promise<boolean> {
  return result.then(
    () => true,
    (err: unknown) => resultInFailure(err) !== undefined,
  );
}
