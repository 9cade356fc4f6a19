/**
 * Post-deployment verification (runbook "Post-Deployment Verification" and
 * "Monitoring & Alerts"), run side by side: health endpoint, smoke checks,
 * Kubernetes health, platform health (database connections, Redis memory)
 * and one metrics analysis of the stable track at the new version. Any
 * failure or an inconclusive analysis fails verification: no data is never
 * a pass.
 */
import type { DeployPlan } from '../domain/plan';
import { short } from './activity-options';
import { requestAnalysis } from './support/analysis';
import { describeError, type Tracker } from './support/tracker';

/** What verification needs from the deployment that rolled out. */
export interface VerifyRequest {
  workflowId: string;
  plan: DeployPlan;
  /** The cluster whose pods are checked (an environment of several clusters). */
  cluster?: string;
  /** The Deployments serving the release (blue-green: the live colour's). */
  deployments: string[];
  restartsBefore: Record<string, number>;
  since: string;
  baselineConnections?: number;
}

export type CheckName = 'health check' | 'smoke checks' | 'kubernetes health' | 'platform health' | 'metrics analysis';

/** Some of the checks, their steps named with a label: a wave's checks before the next wave (deploy-rollout.ts). */
export interface VerifyScope {
  checks: CheckName[];
  /** Appended to each step's name, e.g. " (wave 1 of 2)". */
  label: string;
}

/** Runs every check (or the scope's) side by side and collects what failed, so one report names all problems at once. */
export async function verifyRelease(
  t: Tracker,
  req: VerifyRequest,
  scope?: VerifyScope,
): Promise<{ ok: boolean; reason: string }> {
  const { plan, workflowId } = req;
  const problems: string[] = [];
  const check = async (name: CheckName, fn: () => Promise<{ ok: boolean; lines: string[] }>): Promise<void> => {
    if (scope && !scope.checks.includes(name)) return;
    try {
      await t.step(
        `${name}${scope?.label ?? ''}`,
        async () => {
          const r = await fn();
          // A failed check is a failed step in the status, with what failed.
          if (!r.ok)
            throw new Error(
              r.lines
                .filter((l) => /fail|error|not |inconclusive|unavailable/i.test(l))
                .slice(0, 3)
                .join('; ') || r.lines.slice(0, 3).join('; '),
            );
          return r;
        },
        (x) => x.lines.slice(0, 3).join('; '),
      );
    } catch (err) {
      problems.push(`${name}: ${describeError(err)}`);
    }
  };
  await Promise.all([
    check('health check', () => short.checkHealth({ workflowId, environment: plan.environment })),
    check('smoke checks', () => short.runSmokeChecks({ workflowId, environment: plan.environment })),
    check('kubernetes health', () =>
      short.checkKubernetesHealth({
        environment: plan.environment,
        ...(req.cluster ? { cluster: req.cluster } : {}),
        namespace: plan.namespace,
        deployments: req.deployments,
        baselineRestarts: req.restartsBefore,
        since: req.since,
      }),
    ),
    check('platform health', () =>
      short.checkPlatformHealth({
        environment: plan.environment,
        ...(req.baselineConnections !== undefined ? { baselineConnections: req.baselineConnections } : {}),
      }),
    ),
    check('metrics analysis', async () => {
      const run = await requestAnalysis({
        workflowId,
        environment: plan.environment,
        namespace: plan.namespace,
        version: plan.version,
        stableVersion: plan.version,
        weight: 0,
        tracks: ['stable'],
      });
      t.status.lastAnalysis = run;
      return {
        ok: run.outcome === 'pass',
        lines: run.measurements.map(
          (m) => `${m.metric}[${m.track}] ${m.value ?? 'no data'} ${m.outcome}${m.reason ? ` (${m.reason})` : ''}`,
        ),
      };
    }),
  ]);
  return { ok: problems.length === 0, reason: `${scope ? 'checks' : 'verification'} failed: ${problems.join(' | ')}` };
}
