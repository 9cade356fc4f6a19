/**
 * The DORA figures (domain/dora.ts) over constructed deployments: each
 * definition on its edge cases: no deployments, all failed, a restore that
 * never happened, failures before the rollout, several environments, the
 * window's edges and missing timestamps.
 */
import { bandOf, computeDora, DEFINITIONS, type DeploymentFact } from '../../src/domain/dora';

const H = 3_600_000;
const T0 = Date.parse('2026-11-01T00:00:00.000Z');
/** An ISO time `h` hours after T0. */
const at = (h: number) => new Date(T0 + h * H).toISOString();
/** 30 days from T0. */
const WINDOW = { since: at(0), until: at(30 * 24) };

let n = 0;
/** A success whose rollout began at `h`, live an hour later, committed a day before it went live. */
function success(h: number, o: Partial<DeploymentFact> = {}): DeploymentFact {
  return {
    workflowId: `deploy-${++n}`,
    environment: 'production',
    version: `1.0.${n}`,
    outcome: 'succeeded',
    startedAt: at(h - 0.5),
    endedAt: at(h + 1.1),
    rolloutStartedAt: at(h),
    committedAt: at(h + 1 - 24),
    liveAt: at(h + 1),
    ...o,
  };
}

/** A change failure: rollout began at `h`, failed half an hour later, stable 15 minutes after that. */
function rolledBack(h: number, o: Partial<DeploymentFact> = {}): DeploymentFact {
  return {
    workflowId: `deploy-${++n}`,
    environment: 'production',
    version: `1.0.${n}`,
    outcome: 'rolled-back',
    startedAt: at(h - 0.5),
    endedAt: at(h + 1),
    rolloutStartedAt: at(h),
    committedAt: at(h - 24),
    failedAt: at(h + 0.5),
    stableAt: at(h + 0.75),
    ...o,
  };
}

test('no deployments: every figure is null (not 0), every count 0', () => {
  const r = computeDora([], WINDOW);
  expect(r.window.days).toBe(30);
  expect(r.environments).toEqual({});
  expect(r.overall.deployments).toBe(0);
  expect(r.overall.deploymentFrequency).toEqual({ successes: 0, perDay: 0, perWeek: 0, band: 'none' });
  expect(r.overall.leadTime).toEqual({ measured: 0, missing: 0, medianMs: null, p90Ms: null });
  expect(r.overall.changeFailureRate).toMatchObject({ began: 0, rate: null, failedBeforeRollout: 0 });
  expect(r.overall.timeToRestore.failures).toBe(0);
  for (const x of [r.overall.timeToRestore.toStable, r.overall.timeToRestore.toNextSuccess])
    expect(x).toEqual({ restored: 0, notRestored: 0, unmeasured: 0, medianMs: null, p90Ms: null });
  expect(r.definitions).toEqual(DEFINITIONS);
});

test('frequency, lead time and their spread over successes', () => {
  // Lead times of 1, 2, 3, ... 10 hours: median 5.5 h, p90 9.1 h (linear interpolation).
  const facts = Array.from({ length: 10 }, (_, i) => success(24 * i + 10, { committedAt: at(24 * i + 11 - (i + 1)) }));
  const r = computeDora(facts, WINDOW);
  expect(r.overall.deploymentFrequency).toMatchObject({ successes: 10, band: 'weekly' });
  expect(r.overall.deploymentFrequency.perDay).toBeCloseTo(1 / 3);
  expect(r.overall.deploymentFrequency.perWeek).toBeCloseTo(7 / 3);
  expect(r.overall.leadTime).toEqual({ measured: 10, missing: 0, medianMs: 5.5 * H, p90Ms: 9.1 * H });
  expect(r.overall.changeFailureRate).toMatchObject({ began: 10, rate: 0 });
  expect(r.overall.timeToRestore.failures).toBe(0);
});

test.each([
  [2, 'daily or more'],
  [1, 'daily or more'],
  [1 / 7, 'weekly'],
  [1 / 8, 'monthly'],
  [1 / 30, 'monthly'],
  [1 / 31, 'less than monthly'],
  [0, 'none'],
])('band of %p per day: %s', (perDay, band) => {
  expect(bandOf(perDay)).toBe(band);
});

