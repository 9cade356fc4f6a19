/**
 * The deployment summary in the runbook's template ("Post-Deployment
 * Documentation / Create Deployment Summary") and its changelog entry ("Update
 * Change Log"). Pure: the workflow passes its status plus what the activities
 * found (commits, migrations, figures) and gets Markdown back; storing and
 * committing it is the report activity's job. Every string that came from
 * outside goes through redact(), so secrets named by the caller (and URL
 * passwords) never reach the text.
 */
import { configChangeLine, waveLine, type AnalysisRun, type DeploymentStatus, type StepRecord } from './status';
import { redact } from './verification';

export interface ChangeEntry {
  sha?: string;
  subject: string;
}

export interface MonitoringFigures {
  /** Fraction, e.g. 0.002 for 0.2%. */
  errorRate?: number | null;
  p95Ms?: number | null;
  activeConnections?: number | null;
}

export interface SummaryInput {
  project: string;
  /** The workflow's status at the end (what the `status` query returns). */
  status: DeploymentStatus;
  previousVersion?: string;
  /** Commit subjects since the previous tag (report activity releaseChanges). */
  changes: ChangeEntry[];
  migrations: {
    /** Schema migrations applied by this deployment, in order. */
    applied: string[];
    /** Data migrations, when any were run. */
    data?: string[];
  };
  monitoring?: MonitoringFigures;
  /** Overrides what is derived from the step records. */
  timings?: { buildMs?: number; deployMs?: number; totalMs?: number };
  /** Whether the previous version's images are still available (default: yes when there is one). */
  previousVersionAvailable?: boolean;
  /** Where the pre-migration database backup is, e.g. s3://ai-saas-backups/postgres/... */
  backup?: string;
  /** Further issues the workflow wants listed. */
  issues?: string[];
  /** Values that must not appear in the text (they are replaced by ***). */
  secrets?: string[];
}

export interface Summary {
  title: string;
  markdown: string;
  statusLine: string;
  date: string;
  timings: { buildMs: number | null; deployMs: number | null; totalMs: number | null };
  issues: string[];
}

export const BUILD_STEP_RE = /\b(build|push)/i;
export const DEPLOY_STEP_RE =
  /(back ?up|migrat|roll|deploy|canary|traffic|promot|switch|soak|verif|smoke|health|analy|restor)/i;

export function versionLabel(version: string): string {
  return /^v\d/.test(version) ? version : `v${version}`;
}

export function statusLine(phase: DeploymentStatus['phase']): string {
  switch (phase) {
    case 'succeeded':
      return '✓ Successful';
    case 'failed':
      return '✗ Failed';
    case 'rolled-back':
      return '↩ Rolled back';
    case 'aborted':
      return '✗ Aborted';
    case 'planned':
      return '○ Planned (dry run)';
    default:
      return `… In progress (${phase})`;
  }
}

/** "5 minutes", "1 minute 30 seconds", "42 seconds". */
export function humanDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return 'n/a';
  const totalSeconds = Math.round(ms / 1000);
  if (totalSeconds < 60) return `${totalSeconds} second${totalSeconds === 1 ? '' : 's'}`;
  const minutes = Math.floor(totalSeconds / 60);
  const seconds = totalSeconds % 60;
  const m = `${minutes} minute${minutes === 1 ? '' : 's'}`;
  if (minutes >= 10 || seconds === 0) return m;
  return `${m} ${seconds} second${seconds === 1 ? '' : 's'}`;
}

function time(iso: string | undefined): number | undefined {
  if (!iso) return undefined;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
}

/** Wall-clock span from the first matching step's start to the last one's end. */
export function spanOf(steps: readonly StepRecord[], re: RegExp): number | null {
  const matching = steps.filter((s) => re.test(s.name));
  const starts = matching.map((s) => time(s.startedAt)).filter((t): t is number => t !== undefined);
  const ends = matching
    .map(
      (s) =>
        time(s.endedAt) ??
        (time(s.startedAt) !== undefined && s.durationMs !== undefined ? time(s.startedAt)! + s.durationMs : undefined),
    )
    .filter((t): t is number => t !== undefined);
  if (starts.length === 0 || ends.length === 0) return null;
  return Math.max(0, Math.max(...ends) - Math.min(...starts));
}

