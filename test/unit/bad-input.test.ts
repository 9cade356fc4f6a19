/**
 * The bad-input table: what people (and scripts) can get wrong at each edge
 * (workflow input from the UI or CI, signals, the worker's config file,
 * deployctl's arguments) and the one-line refusal each gets, naming the
 * field, before anything happens. The table is data: every row is checked
 * here, and with WRITE_RELIABILITY_DOCS=1 the same rows are written to
 * docs/reliability-bad-input.md. Rows marked as gaps are accepted today
 * (test.failing: the test turns red once the gap is closed, so the mark can
 * be removed). The same kind of input through a running deployWorkflow
 * with the real resolvePlan: test/workflows/bad-input.test.ts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { parse } from 'yaml';
import { ExitCode } from '../../src/cli/exit-codes';
import { main } from '../../src/client';
import { configSchema, parseConfig } from '../../src/domain/config';
import { checkInput, deployInputSchema, rollbackInputSchema } from '../../src/domain/input';
import { buildPlan } from '../../src/domain/planner';
import { checkSignal, type SignalName } from '../../src/domain/signals';
import { REPO_ROOT } from '../helpers/tools';
import { identityActivities } from '../../src/activities/identity/verifier';
import { makeProof } from '../../src/cli/proof';
import { localIssuer, sshPeople, type LocalIssuer, type SshPeople } from '../helpers/identity';
import { testConfig } from '../helpers/plan';

type Surface = 'workflow input' | 'rollback input' | 'signal' | 'signal proof' | 'config file' | 'deployctl';

interface BadInput {
  surface: Surface;
  /** What is given, as shown in the doc. */
  input: string;
  /** The field the refusal must name. */
  field: string;
  /** A fragment of the refusal. */
  expected: string;
  /** Accepted today: what is missing (the row is a test.failing until it is fixed). */
  gap?: string;
  /** Returns the refusal, or undefined when the input was accepted. */
  check: () => string | undefined | Promise<string | undefined>;
}

const long = (n: number, c = 'x') => c.repeat(n);

/** JSON for the doc, with long strings shortened to "xxx…" (N chars). */
function show(value: unknown): string {
  return (
    JSON.stringify(value, (_k, v: unknown) =>
      typeof v === 'string' && v.length > 40 ? `${v.slice(0, 12)}…(${v.length} chars)` : v,
    ) ?? String(value)
  );
}

const refusal = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};

const deployInput = (value: unknown, field: string, expected: string, gap?: string): BadInput => ({
  surface: 'workflow input',
  input: show(value),
  field,
  expected,
  ...(gap ? { gap } : {}),
  check: () => refusal(() => checkInput(deployInputSchema, value, 'deploy')),
});

const rollbackInput = (value: unknown, field: string, expected: string, gap?: string): BadInput => ({
  surface: 'rollback input',
  input: show(value),
  field,
  expected,
  ...(gap ? { gap } : {}),
  check: () => refusal(() => checkInput(rollbackInputSchema, value, 'rollback')),
});

/**
 * A workflow input that passes its schema but loosens the example config's
 * policy (domain/policy.ts): refused by the planner inside resolvePlan,
 * before any side effect.
 */
const looserInput = (value: unknown, field: string, expected: string): BadInput => ({
  surface: 'workflow input',
  input: show(value),
  field,
  expected,
  check: () =>
    refusal(() =>
      buildPlan(exampleConfig(), checkInput(deployInputSchema, value, 'deploy'), {
        workflowId: 'deploy-production-1.0.1',
        tags: ['v1.0.0'],
        commit: 'c0ffee0000000000000000000000000000000000',
      }),
    ),
});

const signal = (name: SignalName, payload: unknown, field: string, expected: string): BadInput => ({
  surface: 'signal',
  input: `${name} ${show(payload)}`,
  field,
  expected,
  check: () => {
    const c = checkSignal(name, payload);
    return c.ok ? undefined : c.reason;
  },
});

const EXAMPLE = path.join(REPO_ROOT, 'deploy.config.yaml');
const exampleText = readFileSync(EXAMPLE, 'utf8');
/** The example config with the gates an operator would add: a canary approval before 100%, one before a blue-green switch. */
function exampleConfig() {
  const raw = parse(exampleText);
  raw.rollout.canary.approval = 'before-full';
  raw.rollout.blueGreen.approval = true;
  return parseConfig(raw, 'deploy.config.yaml', {});
}

const config = (
  input: string,
  mutate: (raw: any) => void,
  field: string,
  expected: string,
  gap?: string,
): BadInput => ({
  surface: 'config file',
  input,
  field,
  expected,
  ...(gap ? { gap } : {}),
  check: () => {
    const raw = parse(exampleText);
    mutate(raw);
    return refusal(() => parseConfig(raw, 'deploy.config.yaml', {}));
  },
});

