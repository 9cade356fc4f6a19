/**
 * Freeze windows inside the workflow sandbox (time-skipping server): the
 * module bundles without Node built-ins, and its answers there (Intl in the
 * deterministic V8 context, the config parsed by zod) are the answers Node
 * gives, across both of Berlin's changes of clocks.
 */
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import * as path from 'node:path';
import { freezeSchema } from '../../src/domain/config-freeze';
import { describeFreeze, freezeAt } from '../../src/domain/freeze-window';
import type { FreezeAnswer } from './fixtures/freeze-window-workflow';
import { timeSkippingEnv, uniqueQueue } from '../helpers/temporal';

const BERLIN = {
  windows: [
    { days: ['fri'], from: '18:00', to: '24:00', timeZone: 'Europe/Berlin', reason: 'friday evening' },
    { days: ['sat', 'sun'], from: '00:00', to: '24:00', timeZone: 'Europe/Berlin', reason: 'weekend freeze' },
    { days: ['mon', 'tue', 'wed', 'thu'], from: '22:00', to: '06:00', timeZone: 'Europe/Berlin' },
  ],
};
const NEW_YORK = { windows: [{ days: ['sun'], from: '01:00', to: '03:00', timeZone: 'America/New_York' }] };

const CASES: [unknown, string[]][] = [
  [
    BERLIN,
    [
      '2026-03-27T17:30:00Z', // Fri 18:30 CET: through the weekend of the spring change
      '2026-03-29T00:59:59Z', // the second before Berlin's clocks jump
      '2026-03-30T21:00:00Z', // Mon 23:00 CEST
      '2026-10-25T00:30:00Z', // Sun 02:30 CEST, the hour that comes twice
      '2026-10-26T12:00:00Z', // Monday noon: open
    ],
  ],
  [NEW_YORK, ['2026-11-01T05:30:00Z', '2026-11-01T06:30:00Z']], // Sun 01:30 EDT, then 01:30 EST
];

let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await timeSkippingEnv();
}, 120_000);
afterAll(async () => {
  await env?.teardown();
});

test('the workflow sandbox answers as Node does', async () => {
  const noop = () => undefined;
  const workflowBundle = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'fixtures/freeze-window-workflow.ts'),
    logger: { log: noop, trace: noop, debug: noop, info: noop, warn: noop, error: noop },
  });
  const taskQueue = uniqueQueue('freeze');
  const worker = await Worker.create({ connection: env.nativeConnection, taskQueue, workflowBundle });
  // One at a time: the time-skipping server skips ahead while a result is awaited.
  const answers = await worker.runUntil(async () => {
    const out: FreezeAnswer[][] = [];
    for (const [i, [freeze, times]] of CASES.entries()) {
      out.push(
        await env.client.workflow.execute<(f: unknown, t: number[]) => Promise<FreezeAnswer[]>>(
          'freezeWindowWorkflow',
          { taskQueue, workflowId: `freeze-${i}-${taskQueue}`, args: [freeze, times.map((t) => Date.parse(t))] },
        ),
      );
    }
    return out;
  });

  const expected = CASES.map(([freeze, times]) => {
    const { windows } = freezeSchema.parse(freeze);
    return times.map((t): FreezeAnswer => {
      const now = Date.parse(t);
      const f = freezeAt(windows, now);
      return f ? { now, until: f.until, capped: f.capped, line: describeFreeze('production', f) } : { now };
    });
  });
  expect(answers).toEqual(expected);
  expect(answers.flat().map((a) => a.line)).toEqual([
    'production is frozen until Mon 2026-03-30 00:00 Europe/Berlin (friday evening, then weekend freeze)',
    'production is frozen until Mon 2026-03-30 00:00 Europe/Berlin (weekend freeze)',
    'production is frozen until Tue 2026-03-31 06:00 Europe/Berlin (freeze window mon-thu 22:00-06:00 Europe/Berlin)',
    'production is frozen until Mon 2026-10-26 00:00 Europe/Berlin (weekend freeze)',
    undefined,
    'production is frozen until Sun 2026-11-01 03:00 America/New_York (freeze window sun 01:00-03:00 America/New_York)',
    'production is frozen until Sun 2026-11-01 03:00 America/New_York (freeze window sun 01:00-03:00 America/New_York)',
  ]);
  // Both readings of 01:30 in New York end at the same 03:00 EST.
  expect(answers[1].map((a) => a.until)).toEqual([
    Date.parse('2026-11-01T08:00:00Z'),
    Date.parse('2026-11-01T08:00:00Z'),
  ]);
}, 120_000);