export function deriveTimings(input: Pick<SummaryInput, 'status' | 'timings'>): Summary['timings'] {
  const { status } = input;
  const start = time(status.startedAt);
  const lastEnd = Math.max(...status.steps.map((s) => time(s.endedAt) ?? -Infinity));
  const end = time(status.endedAt) ?? (Number.isFinite(lastEnd) ? lastEnd : undefined);
  return {
    buildMs: input.timings?.buildMs ?? spanOf(status.steps, BUILD_STEP_RE),
    deployMs:
      input.timings?.deployMs ??
      spanOf(
        status.steps.filter((s) => !BUILD_STEP_RE.test(s.name)),
        DEPLOY_STEP_RE,
      ),
    totalMs: input.timings?.totalMs ?? (start !== undefined && end !== undefined ? Math.max(0, end - start) : null),
  };
}

/** Retries, failures, compensations, ignored signals, aborts and undelivered notifications. */
export function collectIssues(input: Pick<SummaryInput, 'status' | 'issues'>): string[] {
  const { status } = input;
  const issues: string[] = [];
  for (const s of status.steps) {
    if (s.state === 'failed') issues.push(`Step "${s.name}" failed${s.error ? `: ${s.error}` : ''}`);
    else if (s.attempts !== undefined && s.attempts > 1) issues.push(`Step "${s.name}" needed ${s.attempts} attempts`);
    if (s.state === 'compensated') issues.push(`Step "${s.name}" was compensated`);
    if (s.attention) issues.push(`Step "${s.name}" needs attention: ${s.attention}`);
  }
  for (const a of status.aborts) issues.push(`Aborted by ${a.by}${a.reason ? `: ${a.reason}` : ''}`);
  for (const i of status.ignoredSignals) issues.push(`Signal ${i.signal} from ${i.by} ignored: ${i.ignoredBecause}`);
  if (status.notificationFailures > 0) {
    issues.push(
      `${status.notificationFailures} notification${status.notificationFailures === 1 ? '' : 's'} could not be delivered`,
    );
  }
  const last = status.lastAnalysis;
  if (last && last.outcome !== 'pass') {
    const why = last.measurements
      .filter((m) => m.outcome !== 'pass')
      .map((m) => `${m.metric}[${m.track}] ${m.reason ?? m.outcome}`);
    issues.push(`Last analysis ${last.outcome}: ${why.join('; ') || 'nothing measured'}`);
  }
  if (status.error && !issues.some((i) => i.includes(status.error ?? ''))) issues.push(`Error: ${status.error}`);
  issues.push(...(input.issues ?? []));
  return issues;
}

export function rollbackLine(
  input: Pick<SummaryInput, 'status' | 'previousVersion' | 'previousVersionAvailable'>,
): string {
  const prev = input.previousVersion ? versionLabel(input.previousVersion) : undefined;
  if (input.status.phase === 'rolled-back') return prev ? `Rolled back to ${prev}` : 'Rolled back';
  if (!prev) return 'Not available (no previous version)';
  if (input.previousVersionAvailable === false) return `Not ready (previous version ${prev} is not available)`;
  return `Ready (previous version ${prev} available)`;
}

/**
 * What the rollback did, in its own words (workloads, then the database:
 * restored, restored with row counts that differ, kept, unchanged), and what
 * it says a person must check. Empty when no rollback ran.
 */
export function rollbackDetail(status: DeploymentStatus): { detail?: string; attention?: string } {
  const step = status.steps.find((s) => s.name === 'rollback' && s.state === 'succeeded');
  return {
    ...(step?.detail ? { detail: step.detail } : {}),
    ...(step?.attention ? { attention: step.attention } : {}),
  };
}

