/**
 * deployctl stats without a server: bad flags are exit 2 before anything
 * connects, and the printed figures carry their counts and the definitions.
 * The data path against a real server: test/workflows/stats-dev-server.test.ts.
 */
import { main } from '../../src/client';
import { formatDora, type Listed } from '../../src/cli/dora-format';
import { ExitCode } from '../../src/cli/exit-codes';
import { computeDora, DEFINITIONS, type DeploymentFact } from '../../src/domain/dora';

async function run(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  // An address nothing listens on: reaching it would be a bug in these tests.
  const code = await main(['node', 'deployctl', ...args], {
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    env: { TEMPORAL_ADDRESS: '127.0.0.1:1' },
    isTTY: false,
  });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test.each([
  [['stats', '--since', '30 days'], /invalid --since "30 days": a duration such as 30d/],
  [['stats', '--since', '0d'], /invalid --since "0d"/],
  [['stats', '--env', "prod' OR 1=1"], /invalid --env/],
  [['stats', '--frobnicate'], /unknown option '--frobnicate'/],
])('%j is refused with one line, exit 2', async (args, message) => {
  const r = await run(...args);
  expect(r.code).toBe(ExitCode.BadInput);
  expect(r.err).toMatch(message);
  expect(r.err).not.toMatch(/unreachable/);
});

test('no server: one line that says what to do, exit 8', async () => {
  const r = await run('stats');
  expect(r.code).toBe(ExitCode.Unreachable);
  expect(r.err).toMatch(/^deployctl: Temporal server unreachable at 127\.0\.0\.1:1: start it/);
}, 20_000);

const window = { since: '2026-11-01T00:00:00.000Z', until: '2026-12-01T00:00:00.000Z' };
const listed = (facts: DeploymentFact[], o: Partial<Listed> = {}): Listed => ({
  listed: facts.length,
  running: 0,
  notDeployments: { refused: 0, planned: 0 },
  withoutResult: [],
  facts,
  ...o,
});

test('nothing to count: says so, with what was left out and the definitions', () => {
  const l = listed([], {
    listed: 3,
    running: 1,
    notDeployments: { refused: 1, planned: 0 },
    withoutResult: [{ workflowId: 'deploy-x', status: 'TERMINATED' }],
  });
  const lines = formatDora(computeDora([], window), l, 'production');
  expect(lines[0]).toBe(`DORA figures of production, ${window.since} → ${window.until} (30 days)`);
  expect(lines[1]).toBe(
    '0 deployments counted of 3 listed; not counted: 1 running, 1 refused, 0 dry runs, 1 closed without a result',
  );
  expect(lines).toContain('  without a result: deploy-x (TERMINATED)');
  expect(lines).toContain('no deployments in the window');
  expect(lines.slice(-DEFINITIONS.length)).toEqual(DEFINITIONS.map((d) => `  - ${d}`));
});

test('figures beside their counts, an open failure named with its age', () => {
  const base = { environment: 'production', version: '1.0.1', startedAt: '2026-11-10T10:00:00.000Z' };
  const facts: DeploymentFact[] = [
    {
      ...base,
      workflowId: 'deploy-a',
      outcome: 'succeeded',
      endedAt: '2026-11-10T11:00:00.000Z',
      rolloutStartedAt: '2026-11-10T10:30:00.000Z',
      committedAt: '2026-11-10T08:00:00.000Z',
      liveAt: '2026-11-10T11:00:00.000Z',
    },
    {
      ...base,
      workflowId: 'deploy-b',
      outcome: 'failed',
      endedAt: '2026-11-30T11:00:00.000Z',
      rolloutStartedAt: '2026-11-30T10:00:00.000Z',
      failedAt: '2026-11-30T10:00:00.000Z',
      fromSteps: true,
    },
  ];
  const text = formatDora(computeDora(facts, window), listed(facts)).join('\n');
  expect(text).toContain('; 1 read from their steps (no timeline)');
  expect(text).toMatch(/deployment frequency {11}1 live: 0\.03\/day, 0\.23\/week \(monthly\)/);
  expect(text).toContain('lead time for changes          median 3h, p90 3h (1 measured)');
  expect(text).toContain('change failure rate            50% (1 of 2 begun: 0 rolled back, 0 aborted, 1 failed)');
  expect(text).toContain('time to restore: stable        - (0 restored, 1 not restored, the oldest deploy-b open 14h)');
});

test('--help with examples', async () => {
  const r = await run('stats', '--help');
  expect(r.code).toBe(ExitCode.Ok);
  expect(r.out).toContain('Usage: deployctl stats');
  expect(r.out.replace(/\s+/g, ' ')).toContain(
    '--since <duration> the window: from this long ago until now, e.g. 7d, 12h (default: "30d")',
  );
  expect(r.out).toContain('deployctl stats --env production --since 90d');
});
