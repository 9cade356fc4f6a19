/**
 * Secrets never appear in histories, logs or summaries. Three parts:
 *  - the scanner catches a planted secret in every form it can take in a
 *    history (a self-check: a scanner that finds nothing proves nothing);
 *  - every committed history (recorded from real end-to-end runs, with real
 *    smoke checks, backups and database URLs) and any test log file is clean
 *    of the sandbox's secrets;
 *  - a live run: the real worker process and deployctl with recognisable
 *    webhook URLs and a Redis URL with a password, failing in pre-flight (a
 *    failure path, where leaks usually hide, that changes nothing in the
 *    sandbox); its histories, summary, worker log, deployctl output and
 *    notification bodies are clean;
 *  - a live run whose pre-deployment check is given every secret the worker
 *    holds (passEnv) and prints them and its environment, then fails: the
 *    histories (payloads decoded too), status, log, output and notifications
 *    hold them only as ***.
 */
import { Client } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { main } from '../../src/client';
import { codecFromEnv, payloadFromJson, type EncryptionCodec, type JsonPayload } from '../../src/codec';
import { ExitCode } from '../../src/cli/exit-codes';
import { HISTORIES_DIR } from '../helpers/histories';
import { sandboxEnv } from '../helpers/sandbox';
import {
  formatFindings,
  sandboxSecrets,
  scanForSecrets,
  secretForms,
  type ScanText,
  type Secret,
} from '../helpers/secrets';
import { devServerEnv, uniqueQueue } from '../helpers/temporal';
import { REPO_ROOT } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

const read = (file: string): ScanText => ({ source: path.relative(REPO_ROOT, file), text: readFileSync(file, 'utf8') });

/** Log files a test run leaves behind: *.log at the top, under .local/ and test/, and under DEPLOY_TEST_LOGS (comma-separated). */
function testLogFiles(): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number) => {
    if (!existsSync(dir) || depth > 6) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory() && e.name !== 'node_modules') walk(p, depth + 1);
      else if (e.isFile() && /\.log$/.test(e.name) && statSync(p).size < 64 * 1024 * 1024) found.push(p);
    }
  };
  for (const f of readdirSync(REPO_ROOT)) if (f.endsWith('.log')) found.push(path.join(REPO_ROOT, f));
  walk(path.join(REPO_ROOT, '.local'), 0);
  walk(path.join(REPO_ROOT, 'test'), 0);
  for (const extra of (process.env.DEPLOY_TEST_LOGS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (existsSync(extra) && statSync(extra).isDirectory()) walk(extra, 0);
    else if (existsSync(extra)) found.push(extra);
  }
  return found;
}

const historyFiles = () =>
  readdirSync(HISTORIES_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => path.join(HISTORIES_DIR, f));

describe('the scanner (self-check)', () => {
  const secret: Secret = { name: 'PLANTED', value: `planted-"secret"-${randomBytes(6).toString('hex')}` };
  const history = () => readFileSync(historyFiles()[0], 'utf8');

  test('finds nothing in a clean history', () => {
    expect(scanForSecrets([{ source: 'clean.json', text: history() }], [secret])).toEqual([]);
  });

  test('finds a secret planted plainly, with its line and column', () => {
    const lines = history().split('\n');
    lines[3] = `${lines[3]} ${secret.value}`;
    const findings = scanForSecrets([{ source: 'plain.json', text: lines.join('\n') }], [secret]);
    expect(findings[0]).toMatchObject({
      source: 'plain.json',
      secret: 'PLANTED',
      form: 'plain',
      line: 4,
      column: lines[3].length - secret.value.length + 1,
    });
    expect(formatFindings(findings)).toContain('plain.json:4:');
    expect(formatFindings(findings)).not.toContain(secret.value);
  });

  test('finds a secret planted inside a payload (JSON in base64), at every byte alignment', () => {
    for (const pad of ['', 'x', 'xy']) {
      const doc = JSON.parse(history()) as { events: any[] };
      const started = doc.events[0].workflowExecutionStartedEventAttributes;
      const input = JSON.parse(Buffer.from(started.input.payloads[0].data, 'base64').toString());
      started.input.payloads[0].data = Buffer.from(
        JSON.stringify({ ...input, requestedBy: `${pad}${secret.value}` }),
      ).toString('base64');
      const text = JSON.stringify(doc, null, 1);
      const findings = scanForSecrets([{ source: 'payload.json', text }], [secret]);
      expect(findings.length).toBeGreaterThan(0);
      expect(findings.some((f) => f.form.startsWith('base64(json-escaped'))).toBe(true);
      expect(findings.some((f) => f.form.startsWith('inside decoded base64'))).toBe(true);
      // The position is the payload's line in the file.
      const line = text.split('\n').findIndex((l) => l.includes(started.input.payloads[0].data)) + 1;
      expect(findings.every((f) => f.line === line)).toBe(true);
    }
  });

  test('finds a URL-encoded, a base64url and a doubly encoded secret', () => {
    const b64url = Buffer.from(`!${secret.value}`).toString('base64url');
    const nested = Buffer.from(
      JSON.stringify({ data: Buffer.from(JSON.stringify({ note: secret.value })).toString('base64') }),
    ).toString('base64');
    const texts = [
      { source: 'url.log', text: `GET /x?p=${encodeURIComponent(secret.value)}` },
      { source: 'b64url.log', text: `token=${b64url}` },
      { source: 'nested.json', text: `{"data":"${nested}"}` },
    ];
    expect(new Set(scanForSecrets(texts, [secret]).map((f) => f.source))).toEqual(
      new Set(['url.log', 'b64url.log', 'nested.json']),
    );
  });

  test('every form is distinct and short secrets are refused', () => {
    const forms = secretForms('p@ss/word+1');
    expect(new Set(forms.map((f) => f.text)).size).toBe(forms.length);
    expect(() => scanForSecrets([], [{ name: 'SHORT', value: 'abc' }])).toThrow(/shorter than 6/);
  });
});