/** How the requester was verified, as the summary says it. */
function requesterProof(status: DeploymentStatus): string {
  const via = status.steering?.requestedVia;
  if (!via) return '';
  return via === 'none'
    ? ' (as typed, not verified)'
    : ` (verified by ${via === 'ssh' ? 'SSH signature' : 'OIDC token'})`;
}

/** "**Approved By**: alice (ssh), bob (ssh)" when anyone approved or promoted. */
function approvedBy(status: DeploymentStatus, clean: (s: string) => string): string[] {
  if (status.approvals.length === 0) return [];
  const who = status.approvals.map(
    (a) => `${clean(a.by)} (${a.via ?? 'not verified'}: ${clean(a.reason ?? a.signal)})`,
  );
  return [`**Approved By**: ${who.join(', ')}`];
}

function percent(fraction: number): string {
  const pct = fraction * 100;
  return `${Number(pct.toFixed(pct < 10 ? 2 : 1))}%`;
}

function figure(v: number | null | undefined, fmt: (n: number) => string): string {
  return v === null || v === undefined || !Number.isFinite(v) ? 'n/a (no data)' : fmt(v);
}

/**
 * Picks the summary's monitoring figures out of an analysis run (config
 * metric names), taking only measurements that produced a finite value.
 */
export function monitoringFromAnalysis(
  run: AnalysisRun | undefined,
  opts: { track: string; errorRateMetric?: string; p95Metric?: string },
): MonitoringFigures {
  const pick = (metric: string): number | null => {
    const m = run?.measurements.find((x) => x.metric === metric && x.track === opts.track);
    return m && m.value !== null && Number.isFinite(m.value) ? m.value : null;
  };
  return { errorRate: pick(opts.errorRateMetric ?? 'error-rate'), p95Ms: pick(opts.p95Metric ?? 'p95-latency') };
}

function dateOf(status: DeploymentStatus): string {
  const iso = status.endedAt ?? status.startedAt;
  const t = time(iso);
  return t === undefined ? 'unknown' : new Date(t).toISOString().slice(0, 10);
}

function bullet(lines: readonly string[], none: string): string {
  return lines.length === 0 ? none : lines.map((l) => `- ${l}`).join('\n');
}

