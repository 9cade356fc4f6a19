import * as path from 'node:path';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/domain/config';
import {
  countErrorLines,
  describeBody,
  judgeConnectionGrowth,
  judgePods,
  judgeRedisMemory,
  isNewPod,
  parseRedisInfo,
  redact,
  resolveEnvPlaceholders,
  secretValues,
  valueAtPath,
  type PodSnapshot,
} from '../../src/domain/verification';
import { REPO_ROOT } from '../helpers/tools';

describe('secrets', () => {
  test('redact removes listed values and URL passwords', () => {
    expect(redact('postgres://app:s3cr3t-pw@db:5432/x failed', [])).toBe('postgres://app:***@db:5432/x failed');
    expect(redact('token abcdef123 and abcdef123', ['abcdef123'])).toBe('token *** and ***');
    expect(redact('a b', ['a'])).toBe('a b');
  });

  test('secretValues takes secret-looking names and the named ones, never short values', () => {
    const env = {
      SMOKE_PASSWORD: 'hunter22',
      SLACK_URL: 'https://hooks/x/y',
      HOME: '/root',
      API_TOKEN: 'abc',
      PATH: '/bin',
    };
    expect(secretValues(env, ['SLACK_URL']).sort()).toEqual(['https://hooks/x/y', 'hunter22']);
  });
});

describe('smoke-check bodies', () => {
  test('${env:NAME} is filled from the environment and the values are kept as secrets', () => {
    const r = resolveEnvPlaceholders(
      { email: '${env:SMOKE_EMAIL}', password: '${env:SMOKE_PASSWORD}', keep: 3, nested: ['x-${env:SMOKE_EMAIL}'] },
      { SMOKE_EMAIL: 'a@b.c', SMOKE_PASSWORD: 'pw-123456' },
    );
    expect(r.value).toEqual({ email: 'a@b.c', password: 'pw-123456', keep: 3, nested: ['x-a@b.c'] });
    expect(r.secrets).toEqual(['a@b.c', 'pw-123456', 'a@b.c']);
    expect(r.missing).toEqual([]);
  });

  test('missing variables are named, not sent as empty strings silently', () => {
    const r = resolveEnvPlaceholders(
      { email: '${env:SMOKE_EMAIL}', password: '${env:SMOKE_PASSWORD}' },
      { SMOKE_EMAIL: 'a@b.c' },
    );
    expect(r.missing).toEqual(['SMOKE_PASSWORD']);
  });

  test('valueAtPath and describeBody', () => {
    expect(valueAtPath({ data: { token: 't' } }, 'data.token')).toBe('t');
    expect(valueAtPath({ data: null }, 'data.token')).toBeUndefined();
    expect(describeBody('  {"error":\n"bad pw-123456"} ', ['pw-123456'])).toBe('{"error": "bad ***"}');
    expect(describeBody('')).toBe('(empty body)');
    expect(describeBody('x'.repeat(500)).length).toBe(203);
  });
});

const pod = (name: string, over: Partial<PodSnapshot> = {}, restarts = 0): PodSnapshot => ({
  name,
  phase: 'Running',
  ready: true,
  createdAt: '2025-11-15T10:05:00Z',
  deleting: false,
  containers: [{ name: 'app', ready: true, restarts }],
  ...over,
});

