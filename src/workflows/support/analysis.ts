/**
 * Metrics analysis as the workflows run it: one activity for canary soaks,
 * blue-green monitoring and post-deployment verification, and the loop that
 * judges repeated runs against the limits.
 */
import { patched } from '@temporalio/workflow';
import type { AnalysisRequest } from '../../activities/contracts';
import { tallyRun, type AnalysisLimits, type AnalysisTally } from '../../domain/analysis';
import type { AnalysisRun } from '../../domain/status';
import { analysis } from '../activity-options';
import { RUN_ANALYSIS_PATCH } from '../patches';
import { Stop } from './stop';
import { describeError, nowIso, type Tracker } from './tracker';

/** Declared with every other patch id in workflows/patches.ts; exported here too, where it always was. */
export { RUN_ANALYSIS_PATCH };

/** One analysis run by the activity this workflow's history expects. */
export function requestAnalysis(req: AnalysisRequest): Promise<AnalysisRun> {
  return patched(RUN_ANALYSIS_PATCH) ? analysis.runAnalysis(req) : analysis.analyzeCanary(req);
}

/** Repeated analysis (a canary soak, a blue-green monitoring window) judged against the failure and inconclusive limits. */
export class AnalysisLoop {
  private tally: AnalysisTally = { failedRuns: 0, consecutiveInconclusive: 0 };

  constructor(
    private readonly t: Tracker,
    private readonly limits: AnalysisLimits,
    /** Shows the tally in the status (the canary's counters). */
    private readonly onTally: (tally: AnalysisTally) => void = () => undefined,
  ) {}

  /**
   * One run, recorded as the status's last analysis and added to the tally;
   * throws a failed Stop once the analysis has failed. A run that cannot be
   * measured is inconclusive, never a pass (design §5).
   */
  async run(req: AnalysisRequest): Promise<AnalysisRun> {
    let run: AnalysisRun;
    try {
      run = await requestAnalysis(req);
    } catch (err) {
      run = unmeasured(req, err);
    }
    this.t.status.lastAnalysis = run;
    const v = tallyRun(this.tally, run, this.limits);
    this.tally = v.tally;
    this.onTally(v.tally);
    if (v.verdict === 'fail') throw new Stop('failed', v.reason);
    return run;
  }
}

/** The inconclusive run that stands for a measurement that could not be taken; only a canary run reports its weight. */
function unmeasured(req: AnalysisRequest, err: unknown): AnalysisRun {
  return {
    at: nowIso(),
    outcome: 'inconclusive',
    ...(req.tracks.includes('canary') ? { weight: req.weight } : {}),
    measurements: [
      { metric: 'analysis', track: req.tracks[0], value: null, outcome: 'inconclusive', reason: describeError(err) },
    ],
  };
}
