/**
 * Post-deployment verification (runbook "Post-Deployment Verification" and
 * "Monitoring & Alerts") as thin adapters: HTTP for the health endpoint and
 * smoke checks (health.ts, smoke.ts), the Kubernetes API for pods and logs
 * (cluster-health.ts), pg and Redis for the platform (platform.ts). Every
 * judgement is made by pure functions in domain/verification.ts.
 *
 * A failed check is an answer, not a crash: each check returns a CheckReport
 * ({ok, lines} plus the details behind each line) and the workflow decides
 * (verify-release.ts). They throw only when they could not look (apiserver
 * down: retried; forbidden or a missing env variable: not retried).
 */
import { analysisActivities } from '../analysis';
import { clusterHealthChecks } from './cluster-health';
import { checkContext, type VerifyDeps } from './context';
import { healthCheck } from './health';
import { platformChecks } from './platform';
import { smokeChecks } from './smoke';

export { kubePodReader, LogsUnavailable, type PodReader } from './cluster-health';
export type { VerifyDeps } from './context';

/** The checks the worker registers: health, smoke, Kubernetes (with its restart baseline) and platform (with its baseline). */
export function verifyChecks(deps: VerifyDeps) {
  const ctx = checkContext(deps);
  const { podRestarts, checkKubernetesHealth } = clusterHealthChecks(ctx, deps);
  const { platformBaseline, checkPlatformHealth } = platformChecks(ctx);
  return {
    checkHealth: healthCheck(ctx),
    runSmokeChecks: smokeChecks(ctx),
    podRestarts,
    checkKubernetesHealth,
    platformBaseline,
    checkPlatformHealth,
  };
}

/**
 * The checks and the analysis run (under its registered name, analyzeCanary)
 * from one deps object: everything a post-deployment verification calls, as
 * the integration tests build it. The worker registers the two halves
 * separately (activities/index.ts).
 */
export function verifyActivities(deps: VerifyDeps) {
  return { ...verifyChecks(deps), analyzeCanary: analysisActivities(deps).runAnalysis };
}

/** The type of verifyActivities' result, for callers that take it as a dependency. */
export type VerifyActivities = ReturnType<typeof verifyActivities>;
