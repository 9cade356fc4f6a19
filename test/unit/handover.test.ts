/**
 * What a child workflow is handed, checked against the configuration: the
 * plan (rebuilt by the planner from its own choices), the image, a
 * rollback's records and traffic targets, and a backup key.
 */
import type { DeployPlan } from '../../src/domain/plan';
import { planChoices, planMismatches, childImageCheck, PLAN_FACTS } from '../../src/domain/plan-confirmation';
import { backupKeyProblem, checkedRecords, isImageOf, trafficTargetProblems } from '../../src/domain/rollback-handover';
import { colourTarget, trafficTarget } from '../../src/domain/plan';
import { configAllowing, testConfig, testPlan } from '../helpers/plan';
import { checkInput, deployInputSchema } from '../../src/domain/input';

const config = testConfig();
const registry = config.registry.host;
const digest = `sha256:${'ab'.repeat(32)}`;

describe('a plan handed to a child', () => {
  test.each([
    ['the defaults', { version: '1.0.1' }],
    [
      'a canary with every override',
      {
        version: '1.0.2',
        strategy: 'canary' as const,
        canary: {
          steps: [10, 50, 100],
          soak: '10m',
          analysisInterval: '30s',
          approval: 'every-step' as const,
          approvalTimeout: '2h',
        },
      },
    ],
    [
      'blue-green with its overrides',
      {
        version: '2.0.0',
        strategy: 'blue-green' as const,
        blueGreen: { monitor: '20m', approval: true, approvalTimeout: '1h' },
      },
    ],
    [
      'some services, no backup, no migrations',
      {
        version: '1.0.3',
        strategy: 'canary' as const,
        services: ['api-gateway'],
        backup: false,
        migrate: false,
      },
    ],
  ])('is confirmed when config decides what it says: %s', (_name, input) => {
    const plan = testPlan(input, 'deploy-1');
    expect(planChoices(plan).version).toBe(plan.version);
    // The configuration the plan was made under: the input may only tighten it, so the test's config allows the input.
    expect(planMismatches(configAllowing(checkInput(deployInputSchema, input, 'deploy')), plan)).toEqual([]);
  });

  test('facts of one deployment are not for the configuration to decide', () => {
    expect(PLAN_FACTS).toEqual(
      expect.arrayContaining(['workflowId', 'commit', 'committedAt', 'previousVersion', 'dryRun', 'requestedBy']),
    );
    const plan = testPlan({ version: '1.0.1' });
    const { previousVersion: _dropped, ...withoutPrevious } = plan;
    expect(
      planMismatches(config, {
        ...withoutPrevious,
        workflowId: 'other',
        commit: 'f'.repeat(40),
        committedAt: '2026-11-30T10:00:00.000Z',
        dryRun: true,
        requestedBy: 'mallory',
      }),
    ).toEqual([]);
  });

  test('each field the configuration decides is named when it differs', () => {
    const plan = testPlan({ version: '1.0.1', strategy: 'canary' });
    const api = plan.services.find((s) => s.name === 'api-gateway')!;
    const forged: DeployPlan = {
      ...plan,
      namespace: 'kube-system',
      services: plan.services.map((s) => (s === api ? { ...s, reference: 'evil.example/miner:1' } : s)),
      approvers: ['mallory'],
      traffic: { ...plan.traffic, service: 'other' },
    };
    const problems = planMismatches(config, forged);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringContaining('namespace'),
        expect.stringMatching(/services\[\d+\]\.reference/),
        expect.stringContaining('approvers'),
        expect.stringContaining('traffic.service'),
      ]),
    );
  });

  test('a field the configuration sets but the plan leaves out is a difference, as is one it adds', () => {
    const plan = testPlan({ version: '1.0.1' });
    const { rolloutTimeoutMs: _left, ...missing } = plan;
    expect(planMismatches(config, missing as DeployPlan)).toEqual([expect.stringContaining('rolloutTimeoutMs')]);
    expect(planMismatches(config, { ...plan, extra: 1 } as DeployPlan)).toEqual([expect.stringContaining('extra')]);
  });

  test('choices the planner refuses (an unknown environment) are a mismatch, not an exception', () => {
    const plan = testPlan({ version: '1.0.1' });
    expect(planMismatches(config, { ...plan, environment: 'nowhere' })).toEqual([
      expect.stringContaining('unknown environment "nowhere"'),
    ]);
  });

  test("the child's image is the traffic service's reference, or a digest of its configured image", () => {
    const plan = testPlan({ version: '1.0.1', strategy: 'canary' });
    const api = plan.services.find((s) => s.name === plan.traffic.service)!;
    expect(childImageCheck(undefined, plan)).toEqual({ ok: true });
    expect(childImageCheck(api.reference, plan)).toEqual({ ok: true });
    expect(childImageCheck(`${registry}/${api.image}@${digest}`, plan)).toEqual({ ok: true, digest });
    for (const forged of [
      `evil.example/${api.image}@${digest}`,
      `${registry}/other@${digest}`,
      `${registry}/${api.image}:9.9.9`,
      `${registry}/${api.image}@sha256:short`,
    ]) {
      expect(childImageCheck(forged, plan)).toEqual({ ok: false, problem: expect.stringContaining(forged) });
    }
  });
});