describe('committed histories and test logs', () => {
  test('no sandbox secret in any committed history or test log file', () => {
    const files = historyFiles();
    expect(files.length).toBeGreaterThan(0);
    const secrets = sandboxSecrets({
      ...sandboxEnv(),
      ...pick(process.env, ['SLACK_WEBHOOK_URL', 'DEPLOY_WEBHOOK_URL']),
    });
    expect(secrets.map((s) => s.name)).toEqual(
      expect.arrayContaining(['SMOKE_PASSWORD', 'AWS_SECRET_ACCESS_KEY', 'AWS_ACCESS_KEY_ID', 'DATABASE_URL password']),
    );
    // The histories did carry the smoke checks and the backups (so a leak there would have been seen).
    const all = files.map(read);
    expect(all.some((t) => t.text.includes('"runSmokeChecks"'))).toBe(true);
    expect(all.some((t) => t.text.includes('"backupDatabase"'))).toBe(true);
    const findings = scanForSecrets([...all, ...testLogFiles().map(read)], secrets);
    if (findings.length) throw new Error(`secrets found:\n${formatFindings(findings)}`);
  });
});

function pick(env: NodeJS.ProcessEnv, names: string[]): Record<string, string> {
  return Object.fromEntries(names.filter((n) => env[n]).map((n) => [n, env[n]!]));
}

