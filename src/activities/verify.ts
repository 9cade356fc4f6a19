/**
 * Post-deployment verification (runbook "Post-Deployment Verification" and
 * "Monitoring & Alerts") and canary analysis, as thin adapters: HTTP for the
 * health endpoint and smoke checks, the Kubernetes API for pods and logs, pg
 * and ioredis for the platform, the Prometheus HTTP API for metrics. Every
 * judgement is made by pure functions in domain/ (verification, promql,
 * analysis).
 *
 * A failed check is an answer, not a crash: health, smoke, Kubernetes and
 * platform checks return a CheckReport ({ok, lines} plus the details behind
 * each line) and the workflow decides (verify-release.ts). They throw only
 * when they could not look (apiserver down: retried; forbidden or a missing
 * env variable: not retried). analyzeCanary never throws for what it
 * measured: no data, NaN, a query error or an unreachable Prometheus come
 * back as inconclusive measurements for the workflow to tally.
 */
import { ApplicationFailure } from '@temporalio/common';
import { describeThreshold, judgeValue, runOutcome } from '../domain/analysis';
import type { DeployConfig, MetricConfig, SmokeCheckConfig } from '../domain/config';
import { ErrorType } from '../domain/errors';
import { classifyQueryResponse, renderQuery, TemplateError, type QueryValue, type Track } from '../domain/promql';
import type { AnalysisRun, Measurement, MeasurementOutcome } from '../domain/status';
import {
  countErrorLines,
  describeBody,
  isNewPod,
  judgeConnectionGrowth,
  judgePods,
  judgeRedisMemory,
  redact,
  resolveEnvPlaceholders,
  restartsOf,
  secretValues,
  valueAtPath,
  type LogState,
  type PlatformCheck,
  type PodSnapshot,
} from '../domain/verification';
import type { AnalysisRequest, KubernetesHealthRequest, PlatformHealthRequest } from './contracts';
import { checkBaseUrl, describeFetchError, joinUrl, withTimeout } from './clients/http';
import { countDatabaseConnections } from './clients/postgres';
import { redisMemory } from './clients/redis';
import { messageOf } from './failures';
import { activityLogger, type Logger } from './runtime';
import type { DeploymentHealth, HealthReport, HealthRequest, KubernetesReport, PlatformBaseline, PlatformReport, SmokeCheckResult, SmokeReport, SmokeRequest } from './contracts';

// ---------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------


// ---------------------------------------------------------------------------
// Kubernetes pods (injected; the default loads @kubernetes/client-node lazily)
// ---------------------------------------------------------------------------

export class LogsUnavailable extends Error {
  override name = 'LogsUnavailable';
}

/** What the Kubernetes check needs from the cluster. */
export interface PodReader {
  /** The pods of a Deployment (owned by its ReplicaSets), or null when there is no such Deployment. */
  deploymentPods(namespace: string, deployment: string): Promise<PodSnapshot[] | null>;
  /** The container's log since `sinceSeconds` ago; throws LogsUnavailable when the cluster cannot give it. */
  readLog(namespace: string, pod: string, container: string, opts: { sinceSeconds?: number; limitBytes: number }): Promise<string>;
}

/** The message of an ApiException: the Status object's message when the body is one, else its first line. */
export function describeKubeError(err: unknown): string {
  const e = err as { code?: unknown; body?: unknown; message?: unknown };
  let message: string | undefined;
  if (typeof e.body === 'string') {
    try {
      const parsed = JSON.parse(e.body) as { message?: unknown };
      if (typeof parsed.message === 'string') message = parsed.message;
    } catch {
      message = e.body;
    }
  } else if (e.body && typeof e.body === 'object' && typeof (e.body as { message?: unknown }).message === 'string') {
    message = (e.body as { message: string }).message;
  }
  message ??= typeof e.message === 'string' ? e.message.split('\n')[0] : String(err);
  const clipped = message.length > 300 ? `${message.slice(0, 300)}...` : message;
  return typeof e.code === 'number' ? `HTTP ${e.code}: ${clipped}` : clipped;
}

interface LabelSelectorLike {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** A Deployment's spec.selector as a label-selector string. */
export function selectorString(sel: LabelSelectorLike | undefined): string {
  const parts = Object.entries(sel?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const e of sel?.matchExpressions ?? []) {
    const values = (e.values ?? []).join(',');
    if (e.operator === 'In') parts.push(`${e.key} in (${values})`);
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${values})`);
    else if (e.operator === 'Exists') parts.push(e.key);
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`);
  }
  return parts.join(',');
}