describe("a rollback's records", () => {
  const plan = testPlan({ version: '1.0.1' });
  const svc = plan.services[0];

  test('image references of the configured registry and image, by tag or digest', () => {
    expect(isImageOf(`${registry}/${svc.image}:1.0.0`, registry, svc.image)).toBe(true);
    expect(isImageOf(`${registry}/${svc.image}@${digest}`, registry, svc.image)).toBe(true);
    expect(isImageOf(`${registry}/${svc.image}:1.0.0@${digest}`, registry, svc.image)).toBe(true);
    expect(isImageOf(`${registry}/${svc.image}`, registry, svc.image)).toBe(false);
    expect(isImageOf(`${registry}/${svc.image}-x:1.0.0`, registry, svc.image)).toBe(false);
    expect(isImageOf(`other:5000/${svc.image}:1.0.0`, registry, svc.image)).toBe(false);
    expect(isImageOf(`${registry}/${svc.image}:1.0.0 --privileged`, registry, svc.image)).toBe(false);
  });

  test('are kept to the service container, each an image of the configured one', () => {
    const r = checkedRecords(
      [
        {
          deployment: svc.deployment,
          previousImages: { [svc.container]: `${registry}/${svc.image}:1.0.0`, 'log-shipper': 'fluent/fluent-bit:3' },
          previousVersion: '1.0.0',
        },
      ],
      plan,
    );
    expect(r).toEqual({
      problems: [],
      records: [
        {
          deployment: svc.deployment,
          previousImages: { [svc.container]: `${registry}/${svc.image}:1.0.0` },
          previousVersion: '1.0.0',
        },
      ],
    });
  });

  test('issue 19: previous references may only go back to the same base, and a cluster must be one of the plan', () => {
    const record = (previousReferences: unknown, cluster?: string) => [
      {
        deployment: svc.deployment,
        previousImages: { [svc.container]: `${registry}/${svc.image}:1.0.0` },
        previousReferences: previousReferences as never,
        ...(cluster ? { cluster } : {}),
      },
    ];
    const back = [
      { kind: 'Secret' as const, from: 'auth-creds-0123456789', to: 'auth-creds' },
      { kind: 'ConfigMap' as const, from: 'auth-config-0123456789', to: 'auth-config-abcdefabcd' },
    ];
    expect(checkedRecords(record(back), plan)).toMatchObject({ problems: [], records: [{ previousReferences: back }] });
    // Pointing a Deployment at another Secret of the namespace is what an attacker would hand over.
    expect(
      checkedRecords(record([{ kind: 'Secret', from: 'auth-creds-0123456789', to: 'billing-creds' }]), plan).problems,
    ).toEqual([
      `record for deployment ${svc.deployment}: previousReferences: "auth-creds-0123456789" → "billing-creds" is not a snapshot going back to its own base or an earlier snapshot of it`,
    ]);
    expect(checkedRecords(record([{ from: 'auth-creds', to: 'billing-creds' }]), plan).problems).toHaveLength(1);
    expect(checkedRecords(record([{ kind: 'Pod', from: 'a-0123456789', to: 'a' }]), plan).problems).toHaveLength(1);
    expect(checkedRecords(record(undefined, 'region-z'), plan).problems).toEqual([
      `record for deployment ${svc.deployment}: cluster "region-z" is not one of the environment's (none)`,
    ]);
    expect(
      checkedRecords(record(undefined, 'region-b'), { ...plan, clusters: ['region-a', 'region-b'] }),
    ).toMatchObject({
      problems: [],
      records: [{ cluster: 'region-b' }],
    });
  });

  test('an image of a registry.previousHosts entry is accepted only when the config lists it', () => {
    const moved = [
      { deployment: svc.deployment, previousImages: { [svc.container]: `old.example:5000/${svc.image}:1.0.0` } },
    ];
    expect(checkedRecords(moved, plan).problems).toEqual([
      `record for deployment ${svc.deployment}: image "old.example:5000/${svc.image}:1.0.0" is not ${registry}/${svc.image} (registry.host, registry.previousHosts)`,
    ]);
    expect(checkedRecords(moved, plan, ['old.example:5000']).problems).toEqual([]);
    expect(checkedRecords(moved, plan, ['other.example:5000']).problems).toHaveLength(1);
  });

  test('a forged image, an unknown Deployment, a missing container or a bad version are refused', () => {
    const r = checkedRecords(
      [
        { deployment: svc.deployment, previousImages: { [svc.container]: 'evil.example/miner:latest' } },
        { deployment: 'kube-proxy', previousImages: { 'kube-proxy': `${registry}/${svc.image}:1.0.0` } },
        { deployment: svc.deployment, previousImages: { sidecar: `${registry}/${svc.image}:1.0.0` } },
        {
          deployment: svc.deployment,
          previousImages: { [svc.container]: `${registry}/${svc.image}:1.0.0` },
          previousVersion: '$(reboot)',
        },
      ],
      plan,
    );
    expect(r.problems).toEqual([
      expect.stringContaining('evil.example/miner:latest'),
      expect.stringContaining('kube-proxy'),
      expect.stringContaining(`no image for container ${svc.container}`),
      expect.stringContaining('$(reboot)'),
    ]);
  });
});

