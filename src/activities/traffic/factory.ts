/**
 * The one place that maps a configured traffic provider to its
 * implementation (Argo Rollouts: rollout/trafficrouting.go,
 * NewTrafficRoutingReconciler). Adding a provider: its file, one line here,
 * its name in domain/plan.ts's TRAFFIC_PROVIDERS (which the config schema
 * uses), and its tests.
 */
import { providerFactory } from '../providers';
import type { TrafficProviderName, TrafficSettings } from '../../domain/plan';
import { GatewayApiProvider } from './gateway-api';
import { IstioProvider } from './istio';
import { NginxProvider } from './nginx';
import type { TrafficContext, TrafficProvider, TrafficProviderFactory } from './provider';
import { ReplicasProvider } from './replicas';

/** One constructor per declared provider name: the type refuses a name without one. */
export const TRAFFIC_PROVIDER_FACTORIES: Readonly<Record<TrafficProviderName, TrafficProviderFactory>> = {
  istio: (settings, ctx) => new IstioProvider(settings, ctx),
  'gateway-api': (settings, ctx) => new GatewayApiProvider(settings, ctx),
  nginx: (settings, ctx) => new NginxProvider(settings, ctx),
  replicas: (_settings, ctx) => new ReplicasProvider(ctx),
};

/**
 * The provider `settings.provider` names, from the built-in ones and any
 * `extra` (injected through TrafficDeps.providers, which may also replace a
 * built-in one, e.g. in a test). An unknown name is ConfigInvalid.
 */
export function trafficProvider(
  settings: TrafficSettings,
  ctx: TrafficContext,
  extra: Record<string, TrafficProviderFactory> = {},
): TrafficProvider {
  return providerFactory('traffic.provider', settings.provider, TRAFFIC_PROVIDER_FACTORIES, extra)(settings, ctx);
}
