/**
 * The whole pre-flight (runbook "Verify Current State") through the real
 * activities on the sandbox: database, backups, Redis and the cluster, in a
 * namespace of this test's own where one Deployment's pods cannot start.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, defaultDeps } from '../../src/activities';
import type { PreflightResult } from '../../src/activities/contracts';
import type { DeployPlan } from '../../src/domain/plan';
import { adminKube, e2eConfig } from '../helpers/e2e';
import { testPlan } from '../helpers/plan';
import { waitFor } from '../helpers/wait';

jest.setTimeout(120_000);

const NS = `preflight-${process.pid}`;
const kube = adminKube();

async function deployment(name: string, nodeSelector?: Record<string, string>): Promise<void> {
  const labels = { app: name };
  await kube.apps.createNamespacedDeployment({
    namespace: NS,
    body: {
      metadata: { name, labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: { ...(nodeSelector ? { nodeSelector } : {}), containers: [{ name: 'web', image: 'example/web:1' }] },
        },
      },
    },
  });
}

function planFor(deployments: string[]): DeployPlan {
  const p = testPlan({ version: '1.0.1', strategy: 'rolling' });
  const services = deployments.map((d) => ({ ...p.services[0], name: d, deployment: d, container: 'web' }));
  return { ...p, namespace: NS, services, traffic: { ...p.traffic, service: deployments[0] } };
}

function preflight(plan: DeployPlan): Promise<PreflightResult> {
  const config = e2eConfig();
  const activities = createActivities(
    defaultDeps({ ...config, kubernetes: { ...config.kubernetes, kubeconfig: process.env.KUBECONFIG ?? '' } }),
  );
  return new MockActivityEnvironment().run(activities.preflight, plan);
}

beforeAll(async () => {
  e2eConfig(); // the sandbox's environment into process.env
  await kube.core.createNamespace({ body: { metadata: { name: NS } } });
  await deployment('pf-ready');
  // No node has this label: the pod stays Pending, never Ready.
  await deployment('pf-stuck', { 'deploy-pipelines.dev/no-such-node': 'true' });
  await waitFor(async () => {
    const d = await kube.apps.readNamespacedDeployment({ name: 'pf-ready', namespace: NS });
    return d.status?.readyReplicas === 1;
  }, 60_000);
});

afterAll(async () => {
  await kube.core.deleteNamespace({ name: NS }).catch(() => undefined);
});

test('pre-flight of Deployments whose pods are Ready passes', async () => {
  const r = await preflight(planFor(['pf-ready']));
  expect(r.problems).toEqual([]);
  expect(r.cluster.deployments.map((d) => d.name).sort()).toEqual(['pf-ready', 'pf-stuck']);
});

test('issue 16 item 6: pre-flight fails when a pod of a Deployment to change is not Ready, naming it', async () => {
  const err = await preflight(planFor(['pf-ready', 'pf-stuck'])).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  const f = err as ApplicationFailure;
  expect(f.type).toBe('PreflightFailed');
  expect(f.nonRetryable).toBe(true);
  const [result] = f.details as [PreflightResult];
  expect(result.problems).toEqual([
    expect.stringMatching(new RegExp(`^pods not Ready in ${NS}: pf-stuck-[a-z0-9]+-[a-z0-9]+ \\(Pending\\)$`)),
  ]);
  expect(f.message).toContain('pods not Ready');
});
