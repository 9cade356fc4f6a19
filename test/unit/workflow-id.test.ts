/**
 * One rule for workflow ids everywhere (domain/workflow-id.ts) and one
 * shell-quoting helper for every `deployctl ...` command the status and the
 * notifications print (domain/shell.ts): an id or a note pasted from a
 * status into a terminal runs nothing but deployctl.
 */
import { execFileSync } from 'node:child_process';
import { ExitCode } from '../../src/cli/exit-codes';
import { main } from '../../src/client';
import { approvalCommands } from '../../src/domain/notification';
import { shellCommand, shellQuote } from '../../src/domain/shell';
import { checkWorkflowId } from '../../src/domain/input';
import { LOCK_ID_PREFIX, workflowIdProblem } from '../../src/domain/workflow-id';

describe('the workflow id rule', () => {
  test.each([
    'deploy-production-1.0.1',
    'deploy-1.0.1-rc.1-dry-run-20261130T195700',
    'rollback-production-20261130T195700',
    'deploy-production-1.0.1-canary',
    '0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9',
    'A',
    'x'.repeat(200),
  ])('accepts %s', (id) => {
    expect(workflowIdProblem(id)).toBeUndefined();
    expect(checkWorkflowId(id)).toBe(id);
  });

  test.each([
    ['', 'empty'],
    ['-deploy', 'leading dash (read as an option)'],
    ['.deploy', 'leading dot'],
    ['deploy 1.0.1', 'space'],
    ['deploy"1', 'double quote'],
    ["deploy'1", 'single quote'],
    ['deploy-$(id)', 'command substitution'],
    ['deploy-`id`', 'backticks'],
    ['deploy-<b>', 'angle brackets'],
    ['deploy|sh', 'pipe'],
    ['deploy&', 'ampersand'],
    ['deploy;id', 'semicolon'],
    ['deploy-*', 'glob'],
    ['deploy_*bold*_', 'Slack markup'],
    ['deploy~x~', 'Slack strike'],
    ['deploy\nid', 'newline'],
    ['deploy/1', 'slash'],
    ['déploiement', 'non-ASCII'],
    ['x'.repeat(201), 'too long'],
  ])('refuses %j (%s), naming the field and the charset', (id) => {
    expect(workflowIdProblem(id)).toMatch(/letters, digits, "\." and "-"/);
    expect(() => checkWorkflowId(id, 'workflowId')).toThrow(/^workflowId: /);
    expect(() => checkWorkflowId(id, 'workflowId')).toThrow(
      /letters, digits, "\." and "-", starting with a letter or digit, at most 200/,
    );
  });

  test(`the lock prefix ${LOCK_ID_PREFIX} is reserved for environment locks`, () => {
    expect(LOCK_ID_PREFIX).toBe('deploy-lock-');
    expect(workflowIdProblem('deploy-lock-production')).toMatch(/"deploy-lock-" is reserved for environment locks/);
    expect(workflowIdProblem('deploy-lock-production', { lock: true })).toBeUndefined();
  });
});

describe('shell quoting', () => {
  test.each([
    ['deploy-production-1.0.1', 'deploy-production-1.0.1'],
    ['keep the database', "'keep the database'"],
    ["it's", "'it'\\''s'"],
    ['$(id)', "'$(id)'"],
    ['`id`', "'`id`'"],
    ['a;b', "'a;b'"],
    ['', "''"],
    ['postgres/ai_saas_prod/2026-11-30T19-57-00Z.dump', 'postgres/ai_saas_prod/2026-11-30T19-57-00Z.dump'],
  ])('%j → %s', (arg, quoted) => {
    expect(shellQuote(arg)).toBe(quoted);
  });

  test('a quoted command reaches its program as the same arguments', () => {
    const args = ['approve', 'id', '--note', 'restore x; it\'s `id` $(id) "q" \\ *'];
    const line = shellCommand(['printf', '%s\\n', ...args]);
    expect(execFileSync('/bin/sh', ['-c', line], { encoding: 'utf8' })).toBe(`${args.join('\n')}\n`);
  });

  test('the approval commands quote what they print', () => {
    expect(approvalCommands('deploy-production-1.0.1')).toEqual([
      'deployctl approve deploy-production-1.0.1 --by <name>',
      'deployctl abort deploy-production-1.0.1 --by <name> --reason <text>',
    ]);
    expect(approvalCommands('odd id')[0]).toBe("deployctl approve 'odd id' --by <name>");
  });
});

describe('deployctl refuses a bad workflow id with exit 2, before connecting', () => {
  test.each([
    ['status', 'deploy $(id)'],
    ['approve', 'deploy;id', '--by', 'alice'],
    ['abort', 'deploy-lock-production', '--by', 'alice', '--reason', 'x'],
    ['history', 'x`id`'],
    ['watch', 'deploy|sh'],
    ['deploy', '--version', '1.0.1', '--workflow-id', 'deploy *'],
    ['deploy', '--version', '1.0.1', '--workflow-id', 'deploy-lock-production'],
  ])('deployctl %s %j', async (...args) => {
    const errs: string[] = [];
    const code = await main(['node', 'deployctl', ...args], {
      out: () => undefined,
      err: (l) => errs.push(l),
      env: { TEMPORAL_ADDRESS: '127.0.0.1:1' },
      isTTY: false,
    });
    expect(code).toBe(ExitCode.BadInput);
    const line = errs.filter((l) => !l.startsWith('(run with --help')).join(' ');
    expect(line).toMatch(/workflow ?[iI]d/);
    expect(line).toMatch(/letters, digits|reserved for environment locks/);
  });
});
