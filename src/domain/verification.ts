/**
 * Judging post-deployment verification (runbook "Post-Deployment
 * Verification" and "Monitoring & Alerts") without I/O: smoke-check
 * placeholders, pod health, log error lines, database connection growth and
 * Redis memory. The activities in activities/verify/ gather the facts and
 * hand them here.
 */
import type { MeasurementOutcome } from './status';

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

/** Replaces every occurrence of each secret (and the password of any URL) with ***. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi, '$1***@');
  for (const s of [...secrets].filter((x) => x.length >= 3).sort((a, b) => b.length - a.length))
    out = out.split(s).join('***');
  return out;
}

const SECRET_ENV_RE = /(PASSWORD|SECRET|TOKEN|WEBHOOK|CREDENTIAL|PRIVATE|API_?KEY)/i;

/**
 * Values of the environment that must never reach a log line, a result or a
 * summary: variables whose names say they are secret, plus those the config
 * names as holding secrets (webhook URLs, passwords). Short values are left
 * out so that redacting them cannot garble ordinary text.
 */
export function secretValues(
  env: Record<string, string | undefined>,
  extraNames: readonly (string | undefined)[] = [],
): string[] {
  const names = new Set([
    ...Object.keys(env).filter((k) => SECRET_ENV_RE.test(k)),
    ...extraNames.filter((n): n is string => !!n),
  ]);
  const values: string[] = [];
  for (const name of names) {
    const v = env[name];
    if (v && v.length >= 6) values.push(v);
  }
  return values;
}

// ---------------------------------------------------------------------------
// Smoke checks
// ---------------------------------------------------------------------------

const ENV_PLACEHOLDER_RE = /\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g;

export interface ResolvedBody {
  value: unknown;
  /** The values that came from the environment: never logged or returned. */
  secrets: string[];
  /** Variables the body needs that are not set. */
  missing: string[];
}

/** Fills `${env:NAME}` in every string of a smoke-check body from the worker's environment. */
export function resolveEnvPlaceholders(value: unknown, env: Record<string, string | undefined>): ResolvedBody {
  const secrets: string[] = [];
  const missing: string[] = [];
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') {
      return v.replace(ENV_PLACEHOLDER_RE, (_m, name: string) => {
        const got = env[name];
        if (got === undefined || got === '') {
          if (!missing.includes(name)) missing.push(name);
          return '';
        }
        secrets.push(got);
        return got;
      });
    }
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return { value: walk(value), secrets, missing };
}

