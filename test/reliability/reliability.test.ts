/**
 * The full reliability run (`npm run test:reliability`): RELIABILITY_RUNS
 * canary deployments (default 20) with 1–3 worker kills each at seeded random
 * points, the Temporal server killed -9 during an activity and during a soak,
 * and a transient outage and a permanent failure of each outside system, each
 * in its own deployment. Writes its section of docs/reliability.md.
 *
 * RELIABILITY_SEED repeats a plan; RELIABILITY_ONLY=<text>[,<text>] runs only
 * the scenarios whose name contains one of them (while working on one).
 */
import * as path from 'node:path';
import { fullPlan, runReliability, seedFromEnv } from './crash-harness';
import { REPO_ROOT } from '../helpers/tools';

const runs = Number(process.env.RELIABILITY_RUNS ?? 20);
const seed = seedFromEnv();
const only = process.env.RELIABILITY_ONLY?.split(',').filter(Boolean);

test(
  `reliability: ${runs} crash runs, server restarts, transient and permanent faults of every outside system (seed ${seed})`,
  async () => {
    if (!Number.isInteger(runs) || runs < 0)
      throw new Error(`RELIABILITY_RUNS must be a whole number, got ${process.env.RELIABILITY_RUNS}`);
    console.log(`reliability seed ${seed}`);
    const report = await runReliability({
      mode: 'full',
      seed,
      runs: fullPlan(seed, runs, only),
      docPath: path.join(REPO_ROOT, 'docs', 'reliability.md'),
      command: `RELIABILITY_SEED=${seed} RELIABILITY_RUNS=${runs}${only ? ` RELIABILITY_ONLY=${only.join(',')}` : ''} npm run test:reliability`,
    });
    const failed = report.runs
      .filter((r) => !r.ok)
      .map((r) => ({
        run: r.spec.n,
        scenario: r.spec.scenario,
        outcome: r.outcome,
        failed: r.checks.filter((c) => !c.ok),
      }));
    expect(failed).toEqual([]);
  },
  8 * 3_600_000,
);
