/**
 * deployctl: start deployments and rollbacks, steer them with signals and
 * read their state, for people at a terminal and for CI. Errors are one line
 * that says what to do; `--json` prints machine-readable output; exit codes
 * are in cli/exit-codes.ts.
 */
import { Client, Connection, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import { Command, CommanderError, Option } from 'commander';
import { userInfo } from 'node:os';
import { activeChildId, formatPreview, formatStatus } from './cli/format';
import { dataConverterFromEnv } from './codec';
import { ExitCode, exitCodeFor } from './cli/exit-codes';
import { checkInput, deployInputSchema, InputError, rollbackInputSchema, type DeployInput, type RollbackInput } from './domain/input';
import { checkSignal, type SignalName } from './domain/signals';
import type { DeploymentStatus } from './domain/status';
import { BUMPS } from './domain/version';
import { temporalSettings } from './temporal-connection';
import type { DeployResult } from './workflows/deploy';
import type { RollbackResult } from './workflows/rollback';

export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

export interface Ctx {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  isTTY: boolean;
  /** Polling interval of watch/--wait. */
  pollMs?: number;
}

const FINAL = ['succeeded', 'failed', 'rolled-back', 'aborted', 'planned'];

async function connect(env: NodeJS.ProcessEnv): Promise<{ client: Client; close: () => Promise<void>; namespace: string }> {
  let s;
  let codec;
  try {
    s = temporalSettings(env);
    // DEPLOY_CODEC_KEY set: payloads are encrypted as the worker does (src/codec.ts).
    codec = dataConverterFromEnv(env);
  } catch (err) {
    throw new CliError((err as Error).message, ExitCode.BadInput);
  }
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: s.address, ...(s.tls ? { tls: s.tls } : {}), ...(s.apiKey ? { apiKey: s.apiKey } : {}), connectTimeout: 5000 });
  } catch (err) {
    throw new CliError(`Temporal server unreachable at ${s.address}: start it with \`npm start\` or set TEMPORAL_ADDRESS (${(err as Error).message.split('\n')[0]})`, ExitCode.Unreachable);
  }
  return { client: new Client({ connection, namespace: s.namespace, ...codec }), close: () => connection.close(), namespace: s.namespace };
}

async function withClient<T>(ctx: Ctx, fn: (c: Client, namespace: string) => Promise<T>): Promise<T> {
  const c = await connect(ctx.env);
  try {
    return await fn(c.client, c.namespace);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new CliError(`workflow ${err.workflowId ?? ''} not found: list deployments with \`deployctl list\``, ExitCode.NotFound);
    throw err;
  } finally {
    await c.close();
  }
}

function defaultUser(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown';
  }
}

function taskQueue(env: NodeJS.ProcessEnv): string {
  return env.TEMPORAL_TASK_QUEUE || 'deployments';
}

