/**
 * The cluster's config as scripts/sandbox/temporal-cluster.ts writes it: what
 * the server would otherwise only reject at start-up (a membership port its
 * SMALLINT column cannot hold), and where the mTLS settings go. The cluster
 * running with them is test/e2e/temporal-mtls.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { serviceConfig, writeClusterConfig, type ClusterLayout } from '../../scripts/sandbox/temporal-cluster';

const layout = (membership: number, tls?: ClusterLayout['tls']): ClusterLayout => ({
  dir: mkdtempSync(path.join(tmpdir(), 'cluster-config-')),
  ports: {
    grpc: { frontend: 21001, history: 21002, matching: 21003, worker: 21004 },
    membership: { frontend: membership, history: 21006, matching: 21007, worker: 21008 },
    metrics: { frontend: 21009, history: 21010, matching: 21011, worker: 21012 },
    http: 21013,
  },
  database: { host: '127.0.0.1', port: 5432, user: 'temporal', password: 'x', name: 'temporal' },
  ...(tls ? { tls } : {}),
});

test('a membership port above 32767 is refused before any file is written', () => {
  const l = layout(40_000);
  try {
    expect(() => writeClusterConfig(l)).toThrow('membership ports must be below 32768 (frontend)');
    const ok = layout(32_767);
    expect(Object.keys(writeClusterConfig(ok))).toEqual(['history', 'matching', 'frontend', 'worker']);
    rmSync(ok.dir, { recursive: true, force: true });
  } finally {
    rmSync(l.dir, { recursive: true, force: true });
  }
});

test('with mTLS the frontend requires client certificates of the CA and the services present their own', () => {
  const tls = {
    certFile: '/pki/server.crt',
    keyFile: '/pki/server.key',
    caFile: '/pki/ca.crt',
    clientCertFile: '/pki/internal.crt',
    clientKeyFile: '/pki/internal.key',
    serverName: 'temporal.test',
  };
  const plain = layout(21005);
  const secured = layout(21005, tls);
  try {
    const global = (l: ClusterLayout, s: 'frontend' | 'worker') =>
      (serviceConfig(l, s) as { global: Record<string, unknown> }).global;
    expect(global(plain, 'frontend').tls).toBeUndefined();
    for (const s of ['frontend', 'worker'] as const)
      expect(global(secured, s).tls).toEqual({
        frontend: {
          server: {
            certFile: '/pki/server.crt',
            keyFile: '/pki/server.key',
            requireClientAuth: true,
            clientCaFiles: ['/pki/ca.crt'],
          },
        },
        systemWorker: {
          certFile: '/pki/internal.crt',
          keyFile: '/pki/internal.key',
          client: { serverName: 'temporal.test', rootCaFiles: ['/pki/ca.crt'] },
        },
      });
  } finally {
    for (const l of [plain, secured]) rmSync(l.dir, { recursive: true, force: true });
  }
});
