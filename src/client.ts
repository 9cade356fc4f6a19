/**
 * deployctl: start deployments, steer them with signals and read their state,
 * for people at a terminal and for CI. Errors are one line that says what to
 * do; `--json` prints machine-readable output.
 */
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { Command, CommanderError, Option } from 'commander';
import { userInfo } from 'node:os';
import { checkSignal, type SignalName } from './domain/signals';
import type { DeploymentStatus } from './domain/status';
import { temporalSettings } from './temporal-connection';

export class UsageError extends Error {}

interface Ctx {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
}

async function connect(env: NodeJS.ProcessEnv): Promise<{ client: Client; close: () => Promise<void>; address: string }> {
  const s = temporalSettings(env);
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: s.address, ...(s.tls ? { tls: s.tls } : {}), ...(s.apiKey ? { apiKey: s.apiKey } : {}), connectTimeout: 5000 });
  } catch (err) {
    throw new UsageError(`Temporal server unreachable at ${s.address}: start it with \`npm start\` or set TEMPORAL_ADDRESS (${(err as Error).message.split('\n')[0]})`, { cause: err });
  }
  return { client: new Client({ connection, namespace: s.namespace }), close: () => connection.close(), address: s.address };
}

function defaultUser(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown';
  }
}

export function formatStatus(s: DeploymentStatus): string {
  const lines: string[] = [];
  lines.push(`${s.workflow} ${s.workflowId}`);
  lines.push(`  version ${s.version}  environment ${s.environment}  strategy ${s.strategy ?? '-'}  phase ${s.phase}`);
  if (s.canary) {
    const bar = '#'.repeat(Math.round(s.canary.weight / 5)).padEnd(20, '.');
    lines.push(`  canary [${bar}] ${s.canary.weight}%  steps ${s.canary.steps.join(' → ')}${s.canary.paused ? '  PAUSED' : ''}`);
    if (s.canary.soakEndsAt) lines.push(`  soak ends ${s.canary.soakEndsAt}`);
  }
  if (s.waitingFor) {
    lines.push(`  waiting for ${s.waitingFor.what} since ${s.waitingFor.since}${s.waitingFor.timeoutAt ? ` (times out ${s.waitingFor.timeoutAt})` : ''}`);
    for (const c of s.waitingFor.commands ?? []) lines.push(`    ${c}`);
  }
  lines.push('  steps:');
  for (const st of s.steps) {
    const mark = { pending: ' ', running: '…', succeeded: '✓', failed: '✗', skipped: '-', compensated: '↺' }[st.state];
    const took = st.durationMs !== undefined ? ` ${(st.durationMs / 1000).toFixed(1)}s` : '';
    lines.push(`    ${mark} ${st.name}${took}${st.detail ? `  ${st.detail}` : ''}${st.error ? `  error: ${st.error}` : ''}`);
  }
  for (const a of s.approvals) lines.push(`  approved by ${a.by} at ${a.at}${a.note ? `: ${a.note}` : ''}`);
  for (const a of s.aborts) lines.push(`  aborted by ${a.by} at ${a.at}: ${a.reason ?? ''}`);
  for (const i of s.ignoredSignals) lines.push(`  ignored ${i.signal} from ${i.by}: ${i.ignoredBecause}`);
  if (s.lastAnalysis) {
    const figures = s.lastAnalysis.measurements.map((m) => `${m.metric}[${m.track}]=${m.value ?? 'n/a'} ${m.outcome}`).join(', ');
    lines.push(`  last analysis ${s.lastAnalysis.outcome}: ${figures}`);
  }
  if (s.error) lines.push(`  error: ${s.error}`);
  return lines.join('\n');
}

export function buildProgram(ctx: Ctx): Command {
  const program = new Command('deployctl')
    .description('Start, steer and watch durable deployments on Temporal.')
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.out(s.trimEnd()), writeErr: (s) => ctx.err(s.trimEnd()) })
    .showHelpAfterError('(run with --help for usage)');

  program
    .command('status')
    .description('Show the state of a deployment: phase, steps, canary weight, what it waits for.')
    .argument('<workflowId>', 'the deployment workflow id')
    .option('--json', 'print the status as JSON')
    .addHelpText('after', '\nExamples:\n  deployctl status deploy-production-1.0.1\n  deployctl status deploy-production-1.0.1 --json')
    .action(async (workflowId: string, opts: { json?: boolean }) => {
      const c = await connect(ctx.env);
      try {
        const s = await c.client.workflow.getHandle(workflowId).query<DeploymentStatus>('status');
        ctx.out(opts.json ? JSON.stringify(s, null, 2) : formatStatus(s));
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new UsageError(`workflow ${workflowId} not found: list deployments with \`deployctl list\``, { cause: err });
        throw err;
      } finally {
        await c.close();
      }
    });

  const signalCommand = (name: SignalName, description: string, extra: (cmd: Command) => Command, example: string) => {
    const cmd = program
      .command(name)
      .description(description)
      .argument('<workflowId>', 'the deployment workflow id')
      .addOption(new Option('--by <name>', 'who sends it (recorded in the status and summary)').default(defaultUser(), 'your OS user'))
      .option('--json', 'print the result as JSON')
      .addHelpText('after', `\nExample:\n  ${example}`);
    extra(cmd).action(async (workflowId: string, opts: Record<string, unknown>) => {
      const payload: Record<string, unknown> = { by: opts.by };
      if (opts.note !== undefined) payload.note = opts.note;
      if (opts.reason !== undefined) payload.reason = opts.reason;
      if (opts.full) payload.full = true;
      const checked = checkSignal(name, payload);
      if (!checked.ok) throw new UsageError(checked.reason);
      const c = await connect(ctx.env);
      try {
        await c.client.workflow.getHandle(workflowId).signal(name, checked.value);
        ctx.out(opts.json ? JSON.stringify({ workflowId, signal: name, payload: checked.value }) : `sent ${name} to ${workflowId} as ${String(opts.by)}`);
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) throw new UsageError(`workflow ${workflowId} not found or already finished`, { cause: err });
        throw err;
      } finally {
        await c.close();
      }
    });
  };
  signalCommand('approve', 'Approve the step a deployment waits for.', (c) => c.option('--note <text>', 'why'), 'deployctl approve deploy-production-1.0.1 --by alice --note "dashboards green"');
  signalCommand('abort', 'Abort: traffic back to stable, canary scaled to zero, saga rolls back.', (c) => c.option('--reason <text>', 'why'), 'deployctl abort deploy-production-1.0.1 --by alice --reason "p99 too high"');
  signalCommand('pause', 'Pause the soak clock (the time left is kept).', (c) => c, 'deployctl pause deploy-production-1.0.1 --by alice');
  signalCommand('resume', 'Resume a paused soak.', (c) => c, 'deployctl resume deploy-production-1.0.1 --by alice');
  signalCommand('promote', 'End the current soak now; --full goes to 100% after one final analysis.', (c) => c.option('--full', 'promote to 100%'), 'deployctl promote deploy-production-1.0.1 --by alice --full');

  return program;
}

/** Runs deployctl; returns the exit code. */
export async function main(argv: string[], ctx: Ctx = { out: (l) => console.log(l), err: (l) => console.error(l), env: process.env }): Promise<number> {
  const program = buildProgram(ctx);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof UsageError) {
      ctx.err(`deployctl: ${err.message}`);
      return 2;
    }
    ctx.err(`deployctl: ${(err as Error).message.split('\n')[0]}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv).then((code) => process.exit(code), (err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
