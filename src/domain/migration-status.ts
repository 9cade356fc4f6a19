/**
 * How a migration tool's status command is read (the command migrator's
 * rule): its exit code must be 0 or one the config names as "pending", and
 * each output line matching `pendingPattern` names one pending migration
 * (the first capture group, else the whole line). Prisma exits 1 and lists
 * the names alone on their lines; dbmate prints `[ ] <file>` (and exits 1
 * with --exit-code). A "pending" exit with no line naming a migration means
 * the rule does not fit the tool, or the tool failed: both are errors, never
 * "nothing pending".
 */

export interface StatusRule {
  /** A regular expression (source) matching a line that names one pending migration. */
  pendingPattern: string;
  /** Exit codes other than 0 that mean "migrations are pending". */
  pendingExitCodes: readonly number[];
}

export type StatusReading = { ok: true; pending: string[] } | { ok: false; problem: string };

/** Undefined when `source` is a valid regular expression, else why not. */
export function regexProblem(source: string): string | undefined {
  try {
    new RegExp(source);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function lastLine(output: string): string {
  const lines = output.trim().split('\n');
  return lines[lines.length - 1]?.trim() ?? '';
}

export function readMigrationStatus(output: string, exitCode: number | null, rule: StatusRule): StatusReading {
  const pendingByExit = exitCode !== null && rule.pendingExitCodes.includes(exitCode);
  if (exitCode !== 0 && !pendingByExit) {
    const meaning = ['0 means up to date', ...rule.pendingExitCodes.map((c) => `${c} means pending`)].join(', ');
    return { ok: false, problem: `exited with ${exitCode ?? 'a signal'} (${meaning}): ${lastLine(output)}` };
  }
  const re = new RegExp(rule.pendingPattern);
  const pending: string[] = [];
  for (const line of output.split('\n')) {
    const m = re.exec(line.trim());
    if (!m) continue;
    const name = (m[1] ?? m[0]).trim();
    if (name && !pending.includes(name)) pending.push(name);
  }
  if (pendingByExit && !pending.length)
    return {
      ok: false,
      problem: `exited with ${exitCode} (pending) but no line matched pendingPattern /${rule.pendingPattern}/: fix the pattern, or the status command failed: ${lastLine(output)}`,
    };
  return { ok: true, pending };
}
