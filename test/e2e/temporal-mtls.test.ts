/**
 * Temporal Cloud / mTLS (issue 21 item 5): a real four-service cluster
 * (scripts/sandbox/temporal-processes.ts) whose frontend requires client
 * certificates, made here with openssl: a CA, the frontend's certificate (for
 * 127.0.0.1 and a DNS name), a client certificate for the worker and
 * deployctl, one for the cluster's own services, and a client certificate
 * from another CA. A client without a certificate, or with the other CA's, is
 * refused; with the right one it works. Then the real worker process and
 * deployctl, given only TEMPORAL_TLS_CERT / KEY / CA / SERVER_NAME, run a
 * rolling deployment of v1.0.1 to the sandbox's staging environment through
 * it.
 *
 * The cluster's databases live in the sandbox's PostgreSQL under a role of
 * their own, and are dropped at the end with the role. Like the other
 * end-to-end suites it starts from `sandbox reset` (v1.0.0 everywhere) and
 * leaves the sandbox there for the next suite.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { promisify } from 'node:util';
import { Client, Connection, type TLSConfig } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { HOST, PORTS } from '../../scripts/sandbox/common';
import { psqlAdmin } from '../../scripts/sandbox/postgres';
import { ensureTemporalRole } from '../../scripts/sandbox/temporal';
import {
  dropDatabases,
  prepareDatabases,
  type ClusterLayout,
  type ClusterTls,
} from '../../scripts/sandbox/temporal-cluster';
import {
  freeClusterPorts,
  startClusterProcesses,
  type ClusterProcesses,
} from '../../scripts/sandbox/temporal-processes';
import { VERSION_ANNOTATION } from '../../src/domain/rollout';
import type { deployWorkflow } from '../../src/workflows/deploy';
import { adminKube, sandboxCli, TEST_POLICY } from '../helpers/e2e';
import { sandboxEnv } from '../helpers/sandbox';
import { REPO_ROOT } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

const run = promisify(execFile);
const TSX = path.join(REPO_ROOT, 'node_modules/.bin/tsx');
/** The frontend's name in its certificate; clients dial 127.0.0.1 and check this name. */
const SERVER_NAME = 'temporal-frontend.deploy.test';

interface Pki {
  ca: string;
  server: { crt: string; key: string };
  client: { crt: string; key: string };
  internal: { crt: string; key: string };
  foreign: { crt: string; key: string };
}

/** Certificates with openssl (argument arrays, no shell), keys readable by their owner only. */
function makePki(dir: string): Pki {
  mkdirSync(dir, { mode: 0o700 });
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string) =>
    openssl(
      'req',
      '-x509',
      ...ecKey,
      '-days',
      '2',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
    );
  const leaf = (name: string, caName: string, extensions: string[]) => {
    writeFileSync(
      path.join(dir, `${name}.cnf`),
      ['[ext]', 'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature', ...extensions, ''].join(
        '\n',
      ),
    );
    openssl('req', ...ecKey, '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      `${caName}.crt`,
      '-CAkey',
      `${caName}.key`,
      '-set_serial',
      `0x${randomBytes(8).toString('hex')}`,
      '-days',
      '2',
      '-extfile',
      `${name}.cnf`,
      '-extensions',
      'ext',
      '-out',
      `${name}.crt`,
    );
  };
  ca('ca');
  ca('foreign-ca');
  leaf('server', 'ca', [`subjectAltName=IP:127.0.0.1,DNS:${SERVER_NAME}`, 'extendedKeyUsage=serverAuth']);
  leaf('client', 'ca', ['extendedKeyUsage=clientAuth']);
  leaf('internal', 'ca', ['extendedKeyUsage=clientAuth']);
  // The same name and uses as the client's, signed by a CA the frontend does not trust.
  leaf('foreign', 'foreign-ca', ['extendedKeyUsage=clientAuth']);
  const pair = (name: string) => {
    const key = path.join(dir, `${name}.key`);
    chmodSync(key, 0o600);
    return { crt: path.join(dir, `${name}.crt`), key };
  };
  pair('ca');
  pair('foreign-ca');
  return {
    ca: path.join(dir, 'ca.crt'),
    server: pair('server'),
    client: pair('client'),
    internal: pair('internal'),
    foreign: pair('foreign'),
  };
}

