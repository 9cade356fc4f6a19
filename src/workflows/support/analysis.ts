/**
 * Metrics analysis as the workflows run it: one activity for canary soaks,
 * blue-green monitoring and post-deployment verification, and the loop that
 * judges repeated runs against the limits.
 */
import { patched } from '@temporalio/workflow';
import type { AnalysisRequest } from '../../activities/contracts';
import { tallyRun, type AnalysisLimits, type AnalysisTally } from '../../domain/analysis';
import { applicableMetrics, dueMetrics, tallyByMetric, type MetricTallies } from '../../domain/analysis-rules';
import type { AnalysisRun } from '../../domain/status';
import { analysis } from '../activity-options';
import { RUN_ANALYSIS_PATCH } from '../patches';
import { Stop } from './stop';
import { analysisRan } from './metrics';
import { describeError, nowIso, type Tracker } from './tracker';

/** Declared with every other patch id in workflows/patches.ts; exported here too, where it always was. */
export { RUN_ANALYSIS_PATCH };

/** One analysis run by the activity this workflow's history expects. */
export function requestAnalysis(req: AnalysisRequest): Promise<AnalysisRun> {
  return patched(RUN_ANALYSIS_PATCH) ? analysis.runAnalysis(req) : analysis.analyzeCanary(req);
}

/**
 * Repeated analysis (a canary soak, a blue-green monitoring window) judged
 * against the limits: whole runs (failureLimit, inconclusiveLimit), or each
 * metric on its own when the plan carries per-metric rules (count, interval,
 * dry run, consecutive errors).
 */
export class AnalysisLoop {
  private tally: AnalysisTally = { failedRuns: 0, consecutiveInconclusive: 0 };
  private metricTallies: MetricTallies = {};

  constructor(
    private readonly t: Tracker,
    private readonly limits: AnalysisLimits,
    /** Shows the tally in the status (the canary's counters). */
    private readonly onTally: (tally: AnalysisTally) => void = () => undefined,
  ) {}

  /**
   * One run, recorded as the status's last analysis and added to the tally;
   * throws a failed Stop once the analysis has failed. A run that cannot be
   * measured is inconclusive, never a pass (design §5). With per-metric
   * rules, only the metrics due now are measured, and none due is no run.
   */
  async run(req: AnalysisRequest): Promise<AnalysisRun | undefined> {
    const rules = this.limits.metricRules;
    // Workflow time: Date.now() is the SDK's deterministic clock here.
    const now = Date.now();
    if (rules && applicableMetrics(rules, req.tracks).length === 0)
      throw new Stop(
        'failed',
        `no metric of the analysis can be measured on ${req.tracks.join(' and ')} alone: compare metrics need a canary beside stable (add a threshold metric)`,
      );
    const due = rules ? dueMetrics(rules, this.metricTallies, now, req.tracks) : undefined;
    if (due?.length === 0) return undefined;
    let run: AnalysisRun;
    try {
      run = await requestAnalysis(due ? { ...req, metrics: due } : req);
    } catch (err) {
      run = unmeasured(req, err, due);
    }
    this.t.status.lastAnalysis = run;
    // The environment measured: a release's soak measures the stage before the one it is about to deploy.
    analysisRan(req.environment ?? this.t.status.environment, run);
    if (rules) {
      const v = tallyByMetric(this.metricTallies, run, rules, now, due ?? []);
      this.metricTallies = v.tallies;
      this.onTally(v.summary);
      if (v.verdict === 'fail') throw new Stop('failed', v.reason);
      return run;
    }
    const v = tallyRun(this.tally, run, this.limits);
    this.tally = v.tally;
    this.onTally(v.tally);
    if (v.verdict === 'fail') throw new Stop('failed', v.reason);
    return run;
  }
}

/**
 * The inconclusive run that stands for a measurement that could not be taken
 * (one per metric asked for, as query errors, when counting per metric); only
 * a canary run reports its weight.
 */
function unmeasured(req: AnalysisRequest, err: unknown, metrics?: string[]): AnalysisRun {
  const reason = describeError(err);
  return {
    at: nowIso(),
    outcome: 'inconclusive',
    ...(req.tracks.includes('canary') ? { weight: req.weight } : {}),
    measurements: metrics
      ? metrics.map((metric) => ({
          metric,
          track: req.tracks[0],
          value: null,
          outcome: 'inconclusive' as const,
          reason,
          error: true as const,
        }))
      : [{ metric: 'analysis', track: req.tracks[0], value: null, outcome: 'inconclusive', reason }],
  };
}
