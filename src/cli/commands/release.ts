/**
 * deployctl release: one version promoted through the stages
 * (workflows/release.ts). Checks the input as the worker will, starts the
 * release with the requester's proof when a key or token is given, prints
 * its id, its stages and how to follow and steer it and, with --wait,
 * follows it to its end and exits with its outcome.
 */
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { Command, Option } from 'commander';
import { checkInput, releaseInputSchema, type ReleaseInput } from '../../domain/input';
import { shellCommand } from '../../domain/shell';
import { FINAL_PHASES, type DeploymentStatus } from '../../domain/status';
import { ExitCode } from '../exit-codes';
import { oidcTokenOption, requestProofFor, sshKeyOption } from '../proof';
import { releaseMetadata } from '../summaries';
import {
  awaitRelease,
  checked,
  CliError,
  defaultUser,
  list,
  taskQueue,
  uiLink,
  withClient,
  workflowIdArg,
  type Ctx,
} from '../session';

/** A stage of a release as deployctl prints it before the worker has planned it: its environment and its deployment's id. */
export interface StartedStage {
  environment: string;
  workflowId: string;
}

/** The release's default workflow id, as deploy's: one id per version, so a second start while the first runs is refused. */
export function releaseWorkflowId(version: string): string {
  return `release-${version}`;
}

/** What `deployctl release` prints once the release has started: its id, its stages and the commands that follow and steer it. */
export function formatReleaseStarted(r: {
  workflowId: string;
  version: string;
  /** The stages as the worker planned them, or as --through named them; undefined: not known yet. */
  stages?: StartedStage[];
  ui: string;
}): string {
  const id = r.workflowId;
  const stages = r.stages?.length
    ? r.stages.map((s) => `${s.environment} (${s.workflowId})`).join(' → ')
    : `the configured stages, each deployed as ${id}-<environment>`;
  return [
    `started ${id}: release ${r.version}`,
    `  stages: ${stages}`,
    `  watch:  ${shellCommand(['deployctl', 'watch', id])}`,
    `  status: ${shellCommand(['deployctl', 'status', id])}`,
    `  list:   ${shellCommand(['deployctl', 'list', '--release', r.version])}`,
    `  steer:  ${shellCommand(['deployctl', 'approve', id, '--by'])} <name>  (abort, pause, resume, promote alike: the release forwards them to the stage that deploys)`,
    `  UI:     ${r.ui}`,
  ].join('\n');
}

export function addReleaseCommands(program: Command, ctx: Ctx, exit: { code: number }): void {
  program
    .command('release')
    .description(
      'Release a version through the stages: tag and build once, deploy the same images to each stage in order, with a soak and the next stage’s approvals between stages.',
    )
    .addOption(new Option('--version <semver>', 'the version to release, e.g. 1.0.1'))
    .option(
      '--through <list>',
      'only these stages, comma-separated (they run in the configured order; default: every configured stage)',
      list,
    )
    .addOption(
      new Option('--by <name>', 'who requests it (the SSH principal with --ssh-key)').default(
        defaultUser(),
        'your OS user',
      ),
    )
    .addOption(sshKeyOption())
    .addOption(oidcTokenOption())
    .option(
      '--id <id>',
      'workflow id (default: release-<version>); each stage deploys as <id>-<environment>',
      workflowIdArg(),
    )
    .option('--wait', 'follow the release and exit with its outcome (see exit codes)')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  deployctl release --version 1.0.1 --wait',
        '  deployctl release --version 1.0.1 --through staging --by alice',
        '  deployctl release --version 1.0.1 --ssh-key ~/.ssh/id_ed25519 --wait --json',
        '',
        'Between stages the release waits: a soak in the stage before with its analysis passing, then',
        'the approvals of the next stage (deployctl approve <release id> --by <name>).',
        '',
        'Exit codes with --wait: 0 succeeded, 2 bad input or refused (e.g. a quarantined version),',
        '3 a stage failed and was rolled back, 4 aborted (or a promotion not approved in time),',
        '6 refused (the release is already running), 7 failed, 8 Temporal unreachable.',
      ].join('\n'),
    )
    .action(async (o: Record<string, unknown>) => {
      if (o.version === undefined)
        throw new CliError('release needs --version, e.g. --version 1.0.1', ExitCode.BadInput);
      const input: ReleaseInput = {
        version: o.version as string,
        ...(o.through !== undefined ? { through: o.through as string[] } : {}),
        requestedBy: o.by as string,
      };
      const valid = checked(() => checkInput(releaseInputSchema, input, 'release'));
      const workflowId = (o.id as string | undefined) ?? releaseWorkflowId(valid.version);
      const requestProof = await requestProofFor('release', workflowId, valid, o, ctx.env);
      if (requestProof) input.requestProof = requestProof;
      exit.code = await withClient(ctx, async (client, namespace) => {
        try {
          await client.workflow.start('releaseWorkflow', {
            taskQueue: taskQueue(ctx.env),
            workflowId,
            args: [input],
            workflowIdConflictPolicy: 'FAIL',
            ...releaseMetadata(input),
          });
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError)
            throw new CliError(
              `refused: release ${workflowId} is already running: follow it with \`${shellCommand(['deployctl', 'watch', workflowId])}\``,
              ExitCode.Refused,
            );
          throw err;
        }
        const ui = uiLink(ctx.env, namespace, workflowId);
        if (!o.json || !o.wait) {
          // The stages: as --through names them, else as the worker plans them (asked briefly; --wait prints them as they start).
          const stages =
            valid.through?.map((environment) => ({ environment, workflowId: `${workflowId}-${environment}` })) ??
            (o.wait ? undefined : await plannedStages(client, workflowId, 5000, ctx.pollMs ?? 250));
          ctx.out(
            o.json
              ? JSON.stringify({ workflowId, ui, ...(stages ? { stages } : {}) })
              : formatReleaseStarted({ workflowId, version: valid.version, stages, ui }),
          );
        }
        return o.wait ? awaitRelease(ctx, client, workflowId, !!o.json) : ExitCode.Ok;
      });
    });
}

/**
 * The release's stages once its plan is resolved, asked for at most
 * `withinMs` (a worker that is not running leaves the query unanswered):
 * undefined when they are not known by then, or the release ended without a
 * plan (refused).
 */
async function plannedStages(
  client: Client,
  workflowId: string,
  withinMs: number,
  everyMs: number,
): Promise<StartedStage[] | undefined> {
  const deadline = Date.now() + withinMs;
  const handle = client.workflow.getHandle(workflowId);
  while (Date.now() < deadline) {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>(
      (r) => (timer = setTimeout(() => r(undefined), Math.max(0, deadline - Date.now()))),
    );
    const status = await Promise.race([handle.query<DeploymentStatus>('status').catch(() => undefined), late]);
    clearTimeout(timer);
    if (status?.stages?.length)
      return status.stages.map((s) => ({ environment: s.environment, workflowId: s.workflowId }));
    if (status && FINAL_PHASES.includes(status.phase)) return undefined;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return undefined;
}
