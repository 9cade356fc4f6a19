import { analysisIntervalAt } from '../../bench/scale-out';

describe('scale-out benchmark: analysis interval by N', () => {
  it("keeps the example's interval up to 1000 canaries", () => {
    expect(analysisIntervalAt(20, 60_000)).toBe(60_000);
    expect(analysisIntervalAt(1000, 60_000)).toBe(60_000);
  });

  it('grows with N past it, so the cluster is asked for the same analyses a second', () => {
    expect(analysisIntervalAt(5000, 60_000)).toBe(300_000);
    expect(5000 / (analysisIntervalAt(5000, 60_000) / 1000)).toBeCloseTo(1000 / 60, 5);
  });

  it('never shortens a longer configured interval', () => {
    expect(analysisIntervalAt(5000, 600_000)).toBe(600_000);
  });
});
