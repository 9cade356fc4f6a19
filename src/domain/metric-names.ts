/**
 * The product's Prometheus series, in one place: the workflows emit them
 * (workflows/support/metrics.ts), the worker's runtime gives their histograms
 * buckets (src/worker-metrics.ts), and the dashboard and its test read the
 * same names. The Temporal SDK's own series (temporal_*) sit beside them on
 * the worker's /metrics.
 *
 * Labels stay bounded: environments, strategies, outcomes, metrics and
 * gates come from the config; step names lose what varies per run (versions,
 * weights, waves), see stepKind. Every series the workflows emit also gets
 * namespace, taskQueue and workflowType from the SDK.
 *
 * Pure and free of Node built-ins: workflow code imports it.
 */

export const METRIC = {
  deploymentsStarted: 'deploy_deployments_started_total',
  deploymentsFinished: 'deploy_deployments_finished_total',
  deploymentsRefused: 'deploy_deployments_refused_total',
  deploymentDuration: 'deploy_deployment_duration_seconds',
  leadTime: 'deploy_lead_time_seconds',
  stepDuration: 'deploy_step_duration_seconds',
  phase: 'deploy_workflow_phase',
  canaryWeight: 'deploy_canary_weight',
  canaryRunning: 'deploy_canary_running',
  analysisRuns: 'deploy_analysis_runs_total',
  analysisMeasurements: 'deploy_analysis_measurements_total',
  approvals: 'deploy_approvals_total',
  approvalWait: 'deploy_approval_wait_seconds',
  rollbacks: 'deploy_rollbacks_total',
  rollbackDuration: 'deploy_rollback_seconds',
  freezes: 'deploy_freezes_total',
  frozen: 'deploy_environment_frozen',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/** One line each, as /metrics prints it under # HELP. */
export const METRIC_HELP: Record<MetricName, string> = {
  deploy_deployments_started_total:
    'Deployments that took their environment and began the pipeline, by environment and strategy.',
  deploy_deployments_finished_total:
    'Deployments that began and ended, by environment, strategy, outcome (succeeded, rolled-back, aborted, failed) and rollout (began: a workload changed; not-began).',
  deploy_deployments_refused_total:
    'Deployments refused before they began, by environment and reason (deployment-in-progress, invalid-input, frozen).',
  deploy_deployment_duration_seconds: 'Wall time of a deployment from its start to its end, by outcome.',
  deploy_lead_time_seconds: "Lead time for changes: the release commit's time to the version live in the environment.",
  deploy_step_duration_seconds: 'Duration of each pipeline step, by workflow, step and how it ended.',
  deploy_workflow_phase: "1 for a running workflow's current phase in its environment, 0 for the phases it left.",
  deploy_canary_weight: "The canary's share of traffic in percent, per environment (0 once the canary ends).",
  deploy_canary_running: '1 while a canary runs in the environment, else 0.',
  deploy_analysis_runs_total: 'Analysis runs, by environment and outcome (pass, fail, inconclusive).',
  deploy_analysis_measurements_total: 'Analysis measurements, by environment, metric and outcome.',
  deploy_approvals_total: 'Approvals counted at a gate, by environment and gate.',
  deploy_approval_wait_seconds: 'How long a gate waited from opening to an approval, by environment.',
  deploy_rollbacks_total: 'Rollbacks, by environment, kind (automatic, manual) and outcome.',
  deploy_rollback_seconds:
    'Time to stable: a failure to the workloads back on the previous version (automatic), or the request to it (manual).',
  deploy_freezes_total: 'Stop-the-line freezes and unfreezes, by environment and action.',
  deploy_environment_frozen: '1 while a freeze holds the environment, else 0.',
};

const SHORT_WORK = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

/** Bucket bounds (seconds) of each product histogram; the SDK's own keep theirs. */
export const METRIC_BUCKETS: Record<string, number[]> = {
  [METRIC.stepDuration]: SHORT_WORK,
  [METRIC.deploymentDuration]: [10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 43200, 86400],
  [METRIC.leadTime]: [60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400, 259200, 604800, 2592000],
  [METRIC.approvalWait]: [1, 5, 15, 60, 300, 900, 1800, 3600, 14400, 43200, 86400],
  [METRIC.rollbackDuration]: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900],
};

/**
 * A step's name as a bounded label: what varies per run goes. "traffic 25%"
 * → "traffic", "images to 1.2.3" → "images to", "update images (region-a,
 * wave 2)" → "update images", "undo auth-service to revision 4" → "undo
 * auth-service to revision" (service names come from the config).
 */
export function stepKind(name: string): string {
  return (
    name
      .replace(/\s*\(.*\)\s*$/, '')
      .replace(/\bv?\d+\.\d+\.\d+\S*/g, '')
      .replace(/\b\d+%?/g, '')
      .replace(/\s+/g, ' ')
      .trim() || 'step'
  );
}

/** One counter series as the workflows emit it: the SDK adds namespace, taskQueue and workflowType. */
export interface CounterSeries {
  name: MetricName;
  workflowType: string;
  labels: Record<string, string>;
}

const DEPLOY_OUTCOMES = ['succeeded', 'rolled-back', 'aborted', 'failed'];
const STRATEGIES = ['rolling', 'canary', 'blue-green'];

/**
 * Every counter series a worker can emit for these environments, to start at
 * 0: Prometheus's increase() sees a counter's first event only when the
 * series was there before it, and a deployment is a rare event.
 */
export function counterSeries(environments: readonly string[]): CounterSeries[] {
  const out: CounterSeries[] = [];
  for (const environment of environments) {
    for (const strategy of STRATEGIES) {
      out.push({ name: METRIC.deploymentsStarted, workflowType: 'deployWorkflow', labels: { environment, strategy } });
      for (const outcome of DEPLOY_OUTCOMES)
        for (const rollout of ['began', 'not-began'])
          out.push({
            name: METRIC.deploymentsFinished,
            workflowType: 'deployWorkflow',
            labels: { environment, strategy, outcome, rollout },
          });
    }
    for (const outcome of ['rolled-back', 'failed'])
      out.push({
        name: METRIC.rollbacks,
        workflowType: 'deployWorkflow',
        labels: { environment, kind: 'automatic', outcome },
      });
    for (const outcome of ['rolled-back', 'failed', 'refused'])
      out.push({
        name: METRIC.rollbacks,
        workflowType: 'rollbackWorkflow',
        labels: { environment, kind: 'manual', outcome },
      });
    for (const action of ['freeze', 'unfreeze', 'refused'])
      out.push({ name: METRIC.freezes, workflowType: 'freezeWorkflow', labels: { environment, action } });
  }
  return out;
}
