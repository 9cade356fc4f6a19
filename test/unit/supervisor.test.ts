/** The restart decision of `npm start`'s worker supervision (scripts/supervisor.ts), without processes. */
import { DEFAULT_POLICY, exitReason, nextRestart, restartMessage, type Death } from '../../scripts/supervisor';

/** Deaths of runs that each lasted `uptimeMs`, `gapMs` apart (restart delay), the first starting at 0. */
function runs(uptimes: number[], gapMs = 0): Death[] {
  const deaths: Death[] = [];
  let t = 0;
  for (const up of uptimes) {
    deaths.push({ startedAt: t, diedAt: t + up });
    t += up + gapMs;
  }
  return deaths;
}

const last = (d: Death[]): number => d[d.length - 1].diedAt;

describe('nextRestart', () => {
  test('issue 16 item 10: the first death of a worker is restarted after 1 s', () => {
    const history = runs([5 * 60_000]);
    expect(nextRestart(history, last(history))).toEqual({ restart: true, delayMs: 1000, count: 1 });
  });

  test('issue 16 item 10: quick deaths in a row double the delay, up to 30 s', () => {
    // Each run lasts 20 s: never 5 deaths within 60 s, but never stable either.
    const delays: number[] = [];
    const history: Death[] = [];
    let t = 0;
    for (let i = 0; i < 8; i++) {
      history.push({ startedAt: t, diedAt: t + 20_000 });
      const d = nextRestart(history, t + 20_000);
      if (!d.restart) throw new Error(`gave up at death ${i + 1}: ${d.reason}`);
      delays.push(d.delayMs);
      expect(d.count).toBe(i + 1);
      t += 20_000 + d.delayMs;
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  });

  test('issue 16 item 10: a worker that ran for a while starts the backoff again from 1 s', () => {
    const history = runs([10_000, 10_000, 10_000, 2 * 60_000], 5000);
    const d = nextRestart(history, last(history));
    expect(d).toEqual({ restart: true, delayMs: 1000, count: 4 });
    // ...and the next quick death after it doubles from there.
    history.push({ startedAt: last(history) + 1000, diedAt: last(history) + 3000 });
    expect(nextRestart(history, last(history))).toMatchObject({ restart: true, delayMs: 2000, count: 5 });
  });

  test('issue 16 item 10: 5 deaths within 60 s is a crash loop: give up', () => {
    // A worker that exits at once (a bad config): 1 + 2 + 4 + 8 s of backoff, 5 deaths in about 20 s.
    const history: Death[] = [];
    let t = 0;
    let decision = nextRestart([], 0);
    for (let i = 0; i < 5; i++) {
      history.push({ startedAt: t, diedAt: t + 500 });
      decision = nextRestart(history, t + 500);
      if (decision.restart) t += 500 + decision.delayMs;
    }
    expect(decision).toEqual({ restart: false, reason: '5 exits within 60 s, a crash loop' });
  });

  test('issue 16 item 10: deaths older than the window do not count towards a crash loop', () => {
    // Four quick deaths long ago, then a fifth two minutes later: restart.
    const history = runs([1000, 1000, 1000, 1000], 1000);
    history.push({ startedAt: 120_000, diedAt: 121_000 });
    expect(nextRestart(history, 121_000)).toMatchObject({ restart: true, count: 5 });
  });

  test('the policy is the one the README describes', () => {
    expect(DEFAULT_POLICY).toEqual({
      initialDelayMs: 1000,
      maxDelayMs: 30_000,
      stableAfterMs: 60_000,
      maxDeaths: 5,
      windowMs: 60_000,
    });
  });
});

describe('messages', () => {
  test('issue 16 item 10: one line per restart, naming the signal and the restart number', () => {
    expect(restartMessage('worker', exitReason(null, 'SIGKILL'), { restart: true, delayMs: 2000, count: 2 })).toBe(
      'worker exited (SIGKILL); restarting in 2 s (restart 2)',
    );
    expect(restartMessage('worker', exitReason(1, null), { restart: true, delayMs: 1000, count: 1 })).toBe(
      'worker exited (exit code 1); restarting in 1 s (restart 1)',
    );
  });

  test('issue 16 item 10: a launcher that relays the death of its program by a signal (exit code 128 + n) names the signal', () => {
    expect(exitReason(137, null)).toBe('exit code 137, SIGKILL');
    expect(exitReason(143, null)).toBe('exit code 143, SIGTERM');
    expect(exitReason(0, null)).toBe('exit code 0');
  });

  test('issue 16 item 10: the give-up line says why and what happens next', () => {
    expect(
      restartMessage('worker', exitReason(1, null), { restart: false, reason: '5 exits within 60 s, a crash loop' }),
    ).toBe(
      'worker exited (exit code 1); 5 exits within 60 s, a crash loop: giving up and stopping everything (its output above says why)',
    );
  });
});