/**
 * A PodReader over the cluster named by a kubeconfig (empty: the standard
 * loading rules). The client library is ESM-only and loaded on first use.
 */
export function kubePodReader(kubeconfig: string | undefined, timeoutMs: number): PodReader {
  type K8s = typeof import('@kubernetes/client-node');
  let clients: { apps: InstanceType<K8s['AppsV1Api']>; core: InstanceType<K8s['CoreV1Api']> } | undefined;
  const load = async () => {
    if (!clients) {
      const k8s = await import('@kubernetes/client-node');
      const kc = new k8s.KubeConfig();
      if (kubeconfig) kc.loadFromFile(kubeconfig);
      else kc.loadFromDefault();
      clients = { apps: kc.makeApiClient(k8s.AppsV1Api), core: kc.makeApiClient(k8s.CoreV1Api) };
    }
    return clients;
  };
  const call = async <T>(what: string, request: () => Promise<T>): Promise<T> => {
    try {
      return await withTimeout(request(), timeoutMs, what);
    } catch (err) {
      if ((err as { code?: unknown }).code === 403) {
        throw ApplicationFailure.create({ type: ErrorType.KubernetesForbidden, message: `${what}: ${describeKubeError(err)}`, nonRetryable: true });
      }
      // Anything else (apiserver down, timeout, 5xx) is retried by the activity's retry policy.
      throw new Error(`${what}: ${describeKubeError(err)}`, { cause: err });
    }
  };
  return {
    async deploymentPods(namespace, deployment) {
      const { apps, core } = await load();
      let d;
      try {
        d = await withTimeout(apps.readNamespacedDeployment({ name: deployment, namespace }), timeoutMs, `reading deployment ${deployment}`);
      } catch (err) {
        if ((err as { code?: unknown }).code === 404) return null;
        return call(`reading deployment ${deployment}`, () => Promise.reject(err as Error));
      }
      const labelSelector = selectorString(d.spec?.selector);
      // Pods the Deployment owns: through its ReplicaSets, as `kubectl get pods` for a deployment shows them.
      const [replicaSets, pods] = await Promise.all([
        call(`listing replicasets of ${deployment}`, () => apps.listNamespacedReplicaSet({ namespace, ...(labelSelector ? { labelSelector } : {}) })),
        call(`listing pods of ${deployment}`, () => core.listNamespacedPod({ namespace, ...(labelSelector ? { labelSelector } : {}) })),
      ]);
      const owned = new Set(replicaSets.items.filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.uid === d.metadata?.uid)).map((rs) => rs.metadata?.name));
      return pods.items
        .filter((p) => p.metadata?.ownerReferences?.some((o) => o.kind === 'ReplicaSet' && owned.has(o.name)))
        .map((p): PodSnapshot => {
          const created = p.metadata?.creationTimestamp;
          const createdAt = created instanceof Date ? created.toISOString() : typeof created === 'string' ? created : undefined;
          return {
            name: p.metadata?.name ?? '(unnamed)',
            phase: p.status?.phase ?? 'Unknown',
            ready: p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
            ...(createdAt ? { createdAt } : {}),
            deleting: !!p.metadata?.deletionTimestamp,
            containers: (p.status?.containerStatuses ?? []).map((c) => ({
              name: c.name,
              ready: c.ready,
              restarts: c.restartCount,
              ...(c.state?.waiting?.reason ? { waitingReason: c.state.waiting.reason } : {}),
            })),
          };
        });
    },
    async readLog(namespace, pod, container, opts) {
      const { core } = await load();
      try {
        return await withTimeout(
          core.readNamespacedPodLog({ name: pod, namespace, container, limitBytes: opts.limitBytes, ...(opts.sinceSeconds ? { sinceSeconds: opts.sinceSeconds } : {}) }),
          timeoutMs,
          'reading the log',
        );
      } catch (err) {
        throw new LogsUnavailable(describeKubeError(err));
      }
    },
  };
}

// ---------------------------------------------------------------------------
// Database and Redis (standalone, so the report activity can count connections too)
// ---------------------------------------------------------------------------

export interface VerifyDeps {
  config: DeployConfig;
  /** The worker's environment: smoke credentials, DATABASE_URL, REDIS_URL. */
  env: Record<string, string | undefined>;
  /** Defaults to a reader over config.kubernetes.kubeconfig. */
  pods?: PodReader;
  log?: Logger;
  now?: () => Date;
}

