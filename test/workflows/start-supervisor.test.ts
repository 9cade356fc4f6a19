/**
 * `npm start` (scripts/start.ts) as a person runs it, against a real dev server
 * on free ports and the real worker (DEPLOY_SANDBOX=0: no platform is needed
 * for the worker to poll). An OOM kill of the worker must change nothing but
 * latency: the worker comes back, the server and its UI stay up, nothing is
 * orphaned, and Ctrl-C still stops everything.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { freePort } from '../helpers/ports';
import { toolPath, REPO_ROOT } from '../helpers/tools';
import { waitFor } from '../helpers/wait';

jest.setTimeout(300_000);

interface Proc {
  pid: number;
  ppid: number;
  pgid: number;
  state: string;
  cmd: string;
}

/** Every process on the machine, from /proc (a zombie counts as gone: it runs nothing). */
function processes(): Proc[] {
  const out: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
      const [state, ppid, pgid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      out.push({ pid: Number(entry), ppid: Number(ppid), pgid: Number(pgid), state, cmd });
    } catch {
      // Gone between the listing and the read.
    }
  }
  return out;
}

const running = (p: Proc): boolean => p.state !== 'Z' && p.state !== 'X';
const alive = (pid: number): boolean => processes().some((p) => p.pid === pid && running(p));
const childrenOf = (pid: number): Proc[] => processes().filter((p) => p.ppid === pid && running(p));
const groupOf = (pgid: number): Proc[] => processes().filter((p) => p.pgid === pgid && running(p));