test('all failed: rate 1, nothing restored by a success, the oldest open failure and its age', () => {
  const facts = [
    rolledBack(10),
    rolledBack(50, { outcome: 'aborted' }),
    rolledBack(100, { outcome: 'failed', stableAt: undefined }),
  ];
  const r = computeDora(facts, WINDOW);
  expect(r.overall.deploymentFrequency.successes).toBe(0);
  expect(r.overall.leadTime).toMatchObject({ measured: 0, missing: 0, medianMs: null });
  expect(r.overall.changeFailureRate).toEqual({
    began: 3,
    failures: { rolledBack: 1, aborted: 1, failed: 1, total: 3 },
    rate: 1,
    failedBeforeRollout: 0,
  });
  const { toStable, toNextSuccess } = r.overall.timeToRestore;
  // The rollback and the abort brought the previous version back in 15 minutes; the failed one never did.
  expect(toStable).toMatchObject({ restored: 2, notRestored: 1, unmeasured: 0, medianMs: 0.25 * H });
  expect(toStable.oldestOpen).toEqual({
    workflowId: facts[2].workflowId,
    failedAt: at(100.5),
    ageMs: 720 * H - 100.5 * H,
  });
  expect(toNextSuccess).toMatchObject({ restored: 0, notRestored: 3, medianMs: null, p90Ms: null });
  expect(toNextSuccess.oldestOpen).toEqual({ workflowId: facts[0].workflowId, failedAt: at(10.5), ageMs: 709.5 * H });
});

test('a restore that never happened is counted as not restored, not dropped', () => {
  const facts = [success(5), rolledBack(20), success(30), rolledBack(40, { outcome: 'failed', stableAt: undefined })];
  const r = computeDora(facts, WINDOW);
  expect(r.overall.changeFailureRate).toMatchObject({ began: 4, rate: 0.5 });
  const { toStable, toNextSuccess } = r.overall.timeToRestore;
  expect(toStable).toMatchObject({ restored: 1, notRestored: 1, medianMs: 0.25 * H });
  // The first failure at 20.5 h was restored by the success live at 31 h; the second never was.
  expect(toNextSuccess).toMatchObject({ restored: 1, notRestored: 1, medianMs: 10.5 * H });
  expect(toNextSuccess.oldestOpen).toMatchObject({ workflowId: facts[3].workflowId, ageMs: 720 * H - 40.5 * H });
});

test('failures before the rollout began are not change failures, and alone give no rate', () => {
  const before = (h: number, outcome: DeploymentFact['outcome']): DeploymentFact => ({
    ...rolledBack(h, { outcome }),
    rolloutStartedAt: undefined,
    failedAt: undefined,
    stableAt: undefined,
  });
  const only = computeDora([before(10, 'failed'), before(20, 'aborted')], WINDOW);
  expect(only.overall.changeFailureRate).toMatchObject({ began: 0, rate: null, failedBeforeRollout: 2 });
  expect(only.overall.changeFailureRate.failures.total).toBe(0);
  expect(only.overall.timeToRestore.failures).toBe(0);

  const mixed = computeDora([before(10, 'failed'), success(30), rolledBack(50)], WINDOW);
  expect(mixed.overall.changeFailureRate).toMatchObject({ began: 2, rate: 0.5, failedBeforeRollout: 1 });
});

test('environments: figures apiece, and a success elsewhere restores nothing', () => {
  const staging = (f: DeploymentFact): DeploymentFact => ({ ...f, environment: 'staging' });
  const facts = [staging(rolledBack(10)), success(20), staging(success(30)), success(40), rolledBack(50)];
  const r = computeDora(facts, WINDOW);
  expect(Object.keys(r.environments)).toEqual(['production', 'staging']);
  const { production, staging: st } = r.environments;
  expect(production.deploymentFrequency.successes).toBe(2);
  expect(production.changeFailureRate).toMatchObject({ began: 3, rate: 1 / 3 });
  // Production's failure at 50.5 h has no later success in production.
  expect(production.timeToRestore.toNextSuccess).toMatchObject({ restored: 0, notRestored: 1 });
  expect(st.changeFailureRate).toMatchObject({ began: 2, rate: 0.5 });
  // Staging's failure at 10.5 h: production's success at 21 h does not count, staging's at 31 h does.
  expect(st.timeToRestore.toNextSuccess).toMatchObject({ restored: 1, medianMs: 20.5 * H });
  expect(r.overall.deploymentFrequency.successes).toBe(3);
  expect(r.overall.changeFailureRate).toMatchObject({ began: 5, rate: 0.4 });
  expect(r.overall.timeToRestore.toNextSuccess).toMatchObject({ restored: 1, notRestored: 1 });
});

