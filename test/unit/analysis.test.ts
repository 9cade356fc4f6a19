import { judgeValue, runOutcome, tallyRun } from '../../src/domain/analysis';
import type { AnalysisRun, Measurement } from '../../src/domain/status';

describe('judgeValue: no data is never a pass', () => {
  test.each([
    [null, 'no data'],
    [undefined, 'no data'],
    [Number.NaN, 'NaN'],
    [Number.POSITIVE_INFINITY, '+Inf'],
    [Number.NEGATIVE_INFINITY, '-Inf'],
  ])('%p is inconclusive', (value, reason) => {
    const r = judgeValue(value, { max: 0.01 });
    expect(r.outcome).toBe('inconclusive');
    expect(r.reason).toContain(reason);
  });

  test('thresholds', () => {
    expect(judgeValue(0.002, { max: 0.01 }).outcome).toBe('pass');
    expect(judgeValue(0.01, { max: 0.01 }).outcome).toBe('pass');
    expect(judgeValue(0.3, { max: 0.01 })).toEqual({ outcome: 'fail', reason: '0.3 > 0.01' });
    expect(judgeValue(812, { max: 500, unit: 'ms' })).toEqual({ outcome: 'fail', reason: '812 ms > 500 ms' });
    expect(judgeValue(5, { min: 10 }).outcome).toBe('fail');
  });
});

const m = (outcome: Measurement['outcome']): Measurement => ({
  metric: 'error-rate',
  track: 'canary',
  value: 0,
  outcome,
});
const run = (outcome: Measurement['outcome']): AnalysisRun => ({ at: '', outcome, measurements: [m(outcome)] });

test('a run with nothing measured is inconclusive, any failure fails it', () => {
  expect(runOutcome([])).toBe('inconclusive');
  expect(runOutcome([m('pass'), m('inconclusive')])).toBe('inconclusive');
  expect(runOutcome([m('pass'), m('fail'), m('inconclusive')])).toBe('fail');
  expect(runOutcome([m('pass'), m('pass')])).toBe('pass');
});

test('failure limit: failures beyond the limit fail the analysis', () => {
  const limits = { failureLimit: 1, inconclusiveLimit: 5 };
  let v = tallyRun({ failedRuns: 0, consecutiveInconclusive: 0 }, run('fail'), limits);
  expect(v.verdict).toBe('continue');
  v = tallyRun(v.tally, run('pass'), limits);
  expect(v.verdict).toBe('continue');
  v = tallyRun(v.tally, run('fail'), limits);
  expect(v.verdict).toBe('fail');
  expect(v.verdict === 'fail' && v.reason).toMatch(/2 failed, limit 1/);
});

test('inconclusive limit counts runs in a row; a pass resets it', () => {
  const limits = { failureLimit: 0, inconclusiveLimit: 2 };
  let v = tallyRun({ failedRuns: 0, consecutiveInconclusive: 0 }, run('inconclusive'), limits);
  v = tallyRun(v.tally, run('inconclusive'), limits);
  expect(v.verdict).toBe('continue');
  v = tallyRun(v.tally, run('pass'), limits);
  expect(v.tally.consecutiveInconclusive).toBe(0);
  v = tallyRun(v.tally, run('inconclusive'), limits);
  v = tallyRun(v.tally, run('inconclusive'), limits);
  v = tallyRun(v.tally, run('inconclusive'), limits);
  expect(v.verdict).toBe('fail');
  expect(v.verdict === 'fail' && v.reason).toMatch(/inconclusive 3 times in a row \(limit 2\)/);
});

test('failure limit 0: the first failed run fails the analysis', () => {
  const v = tallyRun({ failedRuns: 0, consecutiveInconclusive: 0 }, run('fail'), {
    failureLimit: 0,
    inconclusiveLimit: 0,
  });
  expect(v.verdict).toBe('fail');
});