/** Connects and asks for the server's info, as the SDK's client does; returns the error when refused. */
async function reach(address: string, tls: TLSConfig | undefined): Promise<Error | undefined> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: 3000, ...(tls ? { tls } : {}) });
    await connection.workflowService.getSystemInfo({});
    return undefined;
  } catch (err) {
    return err as Error;
  } finally {
    await connection?.close();
  }
}

/**
 * A bare TLS handshake with the frontend, to see why the SDK's client was
 * refused (it only says it could not connect): the error code of the alert
 * the frontend sent, or `accepted` when it kept the connection. With TLS 1.3
 * the frontend judges the client's certificate after the client's side of
 * the handshake is done, so an accepted connection is watched a moment.
 */
function handshake(
  address: string,
  opts: { servername?: string | null; cert?: string; key?: string },
): Promise<string> {
  const [host, port] = address.split(':');
  return new Promise((resolve) => {
    const socket = tls.connect({
      host,
      port: Number(port),
      // null: no name sent, the certificate is checked against the address.
      ...(opts.servername === null ? {} : { servername: opts.servername ?? SERVER_NAME }),
      ca: readFileSync(pki.ca),
      ALPNProtocols: ['h2'],
      ...(opts.cert ? { cert: readFileSync(opts.cert), key: readFileSync(opts.key!) } : {}),
    });
    let timer: NodeJS.Timeout | undefined;
    const done = (outcome: string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    socket.on('data', () => undefined);
    socket.once('secureConnect', () => (timer = setTimeout(() => done('accepted'), 1000)));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message));
    socket.once('close', () => done('closed'));
  });
}

const tag = randomBytes(4).toString('hex');
const role = `temporal_mtls_${tag}`;
let dir: string;
let pki: Pki;
let layout: ClusterLayout;
let cluster: ClusterProcesses | undefined;
let roleCreated = false;
let databasesPrepared = false;
let worker: ChildProcess | undefined;

beforeAll(async () => {
  await sandboxCli('reset');
  dir = mkdtempSync(path.join(tmpdir(), 'temporal-mtls-'));
  pki = makePki(path.join(dir, 'pki'));
  const password = randomBytes(16).toString('hex');
  ensureTemporalRole(role, password);
  roleCreated = true;
  const tls: ClusterTls = {
    certFile: pki.server.crt,
    keyFile: pki.server.key,
    caFile: pki.ca,
    clientCertFile: pki.internal.crt,
    clientKeyFile: pki.internal.key,
    serverName: SERVER_NAME,
  };
  layout = {
    dir: path.join(dir, 'cluster'),
    ports: await freeClusterPorts(),
    database: { host: HOST, port: PORTS.POSTGRES, user: role, password, name: role },
    tls,
  };
  const started = Date.now();
  databasesPrepared = true;
  prepareDatabases(layout);
  const schemaMs = Date.now() - started;
  cluster = await startClusterProcesses(layout);
  console.log(
    `mTLS cluster on ${cluster.address}: schema ${(schemaMs / 1000).toFixed(1)}s, services and namespace ${((Date.now() - started - schemaMs) / 1000).toFixed(1)}s`,
  );
}, 180_000);

afterAll(async () => {
  if (worker && worker.exitCode === null && worker.signalCode === null) {
    const exited = new Promise((r) => worker!.once('exit', r));
    worker.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 15_000)))]);
    clearTimeout(timer);
    if (worker.exitCode === null && worker.signalCode === null) {
      worker.kill('SIGKILL');
      await exited;
    }
  }
  await cluster?.stop();
  if (databasesPrepared) dropDatabases(layout);
  if (roleCreated) psqlAdmin('postgres', `DROP ROLE IF EXISTS ${role};`);
  if (dir) rmSync(dir, { recursive: true, force: true });
  // The next suite starts from v1.0.0 everywhere.
  await sandboxCli('reset');
}, 240_000);

