/**
 * The command migrator (mode `command`): the release's own migration tool
 * (e.g. `prisma migrate deploy`, `dbmate up`), run in the release checkout
 * with DATABASE_URL in its environment, under the same migration lock as the
 * built-in one.
 *
 * With a status command, what is pending is read from its output by the
 * configured rule (domain/migration-status.ts): the command runs only when
 * something is pending, what it applied is what the status listed before and
 * no longer lists after, and a status that still lists a migration after a
 * successful command is a failure. Without one nothing is known: the command
 * runs every time and the database counts as changed. A failed command always
 * counts as changed (a tool without transactions, like Prisma's JS engine,
 * leaves a failed migration's earlier statements applied).
 */
import { toolErrorSummary } from '../../../domain/backup';
import { readMigrationStatus } from '../../../domain/migration-status';
import { childEnv, lastLines, run, type RunResult } from '../../clients/process';
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

type CommandConfig = Extract<MigrationsConfig, { mode: 'command' }>;

/** The failure's details say the database may have changed: the saga offers the restore. */
const CHANGED = { changed: true };

export class CommandMigrator implements Migrator {
  constructor(
    private readonly config: CommandConfig,
    private readonly deps: MigratorDeps,
  ) {}

  /** The tool may print DATABASE_URL or what passEnv gave it: every secret of the worker is *** before it is kept. */
  private redact(text: string): string {
    return this.deps.redact ? this.deps.redact(text) : text;
  }

  private outputOf(r: RunResult): string {
    return this.redact(lastLines(`${r.stdout}\n${r.stderr}`, 40));
  }

  async status(release: MigrationRelease): Promise<MigrationState> {
    const none = { applied: [], missing: [], outOfOrder: [] };
    const read = await this.readStatus(release.dir);
    if (!read) return { ...none, pending: [], known: false };
    return { ...none, pending: read.pending, known: true, output: read.output };
  }

  /** Runs the command under the lock when something is pending (or nothing is known); see the file's comment. */
  async apply(release: MigrationRelease, session: MigrationSession): Promise<MigrationOutcome> {
    const { command, timeout } = this.config;
    return session.locked(async () => {
      session.progress.phase = 'checking';
      // Read under the lock: another runner may have applied them while this one waited.
      const before = await this.readStatus(release.dir, session.signal);
      if (before && !before.pending.length)
        return { applied: [], alreadyApplied: 0, output: before.output, changed: false };
      session.progress.phase = 'migrating';
      session.progress.total = before?.pending.length;
      session.heartbeat();
      const started = Date.now();
      const r = await this.runCommand(command, release.dir, session.signal);
      const output = this.outputOf(r);
      if (r.code !== 0) {
        const out = this.redact(`${r.stderr}\n${r.stdout}`);
        const why = r.timedOut ? `timed out after ${timeout}ms` : `exited with ${r.code ?? r.signal}`;
        throw fail.MigrationFailed(`migration command ${command.join(' ')} ${why}: ${toolErrorSummary(out)}`, {
          output: lastLines(out, 40),
          ...CHANGED,
        });
      }
      if (!before) return { applied: [], alreadyApplied: 0, output, changed: true };
      const after = await this.readStatus(release.dir, session.signal);
      const still = before.pending.filter((m) => after!.pending.includes(m));
      if (still.length)
        throw fail.MigrationFailed(
          `the migration command exited 0 but the status command still lists ${still.join(', ')} as pending`,
          { output, ...CHANGED },
        );
      const durationMs = Date.now() - started;
      const applied = before.pending.map((file) => ({ file, durationMs }));
      return { applied, alreadyApplied: 0, output, changed: applied.length > 0 };
    });
  }

  /** Undefined without a status command; otherwise what is pending, or MigrationFailed when the answer does not fit the rule. */
  private async readStatus(
    dir: string,
    signal?: AbortSignal,
  ): Promise<{ pending: string[]; output: string } | undefined> {
    const { statusCommand, pendingPattern, pendingExitCodes } = this.config;
    if (!statusCommand || !pendingPattern) return undefined;
    const r = await this.runCommand(statusCommand, dir, signal);
    const output = this.outputOf(r);
    const read = readMigrationStatus(`${r.stdout}\n${r.stderr}`, r.timedOut ? null : r.code, {
      pendingPattern,
      pendingExitCodes,
    });
    if (!read.ok)
      throw fail.MigrationFailed(`migration status command ${statusCommand.join(' ')} ${read.problem}`, { output });
    return { pending: read.pending, output };
  }

  private async runCommand(command: string[], cwd: string, signal?: AbortSignal): Promise<RunResult> {
    // DATABASE_URL in the environment, never in argv; no shell; of the worker's variables only those named.
    const env = childEnv(this.deps.env, this.config.passEnv, {
      ...this.config.env,
      DATABASE_URL: this.deps.target().fullUrl,
    });
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
      throw fail.MigrationFailed(this.redact(`cannot run migration command ${command[0]}: ${(err as Error).message}`));
    }
  }
}
