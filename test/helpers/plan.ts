/** Plans for workflow tests, made by the real planner from the real example config. */
import type { ApprovalPolicy } from '../../src/domain/identity';
import type { DeployPlan } from '../../src/domain/plan';
import { buildPlan } from '../../src/domain/planner';
import { checkInput, deployInputSchema, type DeployInput } from '../../src/domain/input';
import { loadConfig } from '../../src/load-config';
import * as path from 'node:path';
import { REPO_ROOT } from './tools';

export function testConfig() {
  return loadConfig(path.join(REPO_ROOT, 'deploy.config.yaml'), {});
}

export function testPlan(
  input: DeployInput = { version: '1.0.1' },
  workflowId = 'wf-test',
  tags = ['v1.0.0'],
): DeployPlan {
  return buildPlan(testConfig(), checkInput(deployInputSchema, input, 'deploy'), {
    workflowId,
    tags,
    commit: 'c0ffee0000000000000000000000000000000000',
  });
}

/** A plan's approvals with some rules changed (the rest as the example config has them). */
export function withApprovals(rules: Partial<ApprovalPolicy>): { approvals: ApprovalPolicy } {
  return { approvals: { ...testPlan().approvals, ...rules } };
}