function clusterHealth(port: number): Promise<string> {
  return new Promise((resolve) => {
    execFile(
      toolPath('cli'),
      ['operator', 'cluster', 'health', '--address', `127.0.0.1:${port}`],
      { timeout: 15_000 },
      (err, stdout, stderr) => resolve(err ? `failed: ${err.message} ${stderr}` : stdout.trim()),
    );
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 10_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

const count = (text: string, needle: string): number => text.split(needle).length - 1;
const POLLING = 'worker: polling task queue';

interface NpmStart {
  /** The tsx launcher of scripts/start.ts, leader of the group a terminal would signal. */
  launcher: number;
  output: () => string;
  /** Its exit code (or signal), or a note that it did not end in time. */
  exit: (timeoutMs: number) => Promise<number | string | null>;
  /** The output, to append to a failure message. */
  show: () => string;
}

/** Groups this file started (or saw started), killed in afterAll whatever happened. */
const groups = new Set<number>();
const dataDirs: string[] = [];

afterAll(() => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * `npm start` is `tsx scripts/start.ts`: run it in its own group, as a terminal's foreground
 * job would be, with its own dev server on free ports and its history in a temporary folder.
 */
async function npmStart(extraEnv: NodeJS.ProcessEnv = {}): Promise<NpmStart & { port: number; uiPort: number }> {
  const port = await freePort();
  const uiPort = await freePort();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'start-supervisor-'));
  dataDirs.push(dataDir);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DEPLOY_SANDBOX: '0',
    TEMPORAL_PORT: String(port),
    TEMPORAL_UI_PORT: String(uiPort),
    TEMPORAL_DB_FILE: path.join(dataDir, 'dev.db'),
    // Its workers' /metrics would take the default addresses another run may hold.
    DEPLOY_METRICS_ADDRESS: 'off',
    DEPLOY_IO_METRICS_ADDRESS: 'off',
    ...extraEnv,
  };
  delete env.TEMPORAL_ADDRESS; // npm start then starts its own dev server
  delete env.DEPLOY_CODEC_KEY;
  const child: ChildProcess = spawn(
    path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx'),
    [path.join('scripts', 'start.ts')],
    { cwd: REPO_ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  groups.add(child.pid!);
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  return {
    launcher: child.pid!,
    port,
    uiPort,
    output: () => output,
    show: () => `\n--- npm start output ---\n${output}`,
    exit: async (timeoutMs) => {
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        exited,
        new Promise<string>((r) => (timer = setTimeout(() => r(`still running after ${timeoutMs} ms`), timeoutMs))),
      ]);
      clearTimeout(timer);
      return result;
    },
  };
}

test('issue 16 item 10: npm start restarts a worker killed with SIGKILL, keeps the dev server and UI up, leaves no orphan, and Ctrl-C stops everything', async () => {
  const run = await npmStart();
  const { launcher, port, uiPort, show } = run;
  const output = run.output;

  const start = await waitFor(
    async () => childrenOf(launcher).find((p) => p.cmd.includes('scripts/start.ts')),
    30_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}${show()}`);
  });
  await waitFor(async () => output().includes(POLLING), 180_000).catch((err: Error) => {
    throw new Error(`the first worker never polled: ${err.message}${show()}`);
  });
  // Its build id follows the checkout: the package version and the commit (src/worker-versioning.ts).
  const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim().slice(0, 12);
  const { version } = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
  expect(output()).toMatch(
    new RegExp(
      `${POLLING} .*, build ${version.replace(/\./g, '\\.')}\\+${head}(\\.dirty)?; workflow cache 500, heap limit`,
    ),
  );
  // npm start gives the worker the project's memory settings (src/worker-memory.ts): a heap limit of ~384 MiB.
  const limit = Number(/heap limit (\d+) MiB/.exec(output())?.[1]);
  expect(limit).toBeGreaterThan(380);
  expect(limit).toBeLessThan(420);

  const server = childrenOf(start.pid).find((p) => p.cmd.includes('start-dev'));
  const worker = childrenOf(start.pid).find((p) => p.cmd.includes('src/worker.ts'));
  expect(server).toBeDefined();
  expect(worker).toBeDefined();
  groups.add(server!.pid);
  groups.add(worker!.pid);
  // The worker is a tsx launcher with the real worker (node) as its child: the orphan of the issue.
  const oldWorkerGroup = groupOf(worker!.pgid).map((p) => p.pid);
  const realWorker = childrenOf(worker!.pid).find((p) => p.cmd.includes('src/worker.ts'));
  expect(realWorker).toBeDefined();

  // As an OOM kill would: SIGKILL to the launcher alone.
  process.kill(worker!.pid, 'SIGKILL');

  // A new worker within the backoff (1 s), after the old one's group is gone.
  const restarted = await waitFor(
    async () => childrenOf(start.pid).find((p) => p.cmd.includes('src/worker.ts') && p.pid !== worker!.pid),
    20_000,
  ).catch((err: Error) => {
    throw new Error(`no new worker after the SIGKILL: ${err.message}${show()}`);
  });
  groups.add(restarted.pid);
  expect(output()).toMatch(/worker exited \(SIGKILL\); restarting in 1 s \(restart 1\)/);
  // No orphan of the old worker: not the launcher, not the real worker, nothing in its group.
  await waitFor(async () => groupOf(worker!.pgid).length === 0, 5000).catch(() => undefined);
  expect(oldWorkerGroup.filter(alive)).toEqual([]);
  expect(alive(realWorker!.pid)).toBe(false);

  // The dev server and its UI stayed up all along: the same process, answering.
  expect(alive(server!.pid)).toBe(true);
  expect(childrenOf(start.pid).some((p) => p.pid === server!.pid)).toBe(true);
  expect(await clusterHealth(port)).toContain('SERVING');
  expect(await httpStatus(`http://127.0.0.1:${uiPort}/`)).toBe(200);

  // The new worker polls the surviving server.
  await waitFor(async () => count(output(), POLLING) >= 2, 180_000).catch((err: Error) => {
    throw new Error(`the restarted worker never polled: ${err.message}${show()}`);
  });

  // Ctrl-C (SIGINT to the terminal's foreground group): everything it started stops.
  const everything = [
    launcher,
    start.pid,
    server!.pid,
    ...groupOf(restarted.pgid).map((p) => p.pid),
    ...groupOf(server!.pgid).map((p) => p.pid),
  ];
  process.kill(-launcher, 'SIGINT');
  const exit = await run.exit(90_000);
  if (exit !== 0) throw new Error(`npm start ended with ${exit} after Ctrl-C${show()}`);
  expect(everything.filter(alive)).toEqual([]);
  for (const pgid of [launcher, server!.pgid, restarted.pgid, worker!.pgid]) expect(groupOf(pgid)).toEqual([]);
  expect(output()).not.toMatch(/stopping the rest/);
});

test('issue 16 item 10: a worker in a crash loop makes npm start give up after 5 exits within 60 s, stop the dev server and exit non-zero', async () => {
  // A worker that cannot start: its config file does not exist, so it exits at once, every time.
  const run = await npmStart({ DEPLOY_CONFIG: path.join(tmpdir(), `no-such-config-${process.pid}.yaml`) });
  const start = await waitFor(
    async () => childrenOf(run.launcher).find((p) => p.cmd.includes('scripts/start.ts')),
    30_000,
  );
  const server = await waitFor(async () => childrenOf(start.pid).find((p) => p.cmd.includes('start-dev')), 30_000);
  groups.add(server.pid);

  // 1 + 2 + 4 + 8 s of backoff and five starts of tsx: well within a minute, then it gives up.
  const exit = await run.exit(150_000);
  if (exit !== 1) throw new Error(`npm start ended with ${exit}, not 1${run.show()}`);
  const out = run.output();
  expect(out).toMatch(/worker exited \(exit code 1\); restarting in 1 s \(restart 1\)/);
  expect(out).toMatch(/worker exited \(exit code 1\); restarting in 8 s \(restart 4\)/);
  expect(out).toMatch(
    /worker exited \(exit code 1\); 5 exits within 60 s, a crash loop: giving up and stopping everything/,
  );
  expect(count(out, 'cannot read the file')).toBe(5);
  // Everything it started is gone.
  expect([run.launcher, start.pid, server.pid].filter(alive)).toEqual([]);
  expect(groupOf(server.pgid)).toEqual([]);
  expect(processes().filter((p) => running(p) && p.ppid === start.pid)).toEqual([]);
});
