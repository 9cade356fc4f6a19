/**
 * api-gateway's other two routers beside its VirtualService: a Gateway API
 * HTTPRoute and an (NGINX) Ingress, both sending everything to the stable
 * Service, for the gateway-api and nginx traffic providers. No gateway or
 * ingress controller runs: the demo server reads their weights
 * (demo-server/kube-reader.ts) and splits its synthetic traffic by them.
 */
import * as k8s from '@kubernetes/client-node';
import { NAMESPACE } from './kube';

const NAME = 'api-gateway';
const CANARY = `${NAME}-canary`;
const HOST = 'api.yourdomain.com';
const HTTP_ROUTES = { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes' };

export function httpRoute(): k8s.KubernetesObject & { spec: unknown } {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name: NAME, namespace: NAMESPACE },
    spec: {
      parentRefs: [{ name: 'ai-saas-gateway' }],
      hostnames: [HOST],
      rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: NAME, port: 80 }] }],
    },
  };
}

export function ingress(): k8s.V1Ingress & k8s.KubernetesObject {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: { name: NAME, namespace: NAMESPACE },
    spec: {
      ingressClassName: 'nginx',
      rules: [
        {
          host: HOST,
          http: {
            paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: NAME, port: { number: 80 } } } }],
          },
        },
      ],
    },
  };
}

/** Both routers back to stable only: the route replaced as it was made, the canary's Ingress and Service gone. */
export async function resetRoutes(kc: k8s.KubeConfig): Promise<void> {
  const co = kc.makeApiClient(k8s.CustomObjectsApi);
  const net = kc.makeApiClient(k8s.NetworkingV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const route = httpRoute();
  const cur = (await co
    .getNamespacedCustomObject({ ...HTTP_ROUTES, namespace: NAMESPACE, name: NAME })
    .catch(() => undefined)) as k8s.KubernetesObject | undefined;
  if (cur)
    await co.replaceNamespacedCustomObject({
      ...HTTP_ROUTES,
      namespace: NAMESPACE,
      name: NAME,
      body: { ...route, metadata: { ...route.metadata, resourceVersion: cur.metadata?.resourceVersion } },
    });
  await net.deleteNamespacedIngress({ name: CANARY, namespace: NAMESPACE }).catch(() => undefined);
  await core.deleteNamespacedService({ name: CANARY, namespace: NAMESPACE }).catch(() => undefined);
}
