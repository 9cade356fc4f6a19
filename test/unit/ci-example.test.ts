/**
 * docs/ci/github-actions-deploy.yml, the CI example the README points to:
 * read as data, and its deploy script run for real with bash against a
 * stand-in `npx` that answers like deployctl with each documented exit code,
 * so that the job summary and the job's own exit code are checked for every
 * code in src/cli/exit-codes.ts.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { ExitCode } from '../../src/cli/exit-codes';
import { REPO_ROOT } from '../helpers/tools';

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  shell?: string;
  env?: Record<string, string>;
  if?: string;
}
interface Workflow {
  on: { push?: { tags?: string[] } };
  concurrency?: { group: string; 'cancel-in-progress': boolean };
  jobs: Record<string, { 'runs-on': string; steps: Step[]; 'timeout-minutes'?: number }>;
}

const FILE = path.join(REPO_ROOT, 'docs/ci/github-actions-deploy.yml');
const workflow = parse(readFileSync(FILE, 'utf8')) as Workflow;
const steps = Object.values(workflow.jobs).flatMap((j) => j.steps);
const deployStep = steps.find((s) => s.run?.includes('deployctl deploy'));

test('the example deploys the pushed tag with deployctl --wait --json against a hosted Temporal from secrets', () => {
  expect(deployStep).toBeDefined();
  const step = deployStep!;
  expect(step.run).toMatch(/npx deployctl deploy --version "\$VERSION"[^\n]* --wait --json/);
  expect(step.env?.VERSION).toBe('${{ github.ref_name }}');
  expect(workflow.on.push?.tags?.length).toBeGreaterThan(0);
  // Connection settings only from secrets, never written in the file.
  expect(step.env).toMatchObject({
    TEMPORAL_ADDRESS: '${{ secrets.TEMPORAL_ADDRESS }}',
    TEMPORAL_NAMESPACE: '${{ secrets.TEMPORAL_NAMESPACE }}',
    TEMPORAL_API_KEY: '${{ secrets.TEMPORAL_API_KEY }}',
  });
  // No ${{ }} expression spliced into the script itself.
  expect(step.run).not.toContain('${{');
  // Dependencies are installed before; one deployment at a time, never cancelled by the next push.
  const order = steps.map((s) => s.run ?? s.uses ?? '');
  expect(order.findIndex((r) => /npm ci/.test(r))).toBeLessThan(order.findIndex((r) => r.includes('deployctl deploy')));
  expect(workflow.concurrency?.['cancel-in-progress']).toBe(false);
});

describe('the deploy script maps every deployctl exit code to the job summary and the job result', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'ci-example-'));
    // Stand-in npx: records its arguments, prints a deployctl-like JSON result, exits with FAKE_CODE.
    writeFileSync(
      path.join(dir, 'npx'),
      [
        '#!/bin/sh',
        'printf "%s\\n" "$@" > "$FAKE_ARGS"',
        'if [ "$FAKE_CODE" = 2 ]; then echo "deployctl: invalid deploy input: version: bad" >&2; exit 2; fi',
        'printf \'{"workflowId":"deploy-1.0.1","version":"1.0.1","environment":"production","outcome":"%s","phase":"%s","reason":"because"}\\n\' "$FAKE_OUTCOME" "$FAKE_OUTCOME"',
        'exit "$FAKE_CODE"',
      ].join('\n'),
    );
    chmodSync(path.join(dir, 'npx'), 0o755);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const outcomes: Record<number, string> = {
    0: 'succeeded',
    3: 'rolled-back',
    4: 'aborted',
    5: 'aborted',
    7: 'failed',
  };
  const verdicts: Record<number, RegExp> = {
    0: /succeeded: v1\.0\.1 is live/,
    1: /error/,
    2: /bad input/,
    3: /rolled back/,
    4: /aborted by a person/,
    5: /approval timed out/,
    6: /another deployment/,
    7: /FAILED without a complete rollback/,
    8: /Temporal unreachable/,
    9: /not found/,
  };

  test.each(Object.entries(ExitCode).map(([name, code]) => [name, code] as const))('%s (%i)', (_name, code) => {
    const summary = path.join(dir, `summary-${code}.md`);
    const output = path.join(dir, `output-${code}`);
    const args = path.join(dir, `args-${code}`);
    writeFileSync(summary, '');
    // As GitHub runs a `shell: bash` step: bash --noprofile --norc -eo pipefail.
    const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', deployStep!.run!], {
      cwd: dir,
      encoding: 'utf8',
      env: {
        PATH: `${dir}:${process.env.PATH ?? ''}`,
        HOME: dir,
        GITHUB_ACTOR: 'dependabot[bot]',
        GITHUB_STEP_SUMMARY: summary,
        GITHUB_OUTPUT: output,
        VERSION: 'v1.0.1',
        FAKE_CODE: String(code),
        FAKE_OUTCOME: outcomes[code] ?? 'failed',
        FAKE_ARGS: args,
      },
    });
    expect(r.status).toBe(code);
    expect(readFileSync(args, 'utf8').trim().split('\n')).toEqual([
      'deployctl',
      'deploy',
      '--version',
      'v1.0.1',
      '--requested-by',
      'github dependabot-bot-',
      '--wait',
      '--json',
    ]);
    const text = readFileSync(summary, 'utf8');
    expect(text).toContain(`## Deploy v1.0.1: exit code ${code}`);
    expect(text).toMatch(verdicts[code]);
    if (code === 2) expect(text).toContain('deployctl: invalid deploy input');
    else expect(text).toContain('`deploy-1.0.1`');
    expect(readFileSync(output, 'utf8')).toContain(`exit-code=${code}`);
  });
});
