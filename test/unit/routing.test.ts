import { ApplicationFailure } from '@temporalio/common';
import { routeOf } from '../../src/activities/routing';
import { testConfig } from '../helpers/plan';

const config = testConfig;

test('a call acts on the environment its request, target or plan names', () => {
  const c = config();
  expect(routeOf(c, 'backupDatabase', { workflowId: 'w', environment: 'staging' })).toBe('staging');
  expect(routeOf(c, 'setCanaryWeight', { target: { environment: 'staging' }, weight: 5 })).toBe('staging');
  expect(routeOf(c, 'confirmPlan', { plan: { environment: 'staging' } })).toBe('staging');
});

test('a request recorded before environments had their own back ends acts on the default environment', () => {
  expect(routeOf(config(), 'backupDatabase', { workflowId: 'w' })).toBe('production');
  expect(routeOf(config(), 'platformBaseline', undefined)).toBe('production');
});

test('an environment the config does not have is refused, never taken as another', () => {
  for (const environment of ['gone', 'constructor', 5]) {
    let err: unknown;
    try {
      routeOf(config(), 'patchImages', { environment });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).type).toBe('InvalidInput');
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as Error).message).toMatch(/is not in the worker's config \(configured: staging, production\)/);
  }
});

test("the planner gets the person's input whatever it names, and reports an unknown environment itself", () => {
  expect(routeOf(config(), 'resolvePlan', { input: { environment: 'staging' } })).toBe('staging');
  expect(routeOf(config(), 'resolvePlan', { input: { environment: 'nope' } })).toBe('production');
  expect(routeOf(config(), 'resolveRollback', { input: {} })).toBe('production');
});
