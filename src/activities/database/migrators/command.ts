/**
 * The command migrator (mode `command`): the release's own migration tool
 * (e.g. `npx prisma migrate deploy`), run in the release checkout with
 * DATABASE_URL in its environment, under the same migration lock as the
 * built-in one. Its output is all we learn: which migrations it applied or
 * would apply is not read from it.
 */
import { toolErrorSummary } from '../../../domain/backup';
import { lastLines, run } from '../../clients/process';
import { fail } from '../../failures';
import { cancelled } from '../context';
import type {
  MigrationOutcome,
  MigrationRelease,
  MigrationSession,
  MigrationState,
  Migrator,
  MigratorDeps,
  MigrationsConfig,
} from './migrator';

/** A command's status: nothing is known but what its status command printed. */
function unknownState(output?: string): MigrationState {
  return {
    applied: [],
    pending: [],
    known: false,
    missing: [],
    outOfOrder: [],
    ...(output === undefined ? {} : { output }),
  };
}

export class CommandMigrator implements Migrator {
  constructor(
    private readonly config: Extract<MigrationsConfig, { mode: 'command' }>,
    private readonly deps: MigratorDeps,
  ) {}

  /**
   * The status command's output, when one is configured. `pending` stays
   * empty, so a workflow that applies only what is pending never runs the
   * command (a known gap, kept as it was; the next issue fixes it).
   */
  async status(release: MigrationRelease): Promise<MigrationState> {
    if (!this.config.statusCommand) return unknownState();
    const r = await this.runCommand(this.config.statusCommand, release.dir);
    // A status command may exit non-zero just to say something is pending (prisma does): its output is the answer.
    return unknownState(lastLines(`${r.stdout}\n${r.stderr}`, 40));
  }

  /** Runs the command under the lock; a non-zero exit or the timeout is MigrationFailed with the output's tail. */
  async apply(release: MigrationRelease, session: MigrationSession): Promise<MigrationOutcome> {
    const { command, timeout } = this.config;
    return session.locked(async () => {
      session.progress.phase = 'migrating';
      const r = await this.runCommand(command, release.dir, session.signal);
      if (r.code !== 0) {
        const out = `${r.stderr}\n${r.stdout}`;
        const why = r.timedOut ? `timed out after ${timeout}ms` : `exited with ${r.code ?? r.signal}`;
        throw fail.MigrationFailed(`migration command ${command.join(' ')} ${why}: ${toolErrorSummary(out)}`, {
          output: lastLines(out, 40),
        });
      }
      // What the command applied is not known, so a restore may have something to undo.
      return { applied: [], alreadyApplied: 0, output: lastLines(`${r.stdout}\n${r.stderr}`, 40), changed: true };
    });
  }

  private async runCommand(command: string[], cwd: string, signal?: AbortSignal) {
    // DATABASE_URL in the environment, never in argv; no shell.
    const env = { ...this.deps.env, DATABASE_URL: this.deps.target().fullUrl };
    try {
      return await run(command[0], command.slice(1), {
        cwd,
        env,
        timeoutMs: this.config.timeout,
        signal,
        maxOutput: 256 * 1024,
      });
    } catch (err) {
      if (signal?.aborted) throw cancelled('migrations');
      throw fail.MigrationFailed(`cannot run migration command ${command[0]}: ${(err as Error).message}`);
    }
  }
}