/** A loopback listener standing in for Temporal: deployctl must never reach it with bad input. */
const fakeTemporal = { connections: 0, address: '' };

const cli = (args: string[], field: string, expected: string): BadInput => ({
  surface: 'deployctl',
  input: `deployctl ${args.map((a) => (/^[\w.,=@/-]+$/.test(a) ? a : show(a))).join(' ')}`,
  field,
  expected,
  check: async () => {
    const errs: string[] = [];
    const code = await main(['node', 'deployctl', ...args], {
      out: () => undefined,
      err: (l) => errs.push(l),
      env: { TEMPORAL_ADDRESS: fakeTemporal.address },
      isTTY: false,
    });
    if (code !== ExitCode.BadInput) return undefined;
    return errs.filter((l) => !l.startsWith('(run with --help')).join(' ');
  },
});

const BAD_INPUTS: BadInput[] = [
  // --- workflow input (Temporal UI, CI, deployctl) ---------------------------------
  deployInput({ version: '1.0' }, 'version', 'invalid version "1.0"'),
  deployInput({ version: '01.0.1' }, 'version', 'digits without leading zeros'),
  deployInput({ version: '1.0.1; rm -rf /' }, 'version', 'invalid version "1.0.1; rm -rf /"'),
  deployInput({ version: '$(touch /tmp/pwned)' }, 'version', 'invalid version "$(touch /tmp/pwned)"'),
  deployInput({ version: '`id`' }, 'version', 'invalid version "`id`"'),
  deployInput({ version: '1.0.1\nid' }, 'version', 'invalid version "1.0.1\\nid"'),
  deployInput({ version: '١.٠.١' }, 'version', 'expected MAJOR.MINOR.PATCH'),
  deployInput(
    { version: '1.0.1+build.5' },
    'version',
    'build metadata ("+...") cannot be part of a container image tag',
  ),
  deployInput({ version: long(1000) }, 'version', 'longer than 128 characters'),
  deployInput({ version: 101 }, 'version', 'expected string, received number'),
  deployInput({}, 'version', 'give exactly one of "version" (e.g. "1.0.1") or "bump"'),
  deployInput({ version: '1.0.1', bump: 'patch' }, 'version', 'give exactly one of "version"'),
  deployInput({ bump: 'huge' }, 'bump', 'expected one of "patch"|"minor"|"major"'),
  deployInput('1.0.1', '(input)', 'expected object, received string'),
  deployInput([{ version: '1.0.1' }], '(input)', 'expected object, received array'),
  deployInput({ version: '1.0.1', frobnicate: true }, '(input)', 'unknown field(s) "frobnicate"'),
  deployInput({ version: '1.0.1', strategy: 'yolo' }, 'strategy', 'expected one of "rolling"|"canary"|"blue-green"'),
  deployInput({ version: '1.0.1', environment: 'Prod; drop' }, 'environment', 'an environment name such as production'),
  deployInput(
    { version: '1.0.1', environment: long(64, 'a') },
    'environment',
    'an environment name such as production',
  ),
  deployInput({ version: '1.0.1', services: ['auth-service', 'auth-service'] }, 'services', 'services must not repeat'),
  deployInput(
    { version: '1.0.1', services: ['auth-service;id'] },
    'services.0',
    'service names are lowercase DNS labels',
  ),
  deployInput({ version: '1.0.1', services: 'auth-service' }, 'services', 'expected array, received string'),
  deployInput({ version: '1.0.1', services: [] }, 'services', 'expected array to have >=1 items'),
  deployInput({ version: '1.0.1', canary: { steps: [50, 25, 100] } }, 'canary.steps', 'steps must increase strictly'),
  deployInput({ version: '1.0.1', canary: { steps: [5, 25, 150] } }, 'canary.steps.2', 'steps cannot exceed 100'),
  deployInput({ version: '1.0.1', canary: { steps: [5, 50] } }, 'canary.steps', 'the last step must be 100'),
  deployInput({ version: '1.0.1', canary: { steps: [5.5, 100] } }, 'canary.steps.0', 'steps must be whole percentages'),
  deployInput(
    { version: '1.0.1', canary: { steps: ['5', '100'] } },
    'canary.steps.0',
    'expected number, received string',
  ),
  deployInput(
    { version: '1.0.1', canary: { soak: '-5m' } },
    'canary.soak',
    'soak must look like "30s", "5m" or "1h30m"',
  ),
  deployInput({ version: '1.0.1', canary: { soak: '0s' } }, 'canary.soak', 'soak must be between 1000ms and 24h'),
  deployInput(
    { version: '1.0.1', canary: { soak: -1 } },
    'canary.soak',
    'soak must be a whole, non-negative number of milliseconds',
  ),
  deployInput({ version: '1.0.1', canary: { soak: '400h' } }, 'canary.soak', 'soak must be between 1000ms and 24h'),
  deployInput({ version: '1.0.1', canary: { soak: 1e20 } }, 'canary.soak', 'soak must be between 1000ms and 24h'),
  deployInput(
    { version: '1.0.1', canary: { approval: 'sometimes' } },
    'canary.approval',
    'expected one of "none"|"before-full"|"every-step"',
  ),
  deployInput(
    { version: '1.0.1', canary: { approvalTimeout: '30d' } },
    'canary.approvalTimeout',
    'approvalTimeout must be between 1000ms and 168h',
  ),
  deployInput({ version: '1.0.1', canary: { soaks: '5m' } }, 'canary', 'unknown field(s) "soaks"'),
  deployInput(
    { version: '1.0.1', blueGreen: { monitor: '0s' } },
    'blueGreen.monitor',
    'monitor must be between 1000ms and 24h',
  ),
  deployInput({ version: '1.0.1', dryRun: 'yes' }, 'dryRun', 'expected boolean, received string'),
  deployInput({ version: '1.0.1', backup: 1 }, 'backup', 'expected boolean, received number'),
  deployInput({ version: '1.0.1', requestedBy: 'a;b' }, 'requestedBy', 'letters, digits, spaces and . _ @ + -'),
  deployInput({ version: '1.0.1', requestedBy: 'alice\nbob' }, 'requestedBy', 'letters, digits, spaces and . _ @ + -'),
  deployInput(
    { version: '1.0.1', requestedBy: long(129, 'a') },
    'requestedBy',
    'expected string to have <=128 characters',
  ),
  looserInput({ version: '1.0.1', strategy: 'rolling' }, 'strategy', '"rolling" is not allowed in production'),
  looserInput({ version: '1.0.1', backup: false }, 'backup', 'production requires a backup'),
  looserInput({ version: '1.0.1', migrate: false }, 'migrate', 'production requires migrations'),
  looserInput(
    { version: '1.0.1', allowImageOverwrite: true },
    'allowImageOverwrite',
    'the config does not allow overwriting an image tag',
  ),
  looserInput({ version: '1.0.1', canary: { approval: 'none' } }, 'canary.approval', 'removes the configured gate'),
  looserInput({ version: '1.0.1', canary: { soak: '1m' } }, 'canary.soak', 'shorter than the configured 5m'),
  looserInput(
    { version: '1.0.1', canary: { analysisInterval: '10m' } },
    'canary.analysisInterval',
    'analyses less often than the configured 1m',
  ),
  looserInput(
    { version: '1.0.1', canary: { steps: [50, 100] } },
    'canary.steps',
    'leaves out the configured steps 5, 25',
  ),
  looserInput(
    { version: '1.0.1', blueGreen: { approval: false } },
    'blueGreen.approval',
    'removes the configured approval before the switch',
  ),
  looserInput(
    { version: '1.0.1', blueGreen: { monitor: '8s' } },
    'blueGreen.monitor',
    'shorter than the configured 5m',
  ),
  rollbackInput({ toVersion: 'v1.0' }, 'toVersion', 'invalid version "v1.0"'),
  rollbackInput({ toVersion: '1.0.0', toRevision: 2 }, 'toVersion', 'give at most one of toVersion or toRevision'),
  rollbackInput({ toRevision: 0 }, 'toRevision', 'expected number to be >=1'),
  rollbackInput({ backupKey: 'postgres/x.dump;rm' }, 'backupKey', 'an S3 key'),
  rollbackInput({ reason: long(1001) }, 'reason', 'expected string to have <=1000 characters'),
  rollbackInput({ restoreDatabase: 'yes' }, 'restoreDatabase', 'expected boolean, received string'),

  // --- signals (Temporal UI, deployctl, scripts) ------------------------------------
  signal('approve', {}, '"by"', 'approve needs "by": the name of the person'),
  signal('approve', { note: 'lgtm' }, '"by"', 'approve needs "by"'),
  signal('approve', null, '"by"', 'approve needs a JSON object such as {"by":"alice"}'),
  signal('abort', 'stop it', '"by"', 'abort needs a JSON object such as {"by":"alice"}'),
  signal('pause', [{ by: 'alice' }], '"by"', 'pause needs a JSON object'),
  signal('approve', { by: '' }, '"by"', 'approve needs "by"'),
  signal('approve', { by: 42 }, '"by"', 'approve needs "by"'),
  signal('approve', { by: 'alice; rm -rf /' }, '"by"', 'letters, digits, . _ @ + -, at most 128'),
  signal('resume', { by: '$(id)' }, '"by"', 'resume needs "by"'),
  signal('promote', { by: 'a\nb' }, '"by"', 'promote needs "by"'),
  signal('approve', { by: long(129, 'a') }, '"by"', 'at most 128'),
  signal('approve', { by: 'alice', note: long(1001) }, '"note"', '"note" must be text of at most 1000 characters'),
  signal('approve', { by: 'alice', note: { text: 'ok' } }, '"note"', '"note" must be text'),
  signal('abort', { by: 'alice', reason: 42 }, '"reason"', '"reason" must be text'),
  signal('promote', { by: 'alice', full: 'yes' }, '"full"', '"full" must be true or false'),

  // --- the worker's config file (one mutation of the example each) ------------------
  config(
    'rollout.strategy: yolo',
    (r) => (r.rollout.strategy = 'yolo'),
    'rollout.strategy',
    'expected one of "rolling"|"canary"|"blue-green"',
  ),
  config(
    'rollout.canary.steps: [5, 50, 25, 100]',
    (r) => (r.rollout.canary.steps = [5, 50, 25, 100]),
    'rollout.canary.steps',
    'steps must increase strictly',
  ),
  config(
    'rollout.canary.steps: [5, 50, 150]',
    (r) => (r.rollout.canary.steps = [5, 50, 150]),
    'rollout.canary.steps.2',
    'expected number to be <=100',
  ),
  config(
    'rollout.canary.steps: [0, 100]',
    (r) => (r.rollout.canary.steps = [0, 100]),
    'rollout.canary.steps.0',
    'expected number to be >=1',
  ),
  config(
    'rollout.canary.soak: -5m',
    (r) => (r.rollout.canary.soak = '-5m'),
    'rollout.canary.soak',
    'canary soak must look like "30s"',
  ),
  config(
    'rollout.canary.soak: -1',
    (r) => (r.rollout.canary.soak = -1),
    'rollout.canary.soak',
    'canary soak must be a whole, non-negative number',
  ),
  config(
    'rollout.canary.soak: 0s',
    (r) => (r.rollout.canary.soak = '0s'),
    'rollout.canary.soak',
    'canary soak must be between 1s and 1d',
  ),
  config(
    'rollout.canary.soak: 999999999d',
    (r) => (r.rollout.canary.soak = '999999999d'),
    'rollout.canary.soak',
    'canary soak must be between 1s and 1d',
  ),
  config(
    'rollout.canary.soak: five',
    (r) => (r.rollout.canary.soak = 'five'),
    'rollout.canary.soak',
    'canary soak must look like "30s"',
  ),
  config(
    'rollout.canary.approval: sometimes',
    (r) => (r.rollout.canary.approval = 'sometimes'),
    'rollout.canary.approval',
    'expected one of "none"|"before-full"|"every-step"',
  ),
  config(
    'services: [auth-service twice]',
    (r) => r.services.push({ ...r.services[0] }),
    'services',
    'service names must be unique',
  ),
  config(
    'services: auth-service (not a list)',
    (r) => (r.services = 'auth-service'),
    'services',
    'expected array, received string',
  ),
  config(
    'services.0.name: Auth_Service',
    (r) => (r.services[0].name = 'Auth_Service'),
    'services.0.name',
    'a lowercase DNS label',
  ),
  config(
    'services.0.image: "Ai SaaS"',
    (r) => (r.services[0].image = 'Ai SaaS'),
    'services.0.image',
    'an image repository name',
  ),
  config('project: a × 100', (r) => (r.project = long(100, 'a')), 'project', 'at most 63 characters'),
  config(
    'temporal.taskQueue: x × 10000',
    (r) => (r.temporal.taskQueue = long(10_000)),
    'temporal.taskQueue',
    'expected string to have <=200 characters',
  ),
  config(
    'verification.smoke.0.name: x × 10000',
    (r) => (r.verification.smoke[0].name = long(10_000)),
    'verification.smoke.0.name',
    'expected string to have <=128 characters',
  ),
  config(
    'build.concurrency: three',
    (r) => (r.build.concurrency = 'three'),
    'build.concurrency',
    'expected number, received string',
  ),
  config(
    'registry.insecure: "yes"',
    (r) => (r.registry.insecure = 'yes'),
    'registry.insecure',
    'expected boolean, received string',
  ),
  config(
    'registry.host: 127.0.0.1:5000;id',
    (r) => (r.registry.host = '127.0.0.1:5000;id'),
    'registry.host',
    'a registry host such as 127.0.0.1:5000',
  ),
  config(
    'verification.baseUrl: javascript:alert(1)',
    (r) => (r.verification.baseUrl = 'javascript:alert(1)'),
    'verification.baseUrl',
    'an absolute http(s) URL',
  ),
  config(
    'analysis.prometheusUrl: prometheus:9090',
    (r) => (r.analysis.prometheusUrl = 'prometheus:9090'),
    'analysis.prometheusUrl',
    'an absolute http(s) URL',
  ),
  config(
    'backup.endpoint: "http://a b"',
    (r) => (r.backup.endpoint = 'http://a b'),
    'backup.endpoint',
    'an absolute http(s) URL',
  ),
  config(
    'analysis.prometheusUrl: ${PROM_URL_NOT_SET}',
    (r) => (r.analysis.prometheusUrl = '${PROM_URL_NOT_SET}'),
    'analysis.prometheusUrl',
    'environment variable PROM_URL_NOT_SET is not set',
  ),
  config(
    'notifications.webhookEnv: $(id)',
    (r) => (r.notifications.webhookEnv = '$(id)'),
    'notifications.webhookEnv',
    'an environment variable name',
  ),
  config(
    'preDeploymentChecks.0.command: "npm test; rm -rf /"',
    (r) => (r.preDeploymentChecks[0].command = 'npm test; rm -rf /'),
    'preDeploymentChecks.0.command',
    'expected array, received string',
  ),
  config(
    'preDeploymentChecks.0.command: []',
    (r) => (r.preDeploymentChecks[0].command = []),
    'preDeploymentChecks.0.command',
    'a command as an argument array',
  ),
  config(
    'traffic.service: nope',
    (r) => (r.traffic.service = 'nope'),
    'traffic.service',
    'must name one of the services',
  ),
  config(
    'defaultEnvironment: qa',
    (r) => (r.defaultEnvironment = 'qa'),
    'defaultEnvironment',
    'must name one of the environments',
  ),
  config(
    'environments.production.approvals.required: 0',
    (r) => (r.environments.production.approvals.required = 0),
    'environments.production.approvals.required',
    'expected number to be >=1',
  ),
  config(
    'environments.production.approvals.verify: ssh without ssh.allowedSigners',
    (r) => (r.environments.production.approvals.verify = 'ssh'),
    'environments.production.approvals.ssh',
    'verify: ssh needs ssh.allowedSigners',
  ),
  config(
    'environments.production.approvals: required 3 of 2 named approvers',
    (r) => Object.assign(r.environments.production.approvals, { approvers: ['alice', 'bob'], required: 3 }),
    'environments.production.approvals.required',
    'no gate could ever open',
  ),
  config(
    'environments.production.policy.strategies: [rolling]',
    (r) => (r.environments.production.policy.strategies = ['rolling']),
    'environments.production.policy.strategies',
    'must include rollout.strategy (canary)',
  ),
  config(
    'environments.production.policy.backup: sometimes',
    (r) => (r.environments.production.policy.backup = 'sometimes'),
    'environments.production.policy.backup',
    'expected one of "required"|"optional"',
  ),
  config(
    'analysis.metrics.0.query with {{job}}',
    (r) => (r.analysis.metrics[0].query = 'up{job="{{job}}"}'),
    'analysis.metrics.0.query',
    'placeholders must be',
  ),
  config(
    'verification.logErrorPattern: "("',
    (r) => (r.verification.logErrorPattern = '('),
    'verification.logErrorPattern',
    'a JavaScript regular expression',
  ),
  config(
    'database.name: "ai-saas; drop"',
    (r) => (r.database.name = 'ai-saas; drop'),
    'database.name',
    'a PostgreSQL database name',
  ),
  config('rollout.canary.soaks: 10m (typo)', (r) => (r.rollout.canary.soaks = '10m'), 'rollout.canary', 'soaks'),

  // --- deployctl arguments ----------------------------------------------------------------
  cli(['deploy', '--version', '1.0'], 'version', 'invalid version "1.0"'),
  cli(['deploy', '--version', '$(touch /tmp/pwned)'], 'version', 'invalid version "$(touch /tmp/pwned)"'),
  cli(['deploy', '--version', '1.0.1\nid'], 'version', 'invalid version'),
  cli(['deploy', '--version', long(1000)], 'version', 'longer than 128 characters'),
  cli(['deploy'], 'version', 'give exactly one of "version"'),
  cli(['deploy', '--version'], '--version', "option '--version <semver>' argument missing"),
  cli(
    ['deploy', '--version', '1.0.1', '--services', 'auth-service,auth-service'],
    'services',
    'services must not repeat',
  ),
  cli(['deploy', '--version', '1.0.1', '--services', ','], 'services', 'expected array to have >=1 items'),
  cli(['deploy', '--version', '1.0.1', '--steps', '50,25,100'], 'canary.steps', 'steps must increase strictly'),
  cli(['deploy', '--version', '1.0.1', '--steps', '5,25,150'], 'canary.steps', 'steps cannot exceed 100'),
  cli(['deploy', '--version', '1.0.1', '--steps', '5,abc,100'], '--steps', 'expected numbers such as 5,25,50,100'),
  cli(['deploy', '--version', '1.0.1', '--soak', '-5m'], 'canary.soak', 'soak must look like'),
  cli(['deploy', '--version', '1.0.1', '--soak', '0s'], 'canary.soak', 'soak must be between 1000ms and 24h'),
  cli(['deploy', '--version', '1.0.1', '--soak', '400h'], 'canary.soak', 'soak must be between 1000ms and 24h'),
  cli(
    ['deploy', '--version', '1.0.1', '--strategy', 'yolo'],
    '--strategy',
    'Allowed choices are rolling, canary, blue-green',
  ),
  cli(['deploy', '--bump', 'huge'], '--bump', 'Allowed choices are patch, minor, major'),
  cli(
    ['deploy', '--version', '1.0.1', '--approval-timeout', '30d'],
    'canary.approvalTimeout',
    'between 1000ms and 168h',
  ),
  cli(['deploy', '--version', '1.0.1', '--env', '$(id)'], 'environment', 'an environment name such as production'),
  cli(
    ['deploy', '--version', '1.0.1', '--requested-by', long(200, 'a')],
    'requestedBy',
    'expected string to have <=128 characters',
  ),
  cli(['deploy', '--version', '1.0.1', '--frob'], '--frob', "unknown option '--frob'"),
  cli(['rollback', '--to-version', 'v1.0', '--to-revision', '3'], 'toVersion', 'invalid version "v1.0"'),
  cli(['rollback', '--to-revision', '0'], '--to-revision', 'expected a revision number'),
  cli(['rollback', '--restore-db', '../etc/passwd;'], 'backupKey', 'an S3 key'),
  cli(['approve', 'deploy-production-1.0.1', '--by', ''], '"by"', 'approve needs "by"'),
  cli(['abort', 'deploy-production-1.0.1', '--by', 'a;b', '--reason', 'x'], '"by"', 'abort needs "by"'),
  cli(
    ['abort', 'deploy-production-1.0.1', '--by', 'ops', '--reason', long(1001)],
    '"reason"',
    '"reason" must be text of at most 1000 characters',
  ),
  cli(
    ['approve', 'deploy-production-1.0.1', '--by', 'alice', '--note', long(1001)],
    '"note"',
    '"note" must be text of at most 1000 characters',
  ),
  cli(['approve'], 'workflowId', "missing required argument 'workflowId'"),
  cli(
    ['approve', 'deploy-1.0.1; rm -rf /', '--by', 'alice'],
    'workflowId',
    'is not a workflow id: use letters, digits',
  ),
  cli(['status', 'deploy-$(id)'], 'workflowId', 'is not a workflow id'),
  cli(['history', 'deploy *now*'], 'workflowId', 'is not a workflow id'),
  cli(
    ['abort', 'deploy-lock-production', '--by', 'alice', '--reason', 'x'],
    'workflowId',
    'reserved for environment locks',
  ),
  cli(
    ['deploy', '--version', '1.0.1', '--workflow-id', 'deploy-lock-production'],
    'workflowId',
    'reserved for environment locks',
  ),
  cli(['deploy', '--version', '1.0.1', '--workflow-id', '<!channel>'], 'workflowId', 'is not a workflow id'),
  cli(['list', '--env', "prod' OR 1=1"], '--env', 'invalid --env'),
];