test('window edges: [since, until) by the time each figure counts', () => {
  const window = { since: at(100), until: at(200) };
  const facts = [
    // Live exactly at since: in; live exactly at until: out.
    success(99, { liveAt: at(100) }),
    success(199, { liveAt: at(200) }),
    // Its rollout began before the window: neither a deployment that began nor a change failure of this window.
    rolledBack(99.9),
    // Began at since: in. Its restoring success goes live at until: not restored within the window.
    rolledBack(100, { environment: 'staging', stableAt: at(200) }),
    success(199, { environment: 'staging', liveAt: at(200) }),
  ];
  const r = computeDora(facts, window);
  expect(r.window.days).toBeCloseTo(100 / 24);
  expect(r.overall.deploymentFrequency.successes).toBe(1);
  expect(r.overall.leadTime.measured).toBe(1);
  // Began in [100, 200): the success that began at 199 (twice) and the staging failure at 100.
  expect(r.overall.changeFailureRate).toMatchObject({ began: 3, failures: { total: 1 } });
  const { toStable, toNextSuccess } = r.environments.staging.timeToRestore;
  expect(toStable).toMatchObject({ restored: 0, notRestored: 1 });
  expect(toNextSuccess).toMatchObject({ restored: 0, notRestored: 1 });
  expect(toNextSuccess.oldestOpen?.ageMs).toBe(99.5 * H);
});

test('missing timestamps are counted, never guessed into the figures', () => {
  const facts = [
    // No commit time: not in the lead time, counted as missing.
    success(10, { committedAt: undefined }),
    // A commit time after going live is a wrong clock: missing too.
    success(20, { committedAt: at(30) }),
    // No liveAt: went live when it ended; no rolloutStartedAt: a success began no later than its start.
    success(40, { liveAt: undefined, rolloutStartedAt: undefined, committedAt: at(40) }),
    // A rollback whose stable time was not recorded: restored, but unmeasured.
    rolledBack(60, { stableAt: undefined }),
    // A failure whose failure time was not recorded: unmeasured both ways.
    rolledBack(80, { failedAt: undefined }),
  ];
  const r = computeDora(facts, WINDOW);
  expect(r.overall.deploymentFrequency.successes).toBe(3);
  // The third: committed at 40 h, ended (so live) at 41.1 h.
  expect(r.overall.leadTime).toMatchObject({ measured: 1, missing: 2 });
  expect(r.overall.leadTime.medianMs).toBeCloseTo(1.1 * H);
  expect(r.overall.changeFailureRate).toMatchObject({ began: 5, rate: 0.4 });
  const { toStable, toNextSuccess } = r.overall.timeToRestore;
  expect(toStable).toMatchObject({ restored: 0, notRestored: 0, unmeasured: 2, medianMs: null });
  expect(toNextSuccess).toMatchObject({ restored: 0, notRestored: 1, unmeasured: 1 });
});

test('facts read from steps are counted', () => {
  const r = computeDora([success(10, { fromSteps: true }), success(20)], WINDOW);
  expect(r.overall.fromSteps).toBe(1);
  expect(r.environments.production.fromSteps).toBe(1);
});

test('a window that ends before it starts is refused', () => {
  expect(() => computeDora([], { since: at(10), until: at(5) })).toThrow(/invalid window/);
  expect(() => computeDora([], { since: 'yesterday', until: at(5) })).toThrow(/invalid window/);
});

test('the definitions are one line each', () => {
  for (const d of DEFINITIONS) expect(d).not.toMatch(/\n/);
  expect(DEFINITIONS.map((d) => d.split(':')[0])).toEqual([
    'Window',
    'Deployment frequency',
    'Lead time for changes',
    'Change failure rate',
    'Time to restore, to stable',
    'Time to restore, to the next success',
    'Older records without a timeline',
  ]);
});