describe('judgePods', () => {
  const since = '2025-11-15T10:00:00Z';

  test('Running and Ready pods with readable, clean logs pass', () => {
    const j = judgePods([pod('a'), pod('b')], {
      since,
      maxLogErrors: 0,
      logs: { a: { state: 'checked', errorLines: 0 }, b: { state: 'checked', errorLines: 0 } },
    });
    expect(j.ok).toBe(true);
    expect(j.warnings).toEqual([]);
    expect(j.summary).toContain('2/2 pods Running and Ready');
  });

  test('logs unavailable are a visible warning, not errors and not a silent pass', () => {
    const j = judgePods([pod('a'), pod('b')], {
      since,
      maxLogErrors: 0,
      logs: {
        a: { state: 'unavailable', reason: 'HTTP 500: connection refused' },
        b: { state: 'unavailable', reason: 'x' },
      },
    });
    expect(j.ok).toBe(true);
    expect(j.logErrorLines).toBe(0);
    expect(j.warnings).toEqual([
      'logs unavailable for 2 pods (a, b): error lines not checked (HTTP 500: connection refused)',
    ]);
    expect(j.summary).toContain('no pod logs checked; logs unavailable for 2');
    expect(j.pods[0].logs.state).toBe('unavailable');
  });

  test('restart counts that rose since the baseline fail; old restarts do not', () => {
    const j = judgePods([pod('a', {}, 5), pod('b', {}, 3)], {
      since,
      baselineRestarts: { a: 5, b: 1 },
      maxLogErrors: 0,
      logs: {},
    });
    expect(j.ok).toBe(false);
    expect(j.problems).toEqual(['b: restarted 2 times since the deployment started']);
    expect(j.pods.find((p) => p.name === 'a')?.restartsSinceBaseline).toBe(0);
  });

  test('a pod created in the same second the rollout started is new: creationTimestamp has whole seconds only', () => {
    // The rollout started at .400 and the apiserver stamped the pod it created at .900 as 10:00:00Z.
    const started = '2025-11-15T10:00:00.400Z';
    expect(isNewPod(pod('same-second', { createdAt: '2025-11-15T10:00:00Z' }), started)).toBe(true);
    expect(isNewPod(pod('later', { createdAt: '2025-11-15T10:00:01Z' }), started)).toBe(true);
    expect(isNewPod(pod('before', { createdAt: '2025-11-15T09:59:59Z' }), started)).toBe(false);
    expect(isNewPod(pod('unknown', { createdAt: undefined }), started)).toBe(false);
    const j = judgePods([pod('same-second', { createdAt: '2025-11-15T10:00:00Z' })], {
      since: started,
      maxLogErrors: 0,
      logs: { 'same-second': { state: 'checked', errorLines: 3, sample: 'ERROR x' } },
    });
    expect(j.ok).toBe(false);
    expect(j.pods[0].isNew).toBe(true);
  });

  test('a new pod that restarted at all is a restart loop', () => {
    const j = judgePods([pod('new', {}, 1)], { since, maxLogErrors: 0, logs: {} });
    expect(j.problems).toEqual(['new: restarted 1 time since the deployment started']);
  });

  test('not Running, not Ready, crash loops and no pods at all fail', () => {
    expect(judgePods([pod('a', { phase: 'Pending', ready: false })], { maxLogErrors: 0, logs: {} }).problems).toEqual([
      'a: phase Pending',
    ]);
    expect(judgePods([pod('a', { ready: false })], { maxLogErrors: 0, logs: {} }).problems).toEqual(['a: not Ready']);
    const crash = pod('a', {
      ready: false,
      containers: [{ name: 'app', ready: false, restarts: 0, waitingReason: 'CrashLoopBackOff' }],
    });
    expect(judgePods([crash], { maxLogErrors: 0, logs: {} }).problems).toContain('a: container app CrashLoopBackOff');
    expect(judgePods([], { maxLogErrors: 0, logs: {} }).problems).toEqual(['no pods match']);
  });

  test('pods being deleted are ignored', () => {
    expect(
      judgePods([pod('a'), pod('old', { deleting: true, ready: false, phase: 'Failed' })], {
        maxLogErrors: 0,
        logs: {},
      }).ok,
    ).toBe(true);
  });

  test('error lines above the limit fail, with a sample', () => {
    const logs = {
      a: { state: 'checked' as const, errorLines: 2, sample: 'ERROR db timeout' },
      b: { state: 'checked' as const, errorLines: 1 },
    };
    const j = judgePods([pod('a'), pod('b')], { since, maxLogErrors: 2, logs });
    expect(j.ok).toBe(false);
    expect(j.problems[0]).toBe(`3 error lines in the new pods' logs (limit 2): a 2 (e.g. "ERROR db timeout"); b 1`);
    expect(judgePods([pod('a'), pod('b')], { since, maxLogErrors: 3, logs }).ok).toBe(true);
  });

  test('pods older than the rollout are not log-checked and say so', () => {
    const j = judgePods([pod('old', { createdAt: '2025-11-15T09:00:00Z' })], { since, maxLogErrors: 0, logs: {} });
    expect(j.pods[0]).toMatchObject({
      isNew: false,
      logs: { state: 'not-checked', reason: 'pod predates the rollout' },
    });
  });

  test('countErrorLines is case-insensitive and counts lines', () => {
    expect(countErrorLines('ok\nERROR one\nerror two\nterrors are fine\n', '\\berror\\b')).toEqual({
      count: 2,
      sample: 'ERROR one',
    });
    expect(countErrorLines('', '\\berror\\b')).toEqual({ count: 0 });
  });
});

