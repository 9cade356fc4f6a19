/**
 * What every deployctl command shares: the output context, the one-line
 * error with its exit code, the Temporal connection (with the payload codec),
 * and following a deployment's status until it ends.
 */
import { Client, Connection, WorkflowNotFoundError } from '@temporalio/client';
import { userInfo } from 'node:os';
import { dataConverterFromEnv } from '../codec';
import { checkWorkflowId, InputError } from '../domain/input';
import type { SignalName } from '../domain/signals';
import type { DeploymentStatus, StageStatus } from '../domain/status';
import { temporalSettings } from '../temporal-connection';
import type { DeployResult } from '../workflows/deploy';
import type { ReleaseResult } from '../workflows/release';
import { resultOf } from '../workflows/outcome';
import { ExitCode, exitCodeFor } from './exit-codes';
import { isFreezeStatus } from '../domain/freeze';
import { activeChildId, formatFreezeStatus, formatPreview, formatStages, formatStatus } from './format';

export class CliError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

export interface Ctx {
  out: (line: string) => void;
  err: (line: string) => void;
  env: NodeJS.ProcessEnv;
  isTTY: boolean;
  /** Polling interval of watch/--wait. */
  pollMs?: number;
}

export const FINAL = ['succeeded', 'failed', 'rolled-back', 'aborted', 'planned'];

export async function connect(
  env: NodeJS.ProcessEnv,
): Promise<{ client: Client; close: () => Promise<void>; namespace: string }> {
  let s;
  let codec;
  try {
    s = temporalSettings(env);
    // DEPLOY_CODEC_KEY set: payloads are encrypted as the worker does (src/codec.ts).
    codec = dataConverterFromEnv(env);
  } catch (err) {
    throw new CliError((err as Error).message, ExitCode.BadInput);
  }
  let connection: Connection;
  try {
    connection = await Connection.connect({
      address: s.address,
      ...(s.tls ? { tls: s.tls } : {}),
      ...(s.apiKey ? { apiKey: s.apiKey } : {}),
      connectTimeout: 5000,
    });
  } catch (err) {
    throw new CliError(
      `Temporal server unreachable at ${s.address}: start it with \`npm start\` or set TEMPORAL_ADDRESS (${(err as Error).message.split('\n')[0]})`,
      ExitCode.Unreachable,
    );
  }
  return {
    client: new Client({ connection, namespace: s.namespace, ...codec }),
    close: () => connection.close(),
    namespace: s.namespace,
  };
}

export async function withClient<T>(ctx: Ctx, fn: (c: Client, namespace: string) => Promise<T>): Promise<T> {
  const c = await connect(ctx.env);
  try {
    return await fn(c.client, c.namespace);
  } catch (err) {
    if (err instanceof WorkflowNotFoundError)
      throw new CliError(
        `workflow ${err.workflowId ?? ''} not found: list deployments with \`deployctl list\``,
        ExitCode.NotFound,
      );
    throw err;
  } finally {
    await c.close();
  }
}

export function defaultUser(): string {
  try {
    return userInfo().username || 'unknown';
  } catch {
    return 'unknown';
  }
}

export function taskQueue(env: NodeJS.ProcessEnv): string {
  return env.TEMPORAL_TASK_QUEUE || 'deployments';
}

