/**
 * Connection settings shared by the worker and deployctl: a local dev server
 * by default, or a hosted Temporal with mTLS or an API key.
 */
import { readFileSync } from 'node:fs';

export interface TemporalSettings {
  address: string;
  namespace: string;
  tls?:
    | { clientCertPair?: { crt: Buffer; key: Buffer }; serverRootCACertificate?: Buffer; serverNameOverride?: string }
    | true;
  apiKey?: string;
}

export const DEFAULT_ADDRESS = '127.0.0.1:7233';

export function temporalSettings(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  const address = env.TEMPORAL_ADDRESS || DEFAULT_ADDRESS;
  const namespace = env.TEMPORAL_NAMESPACE || 'default';
  const apiKey = env.TEMPORAL_API_KEY || undefined;
  const certPath = env.TEMPORAL_TLS_CERT;
  const keyPath = env.TEMPORAL_TLS_KEY;
  const caPath = env.TEMPORAL_TLS_CA;
  let tls: TemporalSettings['tls'];
  if (certPath || keyPath) {
    if (!certPath || !keyPath)
      throw new Error('set both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY (paths of the client certificate and key)');
    tls = {
      clientCertPair: { crt: readFileSync(certPath), key: readFileSync(keyPath) },
      ...(caPath ? { serverRootCACertificate: readFileSync(caPath) } : {}),
      ...(env.TEMPORAL_TLS_SERVER_NAME ? { serverNameOverride: env.TEMPORAL_TLS_SERVER_NAME } : {}),
    };
  } else if (apiKey || env.TEMPORAL_TLS === 'true') {
    tls = true;
  }
  return { address, namespace, ...(tls ? { tls } : {}), ...(apiKey ? { apiKey } : {}) };
}
