/**
 * The short reliability run, part of `npm test`: two canary deployments of
 * v1.0.1 with one or two SIGKILLs of the worker process each (seeded random
 * points), the Temporal server killed -9 and restarted during an activity and
 * during a soak, a transient outage of every outside system during the step
 * that uses it (the deployment completes, every side effect once), and one
 * permanent failure (Prometheus gone: analysis fails, the saga rolls traffic,
 * images and — after approval — the database back). Shares the harness with
 * the full run (test/reliability/crash-harness.ts) and writes its section of
 * docs/reliability.md. RELIABILITY_SEED repeats a plan.
 */
import * as path from 'node:path';
import { runReliability, seedFromEnv, shortPlan } from '../reliability/crash-harness';
import { REPO_ROOT } from '../helpers/tools';

const seed = seedFromEnv();

test(
  `reliability (short): worker kills, server restarts, transient outages of every outside system, a permanent failure (seed ${seed})`,
  async () => {
    console.log(`reliability seed ${seed}`);
    const report = await runReliability({
      mode: 'short',
      seed,
      runs: shortPlan(seed),
      docPath: path.join(REPO_ROOT, 'docs', 'reliability.md'),
      command: `RELIABILITY_SEED=${seed} npx jest test/e2e/reliability-short.test.ts`,
    });
    const failed = report.runs
      .filter((r) => !r.ok)
      .map((r) => ({
        run: r.spec.n,
        scenario: r.spec.scenario,
        outcome: r.outcome,
        reason: r.reason,
        failed: r.checks.filter((c) => !c.ok),
      }));
    expect(failed).toEqual([]);
  },
  15 * 60_000,
);
