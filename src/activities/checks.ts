/**
 * Runbook "Pre-Deployment Tests": the configured commands (npm run test,
 * type-check, lint, build, npm audit, ...) run in the release source at the
 * planned commit before anything is tagged. No shell, one timeout each; a
 * failure stops the deployment with the command and the tail of its output.
 *
 * A check is the release's own code: it gets the variables its config names
 * (`env`, `passEnv`) and the base childEnv gives, never the worker's
 * environment, and what it prints is redacted before it enters a failure.
 */
import { assertCommit } from './clients/git';
import { childEnv, lastLines, run } from './clients/process';
import type { CheckOutcome, ChecksRequest, ChecksResult } from './contracts';
import { fail } from './failures';

export interface CheckSpec {
  name: string;
  command: string[];
  timeoutMs: number;
  /** Non-secret variables set for the check. */
  env: Record<string, string>;
  /** Variables copied from the worker's environment. */
  passEnv: string[];
}

export interface ChecksDeps {
  checks: CheckSpec[];
  sourceAt(commit: string): Promise<string>;
  heartbeat(details: { done: string[]; running?: string }): void;
  env?: NodeJS.ProcessEnv;
  cancelled?: AbortSignal;
  /** The worker's redactor (deps.ts): every secret it holds replaced by ***. */
  redact?: (text: string) => string;
}

export function checksActivities(deps: ChecksDeps) {
  return {
    async runPreDeploymentChecks(req: ChecksRequest): Promise<ChecksResult> {
      const dir = await deps.sourceAt(assertCommit(req.commit));
      const done: CheckOutcome[] = [];
      const redact = deps.redact ?? ((t: string) => t);
      for (const check of deps.checks) {
        deps.heartbeat({ done: done.map((d) => d.name), running: check.name });
        const started = Date.now();
        const shown = check.command.join(' ');
        let r;
        try {
          r = await run(check.command[0], check.command.slice(1), {
            cwd: dir,
            env: childEnv(deps.env ?? process.env, check.passEnv, { ...check.env, CI: 'true' }),
            timeoutMs: check.timeoutMs,
            maxOutput: 64_000,
            ...(deps.cancelled ? { signal: deps.cancelled } : {}),
          });
        } catch (err) {
          throw fail.PreDeploymentCheckFailed(
            redact(`pre-deployment check "${check.name}" could not start \`${shown}\`: ${(err as Error).message}`),
          );
        }
        if (r.code !== 0) {
          const why = r.timedOut
            ? `timed out after ${Math.round(check.timeoutMs / 1000)}s`
            : `exited with ${r.code ?? r.signal}`;
          const output = redact(lastLines(`${r.stdout}\n${r.stderr}`.trim(), 20));
          throw fail.PreDeploymentCheckFailed(
            `pre-deployment check "${check.name}" (\`${shown}\`) ${why}: ${lastLines(output, 3).replace(/\n/g, ' | ')}`,
            { check: check.name, command: check.command, output },
          );
        }
        done.push({ name: check.name, command: shown, durationMs: Date.now() - started });
      }
      deps.heartbeat({ done: done.map((d) => d.name) });
      return { checks: done };
    },
  };
}
