/**
 * deployctl deploy and rollback: check the input as the workflow will, start it (or print the plan of a dry run) and, with --wait, follow it to its end.
 */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { Command, Option } from 'commander';
import {
  checkInput,
  deployInputSchema,
  rollbackInputSchema,
  type DeployInput,
  type RollbackInput,
} from '../../domain/input';
import { BUMPS } from '../../domain/version';
import { resultOf } from '../../workflows/outcome';
import type { RollbackResult } from '../../workflows/rollback';
import { ExitCode } from '../exit-codes';
import { oidcTokenOption, requestProofFor, sshKeyOption } from '../proof';
import { deployMetadata, rollbackMetadata } from '../summaries';
import {
  awaitDeploy,
  checked,
  CliError,
  defaultUser,
  follow,
  list,
  steps,
  taskQueue,
  uiLink,
  withClient,
  workflowIdArg,
  type Ctx,
} from '../session';
import { shellCommand } from '../../domain/shell';

export function addStartCommands(program: Command, ctx: Ctx, exit: { code: number }): void {
  program
    .command('deploy')
    .description('Start a deployment (tag, images, backup, migrations, rollout, verification).')
    .addOption(new Option('--version <semver>', 'the version to release, e.g. 1.0.1'))
    .addOption(new Option('--bump <part>', 'next version from the latest release tag').choices([...BUMPS]))
    .option('--env <name>', "environment (default: the config's default)")
    .addOption(
      new Option('--strategy <strategy>', "rollout strategy (default: the config's)").choices([
        'rolling',
        'canary',
        'blue-green',
      ]),
    )
    .option('--services <list>', 'only these services, comma-separated', list)
    .option('--steps <list>', 'canary weights, e.g. 5,25,50,100', steps)
    .option('--soak <duration>', 'canary soak per step, e.g. 5m')
    .option('--analysis-interval <duration>', 'how often analysis runs during a soak, e.g. 1m')
    .addOption(new Option('--approval <mode>', 'canary approval gates').choices(['none', 'before-full', 'every-step']))
    .option('--approval-timeout <duration>', 'how long a gate waits before aborting, e.g. 1h')
    .option('--no-backup', 'skip the database backup')
    .option('--no-migrate', 'skip database migrations')
    .option('--dry-run', 'print the plan; change nothing')
    .option(
      '--requested-by <name>',
      'recorded in the status and summary (the SSH principal with --ssh-key)',
      defaultUser(),
    )
    .addOption(sshKeyOption())
    .addOption(oidcTokenOption())
    .option('--workflow-id <id>', 'workflow id (default: deploy-[<env>-]<version>)', workflowIdArg())
    .option('--wait', 'follow the deployment and exit with its outcome (see exit codes)')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  deployctl deploy --version 1.0.1 --wait',
        '  deployctl deploy --bump patch --strategy canary --steps 5,10,25,50,100 --soak 10m --approval before-full',
        '  deployctl deploy --version 1.0.1 --dry-run --json',
        '',
        'Exit codes with --wait: 0 succeeded, 2 bad input, 3 failed and rolled back, 4 aborted,',
        '5 approval timed out, 6 refused (another deployment running), 7 failed, 8 Temporal unreachable.',
      ].join('\n'),
    )
    .action(async (o: Record<string, unknown>) => {
      const input: DeployInput = {
        ...(o.version !== undefined ? { version: o.version as string } : {}),
        ...(o.bump !== undefined ? { bump: o.bump as 'patch' } : {}),
        ...(o.env !== undefined ? { environment: o.env as string } : {}),
        ...(o.strategy !== undefined ? { strategy: o.strategy as 'canary' } : {}),
        ...(o.services !== undefined ? { services: o.services as string[] } : {}),
        ...(o.backup === false ? { backup: false } : {}),
        ...(o.migrate === false ? { migrate: false } : {}),
        ...(o.dryRun ? { dryRun: true } : {}),
        requestedBy: o.requestedBy as string,
      };
      const canary: Record<string, unknown> = {};
      if (o.steps) canary.steps = o.steps;
      if (o.soak) canary.soak = o.soak;
      if (o.analysisInterval) canary.analysisInterval = o.analysisInterval;
      if (o.approval) canary.approval = o.approval;
      if (o.approvalTimeout) canary.approvalTimeout = o.approvalTimeout;
      if (Object.keys(canary).length) input.canary = canary;
      const valid = checked(() => checkInput(deployInputSchema, input, 'deploy'));
      // deploy-[<env>-]<version>: one id per release, so a second start of the same release is refused.
      const prefix = valid.environment ? `deploy-${valid.environment}` : 'deploy';
      const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
      const workflowId =
        (o.workflowId as string | undefined) ??
        (valid.version
          ? `${prefix}-${valid.version}${valid.dryRun ? `-dry-run-${stamp}` : ''}`
          : `${prefix}-${valid.bump}-${stamp}`);
      const requestProof = await requestProofFor('deploy', workflowId, valid, o, ctx.env);
      if (requestProof) input.requestProof = requestProof;
      exit.code = await withClient(ctx, async (client, namespace) => {
        try {
          await client.workflow.start('deployWorkflow', {
            taskQueue: taskQueue(ctx.env),
            workflowId,
            args: [input],
            workflowIdConflictPolicy: 'FAIL',
            ...deployMetadata(input),
          });
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError) {
            throw new CliError(
              `refused: deployment ${workflowId} is already running: follow it with \`${shellCommand(['deployctl', 'watch', workflowId])}\``,
              ExitCode.Refused,
            );
          }
          throw err;
        }
        if (!o.json || !o.wait) {
          if (o.json) ctx.out(JSON.stringify({ workflowId, ui: uiLink(ctx.env, namespace, workflowId) }));
          else
            ctx.out(
              [
                `started ${workflowId}`,
                `  watch:  ${shellCommand(['deployctl', 'watch', workflowId])}`,
                `  status: ${shellCommand(['deployctl', 'status', workflowId])}`,
                `  UI:     ${uiLink(ctx.env, namespace, workflowId)}`,
              ].join('\n'),
            );
        }
        return o.wait || valid.dryRun ? awaitDeploy(ctx, client, workflowId, !!o.json) : ExitCode.Ok;
      });
    });

  program
    .command('rollback')
    .description(
      'Roll an environment back: to the previous revision, a revision, or a version; optionally restore the database after approval.',
    )
    .option('--env <name>', "environment (default: the config's default)")
    .option('--to-version <semver>', 'deploy the images of this version')
    .option('--to-revision <n>', 'undo to this revision (kubectl rollout undo --to-revision)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1)
        throw new CliError(`invalid --to-revision ${JSON.stringify(v)}: expected a revision number`, ExitCode.BadInput);
      return n;
    })
    .option('--services <list>', 'only these services, comma-separated', list)
    .option('--restore-db [key]', 'restore the database (from this backup key, or the newest backup) after an approval')
    .option('--reason <text>', 'why (recorded and notified)')
    .option('--requested-by <name>', 'recorded in the status (the SSH principal with --ssh-key)', defaultUser())
    .addOption(sshKeyOption())
    .addOption(oidcTokenOption())
    .option('--wait', 'follow the rollback and exit with its outcome')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      '\nExamples:\n  deployctl rollback --env production --wait\n  deployctl rollback --to-version 1.0.0 --restore-db --reason "bad migration"',
    )
    .action(async (o: Record<string, unknown>) => {
      const input: RollbackInput = {
        ...(o.env !== undefined ? { environment: o.env as string } : {}),
        ...(o.toVersion !== undefined ? { toVersion: o.toVersion as string } : {}),
        ...(o.toRevision !== undefined ? { toRevision: o.toRevision as number } : {}),
        ...(o.services !== undefined ? { services: o.services as string[] } : {}),
        ...(o.restoreDb !== undefined
          ? { restoreDatabase: true, ...(typeof o.restoreDb === 'string' ? { backupKey: o.restoreDb } : {}) }
          : {}),
        ...(o.reason !== undefined ? { reason: o.reason as string } : {}),
        requestedBy: o.requestedBy as string,
      };
      const valid = checked(() => checkInput(rollbackInputSchema, input, 'rollback'));
      const workflowId = `rollback-${input.environment ?? 'default'}-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}`;
      const requestProof = await requestProofFor('rollback', workflowId, valid, o, ctx.env);
      if (requestProof) input.requestProof = requestProof;
      exit.code = await withClient(ctx, async (client, namespace) => {
        await client.workflow.start('rollbackWorkflow', {
          taskQueue: taskQueue(ctx.env),
          workflowId,
          args: [input],
          ...rollbackMetadata(input),
        });
        if (!o.wait) {
          ctx.out(
            o.json
              ? JSON.stringify({ workflowId, ui: uiLink(ctx.env, namespace, workflowId) })
              : `started ${workflowId}\n  watch: ${shellCommand(['deployctl', 'watch', workflowId])}\n  UI:    ${uiLink(ctx.env, namespace, workflowId)}`,
          );
          return ExitCode.Ok;
        }
        await follow(ctx, client, workflowId, !!o.json);
        // A rollback that failed closes as Failed with its result in the failure (workflows/outcome.ts).
        const r = await resultOf(client.workflow.getHandle(workflowId).result() as Promise<RollbackResult>);
        const { status, ...rest } = r;
        ctx.out(
          o.json
            ? JSON.stringify({ workflowId, ...rest, phase: status.phase }, null, 2)
            : `${r.outcome}: ${r.workloads}; database ${r.database}${r.reason ? `: ${r.reason}` : ''}${r.attention ? `\nNEEDS ATTENTION: ${r.attention}` : ''}`,
        );
        // Refused before anything changed (bad input, or a hand-over config does not confirm): bad input.
        if (r.refused) return ExitCode.BadInput;
        return r.outcome === 'rolled-back' ? ExitCode.Ok : ExitCode.Failed;
      });
    });
}
