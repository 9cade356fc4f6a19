/**
 * The demo platform's configuration objects: what auth-service's pods read
 * (a settings ConfigMap from the release repository, a signing-key Secret),
 * put into every cluster by demo.ts and back to these values by `reset`.
 */
import type * as k8s from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ROOT } from './common';
import { NAMESPACE } from './kube';

/**
 * auth-service's configuration, versioned with the release (config
 * services[].configMaps): its settings come from the release repository's
 * config/auth-service, its signing key from a Secret the pods read. Both are
 * put back to these values by `reset`.
 */
export const AUTH_CONFIG = 'auth-service-config';
export const AUTH_SECRET = 'auth-service-credentials';
/** A sandbox value, not a credential: the e2e secret scans look for it in histories, logs and notifications. */
export const AUTH_SIGNING_KEY = 'sandbox-signing-key-5d1c9a7e3b';

export function authConfiguration(): k8s.KubernetesObject[] {
  const settings = readFileSync(
    path.join(ROOT, 'scripts', 'sandbox', 'demo-repo', 'config', 'auth-service', 'settings.json'),
    'utf8',
  );
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: AUTH_CONFIG, namespace: NAMESPACE },
      data: { 'settings.json': settings },
    } as k8s.V1ConfigMap,
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: AUTH_SECRET, namespace: NAMESPACE },
      type: 'Opaque',
      data: { JWT_SIGNING_KEY: Buffer.from(AUTH_SIGNING_KEY).toString('base64') },
    } as k8s.V1Secret,
  ];
}

/** What auth-service's pods read: the settings ConfigMap as files, the signing key as a variable. */
export function authReferences(service: string): Partial<k8s.V1PodSpec> & { container: Partial<k8s.V1Container> } {
  if (service !== 'auth-service') return { container: {} };
  return {
    volumes: [{ name: 'settings', configMap: { name: AUTH_CONFIG } }],
    container: {
      volumeMounts: [{ name: 'settings', mountPath: '/etc/auth-service' }],
      envFrom: [{ secretRef: { name: AUTH_SECRET } }],
    },
  };
}
