/**
 * The worker's heartbeat keep-alive (src/activities/runtime.ts): while an
 * activity is silent, the latest progress is repeated well inside the
 * heartbeat timeout; it stops when the activity settles; nothing is sent for
 * an activity without a heartbeat timeout.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { heartbeat, keepAliveEveryMs, keepAliveInterceptor } from '../../src/activities/runtime';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function recorded(env: MockActivityEnvironment): unknown[] {
  const beats: unknown[] = [];
  env.on('heartbeat', (d: unknown) => beats.push(d));
  return beats;
}

test('a silent activity keeps heartbeating its latest progress, and stops when it ends', async () => {
  const env = new MockActivityEnvironment({ heartbeatTimeoutMs: 1500 }, { interceptors: [keepAliveInterceptor] });
  const beats = recorded(env);
  await env.run(async () => {
    heartbeat({ bytes: 10 });
    await sleep(300);
    heartbeat({ bytes: 20 });
    await sleep(1800); // silent for more than the timeout
  });
  const afterEnd = beats.length;
  await sleep(1200);
  expect(beats[0]).toEqual({ bytes: 10 });
  expect(beats[1]).toEqual({ bytes: 20 });
  // 1.8 s of silence at one beat per 0.5 s: at least three repeats, each of the latest details.
  expect(beats.length).toBeGreaterThanOrEqual(5);
  expect(beats.slice(2)).toEqual(beats.slice(2).map(() => ({ bytes: 20 })));
  expect(beats.length).toBe(afterEnd);
});

test('before its first report, an attempt repeats the previous attempt’s details instead of erasing them', async () => {
  const env = new MockActivityEnvironment(
    { heartbeatTimeoutMs: 900, heartbeatDetails: { pushed: ['auth-service'] } },
    { interceptors: [keepAliveInterceptor] },
  );
  const beats = recorded(env);
  await env.run(async () => sleep(1300)); // beats every 500 ms
  expect(beats.length).toBeGreaterThanOrEqual(2);
  expect(beats).toEqual(beats.map(() => ({ pushed: ['auth-service'] })));
});

test('an activity without a heartbeat timeout is left alone', async () => {
  const env = new MockActivityEnvironment({ heartbeatTimeoutMs: undefined }, { interceptors: [keepAliveInterceptor] });
  const beats = recorded(env);
  expect(await env.run(async () => (await sleep(700), 'done'))).toBe('done');
  expect(beats).toEqual([]);
});

test('the beat is a third of the timeout, never faster than twice a second', () => {
  expect(keepAliveEveryMs(15_000)).toBe(5000);
  expect(keepAliveEveryMs(10_000)).toBe(3333);
  expect(keepAliveEveryMs(600)).toBe(500);
});

test('outside an activity, heartbeat does nothing and does not throw', () => {
  expect(() => heartbeat({ any: 1 })).not.toThrow();
});