// ---------------------------------------------------------------------------
// Activities
// ---------------------------------------------------------------------------

export function verifyActivities(deps: VerifyDeps) {
  const { config, env } = deps;
  const v = config.verification;
  const log = deps.log ?? activityLogger();
  const now = deps.now ?? (() => new Date());
  let podReader = deps.pods;
  const pods = (): PodReader => (podReader ??= kubePodReader(config.kubernetes.kubeconfig || undefined, v.kubernetesTimeout));
  const envSecrets = () => secretValues(env, [config.database.urlEnv, config.redis.urlEnv, config.notifications.slackWebhookEnv, config.notifications.webhookEnv]);
  const describe = (err: unknown) => redact(messageOf(err), envSecrets());

  async function checkHealth(req: HealthRequest): Promise<HealthReport> {
    const url = joinUrl(checkBaseUrl(req.baseUrl ?? v.baseUrl), v.healthPath);
    const shownUrl = redact(url, envSecrets());
    const started = Date.now();
    let r: Omit<HealthReport, 'lines'>;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(v.timeout), headers: { accept: 'application/json' } });
      const text = await res.text();
      const latencyMs = Date.now() - started;
      const body = describeBody(text, envSecrets());
      let status: unknown;
      try {
        status = (JSON.parse(text) as { status?: unknown }).status;
      } catch {
        status = undefined;
      }
      if (res.status === 200 && status === 'ok') r = { ok: true, url: shownUrl, status: res.status, latencyMs, body };
      else r = { ok: false, url: shownUrl, status: res.status, latencyMs, body, reason: `expected 200 {"status":"ok"}, got ${res.status} ${body}` };
    } catch (err) {
      r = { ok: false, url: shownUrl, status: null, latencyMs: Date.now() - started, reason: redact(describeFetchError(err, v.timeout), envSecrets()) };
    }
    const line = r.ok ? `GET ${shownUrl}: ${r.status} ${r.body} in ${r.latencyMs} ms` : `GET ${shownUrl}: failed: ${r.reason}`;
    if (r.ok) log.info('health check passed', { url: shownUrl, latencyMs: r.latencyMs });
    else log.warn('health check failed', { url: shownUrl, reason: r.reason });
    return { ...r, lines: [line] };
  }

  async function runSmokeCheck(base: string, check: SmokeCheckConfig, captured: Record<string, string>, secrets: string[]): Promise<SmokeCheckResult> {
    const head = { name: check.name, method: check.method, path: check.path };
    if (check.bearer && captured[check.bearer] === undefined) {
      return { ...head, outcome: 'skipped', status: null, latencyMs: null, reason: `needs "${check.bearer}", which no earlier check captured` };
    }
    let body: string | undefined;
    if (check.body !== undefined) {
      const resolved = resolveEnvPlaceholders(check.body, env);
      if (resolved.missing.length > 0) {
        return { ...head, outcome: 'fail', status: null, latencyMs: null, reason: `environment variable${resolved.missing.length > 1 ? 's' : ''} ${resolved.missing.join(', ')} not set on the worker` };
      }
      secrets.push(...resolved.secrets);
      body = JSON.stringify(resolved.value);
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (check.bearer) headers.authorization = `Bearer ${captured[check.bearer]}`;
    const started = Date.now();
    let res: Response;
    let text: string;
    try {
      res = await fetch(joinUrl(base, check.path), { method: check.method, headers, body, signal: AbortSignal.timeout(check.timeout) });
      text = await res.text();
    } catch (err) {
      return { ...head, outcome: 'fail', status: null, latencyMs: Date.now() - started, reason: redact(describeFetchError(err, check.timeout), secrets) };
    }
    const latencyMs = Date.now() - started;
    if (res.status !== check.expectStatus) {
      return { ...head, outcome: 'fail', status: res.status, latencyMs, reason: `expected ${check.expectStatus}, got ${res.status}: ${describeBody(text, secrets)}` };
    }
    if (check.capture) {
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return { ...head, outcome: 'fail', status: res.status, latencyMs, reason: `response is not JSON, cannot capture ${Object.values(check.capture).join(', ')}: ${describeBody(text, secrets)}` };
      }
      for (const [name, path] of Object.entries(check.capture)) {
        const value = valueAtPath(json, path);
        if ((typeof value !== 'string' && typeof value !== 'number') || value === '') {
          return { ...head, outcome: 'fail', status: res.status, latencyMs, reason: `response has no ${path}` };
        }
        captured[name] = String(value);
        secrets.push(String(value));
      }
    }
    return { ...head, outcome: 'pass', status: res.status, latencyMs };
  }

  async function runSmokeChecks(req: SmokeRequest): Promise<SmokeReport> {
    const base = checkBaseUrl(req.baseUrl ?? v.baseUrl);
    const captured: Record<string, string> = {};
    const secrets = envSecrets();
    const checks: SmokeCheckResult[] = [];
    // In order: a later check may use what an earlier one captured (sign in -> token -> API).
    for (const check of v.smoke) checks.push(await runSmokeCheck(base, check, captured, secrets));
    const lines = checks.map((c) => {
      const what = `${c.method} ${c.path}${c.status !== null ? ` ${c.status}` : ''}${c.latencyMs !== null ? ` in ${c.latencyMs} ms` : ''}`;
      return `${c.name}: ${c.outcome === 'pass' ? 'pass' : c.outcome === 'skipped' ? 'skipped, not run' : 'failed'} (${what})${c.reason ? `: ${c.reason}` : ''}`;
    });
    if (checks.length === 0) lines.push('no smoke checks configured (verification.smoke)');
    for (const c of checks) {
      const meta = { check: c.name, outcome: c.outcome, status: c.status, latencyMs: c.latencyMs, ...(c.reason ? { reason: c.reason } : {}) };
      if (c.outcome === 'pass') log.info('smoke check passed', meta);
      else log.warn('smoke check failed', meta);
    }
    return { ok: checks.every((c) => c.outcome === 'pass'), lines, checks };
  }

  /** Restart counts per pod of the deployments now: the baseline a later Kubernetes check compares with. */
  async function podRestarts(req: { namespace: string; deployments: string[] }): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const d of req.deployments) {
      for (const p of (await pods().deploymentPods(req.namespace, d)) ?? []) out[p.name] = restartsOf(p);
    }
    return out;
  }

  async function readLogs(namespace: string, targets: PodSnapshot[], sinceSeconds: number | undefined): Promise<Record<string, LogState>> {
    const reader = pods();
    const secrets = envSecrets();
    const logs: Record<string, LogState> = {};
    const queue = [...targets];
    // A few at a time: a namespace may have many pods and the apiserver is shared.
    const worker = async (): Promise<void> => {
      for (let pod = queue.shift(); pod; pod = queue.shift()) {
        let errorLines = 0;
        let sample: string | undefined;
        let unavailable: string | undefined;
        let read = 0;
        for (const c of pod.containers) {
          try {
            const text = await reader.readLog(namespace, pod.name, c.name, { limitBytes: v.logLimitBytes, ...(sinceSeconds ? { sinceSeconds } : {}) });
            read++;
            const counted = countErrorLines(text, v.logErrorPattern);
            errorLines += counted.count;
            sample ??= counted.sample !== undefined ? redact(counted.sample, secrets) : undefined;
          } catch (err) {
            if (!(err instanceof LogsUnavailable)) throw err;
            unavailable ??= `${c.name}: ${err.message}`;
          }
        }
        if (read === 0 && unavailable !== undefined) logs[pod.name] = { state: 'unavailable', reason: unavailable };
        else logs[pod.name] = { state: 'checked', errorLines, ...(sample !== undefined ? { sample } : {}) };
      }
    };
    await Promise.all(Array.from({ length: Math.min(4, targets.length) }, worker));
    return logs;
  }

  /**
   * Runbook "Service Health Checks": every pod of the deployments Running and
   * Ready, no restart counts risen since the baseline, error lines in the new
   * pods' logs since the rollout within verification.maxLogErrors. Logs the
   * cluster cannot give (kwok pods have none) are reported as such.
   */
  async function checkKubernetesHealth(req: KubernetesHealthRequest): Promise<KubernetesReport> {
    const sinceSeconds = req.since ? Math.max(1, Math.ceil((now().getTime() - Date.parse(req.since)) / 1000)) : undefined;
    const deployments: DeploymentHealth[] = [];
    const problems: string[] = [];
    const warnings: string[] = [];
    const totals = { checked: 0, unavailable: 0, errorLines: 0, limit: v.maxLogErrors };
    let ok = true;
    for (const name of req.deployments) {
      const list = await pods().deploymentPods(req.namespace, name);
      if (list === null) {
        ok = false;
        problems.push(`deployment ${name} not found in ${req.namespace}`);
        deployments.push({ name, found: false, pods: [], summary: 'not found' });
        continue;
      }
      const logs = await readLogs(req.namespace, list.filter((p) => !p.deleting && isNewPod(p, req.since)), sinceSeconds);
      const j = judgePods(list, { baselineRestarts: req.baselineRestarts, since: req.since, maxLogErrors: v.maxLogErrors, logs });
      ok &&= j.ok;
      problems.push(...j.problems.map((p) => `${name}: ${p}`));
      warnings.push(...j.warnings.map((w) => `${name}: ${w}`));
      totals.checked += j.pods.filter((p) => p.logs.state === 'checked').length;
      totals.unavailable += j.pods.filter((p) => p.logs.state === 'unavailable').length;
      totals.errorLines += j.logErrorLines;
      deployments.push({ name, found: true, pods: j.pods, summary: j.summary });
    }
    const lines = [...problems.map((p) => `failed: ${p}`), ...warnings.map((w) => `warning: ${w}`), ...deployments.map((d) => `${d.name}: ${d.summary}`)];
    for (const w of warnings) log.warn('kubernetes check warning', { namespace: req.namespace, warning: w });
    if (ok) log.info('kubernetes check passed', { namespace: req.namespace, deployments: req.deployments.length });
    else log.warn('kubernetes check failed', { namespace: req.namespace, problems });
    return { ok, lines, namespace: req.namespace, deployments, problems, warnings, logs: totals };
  }

  function envUrl(name: string): string {
    const url = env[name];
    if (!url) throw ApplicationFailure.create({ type: ErrorType.ConfigInvalid, message: `environment variable ${name} is not set on the worker`, nonRetryable: true });
    return url;
  }

  /** Active database connections now: the baseline a later platform check compares with. */
  async function platformBaseline(): Promise<PlatformBaseline> {
    const url = envUrl(config.database.urlEnv);
    try {
      return { at: now().toISOString(), databaseConnections: await countDatabaseConnections(url, config.database.name, v.timeout) };
    } catch (err) {
      throw new Error(`counting database connections: ${describe(err)}`, { cause: err });
    }
  }

  /** Runbook "Monitoring & Alerts": database connections not climbing, Redis below maxMemoryRatio of maxmemory. */
  async function checkPlatformHealth(req: PlatformHealthRequest): Promise<PlatformReport> {
    const dbUrl = envUrl(config.database.urlEnv);
    const redisUrl = envUrl(config.redis.urlEnv);
    const [db, redis] = await Promise.all([
      countDatabaseConnections(dbUrl, config.database.name, v.timeout).then(
        (n) => judgeConnectionGrowth(n, req.baselineConnections, config.database.maxConnectionGrowth),
        (err: unknown): PlatformCheck => ({ name: 'database-connections', outcome: 'fail', value: null, detail: `cannot query the database: ${describe(err)}` }),
      ),
      redisMemory(redisUrl, v.timeout).then(
        (m) => judgeRedisMemory(m.used, m.max, config.redis.maxMemoryRatio),
        (err: unknown): PlatformCheck => ({ name: 'redis-memory', outcome: 'fail', value: null, detail: `cannot read Redis memory: ${describe(err)}` }),
      ),
    ]);
    const checks = [db, redis];
    const outcome: MeasurementOutcome = checks.some((c) => c.outcome === 'fail') ? 'fail' : checks.some((c) => c.outcome === 'inconclusive') ? 'inconclusive' : 'pass';
    // Inconclusive (no baseline, no maxmemory) is shown, but only a failure fails the check.
    const lines = checks.map((c) => `${c.name} ${c.outcome === 'fail' ? 'failed' : c.outcome}: ${c.detail}`);
    if (outcome === 'pass') log.info('platform check passed', { lines });
    else log.warn(`platform check ${outcome}`, { lines });
    return { ok: outcome !== 'fail', lines, outcome, checks };
  }

  // --- canary analysis ------------------------------------------------------

  async function queryPrometheus(query: string): Promise<QueryValue> {
    const a = config.analysis;
    const url = `${a.prometheusUrl.replace(/\/+$/, '')}/api/v1/query?query=${encodeURIComponent(query)}`;
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, { signal: AbortSignal.timeout(a.queryTimeout), headers: { accept: 'application/json' } });
      text = await res.text();
    } catch (err) {
      return { kind: 'none', reason: `Prometheus unreachable: ${describeFetchError(err, a.queryTimeout)}` };
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return { kind: 'none', reason: `Prometheus answered HTTP ${res.status} that is not JSON: ${describeBody(text, [], 120)}` };
    }
    return classifyQueryResponse(res.status, body);
  }

  async function measure(metric: MetricConfig, track: Track, req: AnalysisRequest, window: string): Promise<Measurement> {
    const threshold = describeThreshold(metric);
    const base = { metric: metric.name, track, ...(threshold ? { threshold } : {}) };
    let query: string;
    try {
      query = renderQuery(metric.query, { track, version: track === 'canary' ? req.version : req.stableVersion, namespace: req.namespace, window });
    } catch (err) {
      if (err instanceof TemplateError) return { ...base, value: null, outcome: 'inconclusive', reason: err.message };
      throw err;
    }
    const got = await queryPrometheus(query);
    if (got.kind === 'none') return { ...base, value: null, outcome: 'inconclusive', reason: got.reason };
    const judged = judgeValue(got.value, metric);
    // JSON has no NaN or Infinity: a value that is not finite is reported as null, with the reason saying what it was.
    return { ...base, value: Number.isFinite(got.value) ? got.value : null, outcome: judged.outcome, ...(judged.reason ? { reason: judged.reason } : {}) };
  }

  /** Canary against stable: canary <= stable * maxRatioToStable; inconclusive unless both were measured. */
  function compare(metric: MetricConfig & { maxRatioToStable: number }, canary: Measurement, stable: Measurement): Measurement {
    const name = `${metric.name} vs stable`;
    const ratio = metric.maxRatioToStable;
    if (canary.value === null || stable.value === null || canary.outcome === 'inconclusive' || stable.outcome === 'inconclusive') {
      return { metric: name, track: 'canary', value: canary.value, threshold: `<= ${ratio} x stable`, outcome: 'inconclusive', reason: 'canary and stable were not both measured' };
    }
    const limit = stable.value * ratio;
    const judged = judgeValue(canary.value, { max: limit, unit: metric.unit });
    return {
      metric: name,
      track: 'canary',
      value: canary.value,
      threshold: `<= ${ratio} x stable (${Number(stable.value.toPrecision(4))}${metric.unit ? ` ${metric.unit}` : ''})`,
      outcome: judged.outcome,
      ...(judged.reason ? { reason: `${judged.reason} (${ratio} x stable)` } : {}),
    };
  }

  /**
   * One analysis run: every configured metric for every requested track, plus
   * canary-vs-stable comparisons. Never throws for what it measured; the
   * workflow tallies runs with tallyRun (failureLimit, inconclusiveLimit).
   */
  async function analyzeCanary(req: AnalysisRequest): Promise<AnalysisRun> {
    const window = req.window ?? config.analysis.window;
    const tracks = [...new Set(req.tracks)].filter((t): t is Track => t === 'stable' || t === 'canary');
    const pairs = tracks.flatMap((track) => config.analysis.metrics.map((metric) => ({ track, metric })));
    const measured = await Promise.all(pairs.map(({ track, metric }) => measure(metric, track, req, window)));
    const measurements = [...measured];
    if (tracks.includes('canary') && tracks.includes('stable')) {
      for (const metric of config.analysis.metrics) {
        if (metric.maxRatioToStable === undefined) continue;
        const c = measured.find((m) => m.metric === metric.name && m.track === 'canary');
        const s = measured.find((m) => m.metric === metric.name && m.track === 'stable');
        if (c && s) measurements.push(compare({ ...metric, maxRatioToStable: metric.maxRatioToStable }, c, s));
      }
    }
    const run: AnalysisRun = { at: now().toISOString(), outcome: runOutcome(measurements), measurements, weight: req.weight };
    const notPassing = measurements.filter((m) => m.outcome !== 'pass').map((m) => `${m.metric}[${m.track}] ${m.outcome}: ${m.reason ?? ''}`);
    if (run.outcome === 'pass') log.info('analysis passed', { version: req.version, weight: req.weight, measurements: measurements.length });
    else log.warn(`analysis ${run.outcome}`, { version: req.version, weight: req.weight, measurements: notPassing });
    return run;
  }

  return { checkHealth, runSmokeChecks, podRestarts, checkKubernetesHealth, platformBaseline, checkPlatformHealth, analyzeCanary };
}

export type VerifyActivities = ReturnType<typeof verifyActivities>;