describe('a live run through the worker process and deployctl', () => {
  const tag = randomBytes(5).toString('hex');
  const environment = `secrets-${tag}`;
  const received: { path: string; body: string }[] = [];
  let receiver: Server;
  let env: TestWorkflowEnvironment;
  let worker: ChildProcess | undefined;
  let dir: string;
  let logFile: string;
  let log: ReturnType<typeof createWriteStream> | undefined;
  let runEnv: Record<string, string>;
  let address: string;
  const taskQueue = uniqueQueue('secrets');

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'secrets-run-'));
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    // A port nothing listens on: Redis is "down", so pre-flight fails before anything changes.
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const closed = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));

    env = await devServerEnv();
    address = env.connection.options.address;
    const raw = parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8'));
    // Its own environment (no lock shared with other suites), and no summary object in the shared bucket.
    raw.environments = { [environment]: raw.environments.production };
    // A rolling deployment (the input may only tighten the config, so it is allowed here).
    raw.environments[environment].policy.strategies = ['rolling', 'canary', 'blue-green'];
    raw.defaultEnvironment = environment;
    raw.summary.store = false;
    raw.temporal.searchAttributes = false;
    const configFile = path.join(dir, 'deploy.config.yaml');
    writeFileSync(configFile, stringify(raw));
    runEnv = {
      ...(process.env as Record<string, string>),
      ...sandboxEnv(),
      SLACK_WEBHOOK_URL: `http://127.0.0.1:${port}/services/T0SECRET/B0SECRET/slack-secret-${tag}`,
      DEPLOY_WEBHOOK_URL: `http://127.0.0.1:${port}/hooks/deploy-secret-${tag}`,
      REDIS_URL: `redis://:redis-secret-${tag}@127.0.0.1:${closed}`,
      DEPLOY_CONFIG: configFile,
      // /metrics stays on the address the observe suite's worker uses.
      DEPLOY_METRICS_ADDRESS: 'off',
      TEMPORAL_ADDRESS: address,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: taskQueue,
    };
    delete runEnv.DEPLOY_CODEC_KEY;
    logFile = path.join(dir, 'worker.log');
    log = createWriteStream(logFile);
    worker = spawn(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), [path.join(REPO_ROOT, 'src/worker.ts')], {
      cwd: REPO_ROOT,
      env: runEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout!.pipe(log, { end: false });
    worker.stderr!.pipe(log, { end: false });
    worker.once('exit', () => log?.end());
    await waitFor(
      async () => {
        if (worker!.exitCode !== null)
          throw new Error(`the worker exited (${worker!.exitCode}): ${readFileSync(logFile, 'utf8').slice(-2000)}`);
        return readFileSync(logFile, 'utf8').includes('worker: polling');
      },
      150_000,
      500,
    );
  }, 240_000);

  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker!.once('exit', r));
      worker.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 15_000)))]);
      clearTimeout(timer);
      if (worker.exitCode === null) worker.kill('SIGKILL');
    }
    log?.end();
    await env?.teardown();
    receiver?.closeAllConnections();
    await new Promise((r) => receiver?.close(r));
  }, 60_000);

  test('a deployment that fails in pre-flight leaves no secret in its histories, summary, logs, output or notifications', async () => {
    const workflowId = `deploy-secrets-${tag}`;
    const out: string[] = [];
    const code = await main(
      [
        'node',
        'deployctl',
        'deploy',
        '--version',
        '1.0.1',
        '--strategy',
        'rolling',
        '--requested-by',
        'secrets-e2e',
        '--workflow-id',
        workflowId,
        '--wait',
      ],
      {
        out: (l) => out.push(l),
        err: (l) => out.push(l),
        env: runEnv,
        isTTY: false,
        pollMs: 300,
      },
    );
    const output = out.join('\n');
    expect(code).toBe(ExitCode.Failed);
    expect(output).toMatch(/failed: .*pre-flight failed: .*redis/);

    // Both receivers got "started" and "failed": the webhooks were really used.
    await waitFor(async () => received.length >= 4, 10_000);
    const hooks = received
      .filter((r) => r.path.includes('/hooks/'))
      .map((r) => (JSON.parse(r.body) as { kind: string }).kind);
    expect(hooks).toEqual(['started', 'failed']);
    expect(received.filter((r) => r.path.includes('/services/'))).toHaveLength(2);

    const client = new Client({ connection: env.connection, namespace: 'default' });
    const texts: ScanText[] = [];
    for (const id of [workflowId, `deploy-lock-${environment}`]) {
      const history = await client.workflow.getHandle(id).fetchHistory();
      texts.push({ source: `history ${id}`, text: JSON.stringify(JSON.parse(historyToJSON(history)), null, 1) });
    }
    // The history holds what a leak would look like: the plan, pre-flight's error and the summary.
    const deployHistory = texts[0].text;
    expect(deployHistory).toContain('"writeSummary"');
    expect(deployHistory).toContain('pre-flight failed');

    const workerLog = readFileSync(logFile, 'utf8');
    expect(workerLog).toContain('worker: polling');
    texts.push({ source: path.basename(logFile), text: workerLog }, { source: 'deployctl output', text: output });
    texts.push(
      ...received.map((r, i) => ({
        source: `notification ${i + 1} (${r.path.includes('slack') ? 'slack' : 'webhook'})`,
        text: r.body,
      })),
    );

    const secrets = sandboxSecrets(runEnv);
    expect(secrets.map((s) => s.name)).toEqual(
      expect.arrayContaining([
        'SLACK_WEBHOOK_URL',
        'DEPLOY_WEBHOOK_URL',
        'REDIS_URL password',
        'SMOKE_PASSWORD',
        'DATABASE_URL password',
      ]),
    );
    const findings = scanForSecrets(texts, secrets);
    if (findings.length) throw new Error(`secrets found:\n${formatFindings(findings)}`);
    // The scan is not vacuous: the same texts with a secret planted are caught.
    const planted = scanForSecrets(
      [{ ...texts[0], text: texts[0].text.replace('pre-flight failed', `pre-flight failed ${runEnv.REDIS_URL}`) }],
      secrets,
    );
    expect(planted.map((f) => f.secret)).toContain('REDIS_URL password');
  }, 180_000);
});

