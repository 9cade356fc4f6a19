/**
 * deployctl: start deployments, rollbacks and releases, steer them with
 * signals, read their state, the quarantine of versions and the audit
 * ledger, for people at a terminal and for CI. Errors are one line that says what to do; `--json`
 * prints machine-readable output; exit codes are in cli/exit-codes.ts.
 */
import { Command, CommanderError } from 'commander';
import { addAuditCommands } from './cli/commands/audit';
import { addFreezeCommands } from './cli/commands/freeze';
import { addQuarantineCommands } from './cli/commands/quarantine';
import { addReadCommands } from './cli/commands/read';
import { addReleaseCommands } from './cli/commands/release';
import { addStartCommands } from './cli/commands/start';
import { addStatsCommands } from './cli/commands/stats';
import { addSteerCommands } from './cli/commands/steer';
import { ExitCode } from './cli/exit-codes';
import { CliError, type Ctx } from './cli/session';

export { CliError, signalApplies, type Ctx } from './cli/session';

export function buildProgram(ctx: Ctx, exit: { code: number }): Command {
  const program = new Command('deployctl')
    .description(
      'Start, steer and watch durable deployments on Temporal.\nServer: TEMPORAL_ADDRESS (default 127.0.0.1:7233), TEMPORAL_NAMESPACE, TEMPORAL_TASK_QUEUE.',
    )
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.out(s.trimEnd()), writeErr: (s) => ctx.err(s.trimEnd()) })
    .showHelpAfterError('(run with --help for usage)');

  addStartCommands(program, ctx, exit);
  addReleaseCommands(program, ctx, exit);
  addReadCommands(program, ctx, exit);
  addSteerCommands(program, ctx);
  addFreezeCommands(program, ctx, exit);
  addQuarantineCommands(program, ctx);
  addStatsCommands(program, ctx);
  addAuditCommands(program, ctx, exit);
  return program;
}

/** Runs deployctl; returns the exit code. */
export async function main(
  argv: string[],
  ctx: Ctx = {
    out: (l) => console.log(l),
    err: (l) => console.error(l),
    env: process.env,
    isTTY: !!process.stdout.isTTY,
  },
): Promise<number> {
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
      ctx.err(
        "deployctl: the deployment's data is encrypted: set DEPLOY_CODEC_KEY (and DEPLOY_CODEC_KEY_ID, DEPLOY_CODEC_OLD_KEYS) as the worker has them",
      );
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