/** Reads `data.token` style paths from parsed JSON; undefined when any step is missing. */
export function valueAtPath(obj: unknown, dotPath: string): unknown {
  let cur: unknown = obj;
  for (const key of dotPath.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

/** A response body as it goes into a failure reason: one line, bounded, secrets removed. */
export function describeBody(text: string, secrets: readonly string[] = [], max = 200): string {
  const oneLine = redact(text, secrets).replace(/\s+/g, ' ').trim();
  if (oneLine === '') return '(empty body)';
  return oneLine.length > max ? `${oneLine.slice(0, max)}...` : oneLine;
}

// ---------------------------------------------------------------------------
// Kubernetes pods
// ---------------------------------------------------------------------------

export interface ContainerSnapshot {
  name: string;
  ready: boolean;
  restarts: number;
  /** e.g. CrashLoopBackOff, ImagePullBackOff */
  waitingReason?: string;
}

export interface PodSnapshot {
  name: string;
  phase: string;
  ready: boolean;
  createdAt?: string;
  deleting: boolean;
  containers: ContainerSnapshot[];
}

export type LogState =
  | { state: 'checked'; errorLines: number; sample?: string }
  | { state: 'unavailable'; reason: string }
  | { state: 'not-checked'; reason: string };

export interface PodVerdict {
  name: string;
  phase: string;
  ready: boolean;
  restarts: number;
  restartsSinceBaseline: number;
  /** Created since the deployment started (or no start time given). */
  isNew: boolean;
  logs: LogState;
  problems: string[];
}

export interface PodsJudgement {
  ok: boolean;
  pods: PodVerdict[];
  problems: string[];
  /** Things a person should see that are not failures, e.g. logs that could not be read. */
  warnings: string[];
  logErrorLines: number;
  summary: string;
}

const BAD_WAITING = new Set([
  'CrashLoopBackOff',
  'ImagePullBackOff',
  'ErrImagePull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'InvalidImageName',
  'RunContainerError',
]);

export function restartsOf(pod: PodSnapshot): number {
  return pod.containers.reduce((n, c) => n + c.restarts, 0);
}

/**
 * Whether the pod was created after the rollout started. A creationTimestamp
 * has whole seconds only, so `since` is cut to its second: a pod the rollout
 * created in the second it started counts as new (reading one older pod's logs
 * since the rollout costs nothing; skipping a new one hides its errors).
 */
export function isNewPod(pod: PodSnapshot, since: string | undefined): boolean {
  if (!since) return true;
  if (!pod.createdAt) return false;
  const sinceSecond = Math.floor(Date.parse(since) / 1000) * 1000;
  return Date.parse(pod.createdAt) >= sinceSecond;
}

/** Counts lines matching the error pattern (runbook: `kubectl logs ... | grep -i error`). */
export function countErrorLines(text: string, pattern: string): { count: number; sample?: string } {
  const re = new RegExp(pattern, 'i');
  let count = 0;
  let sample: string | undefined;
  for (const line of text.split('\n')) {
    if (re.test(line)) {
      count++;
      sample ??= line.trim();
    }
  }
  return sample === undefined ? { count } : { count, sample };
}

export interface JudgePodsOptions {
  /** Restart counts per pod name when the deployment started. */
  baselineRestarts?: Record<string, number>;
  since?: string;
  maxLogErrors: number;
  /** Log results per pod name (only for the pods whose logs were read). */
  logs: Record<string, LogState>;
}

/**
 * All pods Running and Ready, none waiting in a crash or pull back-off, no
 * restart counts risen since the baseline, and error lines in the new pods'
 * logs within the limit. Logs that cannot be read (kwok pods have none) are
 * a warning in plain sight, never counted as errors and never a silent pass.
 */
export function judgePods(pods: readonly PodSnapshot[], opts: JudgePodsOptions): PodsJudgement {
  const live = pods.filter((p) => !p.deleting);
  const problems: string[] = [];
  const warnings: string[] = [];
  if (live.length === 0) problems.push('no pods match');
  let logErrorLines = 0;
  const verdicts: PodVerdict[] = live.map((pod) => {
    const own: string[] = [];
    const restarts = restartsOf(pod);
    const baseline = opts.baselineRestarts?.[pod.name] ?? 0;
    const risen = Math.max(0, restarts - baseline);
    if (pod.phase !== 'Running') own.push(`phase ${pod.phase}`);
    else if (!pod.ready) own.push('not Ready');
    for (const c of pod.containers) {
      if (c.waitingReason && BAD_WAITING.has(c.waitingReason)) own.push(`container ${c.name} ${c.waitingReason}`);
    }
    if (risen > 0) own.push(`restarted ${risen} time${risen === 1 ? '' : 's'} since the deployment started`);
    const isNew = isNewPod(pod, opts.since);
    const logs: LogState = opts.logs[pod.name] ?? {
      state: 'not-checked',
      reason: isNew ? 'logs not read' : 'pod predates the rollout',
    };
    if (logs.state === 'checked') logErrorLines += logs.errorLines;
    problems.push(...own.map((p) => `${pod.name}: ${p}`));
    return {
      name: pod.name,
      phase: pod.phase,
      ready: pod.ready,
      restarts,
      restartsSinceBaseline: risen,
      isNew,
      logs,
      problems: own,
    };
  });

  if (logErrorLines > opts.maxLogErrors) {
    const worst = verdicts
      .filter((v) => v.logs.state === 'checked' && v.logs.errorLines > 0)
      .map((v) =>
        v.logs.state === 'checked'
          ? `${v.name} ${v.logs.errorLines}${v.logs.sample ? ` (e.g. "${v.logs.sample.slice(0, 160)}")` : ''}`
          : v.name,
      );
    problems.push(
      `${logErrorLines} error line${logErrorLines === 1 ? '' : 's'} in the new pods' logs (limit ${opts.maxLogErrors}): ${worst.join('; ')}`,
    );
  }
  const unavailable = verdicts.filter((v) => v.logs.state === 'unavailable');
  if (unavailable.length > 0) {
    const first = unavailable[0].logs;
    warnings.push(
      `logs unavailable for ${unavailable.length} pod${unavailable.length === 1 ? '' : 's'} (${unavailable.map((v) => v.name).join(', ')}): error lines not checked` +
        (first.state === 'unavailable' ? ` (${first.reason})` : ''),
    );
  }
  const checked = verdicts.filter((v) => v.logs.state === 'checked').length;
  const ready = verdicts.filter((v) => v.problems.length === 0).length;
  const logPart = checked > 0 ? `${logErrorLines} error line(s) in ${checked} pod log(s)` : 'no pod logs checked';
  const summary = `${ready}/${verdicts.length} pods Running and Ready without new restarts; ${logPart}${unavailable.length ? `; logs unavailable for ${unavailable.length}` : ''}`;
  return { ok: problems.length === 0, pods: verdicts, problems, warnings, logErrorLines, summary };
}

// ---------------------------------------------------------------------------
// Platform: database connections and Redis memory
// ---------------------------------------------------------------------------

export interface PlatformCheck {
  name: 'database-connections' | 'redis-memory';
  outcome: MeasurementOutcome;
  value: number | null;
  detail: string;
}

/** Runbook: "Check database connections: should be stable, not increasing". */
export function judgeConnectionGrowth(current: number, baseline: number | undefined, maxGrowth: number): PlatformCheck {
  if (baseline === undefined) {
    return {
      name: 'database-connections',
      outcome: 'inconclusive',
      value: current,
      detail: `${current} active connections; no baseline given, growth not measured`,
    };
  }
  const growth = current - baseline;
  const detail = `${current} active connections (baseline ${baseline}, growth ${growth >= 0 ? '+' : ''}${growth}, limit +${maxGrowth})`;
  return { name: 'database-connections', outcome: growth > maxGrowth ? 'fail' : 'pass', value: current, detail };
}

/** Runbook: "Check Redis memory: should be < 80% of max". maxmemory 0 means unlimited: nothing to compare with. */
export function judgeRedisMemory(usedBytes: number, maxBytes: number, maxRatio: number): PlatformCheck {
  if (!Number.isFinite(usedBytes) || usedBytes < 0)
    return {
      name: 'redis-memory',
      outcome: 'inconclusive',
      value: null,
      detail: 'used_memory missing from INFO memory',
    };
  if (!Number.isFinite(maxBytes) || maxBytes <= 0) {
    return {
      name: 'redis-memory',
      outcome: 'inconclusive',
      value: null,
      detail: `no maxmemory set (unlimited): ${formatBytes(usedBytes)} used, ratio cannot be judged`,
    };
  }
  const ratio = usedBytes / maxBytes;
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const detail = `${formatBytes(usedBytes)} of ${formatBytes(maxBytes)} used (${pct(ratio)}, limit ${pct(maxRatio)})`;
  return { name: 'redis-memory', outcome: ratio < maxRatio ? 'pass' : 'fail', value: ratio, detail };
}

/** Parses `INFO memory` text into numbers by field name. */
export function parseRedisInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
