/**
 * Traffic: how users move from one version to the next.
 *
 *  - canary.ts      startCanary, setCanaryWeight, promoteCanary, abortCanary
 *  - provider.ts    the TrafficProvider interface the canary activities use
 *  - istio.ts       VirtualService route weights
 *  - gateway-api.ts Gateway API HTTPRoute backend weights, header rule, mirror
 *  - nginx.ts       NGINX Ingress canary annotations on a canary Ingress
 *  - replicas.ts    ready pods behind the Service, without a mesh
 *  - factory.ts     provider name → provider
 *  - blue-green.ts  the Service selector switch between two colours
 *                   (registered with the Kubernetes activities)
 */
export { trafficActivities, type TrafficDeps } from './canary';
export { TRAFFIC_PROVIDER_FACTORIES, trafficProvider } from './factory';
export type { CanaryStart, TrafficContext, TrafficProvider, TrafficProviderFactory } from './provider';