/**
 * Proofs of who sent a signal, checked by the worker's real verifier (ssh-keygen
 * against an allowed_signers file, jose against a local issuer's JWKS) where the
 * environment verifies senders: each refusal is recorded in ignoredSignals and
 * the signal never counts. Replays, a proof for another gate and self-approval
 * are refused by the workflow itself (test/workflows/verified-approvals.test.ts).
 */
const WF = 'deploy-production-1.0.1';
let people: SshPeople | undefined;
let issuer: Promise<LocalIssuer> | undefined;
const sshVerifier = () => {
  people ??= sshPeople(['alice', 'mallory'], ['alice']);
  const raw = testConfig();
  return identityActivities({
    config: configSchema.parse({
      ...raw,
      environments: {
        production: {
          namespace: 'ai-saas',
          approvals: { verify: 'ssh', ssh: { allowedSigners: people.allowedSigners } },
        },
      },
    }),
    env: {},
  });
};
const oidcVerifier = async () => {
  const idp = await (issuer ??= localIssuer());
  return {
    idp,
    v: identityActivities({
      config: configSchema.parse({
        ...testConfig(),
        environments: {
          production: {
            namespace: 'ai-saas',
            approvals: { verify: 'oidc', oidc: { issuer: idp.issuer, audience: idp.audience, jwksFile: idp.jwksFile } },
          },
        },
      }),
      env: {},
    }),
  };
};
const approveAs = { workflowId: WF, signal: 'approve', by: 'alice' };
const proofRow = (
  input: string,
  field: string,
  expected: string,
  proof: () => Promise<unknown>,
  mode: 'ssh' | 'oidc' = 'ssh',
): BadInput => ({
  surface: 'signal proof',
  input,
  field,
  expected,
  check: async () => {
    const v = mode === 'ssh' ? sshVerifier() : (await oidcVerifier()).v;
    const r = await v.verifySender({ environment: 'production', message: approveAs, proof: await proof() });
    return r.ok ? undefined : r.reason;
  },
});
const sshProof = (key: string, now?: number, message: Record<string, unknown> = {}) =>
  makeProof(
    { sshKey: (people ??= sshPeople(['alice', 'mallory'], ['alice'])).key(key) },
    { ...approveAs, gate: 'traffic-100', ...message },
    now,
  );
