/**
 * Typed fake activities for workflow tests: they record every call and can be
 * told to fail or to return chosen analysis outcomes. The real adapters are
 * tested against the sandbox in test/integration.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Activities, CanaryTarget } from '../../src/activities/contracts';
import type { AnalysisRun, MeasurementOutcome } from '../../src/domain/status';
import type { DeployPlan } from '../../src/domain/plan';

export interface Call {
  name: keyof Activities;
  args: unknown[];
}

export interface FakeOptions {
  plan?: DeployPlan;
  /** Outcome of each analysis run in order; the last repeats. Default: pass. */
  analysis?: MeasurementOutcome[];
  /** Activities that throw, with the failure type (non-retryable). */
  fail?: Partial<Record<keyof Activities, string>>;
}

export function fakeActivities(opts: FakeOptions = {}) {
  const calls: Call[] = [];
  const weights: number[] = [];
  let analysisRuns = 0;
  const record = (name: keyof Activities, args: unknown[]) => {
    calls.push({ name, args });
    const type = opts.fail?.[name];
    if (type) throw ApplicationFailure.create({ type, message: `${name} failed (fake)`, nonRetryable: true });
  };
  const activities: Activities = {
    async resolvePlan(req) {
      record('resolvePlan', [req]);
      if (!opts.plan) throw new Error('no plan given to the fake');
      return { ...opts.plan, workflowId: req.workflowId };
    },
    async startCanary(target: CanaryTarget) {
      record('startCanary', [target]);
      return { deployment: `${target.service}-canary` };
    },
    async setCanaryWeight(req) {
      record('setCanaryWeight', [req]);
      weights.push(req.weight);
      return { weight: req.weight, observed: { stable: 100 - req.weight, canary: req.weight } };
    },
    async analyzeCanary(req): Promise<AnalysisRun> {
      record('analyzeCanary', [req]);
      const list = opts.analysis ?? ['pass'];
      const outcome = list[Math.min(analysisRuns, list.length - 1)];
      analysisRuns++;
      return {
        at: new Date().toISOString(),
        outcome,
        weight: req.weight,
        measurements: [{ metric: 'error-rate', track: 'canary', value: outcome === 'inconclusive' ? null : outcome === 'pass' ? 0.001 : 0.3, outcome }],
      };
    },
    async promoteCanary(target) {
      record('promoteCanary', [target]);
    },
    async abortCanary(target) {
      record('abortCanary', [target]);
      weights.push(0);
    },
    async notify(event) {
      record('notify', [event]);
      return { delivered: 1, failed: 0 };
    },
  };
  return {
    activities,
    calls,
    weights,
    names: () => calls.map((c) => c.name),
    count: (name: keyof Activities) => calls.filter((c) => c.name === name).length,
  };
}