const withCa = (): TLSConfig => ({ serverNameOverride: SERVER_NAME, serverRootCACertificate: readFileSync(pki.ca) });
const pairOf = (p: { crt: string; key: string }) => ({ crt: readFileSync(p.crt), key: readFileSync(p.key) });

test('the keys are readable by their owner only', () => {
  for (const p of [pki.server, pki.client, pki.internal, pki.foreign]) expect(statSync(p.key).mode & 0o777).toBe(0o600);
});

test('the frontend refuses a client without a certificate, and one with a certificate from another CA', async () => {
  const address = cluster!.address;
  const [plain, noCert, foreign, right] = await Promise.all([
    // Plain gRPC: the frontend only speaks TLS.
    reach(address, undefined),
    // TLS, the frontend's CA trusted, but no certificate of our own.
    reach(address, withCa()),
    // A client certificate the frontend's CA did not sign.
    reach(address, { ...withCa(), clientCertPair: pairOf(pki.foreign) }),
    reach(address, { ...withCa(), clientCertPair: pairOf(pki.client) }),
  ]);
  expect({ plain: plain?.message, noCert: noCert?.message, foreign: foreign?.message }).toEqual({
    plain: 'Failed to connect before the deadline',
    noCert: 'Failed to connect before the deadline',
    foreign: 'Failed to connect before the deadline',
  });
  expect(right).toBeUndefined();
  // Why: the frontend's alerts in the handshake.
  expect(await handshake(address, {})).toBe('ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED');
  expect(await handshake(address, { cert: pki.foreign.crt, key: pki.foreign.key })).toBe(
    'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  );
  expect(await handshake(address, { cert: pki.client.crt, key: pki.client.key })).toBe('accepted');
}, 60_000);

test('clients check the frontend by the DNS name or the address in its certificate', async () => {
  const address = cluster!.address;
  const client = { cert: pki.client.crt, key: pki.client.key };
  // Given no name, a client checks the address it dials: 127.0.0.1 is in the certificate too.
  expect(await handshake(address, { ...client, servername: null })).toBe('accepted');
  // A name the frontend's certificate does not carry is refused by the client.
  const wrongName = await reach(address, {
    ...withCa(),
    serverNameOverride: 'elsewhere.deploy.test',
    clientCertPair: pairOf(pki.client),
  });
  expect(wrongName?.message).toBe('Failed to connect before the deadline');
  expect(await handshake(address, { ...client, servername: 'elsewhere.deploy.test' })).toBe(
    'ERR_TLS_CERT_ALTNAME_INVALID',
  );
}, 60_000);

test('the worker process and deployctl run a rolling deployment to staging through the mTLS frontend', async () => {
  // The example config; staging allows the rolling deployment without backup and migrations the input asks for.
  const raw = parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8'));
  raw.environments.staging.policy = TEST_POLICY;
  const configFile = path.join(dir, 'deploy.config.yaml');
  writeFileSync(configFile, stringify(raw));
  const taskQueue = `mtls-${tag}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ...sandboxEnv(),
    DEPLOY_CONFIG: configFile,
    DEPLOY_METRICS_ADDRESS: 'off',
    DEPLOY_WORKFLOW_SOURCE: '1',
    TEMPORAL_ADDRESS: cluster!.address,
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: taskQueue,
    TEMPORAL_TLS_CERT: pki.client.crt,
    TEMPORAL_TLS_KEY: pki.client.key,
    TEMPORAL_TLS_CA: pki.ca,
    TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
  };
  for (const k of [
    'TEMPORAL_API_KEY',
    'TEMPORAL_TLS',
    'DEPLOY_CODEC_KEY',
    'DEPLOY_CODEC_KEY_ID',
    'DEPLOY_CODEC_OLD_KEYS',
  ])
    delete env[k];
  for (const k of Object.keys(env)) if (k.startsWith('JEST_')) delete env[k];

  const logFile = path.join(dir, 'worker.log');
  const log = createWriteStream(logFile);
  worker = spawn(TSX, [path.join(REPO_ROOT, 'src/worker.ts')], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  worker.stdout!.pipe(log, { end: false });
  worker.stderr!.pipe(log, { end: false });
  worker.once('exit', () => log.end());
  const workerStarted = Date.now();
  await waitFor(
    async () => {
      if (worker!.exitCode !== null)
        throw new Error(`the worker exited (${worker!.exitCode}): ${readFileSync(logFile, 'utf8').slice(-2000)}`);
      return readFileSync(logFile, 'utf8').includes('worker: polling');
    },
    120_000,
    500,
  );
  const workerMs = Date.now() - workerStarted;

  const versions = async () =>
    Object.fromEntries(
      (await adminKube('staging').apps.listNamespacedDeployment({ namespace: 'ai-saas' })).items.map((d) => [
        d.metadata!.name!,
        d.metadata?.annotations?.[VERSION_ANNOTATION],
      ]),
    );
  const before = await versions();

  const workflowId = `deploy-staging-1.0.1-mtls-${tag}`;
  const deployStarted = Date.now();
  const deployctl = await run(
    TSX,
    [
      path.join(REPO_ROOT, 'src/client.ts'),
      'deploy',
      '--version',
      '1.0.1',
      '--env',
      'staging',
      '--strategy',
      'rolling',
      '--no-backup',
      '--no-migrate',
      '--requested-by',
      'mtls-e2e',
      '--workflow-id',
      workflowId,
      '--wait',
    ],
    { cwd: REPO_ROOT, env, timeout: 150_000, maxBuffer: 10 * 1024 * 1024 },
  ).catch((err: { code?: number; stdout?: string; stderr?: string }) => {
    throw new Error(
      `deployctl exited ${err.code}:\n${err.stdout}\n${err.stderr}\nworker log:\n${readFileSync(logFile, 'utf8').slice(-3000)}`,
    );
  });
  const deployMs = Date.now() - deployStarted;
  console.log(
    `worker ready in ${(workerMs / 1000).toFixed(1)}s; deployment in ${(deployMs / 1000).toFixed(1)}s; staging before: ${JSON.stringify(before)}`,
  );
  expect(deployctl.stdout).toMatch(new RegExp(`^succeeded: ${workflowId} \\(1\\.0\\.1 on staging\\)$`, 'm'));
  // The client key went to the SDK only: neither the worker's log nor deployctl's output holds any of it.
  const keyBody = readFileSync(pki.client.key, 'utf8')
    .replace(/-----[^-]+-----/g, '')
    .replace(/\s/g, '');
  for (const text of [readFileSync(logFile, 'utf8'), deployctl.stdout, deployctl.stderr])
    for (const line of keyBody.match(/.{16}/g)!) expect(text).not.toContain(line);

  // Read back over mTLS: the result, and the search attributes in the cluster's SQL visibility.
  const connection = await Connection.connect({
    address: cluster!.address,
    tls: { ...withCa(), clientCertPair: pairOf(pki.client) },
  });
  try {
    const client = new Client({ connection, namespace: 'default' });
    const result = await client.workflow.getHandle<typeof deployWorkflow>(workflowId).result();
    expect(result.outcome).toBe('succeeded');
    expect(result.status.steps.filter((s) => s.state === 'failed')).toEqual([]);
    const found = await waitFor(async () => {
      const ids: string[] = [];
      for await (const w of client.workflow.list({
        query: `DeployEnvironment = 'staging' AND DeployVersion = '1.0.1' AND WorkflowId = '${workflowId}'`,
      }))
        ids.push(w.workflowId);
      return ids.length ? ids : undefined;
    }, 15_000);
    expect(found).toEqual([workflowId]);
  } finally {
    await connection.close();
  }

  // Staging's Deployments run v1.0.1, each image pinned by digest.
  const list = await adminKube('staging').apps.listNamespacedDeployment({ namespace: 'ai-saas' });
  const platform = list.items.filter((d) => !d.metadata!.name!.endsWith('-canary'));
  expect(platform.length).toBeGreaterThanOrEqual(6);
  for (const d of platform) {
    const name = d.metadata!.name!;
    expect([name, d.metadata?.annotations?.[VERSION_ANNOTATION]]).toEqual([name, '1.0.1']);
    expect([name, d.spec!.template.spec!.containers[0].image]).toEqual([
      name,
      expect.stringMatching(/@sha256:[0-9a-f]{64}$/),
    ]);
  }
}, 300_000);