const oidcProof = async (claims: Record<string, unknown>, opts: { expiresIn?: string } = {}) => {
  const { idp } = await oidcVerifier();
  return makeProof({ oidcTokenFile: await idp.tokenFile(claims, opts) }, { ...approveAs, gate: 'traffic-100' });
};

const PROOFS: BadInput[] = [
  proofRow(
    'approve {"by":"alice"} (no proof, verify: ssh)',
    'proof',
    'needs proof of who sends it (ssh)',
    async () => undefined,
  ),
  proofRow('approve with proof {"type":"ssh"}', 'proof', 'proof: "gate" must name a gate', async () => ({
    type: 'ssh',
  })),
  proofRow('approve with proof {…, "nonce":"short"}', 'proof', '"nonce" must be 16-128', async () => ({
    ...(await sshProof('alice')),
    nonce: 'short',
  })),
  proofRow('approve with proof {…, "admin":true}', 'proof', 'unknown field(s) admin', async () => ({
    ...(await sshProof('alice')),
    admin: true,
  })),
  proofRow("approve as alice signed with mallory's key", 'signature', "not one of alice's keys", () =>
    sshProof('mallory'),
  ),
  proofRow('approve as alice, signed for another workflow', 'signature', "not one of alice's keys", () =>
    sshProof('alice', undefined, { workflowId: 'deploy-production-9.9.9' }),
  ),
  proofRow('approve as alice, signed 10 minutes ago (expired)', 'proof', 'expired', () =>
    sshProof('alice', Date.now() - 10 * 60_000),
  ),
  proofRow('approve as alice, a proof valid for an hour', 'proof', 'more than 15 minutes', async () => ({
    ...(await sshProof('alice')),
    expires: new Date(Date.now() + 3_600_000).toISOString(),
  })),
  proofRow('approve with an OIDC token where ssh is configured', 'type', 'but production verifies ssh', async () => ({
    ...(await sshProof('alice')),
    type: 'oidc',
    signature: undefined,
    token: 'x.y.z',
  })),
  proofRow(
    'approve with an ID token from another issuer',
    'token',
    'iss',
    () => oidcProof({ email: 'alice@example.com', iss: 'https://evil.example.test' }),
    'oidc',
  ),
  proofRow(
    'approve with an ID token for another audience',
    'token',
    'aud',
    () => oidcProof({ email: 'alice@example.com', aud: 'other' }),
    'oidc',
  ),
  proofRow(
    'approve with an expired ID token',
    'token',
    'expired',
    () => oidcProof({ email: 'alice@example.com' }, { expiresIn: '-1m' }),
    'oidc',
  ),
  proofRow(
    'approve with an ID token whose email is not verified',
    'token',
    'not verified',
    () => oidcProof({ email: 'alice@example.com', email_verified: false }),
    'oidc',
  ),
  proofRow(
    'approve with an unsigned token (alg none)',
    'token',
    'refused',
    async () => {
      const p = await oidcProof({ email: 'alice@example.com' });
      const [, body] = (p!.token ?? '').split('.');
      return { ...p, token: `${Buffer.from('{"alg":"none"}').toString('base64url')}.${body}.` };
    },
    'oidc',
  ),
];