/** One line of Markdown from untrusted text: no newlines, bounded. */
function line(text: string, max = 300): string {
  const s = text.replace(/\s+/g, ' ').trim();
  return s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

export function buildSummary(input: SummaryInput): Summary {
  const { status } = input;
  const secrets = input.secrets ?? [];
  const clean = (t: string) => line(redact(t, secrets));
  const title = `Deployment Summary - ${versionLabel(status.version)}`;
  const date = dateOf(status);
  const state = statusLine(status.phase);
  const timings = deriveTimings(input);
  const issues = collectIssues(input).map(clean);
  const migrations = input.migrations.applied.map(clean);
  const dataMigrations = (input.migrations.data ?? []).map(clean);
  const mon = input.monitoring ?? {};
  const rollback = rollbackDetail(status);

  const md = [
    `# ${title}`,
    '',
    `**Date**: ${date}`,
    `**Deployed By**: ${clean(status.requestedBy ?? 'unknown')}${requesterProof(status)}`,
    ...approvedBy(status, clean),
    `**Status**: ${state}`,
    `**Environment**: ${clean(status.environment)}`,
    `**Workflow**: ${clean(status.workflowId)}`,
    '',
    '## Changes Deployed',
    bullet(
      input.changes.map((c) => clean(c.subject)),
      '- No changes since the previous release',
    ),
    '',
    '## Database Migrations',
    [
      ...(migrations.length ? migrations.map((m) => `- ${m}`) : ['- No schema migrations']),
      ...(dataMigrations.length ? dataMigrations.map((m) => `- Data: ${m}`) : ['- No data migrations']),
    ].join('\n'),
    '',
    ...(status.waves?.length
      ? ['## Rollout Order', status.waves.map((w) => `- ${clean(waveLine(w))}`).join('\n'), '']
      : []),
    ...(status.configuration?.length
      ? ['## Configuration', status.configuration.map((c) => `- ${clean(configChangeLine(c))}`).join('\n'), '']
      : []),
    '## Deployment Time',
    `- Build: ${humanDuration(timings.buildMs)}`,
    `- Deploy: ${humanDuration(timings.deployMs)}`,
    `- Total: ${humanDuration(timings.totalMs)}`,
    '',
    '## Issues Encountered',
    bullet(issues, 'None'),
    '',
    '## Rollback Status',
    clean(rollbackLine(input)),
    ...(rollback.detail ? [`Rollback: ${clean(rollback.detail)}`] : []),
    ...(rollback.attention ? [`**Needs attention**: ${clean(rollback.attention)}`] : []),
    ...(input.backup ? [`Database backup: ${clean(input.backup)}`] : []),
    '',
    '## Monitoring',
    `- Error rate: ${figure(mon.errorRate, percent)}`,
    `- P95 latency: ${figure(mon.p95Ms, (n) => `${Math.round(n)}ms`)}`,
    `- Active connections: ${figure(mon.activeConnections, (n) => String(Math.round(n)))}`,
    '',
  ].join('\n');
  return { title, markdown: md, statusLine: state, date, timings, issues };
}

// ---------------------------------------------------------------------------
// Changelog
// ---------------------------------------------------------------------------

/** The comment that marks a version's entry, so a re-run finds it and adds nothing. */
export function changelogMarker(project: string, version: string): string {
  return `<!-- deploy-pipelines: ${project} ${versionLabel(version)} -->`;
}

export function hasChangelogEntry(text: string, project: string, version: string): boolean {
  return text.includes(changelogMarker(project, version));
}

export function changelogEntry(input: SummaryInput): string {
  const { status } = input;
  const secrets = input.secrets ?? [];
  const clean = (t: string) => line(redact(t, secrets));
  const lines = [
    `## ${versionLabel(status.version)} - ${dateOf(status)}`,
    changelogMarker(input.project, status.version),
    '',
    bullet(
      input.changes.map((c) => clean(c.subject)),
      '- No changes since the previous release',
    ),
    ...(input.migrations.applied.length ? ['', `Migrations: ${input.migrations.applied.map(clean).join(', ')}`] : []),
    '',
    `Deployed to ${clean(status.environment)} by ${clean(status.requestedBy ?? 'unknown')} (${statusLine(status.phase)}, workflow ${clean(status.workflowId)}).`,
    '',
  ];
  return lines.join('\n');
}

/**
 * Puts the entry first, under the file's `# Title` when it has one. Returns
 * the text unchanged when the version already has an entry.
 */
export function insertChangelogEntry(
  existing: string,
  entry: string,
  project: string,
  version: string,
): { text: string; changed: boolean } {
  if (hasChangelogEntry(existing, project, version)) return { text: existing, changed: false };
  const lines = existing.split('\n');
  const titleAt = lines.findIndex((l) => /^# /.test(l));
  if (titleAt === -1) return { text: existing.trim() === '' ? entry : `${entry}\n${existing}`, changed: true };
  // Keep any intro paragraph under the title; the entries start at the first "## ".
  const firstEntry = lines.findIndex((l, i) => i > titleAt && /^## /.test(l));
  const at = firstEntry === -1 ? lines.length : firstEntry;
  const before = lines.slice(0, at).join('\n').replace(/\n+$/, '');
  const after = lines.slice(at).join('\n');
  const text = `${before}\n\n${entry}${after ? `\n${after}` : ''}`;
  return { text: text.endsWith('\n') ? text : `${text}\n`, changed: true };
}

/** S3 key of a stored summary: summaries/<project>_<version>_<workflowId>.md, safe characters only. */
export function summaryKey(prefix: string, project: string, version: string, workflowId: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');
  const p = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`;
  return `${p}${safe(project)}_${safe(version)}_${safe(workflowId)}.md`;
}
