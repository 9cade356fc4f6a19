/**
 * deployctl stats: the DORA figures of the deployments in a window (issue 23
 * item 2), read from Temporal alone: visibility lists the deployWorkflow
 * executions, each closed one's result carries its status and timeline
 * (cli/dora-facts.ts), domain/dora.ts computes. Reads only, changes nothing.
 */
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { Command } from 'commander';
import { computeDora } from '../../domain/dora';
import { DurationError, parseDuration } from '../../domain/duration';
import type { DeployResult } from '../../workflows/deploy';
import { resultOf } from '../../workflows/outcome';
import { factOf } from '../dora-facts';
import { formatDora, type Listed } from '../dora-format';
import { ExitCode } from '../exit-codes';
import { CliError, withClient, type Ctx } from '../session';

const ENV_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
/** Results fetched at once: enough to be quick over a month of deployments, few enough to spare the frontend. */
const CONCURRENCY = 8;

export function addStatsCommands(program: Command, ctx: Ctx): void {
  program
    .command('stats')
    .description(
      'DORA figures of the deployments in a window: deployment frequency, lead time for changes, change failure rate and time to restore, with their counts and definitions.',
    )
    .option('--env <name>', 'only this environment (default: each environment and all together)')
    .option('--since <duration>', 'the window: from this long ago until now, e.g. 7d, 12h', '30d')
    .option('--json', 'machine-readable figures with their counts')
    .addHelpText(
      'after',
      '\nExamples:\n  deployctl stats\n  deployctl stats --env production --since 90d\n  deployctl stats --json',
    )
    .action(async (o: { env?: string; since: string; json?: boolean }) => {
      if (o.env !== undefined && !ENV_RE.test(o.env))
        throw new CliError(
          `invalid --env ${JSON.stringify(o.env)}: an environment name (a lowercase DNS label)`,
          ExitCode.BadInput,
        );
      const span = sinceMs(o.since);
      const until = new Date();
      const window = { since: new Date(until.getTime() - span).toISOString(), until: until.toISOString() };
      await withClient(ctx, async (client) => {
        const listed = await collect(client, window.since, o.env);
        const report = computeDora(listed.facts, window);
        if (o.json) {
          const { facts, ...counts } = listed;
          const { window: w, ...figures } = report;
          const deployments = { ...counts, counted: facts.length };
          ctx.out(JSON.stringify({ window: w, environment: o.env ?? null, deployments, ...figures }, null, 2));
        } else for (const line of formatDora(report, listed, o.env)) ctx.out(line);
      });
    });
}

function sinceMs(v: string): number {
  try {
    const n = parseDuration(v, '--since');
    if (n > 0) return n;
  } catch (err) {
    if (!(err instanceof DurationError)) throw err;
  }
  throw new CliError(`invalid --since ${JSON.stringify(v)}: a duration such as 30d, 7d or 12h`, ExitCode.BadInput);
}

/**
 * Every deployment that started or closed since `since` (one that started
 * before the window may go live, fail or restore in it) and its fact. A
 * running one has no result yet: counted, not computed.
 */
async function collect(client: Client, since: string, environment: string | undefined): Promise<Listed> {
  const clauses = [`WorkflowType = 'deployWorkflow'`, `(StartTime >= '${since}' OR CloseTime >= '${since}')`];
  if (environment) clauses.push(`DeployEnvironment = '${environment}'`);
  const closed: { workflowId: string; runId: string; status: string }[] = [];
  let listedCount = 0;
  let running = 0;
  for await (const w of client.workflow.list({ query: clauses.join(' AND ') })) {
    listedCount++;
    if (w.status.name === 'RUNNING') running++;
    else closed.push({ workflowId: w.workflowId, runId: w.runId, status: w.status.name });
  }
  const listed: Listed = {
    listed: listedCount,
    running,
    notDeployments: { refused: 0, planned: 0 },
    withoutResult: [],
    facts: [],
  };
  await eachLimited(closed, CONCURRENCY, async (w) => {
    const result = await resultOfRun(client, w.workflowId, w.runId);
    if (!result) return void listed.withoutResult.push({ workflowId: w.workflowId, status: w.status });
    const fact = factOf(result);
    if (!fact) return void listed.notDeployments[result.outcome === 'planned' ? 'planned' : 'refused']++;
    // The environment its result names is the one it deployed to, whatever its search attributes say.
    if (!environment || fact.environment === environment) listed.facts.push(fact);
  });
  listed.withoutResult.sort((a, b) => a.workflowId.localeCompare(b.workflowId));
  return listed;
}

/**
 * The run's result, whether it completed or closed as Failed carrying it
 * (workflows/outcome.ts); undefined when it closed without one (terminated,
 * cancelled, timed out, or failed by a bug). Anything else (a codec without
 * its key, the server gone) is the command's error.
 */
async function resultOfRun(client: Client, workflowId: string, runId: string): Promise<DeployResult | undefined> {
  try {
    return await resultOf(client.workflow.getHandle(workflowId, runId).result() as Promise<DeployResult>);
  } catch (err) {
    if (err instanceof WorkflowFailedError) return undefined;
    throw err;
  }
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