let listener: net.Server;
beforeAll(async () => {
  listener = net.createServer((socket) => {
    fakeTemporal.connections++;
    socket.destroy();
  });
  await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
  fakeTemporal.address = `127.0.0.1:${(listener.address() as net.AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => listener.close(r));
});

const refused = [...BAD_INPUTS, ...PROOFS].filter((b) => !b.gap);
const gaps = BAD_INPUTS.filter((b) => b.gap);

test('the table covers every surface with at least 40 refusals', () => {
  expect(refused.length).toBeGreaterThanOrEqual(40);
  const surfaces = new Set(refused.map((b) => b.surface));
  expect([...surfaces].sort()).toEqual([
    'config file',
    'deployctl',
    'rollback input',
    'signal',
    'signal proof',
    'workflow input',
  ]);
  for (const s of surfaces) expect(refused.filter((b) => b.surface === s).length).toBeGreaterThanOrEqual(5);
});

describe.each(['workflow input', 'rollback input', 'signal', 'signal proof', 'config file', 'deployctl'] as const)(
  '%s',
  (surface) => {
    const rows = refused.filter((b) => b.surface === surface);
    test.each(rows.map((r) => [r.input, r] as const))('refuses %s', async (_input, row) => {
      const message = await row.check();
      expect(message).toBeDefined();
      expect(message).toContain(row.expected);
      expect(message).toContain(row.field);
      // One line: a person reads it in a terminal or the UI.
      expect(message!.split('\n')).toHaveLength(1);
      if (surface === 'config file') expect(message).toMatch(/^deploy\.config\.yaml: /);
    });
  },
);

test('deployctl never reached Temporal with bad input', () => {
  expect(fakeTemporal.connections).toBe(0);
});

describe('GAP (fails until fixed): known gaps, accepted today', () => {
  test.failing.each(gaps.map((g) => [`${g.surface}: ${g.input}: ${g.gap}`, g] as const))('%s', async (_what, row) => {
    const message = await row.check();
    expect(message).toContain(row.expected);
  });
});

function cell(s: string): string {
  return s
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/`/g, '\\`')
    .replace(/\n/g, '\\n')
    .replace(/</g, '&lt;')
    .replace(/\*/g, '\\*');
}