export function uiLink(env: NodeJS.ProcessEnv, namespace: string, workflowId: string): string {
  const base = (env.TEMPORAL_UI_URL || 'http://127.0.0.1:8233').replace(/\/+$/, '');
  return `${base}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** A workflow's status, its active child's and that child's active child's (a release's stage and its canary). */
export interface Statuses {
  status: DeploymentStatus;
  child?: DeploymentStatus;
  grandchild?: DeploymentStatus;
}

/**
 * A workflow's `status`: its query while it runs; once closed, the status its
 * result carries (deploy, release and freeze workflows return it), which the
 * server reads from the history. A query needs a worker of the build the
 * workflow ran on, and after a worker upgrade that build may have none left
 * (docs/operations.md, "Upgrading the worker while deployments run"). Any
 * other close (terminated, cancelled, timed out) is still queried.
 */
export async function readStatus<T>(client: Client, workflowId: string, running?: boolean): Promise<T> {
  const handle = client.workflow.getHandle(workflowId);
  // `running`: the caller has just described it; otherwise ask.
  if (!(running ?? (await handle.describe()).status.name === 'RUNNING')) {
    const result = await resultOf(handle.result() as Promise<unknown>).catch(() => undefined);
    const recorded = (result as { status?: unknown } | undefined)?.status;
    if (typeof recorded === 'object' && recorded !== null) return recorded as T;
  }
  return handle.query<T>('status');
}

/** `o.status`: the workflow's own status, already read; `o.running`: whether it runs, already described. */
export async function queryStatus(
  client: Client,
  workflowId: string,
  o: { status?: DeploymentStatus; running?: boolean } = {},
): Promise<Statuses> {
  const status = o.status ?? (await readStatus<DeploymentStatus>(client, workflowId, o.running));
  const activeOf = async (s: DeploymentStatus | undefined) => {
    const id = s && activeChildId(s);
    return id ? readStatus<DeploymentStatus>(client, id).catch(() => undefined) : undefined;
  };
  const child = await activeOf(status);
  const grandchild = await activeOf(child);
  return { status, ...(child ? { child } : {}), ...(grandchild ? { grandchild } : {}) };
}

/** The status as JSON: the workflow's, with its active child's (and that child's) under `activeChild`. */
export function statusJson(s: Statuses): object {
  const child = s.child && (s.grandchild ? { ...s.child, activeChild: s.grandchild } : s.child);
  return child ? { ...s.status, activeChild: child } : s.status;
}

/** Follows a workflow until it ends: a live view on a terminal, one line per change otherwise. */
export async function follow(ctx: Ctx, client: Client, workflowId: string, quiet: boolean): Promise<void> {
  const seen = new Set<string>();
  let lastWait = '';
  let lastPhase = '';
  let lastStage: { workflowId: string; environment: string } | undefined;
  const handle = client.workflow.getHandle(workflowId);
  for (;;) {
    const desc = await handle.describe();
    const running = desc.status.name === 'RUNNING';
    const s = await queryStatus(client, workflowId, { running }).catch(() => undefined);
    // A stop-the-line freeze answers `status` with its own shape: one line per change.
    const freeze = s ? undefined : await readStatus<unknown>(client, workflowId, running).catch(() => undefined);
    if (isFreezeStatus(freeze) && !quiet) {
      const line = formatFreezeStatus(freeze);
      if (line !== lastWait) ctx.out(ctx.isTTY ? `\u001b[H\u001b[2J${line}` : line);
      lastWait = line;
    }
    if (s && !quiet) {
      if (ctx.isTTY) {
        ctx.out(`\u001b[H\u001b[2J${formatStatus(s.status, { colour: true }, s.child, s.grandchild)}`);
      } else {
        const release = s.status.workflow === 'release';
        const print = (of: DeploymentStatus | undefined, tag: string) => {
          for (const st of of?.steps ?? []) {
            // A release's stage steps say which stage they are of.
            const key = `${release ? tag : ''}${st.name}:${st.state}:${st.startedAt ?? ''}`;
            if (seen.has(key) || st.state === 'running') continue;
            seen.add(key);
            ctx.out(
              `${st.state === 'failed' ? 'FAIL' : st.state === 'succeeded' ? 'ok  ' : st.state.padEnd(4)} ${release ? tag : ''}${st.name}${st.durationMs !== undefined ? ` (${(st.durationMs / 1000).toFixed(1)}s)` : ''}${st.detail ? `: ${st.detail}` : ''}${st.error ? `: ${st.error}` : ''}${st.attention ? ` — NEEDS ATTENTION: ${st.attention}` : ''}`,
            );
          }
        };
        // A release's stage that ended since the last look: the steps it finished in between.
        if (release && lastStage && lastStage.workflowId !== s.child?.workflowId) {
          const ended = await readStatus<DeploymentStatus>(client, lastStage.workflowId).catch(() => undefined);
          print(ended, `[${lastStage.environment}] `);
        }
        lastStage =
          release && s.child ? { workflowId: s.child.workflowId, environment: s.child.environment } : undefined;
        // A release: its phase changes and each stage's state, as they happen.
        if (release && s.status.phase !== lastPhase) ctx.out(`phase ${s.status.phase}`);
        lastPhase = s.status.phase;
        for (const line of release ? stageLines(s.status.stages ?? []) : []) {
          if (seen.has(line)) continue;
          seen.add(line);
          ctx.out(line);
        }
        const stage = s.child?.environment ?? '';
        print(s.status, '');
        print(s.child, `[${stage}] `);
        print(s.grandchild, `[${stage} ${s.grandchild?.workflow ?? ''}] `);
        const w = s.grandchild?.waitingFor ?? s.child?.waitingFor ?? s.status.waitingFor;
        const waitLine = w ? `wait ${w.what}${w.commands?.length ? ` — ${w.commands.join(' | ')}` : ''}` : '';
        if (waitLine && waitLine !== lastWait) ctx.out(waitLine);
        lastWait = waitLine;
      }
    }
    if (!running) return;
    await new Promise((r) => setTimeout(r, ctx.pollMs ?? 1000));
  }
}

/** "stage production: waiting (release-1.0.1-production)", with why a stage ended. */
function stageLines(stages: StageStatus[]): string[] {
  return stages
    .filter((x) => x.state !== 'pending')
    .map((x) => `stage ${x.environment}: ${x.state} (${x.workflowId})${x.reason ? `: ${x.reason}` : ''}`);
}

export async function awaitDeploy(ctx: Ctx, client: Client, workflowId: string, json: boolean): Promise<number> {
  await follow(ctx, client, workflowId, json);
  // A deployment that did not succeed closes as Failed with its result in the failure (workflows/outcome.ts).
  const result = await resultOf(client.workflow.getHandle(workflowId).result() as Promise<DeployResult>);
  if (json) {
    const { status, ...rest } = result;
    ctx.out(JSON.stringify({ ...rest, phase: status.phase, steps: status.steps }, null, 2));
  } else {
    ctx.out(
      `${result.outcome}: ${result.workflowId} (${result.version} on ${result.environment})${result.reason ? `: ${result.reason}` : ''}`,
    );
    if (result.preview) ctx.out(formatPreview(result.preview));
  }
  return exitCodeFor(result);
}

/** Follows a release to its end; prints its outcome and every stage's, and returns its exit code. */
export async function awaitRelease(ctx: Ctx, client: Client, workflowId: string, json: boolean): Promise<number> {
  await follow(ctx, client, workflowId, json);
  // A release that did not succeed closes as Failed with its result in the failure (workflows/outcome.ts).
  const result = await resultOf(client.workflow.getHandle(workflowId).result() as Promise<ReleaseResult>);
  if (json) {
    const { status, ...rest } = result;
    ctx.out(
      JSON.stringify(
        { ...rest, phase: status.phase, ...(status.release ? { release: status.release } : {}), steps: status.steps },
        null,
        2,
      ),
    );
  } else {
    ctx.out(releaseOutcomeLine(result));
    ctx.out(formatStages(result.stages).join('\n'));
  }
  return exitCodeFor(result);
}

/** "succeeded: release-1.0.1 (1.0.1 through staging → production)", with the reason when it did not succeed. */
export function releaseOutcomeLine(
  r: Pick<ReleaseResult, 'outcome' | 'workflowId' | 'version' | 'reason' | 'stages'>,
): string {
  const through = r.stages.length ? ` through ${r.stages.map((x) => x.environment).join(' → ')}` : '';
  return `${r.outcome}: ${r.workflowId} (${r.version}${through})${r.reason ? `: ${r.reason}` : ''}`;
}

/** Which signals apply to what the deployment (or its active child) is doing now. */
export function signalApplies(
  name: SignalName,
  s: DeploymentStatus,
  child?: DeploymentStatus,
  grandchild?: DeploymentStatus,
): string | undefined {
  const live = grandchild ?? child ?? s;
  if (FINAL.includes(s.phase)) return `${name} does not apply: the deployment is already ${s.phase}`;
  const waiting = live.waitingFor?.what ?? '';
  // A release between stages (a soak, the promotion gate) answers approve and abort itself.
  if (live.workflow === 'release' && name !== 'approve' && name !== 'abort')
    return `${name} does not apply between stages (phase ${live.phase}): a release answers approve and abort until its next stage deploys`;
  switch (name) {
    case 'approve':
      return /approval|decision/.test(waiting)
        ? undefined
        : `approve does not apply in phase ${live.phase}: nothing is awaiting approval`;
    case 'abort':
      return undefined;
    case 'pause':
      return live.canary &&
        !live.canary.paused &&
        ['canary', 'soaking', 'awaiting-approval', 'frozen'].includes(live.phase)
        ? undefined
        : `pause does not apply in phase ${live.phase}: ${live.canary?.paused ? 'already paused' : 'no canary is running'}`;
    case 'resume':
      return live.canary?.paused ? undefined : `resume does not apply in phase ${live.phase}: not paused`;
    case 'promote':
      return live.phase === 'soaking' || live.phase === 'monitoring'
        ? undefined
        : `promote does not apply in phase ${live.phase}: no soak or monitoring window is running`;
  }
}

export function list(v: string): string[] {
  return v
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
}

export function steps(v: string): number[] {
  return list(v).map((x) => {
    const n = Number(x);
    if (!Number.isFinite(n))
      throw new CliError(
        `invalid --steps ${JSON.stringify(v)}: expected numbers such as 5,25,50,100`,
        ExitCode.BadInput,
      );
    return n;
  });
}

export function checked<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof InputError) throw new CliError(err.message, ExitCode.BadInput);
    throw err;
  }
}

/**
 * Parses a workflow id argument by the one rule (domain/workflow-id.ts): a
 * bad one is exit 2 before anything connects. `lock`, `freeze`: a command that
 * only reads may name an environment lock (deploy-lock-<env>) or freeze
 * (deploy-freeze-<env>).
 */
export function workflowIdArg(o: { lock?: boolean; freeze?: boolean } = {}): (v: string) => string {
  return (v) => checked(() => checkWorkflowId(v, 'workflowId', o));
}
