/** Plans for workflow tests, made by the real planner from the real example config. */
import type { ApprovalPolicy } from '../../src/domain/identity';
import type { DeployConfig } from '../../src/domain/config';
import type { DeployPlan } from '../../src/domain/plan';
import type { ReleasePlan } from '../../src/domain/release';
import { buildPlan } from '../../src/domain/planner';
import { checkInput, deployInputSchema, type CheckedDeployInput, type DeployInput } from '../../src/domain/input';
import { loadConfig } from '../../src/load-config';
import * as path from 'node:path';
import { REPO_ROOT } from './tools';

/**
 * The example config without its rollout order (`dependsOn`): the workflow
 * tests of everything but waves see one wave, as they were written for; the
 * waves' own tests set the plan's waves themselves.
 */
export function testConfig(): DeployConfig {
  const config = loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), {});
  return { ...config, services: config.services.map((s) => ({ ...s, dependsOn: [] })) };
}

/**
 * `config` as an operator would write it to allow what `input` asks: the
 * input may only tighten the config (domain/policy.ts), so a test that wants
 * a rolling deployment, no backup or a 1s soak configures it, as a team
 * would for a test environment.
 */
export function configAllowing(input: CheckedDeployInput, config: DeployConfig = testConfig()): DeployConfig {
  const defined = <T extends object>(o: T | undefined) =>
    Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
  return {
    ...config,
    environments: Object.fromEntries(
      Object.entries(config.environments).map(([name, env]) => [
        name,
        {
          ...env,
          policy: { backup: 'optional', migrations: 'optional', strategies: ['rolling', 'canary', 'blue-green'] },
        },
      ]),
    ),
    build: { ...config.build, allowOverwrite: input.allowImageOverwrite ?? config.build.allowOverwrite },
    rollout: {
      ...config.rollout,
      canary: { ...config.rollout.canary, ...defined(input.canary) },
      blueGreen: { ...config.rollout.blueGreen, ...defined(input.blueGreen) },
    },
  };
}

export function testPlan(
  input: DeployInput = { version: '1.0.1' },
  workflowId = 'wf-test',
  tags = ['v1.0.0'],
): DeployPlan {
  const checked = checkInput(deployInputSchema, input, 'deploy');
  return buildPlan(configAllowing(checked), checked, {
    workflowId,
    tags,
    commit: 'c0ffee0000000000000000000000000000000000',
  });
}

/** A plan's approvals with some rules changed (the rest as the example config has them). */
export function withApprovals(rules: Partial<ApprovalPolicy>): { approvals: ApprovalPolicy } {
  return { approvals: { ...testPlan().approvals, ...rules } };
}

let releases = 0;

/** A release through two stages named for this test (each environment its own lock), production after a soak. */
export function testReleasePlan(soakMs: number, approval = true): ReleasePlan {
  const n = `${++releases}-${Date.now() % 100000}`;
  const base = testPlan({ version: '1.0.1', strategy: 'rolling' });
  const policy = base.approvals;
  return {
    workflowId: 'set-by-the-fake',
    project: 'ai-saas',
    version: '1.0.1',
    tag: 'v1.0.1',
    commit: base.commit,
    requestedBy: 'carol',
    registry: base.registry,
    services: base.services,
    stages: [
      { environment: `staging-${n}`, namespace: 'ai-saas', workflowId: '', approvals: policy, requestedVia: 'none' },
      {
        environment: `production-${n}`,
        namespace: 'ai-saas',
        workflowId: '',
        approvals: policy,
        requestedVia: 'none',
        promotion: {
          from: `staging-${n}`,
          fromNamespace: 'ai-saas',
          soakMs,
          analysisIntervalMs: 3_600_000,
          failureLimit: 0,
          inconclusiveLimit: 2,
          approval,
          approvalTimeoutMs: 24 * 3_600_000,
        },
      },
    ],
    searchAttributes: false,
  };
}