/** The doc, from the same rows (and the actual messages). */
async function renderDoc(): Promise<string> {
  const lines = [
    '# Bad input: what is refused, and how',
    '',
    'Generated by `test/unit/bad-input.test.ts` from the table it checks (`WRITE_RELIABILITY_DOCS=1 npx jest test/unit/bad-input.test.ts`); do not edit by hand.',
    'Every input below is refused with one line naming the field, before anything happens: deployctl exits 2 without connecting to Temporal,',
    'a workflow input is refused by `resolvePlan` before any other activity runs (`test/workflows/bad-input.test.ts` runs such inputs through `deployWorkflow`),',
    'a bad signal is recorded in the status under `ignoredSignals` and never stops the deployment, and a bad config file stops the worker at start.',
    "A signal proof is checked by the worker's verifier where the environment verifies senders (`approvals.verify`); a refused proof is recorded in `ignoredSignals` and the signal never counts.",
    '',
    `${refused.length} refusals:`,
    '',
    '| # | Surface | Input | Field | Refused with |',
    '| --- | --- | --- | --- | --- |',
  ];
  let i = 0;
  for (const row of refused) {
    const message = (await row.check()) ?? '(accepted)';
    lines.push(
      `| ${++i} | ${row.surface} | ${cell(row.input)} | ${cell(row.field)} | ${cell(message.length > 240 ? `${message.slice(0, 240)}…` : message)} |`,
    );
  }
  if (gaps.length) {
    lines.push(
      '',
      '## Known gaps',
      '',
      'Accepted today; each is a failing-expected test that turns red once the gap is closed.',
      '',
      '| Surface | Input | Should be refused with | Why it matters |',
      '| --- | --- | --- | --- |',
    );
    for (const row of gaps)
      lines.push(
        `| ${row.surface} | ${cell(row.input)} | ${cell(`${row.field}: …${row.expected}…`)} | ${cell(row.gap!)} |`,
      );
  }
  return `${lines.join('\n')}\n`;
}

test('the doc is written from this table when WRITE_RELIABILITY_DOCS=1', async () => {
  const doc = await renderDoc();
  expect(doc.split('\n').filter((l) => /^\| \d+ \|/.test(l))).toHaveLength(refused.length);
  if (process.env.WRITE_RELIABILITY_DOCS === '1')
    writeFileSync(path.join(REPO_ROOT, 'docs', 'reliability-bad-input.md'), doc);
});
