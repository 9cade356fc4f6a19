/**
 * The traffic provider seam without a cluster: every declared provider name
 * has a constructor, an unknown name is ConfigInvalid, and a provider injected
 * through TrafficDeps.providers is the one the canary activities drive (a
 * weight change and an abort's read-back go through it alone).
 */
import type { KubeClients } from '../../src/activities/clients/kube';
import type { CanaryTarget, WeightVerification } from '../../src/activities/contracts';
import {
  TRAFFIC_PROVIDER_FACTORIES,
  trafficActivities,
  trafficProvider,
  type TrafficContext,
  type TrafficProvider,
} from '../../src/activities/traffic';
import { ErrorType } from '../../src/domain/errors';
import { TRAFFIC_PROVIDERS, type TrafficProviderName, type TrafficSettings } from '../../src/domain/plan';

const kubernetes = {
  kubeconfig: '',
  rolloutTimeout: 60_000,
  deleteOldColourAfter: 3_600_000,
  pollInterval: 50,
  requestTimeout: 1_000,
  diagnosticLogLines: 0,
  shared: false,
};
/** No apiserver: any call the activities made to it would fail the test. */
const noClients = {} as KubeClients;

function settings(provider: string): TrafficSettings {
  return {
    provider: provider as TrafficProviderName,
    service: 'api-gateway',
    stableSubset: 'stable',
    canarySubset: 'canary',
  };
}

function target(provider: string): CanaryTarget {
  return {
    workflowId: 'wf-1',
    namespace: 'ai-saas',
    version: '1.0.1',
    service: 'api-gateway',
    container: 'api-gateway',
    image: 'registry/api-gateway:1.0.1',
    traffic: settings(provider),
  };
}

/** A provider that keeps its weight in memory; it reports the weight set one read after it was asked for. */
class MemoryProvider implements TrafficProvider {
  weight = 0;
  calls: string[] = [];
  private reads = 0;

  type(): string {
    return 'memory';
  }

  async setWeight(weight: number, opts?: { urgent?: boolean }): Promise<void> {
    this.calls.push(`set ${weight}${opts?.urgent ? ' urgent' : ''}`);
    this.weight = weight;
    this.reads = 0;
  }

  async verifyWeight(weight: number): Promise<WeightVerification> {
    this.calls.push(`verify ${weight}`);
    const settled = ++this.reads > 1 && this.weight === weight;
    return {
      verified: this.weight === weight,
      settled,
      observed: { stable: 100 - this.weight, canary: this.weight },
      detail: `memory ${this.weight}`,
    };
  }
}

test('every declared provider name has exactly one constructor', () => {
  expect(Object.keys(TRAFFIC_PROVIDER_FACTORIES).sort()).toEqual([...TRAFFIC_PROVIDERS].sort());
});

test('the factory builds the configured provider and refuses an unknown name as ConfigInvalid', () => {
  const ctx = { namespace: 'ai-saas', service: 'api-gateway', stepTimeoutMs: 1000 } as TrafficContext;
  expect(trafficProvider(settings('istio'), ctx).type()).toBe('istio');
  expect(trafficProvider(settings('replicas'), ctx).type()).toBe('replicas');
  expect(() => trafficProvider(settings('linkerd'), ctx)).toThrow(
    expect.objectContaining({
      type: ErrorType.ConfigInvalid,
      nonRetryable: true,
      message: 'traffic.provider "linkerd" names no provider: use istio, gateway-api, nginx or replicas',
    }),
  );
});

test('a provider injected through the deps takes the canary activities’ weight changes', async () => {
  const memory = new MemoryProvider();
  const acts = trafficActivities({
    clients: noClients,
    config: { kubernetes, traffic: { stepTimeout: 2_000 } },
    providers: { memory: () => memory },
  });
  await expect(acts.setCanaryWeight({ target: target('memory'), weight: 25 })).resolves.toEqual({
    weight: 25,
    observed: { stable: 75, canary: 25 },
  });
  expect(memory.calls).toEqual(['set 25', 'verify 25', 'verify 25']);
});

test('an injected provider may replace a built-in one', async () => {
  const memory = new MemoryProvider();
  const acts = trafficActivities({ clients: noClients, config: { kubernetes }, providers: { istio: () => memory } });
  await acts.setCanaryWeight({ target: target('istio'), weight: 50 });
  expect(memory.weight).toBe(50);
});