function uiLink(env: NodeJS.ProcessEnv, namespace: string, workflowId: string): string {
  const base = (env.TEMPORAL_UI_URL || 'http://127.0.0.1:8233').replace(/\/+$/, '');
  return `${base}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

function list(v: string): string[] {
  return v.split(',').map((x) => x.trim()).filter(Boolean);
}

function steps(v: string): number[] {
  return list(v).map((x) => {
    const n = Number(x);
    if (!Number.isFinite(n)) throw new CliError(`invalid --steps ${JSON.stringify(v)}: expected numbers such as 5,25,50,100`, ExitCode.BadInput);
    return n;
  });
}

function checked<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InputError) throw new CliError(err.message, ExitCode.BadInput);
    throw err;
  }
}

async function queryStatus(client: Client, workflowId: string): Promise<{ status: DeploymentStatus; child?: DeploymentStatus }> {
  const status = await client.workflow.getHandle(workflowId).query<DeploymentStatus>('status');
  const childId = activeChildId(status);
  const child = childId ? await client.workflow.getHandle(childId).query<DeploymentStatus>('status').catch(() => undefined) : undefined;
  return child ? { status, child } : { status };
}

/** Follows a workflow until it ends: a live view on a terminal, one line per change otherwise. */
async function follow(ctx: Ctx, client: Client, workflowId: string, quiet: boolean): Promise<void> {
  const seen = new Set<string>();
  let lastWait = '';
  const handle = client.workflow.getHandle(workflowId);
  for (;;) {
    const desc = await handle.describe();
    const running = desc.status.name === 'RUNNING';
    const s = await queryStatus(client, workflowId).catch(() => undefined);
    if (s && !quiet) {
      if (ctx.isTTY) {
        ctx.out(`\u001b[H\u001b[2J${formatStatus(s.status, { colour: true }, s.child)}`);
      } else {
        for (const st of [...s.status.steps, ...(s.child?.steps ?? [])]) {
          const key = `${st.name}:${st.state}:${st.startedAt ?? ''}`;
          if (seen.has(key) || st.state === 'running') continue;
          seen.add(key);
          ctx.out(`${st.state === 'failed' ? 'FAIL' : st.state === 'succeeded' ? 'ok  ' : st.state.padEnd(4)} ${st.name}${st.durationMs !== undefined ? ` (${(st.durationMs / 1000).toFixed(1)}s)` : ''}${st.detail ? `: ${st.detail}` : ''}${st.error ? `: ${st.error}` : ''}`);
        }
        const w = s.child?.waitingFor ?? s.status.waitingFor;
        const waitLine = w ? `wait ${w.what}${w.commands?.length ? ` — ${w.commands.join(' | ')}` : ''}` : '';
        if (waitLine && waitLine !== lastWait) ctx.out(waitLine);
        lastWait = waitLine;
      }
    }
    if (!running) return;
    await new Promise((r) => setTimeout(r, ctx.pollMs ?? 1000));
  }
}

async function awaitDeploy(ctx: Ctx, client: Client, workflowId: string, json: boolean): Promise<number> {
  await follow(ctx, client, workflowId, json);
  const result = await client.workflow.getHandle(workflowId).result() as DeployResult;
  if (json) {
    const { status, ...rest } = result;
    ctx.out(JSON.stringify({ ...rest, phase: status.phase, steps: status.steps }, null, 2));
  } else {
    ctx.out(`${result.outcome}: ${result.workflowId} (${result.version} on ${result.environment})${result.reason ? `: ${result.reason}` : ''}`);
    if (result.preview) ctx.out(formatPreview(result.preview));
  }
  return exitCodeFor(result);
}

/** Which signals apply to what the deployment (or its active child) is doing now. */
export function signalApplies(name: SignalName, s: DeploymentStatus, child?: DeploymentStatus): string | undefined {
  const live = child ?? s;
  if (FINAL.includes(s.phase)) return `${name} does not apply: the deployment is already ${s.phase}`;
  const waiting = live.waitingFor?.what ?? '';
  switch (name) {
    case 'approve':
      return /approval|decision/.test(waiting) ? undefined : `approve does not apply in phase ${live.phase}: nothing is awaiting approval`;
    case 'abort':
      return undefined;
    case 'pause':
      return live.canary && !live.canary.paused && ['canary', 'soaking', 'awaiting-approval'].includes(live.phase) ? undefined : `pause does not apply in phase ${live.phase}: ${live.canary?.paused ? 'already paused' : 'no canary is running'}`;
    case 'resume':
      return live.canary?.paused ? undefined : `resume does not apply in phase ${live.phase}: not paused`;
    case 'promote':
      return live.phase === 'soaking' || live.phase === 'monitoring' ? undefined : `promote does not apply in phase ${live.phase}: no soak or monitoring window is running`;
  }
}

export function buildProgram(ctx: Ctx, exit: { code: number }): Command {
  const program = new Command('deployctl')
    .description('Start, steer and watch durable deployments on Temporal.\nServer: TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE.')
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.out(s.trimEnd()), writeErr: (s) => ctx.err(s.trimEnd()) })
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('deploy')
    .description('Start a deployment (tag, images, backup, migrations, rollout, verification).')
    .addOption(new Option('--version <semver>', 'the version to release, e.g. 1.0.1'))
    .addOption(new Option('--bump <part>', 'next version from the latest release tag').choices([...BUMPS]))
    .option('--env <name>', 'environment (default: the config\'s default)')
    .addOption(new Option('--strategy <strategy>', 'rollout strategy (default: the config\'s)').choices(['rolling', 'canary', 'blue-green']))
    .option('--services <list>', 'only these services, comma-separated', list)
    .option('--steps <list>', 'canary weights, e.g. 5,25,50,100', steps)
    .option('--soak <duration>', 'canary soak per step, e.g. 5m')
    .option('--analysis-interval <duration>', 'how often analysis runs during a soak, e.g. 1m')
    .addOption(new Option('--approval <mode>', 'canary approval gates').choices(['none', 'before-full', 'every-step']))
    .option('--approval-timeout <duration>', 'how long a gate waits before aborting, e.g. 1h')
    .option('--no-backup', 'skip the database backup')
    .option('--no-migrate', 'skip database migrations')
    .option('--dry-run', 'print the plan; change nothing')
    .option('--requested-by <name>', 'recorded in the status and summary', defaultUser())
    .option('--workflow-id <id>', 'workflow id (default: deploy-[<env>-]<version>)')
    .option('--wait', 'follow the deployment and exit with its outcome (see exit codes)')
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  deployctl deploy --version 1.0.1 --wait',
        '  deployctl deploy --bump patch --strategy canary --steps 10,50,100 --soak 10m --approval before-full',
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
      const workflowId = (o.workflowId as string | undefined) ?? (valid.version ? `${prefix}-${valid.version}${valid.dryRun ? `-dry-run-${stamp}` : ''}` : `${prefix}-${valid.bump}-${stamp}`);
      exit.code = await withClient(ctx, async (client, namespace) => {
        try {
          await client.workflow.start('deployWorkflow', { taskQueue: taskQueue(ctx.env), workflowId, args: [input], workflowIdConflictPolicy: 'FAIL' });
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError) {
            throw new CliError(`refused: deployment ${workflowId} is already running: follow it with \`deployctl watch ${workflowId}\``, ExitCode.Refused);
          }
          throw err;
        }
        if (!o.json || !o.wait) {
          if (o.json) ctx.out(JSON.stringify({ workflowId, ui: uiLink(ctx.env, namespace, workflowId) }));
          else ctx.out([`started ${workflowId}`, `  watch:  deployctl watch ${workflowId}`, `  status: deployctl status ${workflowId}`, `  UI:     ${uiLink(ctx.env, namespace, workflowId)}`].join('\n'));
        }
        return o.wait || valid.dryRun ? awaitDeploy(ctx, client, workflowId, !!o.json) : ExitCode.Ok;
      });
    });

  program
    .command('rollback')
    .description('Roll an environment back: to the previous revision, a revision, or a version; optionally restore the database after approval.')
    .option('--env <name>', 'environment (default: the config\'s default)')
    .option('--to-version <semver>', 'deploy the images of this version')
    .option('--to-revision <n>', 'undo to this revision (kubectl rollout undo --to-revision)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new CliError(`invalid --to-revision ${JSON.stringify(v)}: expected a revision number`, ExitCode.BadInput);
      return n;
    })
    .option('--services <list>', 'only these services, comma-separated', list)
    .option('--restore-db [key]', 'restore the database (from this backup key, or the newest backup) after an approval')
    .option('--reason <text>', 'why (recorded and notified)')
    .option('--requested-by <name>', 'recorded in the status', defaultUser())
    .option('--wait', 'follow the rollback and exit with its outcome')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  deployctl rollback --env production --wait\n  deployctl rollback --to-version 1.0.0 --restore-db --reason "bad migration"')
    .action(async (o: Record<string, unknown>) => {
      const input: RollbackInput = {
        ...(o.env !== undefined ? { environment: o.env as string } : {}),
        ...(o.toVersion !== undefined ? { toVersion: o.toVersion as string } : {}),
        ...(o.toRevision !== undefined ? { toRevision: o.toRevision as number } : {}),
        ...(o.services !== undefined ? { services: o.services as string[] } : {}),
        ...(o.restoreDb !== undefined ? { restoreDatabase: true, ...(typeof o.restoreDb === 'string' ? { backupKey: o.restoreDb } : {}) } : {}),
        ...(o.reason !== undefined ? { reason: o.reason as string } : {}),
        requestedBy: o.requestedBy as string,
      };
      checked(() => checkInput(rollbackInputSchema, input, 'rollback'));
      const workflowId = `rollback-${input.environment ?? 'default'}-${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}`;
      exit.code = await withClient(ctx, async (client, namespace) => {
        await client.workflow.start('rollbackWorkflow', { taskQueue: taskQueue(ctx.env), workflowId, args: [input] });
        if (!o.wait) {
          ctx.out(o.json ? JSON.stringify({ workflowId, ui: uiLink(ctx.env, namespace, workflowId) }) : `started ${workflowId}\n  watch: deployctl watch ${workflowId}\n  UI:    ${uiLink(ctx.env, namespace, workflowId)}`);
          return ExitCode.Ok;
        }
        await follow(ctx, client, workflowId, !!o.json);
        const r = (await client.workflow.getHandle(workflowId).result()) as RollbackResult;
        const { status, ...rest } = r;
        ctx.out(o.json ? JSON.stringify({ workflowId, ...rest, phase: status.phase }, null, 2) : `${r.outcome}: ${r.workloads}; database ${r.database}${r.reason ? `: ${r.reason}` : ''}`);
        return r.outcome === 'rolled-back' ? ExitCode.Ok : ExitCode.Failed;
      });
    });

  program
    .command('status')
    .description('Show a deployment: phase, steps, canary weight, soak, analysis, what it waits for.')
    .argument('<workflowId>', 'the deployment workflow id')
    .option('--json', 'print the status as JSON')
    .addHelpText('after', '\nExamples:\n  deployctl status deploy-production-1.0.1\n  deployctl status deploy-production-1.0.1 --json')
    .action(async (workflowId: string, o: { json?: boolean }) => {
      await withClient(ctx, async (client) => {
        const s = await queryStatus(client, workflowId);
        ctx.out(o.json ? JSON.stringify(s.child ? { ...s.status, activeChild: s.child } : s.status, null, 2) : formatStatus(s.status, { colour: ctx.isTTY }, s.child));
      });
    });

  program
    .command('watch')
    .description('Follow a deployment live until it ends; exits with its outcome.')
    .argument('<workflowId>', 'the deployment workflow id')
    .addHelpText('after', '\nExample:\n  deployctl watch deploy-production-1.0.1')
    .action(async (workflowId: string) => {
      exit.code = await withClient(ctx, async (client) => {
        await follow(ctx, client, workflowId, false);
        const desc = await client.workflow.getHandle(workflowId).describe();
        if (desc.type !== 'deployWorkflow') return desc.status.name === 'COMPLETED' ? ExitCode.Ok : ExitCode.Failed;
        const r = (await client.workflow.getHandle(workflowId).result()) as DeployResult;
        ctx.out(`${r.outcome}${r.reason ? `: ${r.reason}` : ''}`);
        return exitCodeFor(r);
      });
    });

  program
    .command('list')
    .description('List deployments by the Deploy* search attributes.')
    .option('--env <name>', 'only this environment')
    .addOption(new Option('--status <status>', 'only workflows in this state').choices(['running', 'completed', 'failed', 'terminated', 'canceled', 'timed-out']))
    .option('--limit <n>', 'at most this many', (v) => Number(v), 20)
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExamples:\n  deployctl list --env production --status running\n  deployctl list --json')
    .action(async (o: { env?: string; status?: string; limit: number; json?: boolean }) => {
      if (o.env !== undefined && !/^[a-z0-9-]{1,63}$/.test(o.env)) throw new CliError(`invalid --env ${JSON.stringify(o.env)}`, ExitCode.BadInput);
      const clauses = [`WorkflowType IN ('deployWorkflow', 'rollbackWorkflow')`];
      if (o.env) clauses.push(`DeployEnvironment = '${o.env}'`);
      if (o.status) clauses.push(`ExecutionStatus = '${{ running: 'Running', completed: 'Completed', failed: 'Failed', terminated: 'Terminated', canceled: 'Canceled', 'timed-out': 'TimedOut' }[o.status]}'`);
      await withClient(ctx, async (client) => {
        const rows: Record<string, string>[] = [];
        for await (const w of client.workflow.list({ query: clauses.join(' AND ') })) {
          const sa = (k: string) => String(w.searchAttributes?.[k]?.[0] ?? '');
          rows.push({ workflowId: w.workflowId, type: w.type, status: w.status.name, environment: sa('DeployEnvironment'), version: sa('DeployVersion'), strategy: sa('DeployStrategy'), phase: sa('DeployPhase'), started: w.startTime.toISOString() });
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
    .argument('<workflowId>', 'the workflow id')
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
          } else if (e.activityTaskCompletedEventAttributes) what = activities.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId)) ?? '';
          else if (e.activityTaskFailedEventAttributes) what = `${activities.get(String(e.activityTaskFailedEventAttributes.scheduledEventId)) ?? ''}: ${e.activityTaskFailedEventAttributes.failure?.message ?? ''}`;
          else if (e.workflowExecutionSignaledEventAttributes) what = e.workflowExecutionSignaledEventAttributes.signalName ?? '';
          else if (e.timerStartedEventAttributes) what = `timer ${e.timerStartedEventAttributes.timerId ?? ''}`;
          else if (e.startChildWorkflowExecutionInitiatedEventAttributes) what = e.startChildWorkflowExecutionInitiatedEventAttributes.workflowId ?? '';
          if (/WORKFLOW_TASK/.test(type)) continue;
          ctx.out(`${String(e.eventId).padStart(4)} ${at} ${type}${what ? `  ${what}` : ''}`);
        }
      });
    });

  const signalCommand = (name: SignalName, description: string, extra: (cmd: Command) => Command, example: string) => {
    const cmd = program
      .command(name)
      .description(description)
      .argument('<workflowId>', 'the deployment workflow id')
      .addOption(new Option('--by <name>', 'who sends it (recorded in the status and summary)').default(defaultUser(), 'your OS user'))
      .option('--force', 'send even when it does not seem to apply now (the workflow records it as ignored)')
      .option('--json', 'print the result as JSON')
      .addHelpText('after', `\nExample:\n  ${example}`);
    extra(cmd).action(async (workflowId: string, o: Record<string, unknown>) => {
      const payload: Record<string, unknown> = { by: o.by };
      if (o.note !== undefined) payload.note = o.note;
      if (o.reason !== undefined) payload.reason = o.reason;
      if (o.full) payload.full = true;
      const c = checkSignal(name, payload);
      if (!c.ok) throw new CliError(c.reason, ExitCode.BadInput);
      await withClient(ctx, async (client) => {
        if (!o.force) {
          const s = await queryStatus(client, workflowId);
          const why = signalApplies(name, s.status, s.child);
          if (why) throw new CliError(`${why} (use --force to send it anyway)`, ExitCode.BadInput);
        }
        await client.workflow.getHandle(workflowId).signal(name, c.value);
        ctx.out(o.json ? JSON.stringify({ workflowId, signal: name, payload: c.value }) : `sent ${name} to ${workflowId} as ${String(o.by)}`);
      });
    });
  };
  signalCommand('approve', 'Approve what a deployment waits for (a canary step, a blue-green switch, a database restore).', (c) => c.option('--note <text>', 'why'), 'deployctl approve deploy-production-1.0.1 --by alice --note "dashboards green"');
  signalCommand('abort', 'Abort: traffic back to stable, canary scaled to zero, the saga rolls back. During a database decision: keep the database.', (c) => c.option('--reason <text>', 'why'), 'deployctl abort deploy-production-1.0.1 --by alice --reason "p99 too high"');
  signalCommand('pause', 'Pause the canary soak clock (the time left is kept).', (c) => c, 'deployctl pause deploy-production-1.0.1 --by alice');
  signalCommand('resume', 'Resume a paused canary.', (c) => c, 'deployctl resume deploy-production-1.0.1 --by alice');
  signalCommand('promote', 'End the current soak now; --full goes to 100% after one final analysis.', (c) => c.option('--full', 'promote to 100%'), 'deployctl promote deploy-production-1.0.1 --by alice --full');

  return program;
}

/** Runs deployctl; returns the exit code. */
export async function main(argv: string[], ctx: Ctx = { out: (l) => console.log(l), err: (l) => console.error(l), env: process.env, isTTY: !!process.stdout.isTTY }): Promise<number> {
  const exit = { code: ExitCode.Ok as number };
  const program = buildProgram(ctx, exit);
  try {
    await program.parseAsync(argv);
    return exit.code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.Ok : ExitCode.BadInput;
    if (err instanceof CliError) {
      ctx.err(`deployctl: ${err.message}`);
      return err.code;
    }
    const message = (err as Error).message.split('\n')[0];
    // A payload the worker encrypted (src/codec.ts) and this process has no key for.
    if (message.includes('binary/encrypted')) {
      ctx.err('deployctl: the deployment\'s data is encrypted: set DEPLOY_CODEC_KEY (and DEPLOY_CODEC_KEY_ID, DEPLOY_CODEC_OLD_KEYS) as the worker has them');
      return ExitCode.Error;
    }
    ctx.err(`deployctl: ${message}`);
    return ExitCode.Error;
  }
}

if (require.main === module) {
  main(process.argv).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(ExitCode.Error);
    },
  );
}
