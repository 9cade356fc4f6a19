/**
 * deployctl approve, abort, pause, resume and promote: one signal each, checked against the deployment's current phase first unless --force.
 * A release takes them too: it forwards them to the stage that deploys, and answers approve and abort between stages.
 */
import { Command, Option } from 'commander';
import { checkSignal, type SignalName } from '../../domain/signals';
import { NO_GATE } from '../../domain/identity';
import { ExitCode } from '../exit-codes';
import { makeProof, oidcTokenOption, proofOptions, sshKeyOption } from '../proof';
import { CliError, defaultUser, queryStatus, signalApplies, withClient, workflowIdArg, type Ctx } from '../session';

export function addSteerCommands(program: Command, ctx: Ctx): void {
  const signalCommand = (name: SignalName, description: string, extra: (cmd: Command) => Command, example: string) => {
    const cmd = program
      .command(name)
      .description(description)
      .argument('<workflowId>', 'the deployment (or release) workflow id', workflowIdArg())
      .addOption(
        new Option(
          '--by <name>',
          'who sends it (recorded in the status and summary; the SSH principal with --ssh-key)',
        ).default(defaultUser(), 'your OS user'),
      )
      .addOption(sshKeyOption())
      .addOption(oidcTokenOption())
      .option('--gate <name>', 'the gate a signed approval answers (default: the one the deployment waits at)')
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
        let gate = o.gate as string | undefined;
        if (!o.force || (name === 'approve' && !gate)) {
          const s = await queryStatus(client, workflowId);
          const why = signalApplies(name, s.status, s.child, s.grandchild);
          if (why && !o.force) throw new CliError(`${why} (use --force to send it anyway)`, ExitCode.BadInput);
          // The gate of the workflow that waits: a release's stage, or that stage's canary.
          if (name === 'approve') gate ??= (s.grandchild ?? s.child ?? s.status).waitingFor?.gate;
        }
        const v = c.value as { by: string; note?: string; reason?: string; full?: boolean };
        const proof = await makeProof(proofOptions(o, ctx.env), {
          workflowId,
          signal: name,
          by: v.by,
          gate: name === 'approve' ? (gate ?? NO_GATE) : NO_GATE,
          ...(v.note !== undefined ? { note: v.note } : {}),
          ...(v.reason !== undefined ? { reason: v.reason } : {}),
          ...(v.full !== undefined ? { full: v.full } : {}),
        });
        await client.workflow.getHandle(workflowId).signal(name, proof ? { ...v, proof } : v);
        ctx.out(
          o.json
            ? JSON.stringify({ workflowId, signal: name, payload: c.value })
            : `sent ${name} to ${workflowId} as ${String(o.by)}`,
        );
      });
    });
  };
  signalCommand(
    'approve',
    'Approve what a deployment waits for (a canary step, a blue-green switch, a database restore).',
    (c) => c.option('--note <text>', 'why'),
    'deployctl approve deploy-production-1.0.1 --by alice --note "dashboards green"',
  );
  signalCommand(
    'abort',
    'Abort: traffic back to stable, canary scaled to zero, the saga rolls back. During a database decision: keep the database.',
    (c) => c.option('--reason <text>', 'why'),
    'deployctl abort deploy-production-1.0.1 --by alice --reason "p99 too high"',
  );
  signalCommand(
    'pause',
    'Pause the canary soak clock (the time left is kept).',
    (c) => c,
    'deployctl pause deploy-production-1.0.1 --by alice',
  );
  signalCommand('resume', 'Resume a paused canary.', (c) => c, 'deployctl resume deploy-production-1.0.1 --by alice');
  signalCommand(
    'promote',
    'End the current soak now; --full goes to 100% after one final analysis.',
    (c) => c.option('--full', 'promote to 100%'),
    'deployctl promote deploy-production-1.0.1 --by alice --full',
  );
}
