/**
 * The worker's one redactor: every secret it holds, found from the config and
 * its environment, is replaced by *** in command output and failures before
 * they reach a history, a status, a summary or a notification.
 */
import * as k8s from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { redactorFor, workerSecretValues, withRedactedFailures } from '../../src/activities/redactor';
import { testConfig } from '../helpers/plan';

const config = (() => {
  const c = testConfig();
  c.preDeploymentChecks = [
    { name: 'audit', command: ['npm', 'audit'], timeout: 60_000, env: {}, passEnv: ['NPM_TOKEN'] },
  ];
  c.database.migrations = {
    mode: 'command',
    command: ['prisma', 'migrate', 'deploy'],
    pendingExitCodes: [],
    env: {},
    passEnv: ['PRISMA_ACCELERATE_KEY'],
    timeout: 60_000,
  };
  c.notifications.slackWebhookEnv = 'SLACK_WEBHOOK_URL';
  c.notifications.webhookEnv = 'DEPLOY_WEBHOOK_URL';
  return c;
})();

const codecKey = Buffer.alloc(32, 7).toString('base64');
const oldKey = Buffer.alloc(32, 9).toString('base64');
const env = {
  PATH: '/usr/bin:/bin',
  HOME: '/home/worker',
  REGISTRY_USERNAME: 'deploy-robot',
  REGISTRY_PASSWORD: 'registry-pass-1234',
  DEPLOY_CODEC_KEY: codecKey,
  DEPLOY_CODEC_OLD_KEYS: `2024:${oldKey}`,
  DEPLOY_CODEC_AUTH_TOKEN: 'codec-token-5678',
  TEMPORAL_API_KEY: 'temporal-api-key-9abc',
  DATABASE_URL: 'postgres://app:db%2Fpass%40word@127.0.0.1:5432/ai_saas_prod',
  REDIS_URL: 'redis://:redis-pass-def0@127.0.0.1:6379',
  SMOKE_EMAIL: 'smoke@example.com',
  SMOKE_PASSWORD: 'smoke-pass-1357',
  SLACK_WEBHOOK_URL: 'https://hooks.slack.example/services/T000/B000/slacksecret2468',
  DEPLOY_WEBHOOK_URL: 'https://hooks.example/deploy/webhooksecret1122',
  AWS_SECRET_ACCESS_KEY: 'aws-secret-key-3344',
  NPM_TOKEN: 'npm-token-5566',
  PRISMA_ACCELERATE_KEY: 'prisma-key-7788',
  GITHUB_TOKEN: 'ghp-anything-named-secret-9900',
  LANG: 'C.UTF-8',
};

const kubeConfig = () => {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: 'https://127.0.0.1:6443', skipTLSVerify: true }],
    users: [{ name: 'deploy-worker', token: 'kube-sa-token-abcdef123456' }],
    contexts: [{ name: 'w', cluster: 'c', user: 'deploy-worker' }],
    currentContext: 'w',
  });
  return kc;
};

const SECRETS: [string, string][] = [
  ['registry password', env.REGISTRY_PASSWORD],
  ['registry username (an *Env field)', env.REGISTRY_USERNAME],
  ['codec key', codecKey],
  ['retired codec key', oldKey],
  ['codec server token', env.DEPLOY_CODEC_AUTH_TOKEN],
  ['Temporal API key', env.TEMPORAL_API_KEY],
  ['kubeconfig token', 'kube-sa-token-abcdef123456'],
  ['DATABASE_URL password', 'db/pass@word'],
  ['REDIS_URL password', 'redis-pass-def0'],
  ['SMOKE_PASSWORD', env.SMOKE_PASSWORD],
  ['Slack webhook URL', env.SLACK_WEBHOOK_URL],
  ['webhook URL', env.DEPLOY_WEBHOOK_URL],
  ['webhook path on its own', '/deploy/webhooksecret1122'],
  ['S3 secret key', env.AWS_SECRET_ACCESS_KEY],
  ["a check's passEnv", env.NPM_TOKEN],
  ["a migration command's passEnv", env.PRISMA_ACCELERATE_KEY],
  ['a variable whose name says it is secret', env.GITHUB_TOKEN],
];

describe('the secrets the worker holds', () => {
  const values = workerSecretValues(config, env, kubeConfig());

  test.each(SECRETS)('%s is one of them', (_what, value) => {
    expect(values).toContain(value);
  });

  test('ordinary settings are not', () => {
    for (const v of [env.PATH, env.HOME, env.LANG]) expect(values).not.toContain(v);
  });
});

describe('redacting text', () => {
  const redactor = redactorFor(config, env, kubeConfig());

  test.each(SECRETS)('%s is replaced by *** plainly, URL-encoded and JSON-escaped', (_what, value) => {
    for (const form of [value, encodeURIComponent(value), JSON.stringify(value).slice(1, -1)]) {
      const out = redactor.text(`before ${form} after`);
      expect(out).toBe('before *** after');
    }
  });

  test('a check that prints its environment shows the names, never the values', () => {
    const printed = Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n');
    const out = redactor.text(printed);
    for (const [, value] of SECRETS) expect(out).not.toContain(value);
    expect(out).toContain('PATH=/usr/bin:/bin');
    expect(out).toContain('REGISTRY_PASSWORD=***');
    expect(out).toContain('DATABASE_URL=postgres://app:***@127.0.0.1:5432/ai_saas_prod');
  });

  test('text without secrets is unchanged', () => {
    expect(redactor.text('3 moderate vulnerabilities\nnpm ERR! code 1')).toBe(
      '3 moderate vulnerabilities\nnpm ERR! code 1',
    );
  });

  test('values: every string of a JSON value, keys and structure kept', () => {
    expect(redactor.value({ output: [`token ${env.NPM_TOKEN}`], code: 1, nested: { url: env.REDIS_URL } })).toEqual({
      output: ['token ***'],
      code: 1,
      nested: { url: 'redis://:***@127.0.0.1:6379' },
    });
  });
});

describe('failures leaving an activity', () => {
  const redactor = redactorFor(config, env, kubeConfig());

  test('message, details and stack are redacted; type and retryability are kept', async () => {
    const acts = withRedactedFailures(
      {
        async leaky(): Promise<string> {
          throw ApplicationFailure.create({
            type: 'PreDeploymentCheckFailed',
            nonRetryable: true,
            message: `check printed ${env.SMOKE_PASSWORD}`,
            details: [{ output: `DEPLOY_CODEC_KEY=${codecKey}` }],
          });
        },
        async plain(): Promise<string> {
          throw new TypeError(`cannot reach ${env.DATABASE_URL}`);
        },
        async fine(n: number): Promise<number> {
          return n + 1;
        },
      },
      redactor,
    );
    const err = (await acts.leaky().catch((e: unknown) => e)) as ApplicationFailure;
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'PreDeploymentCheckFailed', nonRetryable: true });
    expect(err.message).toBe('check printed ***');
    expect(err.details).toEqual([{ output: 'DEPLOY_CODEC_KEY=***' }]);
    expect(err.stack).not.toContain(env.SMOKE_PASSWORD);

    const plain = (await acts.plain().catch((e: unknown) => e)) as Error;
    expect(plain.name).toBe('TypeError');
    expect(plain.message).toBe('cannot reach postgres://app:***@127.0.0.1:5432/ai_saas_prod');
    expect(plain.stack).not.toContain('db%2Fpass');

    await expect(acts.fine(1)).resolves.toBe(2);
  });
});
