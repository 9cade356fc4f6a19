/**
 * The one rule for workflow ids, wherever an id comes in: deployctl's
 * arguments, the deploy and rollback workflows' own ids, a lock's holder.
 *
 * `^[A-Za-z0-9][A-Za-z0-9.-]{0,199}$`: ASCII letters, digits, "." and "-",
 * starting with a letter or digit. Everything this product makes fits
 * (deploy-<env>-<version>, a dry run's UTC stamp, -canary, -rollback,
 * deploy-lock-<env>, deploy-freeze-<env>, the Temporal UI's UUIDs), and nothing a shell, Slack or
 * Markdown reads as syntax does: no spaces or quotes, no `$`, backticks, `<>`,
 * `|`, `&`, `;`, `*`, `~`, and no `_` (Slack's italics). A leading dash would
 * read as an option. 200 characters leaves room for the suffixes of child ids
 * under Temporal's limit and keeps a status line readable.
 *
 * Pure and free of dependencies: the workflows import it (deployctl's
 * check, which throws InputError, is `checkWorkflowId` in input.ts).
 */

export const WORKFLOW_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.-]{0,199}$/;
const RULE = 'letters, digits, "." and "-", starting with a letter or digit, at most 200 characters';

/** Environment locks live under this prefix (workflows/environment-lock.ts); nothing else may take an id in it. */
export const LOCK_ID_PREFIX = 'deploy-lock-';

/**
 * Stop-the-line freezes live under this prefix (workflows/freeze.ts, `deployctl freeze`): one id per environment,
 * so a second freeze of it is refused while one runs; nothing else may take an id in it.
 */
export const FREEZE_ID_PREFIX = 'deploy-freeze-';

/** The id of `environment`'s stop-the-line freeze: deployctl starts it, the freezeState activity looks it up. */
export function freezeWorkflowId(environment: string): string {
  return `${FREEZE_ID_PREFIX}${environment}`;
}

/**
 * What is wrong with `id`, or undefined. `lock`: the id may be a lock's own, so the reserved lock prefix is
 * fine; `freeze`: likewise for the freeze prefix.
 */
export function workflowIdProblem(id: unknown, o: { lock?: boolean; freeze?: boolean } = {}): string | undefined {
  if (typeof id !== 'string' || !WORKFLOW_ID_PATTERN.test(id))
    return `${JSON.stringify(id)} is not a workflow id: use ${RULE}`;
  if (!o.lock && id.startsWith(LOCK_ID_PREFIX))
    return `"${id}": the prefix "${LOCK_ID_PREFIX}" is reserved for environment locks; choose another id`;
  if (!o.freeze && id.startsWith(FREEZE_ID_PREFIX))
    return `"${id}": the prefix "${FREEZE_ID_PREFIX}" is reserved for stop-the-line freezes (deployctl freeze); choose another id`;
  return undefined;
}
