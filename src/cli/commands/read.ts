/**
 * deployctl status, watch, list and history: reading deployments, never changing them.
 */
import { Command, Option } from 'commander';
import type { DeployResult } from '../../workflows/deploy';
import { resultInFailure, resultOf } from '../../workflows/outcome';
import { ExitCode, exitCodeFor } from '../exit-codes';
import { isFreezeStatus } from '../../domain/freeze';
import { formatFreezeStatus, formatStatus } from '../format';
import { CliError, follow, queryStatus, withClient, workflowIdArg, type Ctx } from '../session';

export function addReadCommands(program: Command, ctx: Ctx, exit: { code: number }): void {
  program
    .command('status')
    .description('Show a deployment: phase, steps, canary weight, soak, analysis, what it waits for.')
    .argument('<workflowId>', 'the deployment workflow id', workflowIdArg({ lock: true, freeze: true }))
    .option('--json', 'print the status as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  deployctl status deploy-production-1.0.1\n  deployctl status deploy-production-1.0.1 --json',
    )
    .action(async (workflowId: string, o: { json?: boolean }) => {
      await withClient(ctx, async (client) => {
        // A stop-the-line freeze answers `status` with its own shape.
        const raw = await client.workflow.getHandle(workflowId).query<unknown>('status');
        if (isFreezeStatus(raw))
          return ctx.out(o.json ? JSON.stringify(raw, null, 2) : formatFreezeStatus(raw, { colour: ctx.isTTY }));
        const s = await queryStatus(client, workflowId);
        ctx.out(
          o.json
            ? JSON.stringify(s.child ? { ...s.status, activeChild: s.child } : s.status, null, 2)
            : formatStatus(s.status, { colour: ctx.isTTY }, s.child),
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
        if (desc.type !== 'deployWorkflow')
          return desc.status.name === 'COMPLETED' || (await endedWithResult(handle.result()))
            ? ExitCode.Ok
            : ExitCode.Failed;
        const r = await resultOf(handle.result() as Promise<DeployResult>);
        ctx.out(`${r.outcome}${r.reason ? `: ${r.reason}` : ''}`);
        return exitCodeFor(r);
      });
    });

  program
    .command('list')
    .description('List deployments by the Deploy* search attributes.')
    .option('--env <name>', 'only this environment')
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
    .addHelpText('after', '\nExamples:\n  deployctl list --env production --status running\n  deployctl list --json')
    .action(async (o: { env?: string; status?: string; limit: number; json?: boolean }) => {
      if (o.env !== undefined && !/^[a-z0-9-]{1,63}$/.test(o.env))
        throw new CliError(`invalid --env ${JSON.stringify(o.env)}`, ExitCode.BadInput);
      const clauses = [`WorkflowType IN ('deployWorkflow', 'rollbackWorkflow')`];
      if (o.env) clauses.push(`DeployEnvironment = '${o.env}'`);
      if (o.status)
        clauses.push(
          `ExecutionStatus = '${{ running: 'Running', completed: 'Completed', failed: 'Failed', terminated: 'Terminated', canceled: 'Canceled', 'timed-out': 'TimedOut' }[o.status]}'`,
        );
      await withClient(ctx, async (client) => {
        const rows: Record<string, string>[] = [];
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
            started: w.startTime.toISOString(),
          });
          if (rows.length >= o.limit) break;
        }
        if (o.json) return ctx.out(JSON.stringify(rows, null, 2));
        if (!rows.length) return ctx.out('no deployments');
        const cols = ['workflowId', 'status', 'environment', 'version', 'strategy', 'phase', 'started'];
        const width = Object.fromEntries(cols.map((c) => [c, Math.max(c.length, ...rows.map((r) => r[c].length))]));
        ctx.out(cols.map((c) => c.toUpperCase().padEnd(width[c])).join('  '));
        for (const r of rows) ctx.out(cols.map((c) => r[c].padEnd(width[c])).join('  '));
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

/** Whether a closed workflow's failure carries its result (it closed as Failed for its outcome). */
async function endedWithResult(result: Promise<unknown>): Promise<boolean> {
  return result.then(
    () => true,
    (err: unknown) => resultInFailure(err) !== undefined,
  );
}