describe("a rollback's traffic targets", () => {
  const plan = testPlan({ version: '1.0.1', strategy: 'canary' }, 'deploy-7');
  const api = plan.services.find((s) => s.name === plan.traffic.service)!;
  const image = `${registry}/${api.image}@${digest}`;

  test('are the plan’s own, with an image of the traffic service', () => {
    expect(trafficTargetProblems(trafficTarget(plan, plan.workflowId, image), plan)).toEqual([]);
    expect(trafficTargetProblems(colourTarget(trafficTarget(plan, plan.workflowId, image)), plan)).toEqual([]);
  });

  test('another namespace, Service or image is refused', () => {
    const target = trafficTarget(plan, plan.workflowId, image);
    expect(trafficTargetProblems({ ...target, namespace: 'kube-system' }, plan)).toEqual([
      expect.stringContaining('namespace'),
    ]);
    expect(trafficTargetProblems({ ...target, service: 'payments' }, plan)).toEqual([
      expect.stringContaining('service'),
    ]);
    expect(trafficTargetProblems({ ...target, image: 'evil.example/x:1' }, plan)).toEqual([
      expect.stringContaining('evil.example/x:1'),
    ]);
  });
});

describe('a backup key handed to a rollback', () => {
  const backup = { prefix: 'postgres/', database: 'ai_saas_prod' };
  test('is a backup key of the configured database under the configured prefix', () => {
    expect(backupKeyProblem('postgres/ai_saas_prod_1.0.1_20261126T030811Z.dump', backup)).toBeUndefined();
  });
  test.each([
    ['postgres/../secrets/ai_saas_prod_1.0.1_20261126T030811Z.dump', '..'],
    ['/postgres/ai_saas_prod_1.0.1_20261126T030811Z.dump', 'absolute'],
    ['other/ai_saas_prod_1.0.1_20261126T030811Z.dump', 'postgres/'],
    ['postgres/billing_1.0.1_20261126T030811Z.dump', 'billing'],
    ['postgres/ai_saas_prod_1.0.1.sql.gz', 'postgres/'],
    ['', 'empty'],
  ])('%s is refused (%s)', (key, why) => {
    expect(backupKeyProblem(key, backup)).toEqual(expect.stringContaining(why));
  });
});