describe('platform', () => {
  test('database connections: growth above the limit fails; without a baseline it is inconclusive', () => {
    expect(judgeConnectionGrowth(30, 10, 20)).toMatchObject({ outcome: 'pass', value: 30 });
    expect(judgeConnectionGrowth(31, 10, 20)).toMatchObject({
      outcome: 'fail',
      detail: '31 active connections (baseline 10, growth +21, limit +20)',
    });
    expect(judgeConnectionGrowth(5, 10, 0).outcome).toBe('pass');
    expect(judgeConnectionGrowth(5, undefined, 20).outcome).toBe('inconclusive');
  });

  test('redis memory below the ratio passes; at or above fails; maxmemory 0 is inconclusive, never a pass', () => {
    const mb = 1024 * 1024;
    expect(judgeRedisMemory(10 * mb, 64 * mb, 0.8)).toMatchObject({
      outcome: 'pass',
      detail: '10.0 MiB of 64.0 MiB used (15.6%, limit 80.0%)',
    });
    expect(judgeRedisMemory(52 * mb, 64 * mb, 0.8).outcome).toBe('fail');
    expect(judgeRedisMemory(10 * mb, 0, 0.8)).toMatchObject({
      outcome: 'inconclusive',
      value: null,
      detail: expect.stringContaining('no maxmemory set'),
    });
    expect(judgeRedisMemory(Number.NaN, 64 * mb, 0.8).outcome).toBe('inconclusive');
  });

  test('parseRedisInfo', () => {
    expect(parseRedisInfo('# Memory\r\nused_memory:1024\r\nmaxmemory:0\r\n')).toEqual({
      used_memory: '1024',
      maxmemory: '0',
    });
  });
});

describe('config fields of verification, analysis, notifications and summary', () => {
  const raw = () => parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8'));

  test('defaults and the example', () => {
    const c = parseConfig(raw(), 'x.yaml', {});
    expect(c.verification).toMatchObject({
      maxLogErrors: 0,
      logErrorPattern: '\\berror\\b',
      kubernetesTimeout: 10_000,
    });
    expect(c.analysis).toMatchObject({ failureLimit: 0, inconclusiveLimit: 2, queryTimeout: 10_000 });
    expect(c.redis.maxMemoryRatio).toBe(0.8);
    expect(c.notifications).toMatchObject({
      slackWebhookEnv: 'SLACK_WEBHOOK_URL',
      webhookEnv: 'DEPLOY_WEBHOOK_URL',
      timeout: 5000,
      temporalNamespace: 'default',
    });
    expect(c.summary).toMatchObject({
      store: true,
      prefix: 'summaries/',
      changelog: false,
      changelogFile: 'CHANGELOG.md',
      commitAuthor: { name: 'deploy-pipelines' },
    });
  });

  test('an unknown PromQL placeholder and a bad log pattern are refused at load time', () => {
    const r = raw();
    r.analysis.metrics[0].query = 'up{service="{{service}}"}';
    expect(() => parseConfig(r, 'x.yaml', {})).toThrow(/analysis\.metrics\.0\.query: placeholders must be/);
    const r2 = raw();
    r2.verification.logErrorPattern = '(';
    expect(() => parseConfig(r2, 'x.yaml', {})).toThrow(/verification\.logErrorPattern/);
  });

  test('failure and inconclusive limits are explicit numbers', () => {
    const r = raw();
    r.analysis.inconclusiveLimit = -1;
    expect(() => parseConfig(r, 'x.yaml', {})).toThrow(/analysis\.inconclusiveLimit/);
  });
});