/** Every payload of a proto3-JSON history decoded with the codec, so the scan reads what the payloads hold. */
async function decodedPayloads(json: unknown, codec: EncryptionCodec): Promise<string> {
  const found: JsonPayload[] = [];
  const walk = (n: unknown): void => {
    if (!n || typeof n !== 'object') return;
    if (Array.isArray(n)) return n.forEach(walk);
    const o = n as Record<string, unknown>;
    if (o.metadata && typeof (o.metadata as Record<string, unknown>).encoding === 'string') found.push(o);
    else Object.values(o).forEach(walk);
  };
  walk(json);
  const decoded = await codec.decode(found.map(payloadFromJson));
  return decoded.map((p) => Buffer.from(p.data ?? new Uint8Array()).toString('utf8')).join('\n');
}

describe('a failing pre-deployment check that prints its environment and every secret it is given', () => {
  const tag = randomBytes(5).toString('hex');
  const environment = `secrets-check-${tag}`;
  const received: { path: string; body: string }[] = [];
  const taskQueue = uniqueQueue('secrets-check');
  let receiver: Server;
  let env: TestWorkflowEnvironment;
  let worker: ChildProcess | undefined;
  let logFile: string;
  let runEnv: Record<string, string>;
  // Handed to the check by passEnv, so it can print them (the worker's other variables it never sees).
  const GIVEN = [
    'REGISTRY_PASSWORD',
    'DEPLOY_CODEC_KEY',
    'DEPLOY_CODEC_AUTH_TOKEN',
    'SLACK_WEBHOOK_URL',
    'DEPLOY_WEBHOOK_URL',
    'DATABASE_URL',
    'REDIS_URL',
    'SMOKE_PASSWORD',
    'AWS_SECRET_ACCESS_KEY',
    'KUBECONFIG_WORKER',
  ];
  // Prints the token line of the kubeconfig it was pointed at (the ServiceAccount token), then every variable
  // it sees (within the 20 lines a failure keeps), and fails.
  const LEAKY = [
    'try { for (const l of require("fs").readFileSync(process.env.KUBECONFIG_WORKER, "utf8").split("\\n")) if (l.includes("token")) console.log(l); } catch (e) { console.log(String(e)); }',
    'for (const k of Object.keys(process.env).sort()) console.log(`${k}=${process.env[k]}`);',
    'process.exit(1);',
  ].join(' ');

  beforeAll(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'secrets-check-'));
    receiver = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        received.push({ path: req.url ?? '', body });
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const port = (receiver.address() as AddressInfo).port;
    env = await devServerEnv();
    const raw = parse(readFileSync(path.join(REPO_ROOT, 'deploy.config.yaml'), 'utf8'));
    raw.environments = { [environment]: raw.environments.production };
    raw.defaultEnvironment = environment;
    raw.summary.store = false;
    raw.temporal.searchAttributes = false;
    raw.notifications = {
      ...raw.notifications,
      slackWebhookEnv: 'SLACK_WEBHOOK_URL',
      webhookEnv: 'DEPLOY_WEBHOOK_URL',
    };
    raw.preDeploymentChecks = [{ name: 'leaky', command: ['node', '-e', LEAKY], passEnv: GIVEN, timeout: '1m' }];
    // The test deploys with --strategy rolling: the environment's policy allows it (the input may only tighten).
    raw.environments[environment].policy.strategies = ['rolling', 'canary', 'blue-green'];
    const configFile = path.join(dir, 'deploy.config.yaml');
    writeFileSync(configFile, stringify(raw));
    runEnv = {
      ...(process.env as Record<string, string>),
      ...sandboxEnv(),
      REGISTRY_USERNAME: `registry-user-${tag}`,
      REGISTRY_PASSWORD: `registry-secret-${tag}`,
      DEPLOY_CODEC_KEY: randomBytes(32).toString('base64'),
      DEPLOY_CODEC_AUTH_TOKEN: `codec-token-${tag}`,
      SLACK_WEBHOOK_URL: `http://127.0.0.1:${port}/services/T0SECRET/B0SECRET/slack-secret-${tag}`,
      DEPLOY_WEBHOOK_URL: `http://127.0.0.1:${port}/hooks/deploy-secret-${tag}`,
      DEPLOY_CONFIG: configFile,
      // /metrics stays on the address the observe suite's worker uses.
      DEPLOY_METRICS_ADDRESS: 'off',
      TEMPORAL_ADDRESS: env.connection.options.address,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: taskQueue,
    };
    // TEMPORAL_API_KEY turns TLS on, which the local dev server does not speak: covered by the redactor's unit test.
    delete runEnv.TEMPORAL_API_KEY;
    logFile = path.join(dir, 'worker.log');
    const log = createWriteStream(logFile);
    worker = spawn(path.join(REPO_ROOT, 'node_modules/.bin/tsx'), [path.join(REPO_ROOT, 'src/worker.ts')], {
      cwd: REPO_ROOT,
      env: runEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout!.pipe(log, { end: false });
    worker.stderr!.pipe(log, { end: false });
    worker.once('exit', () => log.end());
    await waitFor(
      async () => {
        if (worker!.exitCode !== null)
          throw new Error(`the worker exited (${worker!.exitCode}): ${readFileSync(logFile, 'utf8').slice(-2000)}`);
        return readFileSync(logFile, 'utf8').includes('worker: polling');
      },
      150_000,
      500,
    );
  }, 240_000);

  afterAll(async () => {
    if (worker && worker.exitCode === null) {
      const exited = new Promise((r) => worker!.once('exit', r));
      worker.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 15_000)))]);
      clearTimeout(timer);
      if (worker.exitCode === null) worker.kill('SIGKILL');
    }
    await env?.teardown();
    receiver?.closeAllConnections();
    await new Promise((r) => receiver?.close(r));
  }, 60_000);

  test('the check fails; its output reaches no history, status, summary, log, deployctl output or notification unredacted', async () => {
    const workflowId = `deploy-secrets-check-${tag}`;
    const out: string[] = [];
    const code = await main(
      [
        'node',
        'deployctl',
        'deploy',
        '--version',
        '1.0.1',
        '--strategy',
        'rolling',
        '--requested-by',
        'secrets-e2e',
      ].concat(['--workflow-id', workflowId, '--wait']),
      { out: (l) => out.push(l), err: (l) => out.push(l), env: runEnv, isTTY: false, pollMs: 300 },
    );
    const output = out.join('\n');
    expect(code).toBe(ExitCode.Failed);
    expect(output).toMatch(/pre-deployment check "leaky"/);
    await waitFor(async () => received.length >= 4, 10_000);

    const client = new Client({
      connection: env.connection,
      namespace: 'default',
      dataConverter: { payloadCodecs: [codecFromEnv(runEnv)!] },
    });
    const codec = codecFromEnv(runEnv)!;
    const texts: ScanText[] = [];
    for (const id of [workflowId, `deploy-lock-${environment}`]) {
      const json = JSON.parse(historyToJSON(await client.workflow.getHandle(id).fetchHistory())) as unknown;
      texts.push({ source: `history ${id}`, text: JSON.stringify(json, null, 1) });
      texts.push({ source: `history ${id} (payloads decoded)`, text: await decodedPayloads(json, codec) });
    }
    // The failure did carry the check's output, redacted: the names are there, the values are not.
    const failureText = texts.map((t) => t.text).join('\n');
    expect(failureText).toContain('REGISTRY_PASSWORD=***');
    expect(failureText).not.toContain('TEMPORAL_ADDRESS=');
    const status = await client.workflow.getHandle(workflowId).query('status');
    texts.push({ source: 'status', text: JSON.stringify(status) });
    texts.push(
      { source: 'worker log', text: readFileSync(logFile, 'utf8') },
      { source: 'deployctl output', text: output },
    );
    texts.push(...received.map((r, i) => ({ source: `notification ${i + 1}`, text: r.body })));

    const secrets = [...sandboxSecrets(runEnv), { name: 'REGISTRY_USERNAME', value: runEnv.REGISTRY_USERNAME }];
    expect(secrets.map((s) => s.name)).toEqual(
      expect.arrayContaining([
        'REGISTRY_PASSWORD',
        'DEPLOY_CODEC_KEY',
        'DEPLOY_CODEC_AUTH_TOKEN',
        'ServiceAccount token',
        'SLACK_WEBHOOK_URL',
        'DEPLOY_WEBHOOK_URL',
        'DATABASE_URL password',
        'SMOKE_PASSWORD',
      ]),
    );
    const findings = scanForSecrets(texts, secrets);
    if (findings.length) throw new Error(`secrets found:\n${formatFindings(findings)}`);
  }, 240_000);
});
