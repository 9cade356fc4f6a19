/**
 * How deployctl shows a deployment to people: steps with ticks and timings, a
 * canary weight bar, the soak countdown, the last analysis figures and, when
 * the deployment waits for a person, the exact commands to answer it. Pure:
 * the same text on a terminal and in tests. Colour only when asked.
 */
import { measurementLine } from '../domain/analysis';
import { formatDuration } from '../domain/duration';
import type { DeploymentPreview, QuarantineRecord } from '../activities/contracts';
import {
  configChangeLine,
  waveLine,
  type DeploymentStatus,
  type SignalRecord,
  type StageStatus,
  type StepRecord,
} from '../domain/status';
import type { FreezeRecord, FreezeStatus } from '../domain/freeze';

export interface FormatOptions {
  /** "now", for countdowns. */
  now?: number;
  colour?: boolean;
}

const MARKS: Record<StepRecord['state'], string> = {
  pending: ' ',
  running: '…',
  succeeded: '✓',
  failed: '✗',
  skipped: '-',
  compensated: '↺',
};

function paint(on: boolean | undefined, code: string, text: string): string {
  return on ? `\u001b[${code}m${text}\u001b[0m` : text;
}

export function weightBar(weight: number, width = 20): string {
  const filled = Math.max(0, Math.min(width, Math.round((weight / 100) * width)));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${weight}%`;
}

function stepLine(st: StepRecord, o: FormatOptions): string {
  const mark = MARKS[st.state];
  const took =
    st.durationMs !== undefined
      ? ` ${formatDuration(st.durationMs)}`
      : st.state === 'running' && st.startedAt && o.now
        ? ` ${formatDuration(o.now - Date.parse(st.startedAt))}…`
        : '';
  const colour = st.state === 'failed' ? '31' : st.state === 'succeeded' ? '32' : st.state === 'running' ? '33' : '90';
  const tail = st.error ? `  error: ${st.error}` : st.detail ? `  ${st.detail}` : '';
  const attention = st.attention ? `\n      ${paint(o.colour, '31', `needs attention: ${st.attention}`)}` : '';
  return `    ${paint(o.colour, colour, mark)} ${st.name}${took}${tail}${attention}`;
}

/**
 * The full, human status of one workflow. `child` is its active child's status
 * (canary, blue-green, rollback; a release's stage deployment) and
 * `grandchild` that child's own active child (the canary of a release's
 * stage): what the deepest of them waits for is what the workflow waits for.
 */
export function formatStatus(
  s: DeploymentStatus,
  o: FormatOptions = {},
  child?: DeploymentStatus,
  grandchild?: DeploymentStatus,
): string {
  const now = o.now ?? Date.now();
  const lines: string[] = [];
  const live = [grandchild, child, s].filter((x): x is DeploymentStatus => x !== undefined);
  const first = <K extends keyof DeploymentStatus>(k: K): DeploymentStatus[K] | undefined =>
    live.find((x) => x[k] !== undefined)?.[k];
  const phaseColour =
    s.phase === 'succeeded' ? '32' : ['failed', 'rolled-back', 'aborted'].includes(s.phase) ? '31' : '33';
  lines.push(`${s.workflow} ${s.workflowId}`);
  lines.push(
    `  version ${s.version}  environment ${s.environment}  strategy ${s.strategy ?? '-'}  phase ${paint(o.colour, phaseColour, s.phase)}`,
  );
  const ended = s.endedAt ? Date.parse(s.endedAt) : now;
  lines.push(
    `  started ${s.startedAt}${s.requestedBy ? ` by ${s.requestedBy}` : ''}, ${s.endedAt ? 'took' : 'running for'} ${formatDuration(ended - Date.parse(s.startedAt))}`,
  );
  if (s.release) lines.push(...formatReleaseImages(s.release));
  if (s.stages?.length) {
    lines.push('  stages:');
    lines.push(...formatStages(s.stages, o).map((l) => `  ${l}`));
  }
  if (s.waves?.length) {
    lines.push('  waves:');
    for (const w of s.waves) lines.push(`    ${waveLine(w)}`);
  }
  if (s.configuration?.length) {
    lines.push('  configuration (old → new snapshot):');
    for (const c of s.configuration) lines.push(`    ${configChangeLine(c)}`);
  }
  const steering = first('steering');
  if (steering) lines.push(`  steering: ${steering.summary}`);
  const c = first('canary');
  if (c) {
    lines.push(`  canary ${weightBar(c.weight)}  steps ${c.steps.join(' → ')}${c.paused ? '  PAUSED' : ''}`);
    if (c.soakEndsAt)
      lines.push(`  soak ends in ${formatDuration(Math.max(0, Date.parse(c.soakEndsAt) - now))} (${c.soakEndsAt})`);
    else if (c.paused && c.soakRemainingMs !== undefined)
      lines.push(`  soak paused with ${formatDuration(c.soakRemainingMs)} left`);
  }
  const waiting = first('waitingFor');
  if (waiting) {
    const timeout = waiting.timeoutAt
      ? ` (times out in ${formatDuration(Math.max(0, Date.parse(waiting.timeoutAt) - now))})`
      : '';
    lines.push(`  ${paint(o.colour, '1;33', 'waiting for')} ${waiting.what} since ${waiting.since}${timeout}`);
    for (const cmd of waiting.commands ?? []) lines.push(`    $ ${cmd}`);
  }
  lines.push('  steps:');
  for (const st of s.steps) lines.push(stepLine(st, { ...o, now }));
  if (child) {
    lines.push(`  ${child.workflow} ${child.workflowId} (${child.phase}):`);
    for (const st of child.steps) lines.push(`  ${stepLine(st, { ...o, now })}`);
  }
  if (grandchild) {
    lines.push(`    ${grandchild.workflow} ${grandchild.workflowId} (${grandchild.phase}):`);
    for (const st of grandchild.steps) lines.push(`    ${stepLine(st, { ...o, now })}`);
  }
  const analysis = first('lastAnalysis');
  if (analysis) {
    lines.push(
      `  last analysis ${analysis.outcome} at ${analysis.at}${analysis.weight !== undefined ? ` (weight ${analysis.weight}%)` : ''}:`,
    );
    for (const m of analysis.measurements) lines.push(`    ${measurementLine(m)}`);
  }
  for (const st of [...live].reverse()) {
    for (const a of st.approvals)
      lines.push(
        `  ${a.signal === 'promote' ? 'promoted' : 'approved'} by ${a.by}${verified(a)} at ${a.at}${a.reason ? ` (${a.reason})` : ''}${a.note ? `: ${a.note}` : ''}`,
      );
    for (const a of st.aborts) lines.push(`  aborted by ${a.by}${verified(a)} at ${a.at}: ${a.reason ?? ''}`);
    for (const p of st.pauses)
      lines.push(`  ${p.signal === 'pause' ? 'paused' : 'resumed'} by ${p.by}${verified(p)} at ${p.at}`);
    for (const i of st.ignoredSignals) lines.push(`  ignored ${i.signal} from ${i.by}: ${i.ignoredBecause}`);
  }
  const failures =
    s.notificationFailures + (child?.notificationFailures ?? 0) + (grandchild?.notificationFailures ?? 0);
  if (failures) lines.push(`  notifications failed: ${failures}`);
  if (s.error) lines.push(`  ${paint(o.colour, '31', 'error:')} ${s.error}`);
  return lines.join('\n');
}

/**
 * The child a person's signal reaches now: a release's stage that is
 * deploying (none between stages, where the release answers itself), else
 * the last child started, while the workflow is not finished.
 */
export function activeChildId(s: DeploymentStatus): string | undefined {
  if (['succeeded', 'failed', 'rolled-back', 'aborted', 'planned'].includes(s.phase)) return undefined;
  if (s.stages) return s.stages.find((x) => x.state === 'deploying')?.workflowId;
  return s.children.at(-1);
}

const STAGE_MARKS: Record<StageStatus['state'], string> = {
  pending: ' ',
  waiting: '…',
  deploying: '…',
  succeeded: '✓',
  failed: '✗',
  'rolled-back': '↺',
  aborted: '✗',
  skipped: '-',
};

/** A release's stages in order, one line each (environment, state, its deployment), with what a stage waits for or why it ended. */
export function formatStages(stages: StageStatus[], o: FormatOptions = {}): string[] {
  const env = Math.max(0, ...stages.map((x) => x.environment.length));
  const state = Math.max(0, ...stages.map((x) => x.state.length));
  const lines: string[] = [];
  for (const x of stages) {
    const colour =
      x.state === 'succeeded' ? '32' : ['failed', 'rolled-back', 'aborted'].includes(x.state) ? '31' : '33';
    lines.push(
      `  ${paint(o.colour, colour, STAGE_MARKS[x.state])} ${x.environment.padEnd(env)}  ${x.state.padEnd(state)}  ${x.workflowId}`,
    );
    if (x.waitingFor) lines.push(`      waiting for ${x.waitingFor}`);
    if (x.reason) lines.push(`      ${x.reason}`);
  }
  return lines;
}

/** A release's commit and the digest-pinned images every stage deploys. */
export function formatReleaseImages(r: NonNullable<DeploymentStatus['release']>): string[] {
  const names = Object.keys(r.images).sort();
  const width = Math.max(0, ...names.map((n) => n.length));
  return [
    `  release commit ${r.commit.slice(0, 12)}, images (the same in every stage):`,
    ...names.map((n) => `    ${n.padEnd(width)}  ${r.images[n]}`),
  ];
}

/** A table with a header of the column names in capitals, each column as wide as its widest cell. */
export function formatTable(cols: string[], rows: Record<string, string>[]): string[] {
  const width = Object.fromEntries(cols.map((c) => [c, Math.max(c.length, ...rows.map((r) => (r[c] ?? '').length))]));
  const line = (cells: string[]) =>
    cells.map((v, i) => (i === cols.length - 1 ? v : v.padEnd(width[cols[i]]))).join('  ');
  return [line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => r[c] ?? '')))];
}

/** The quarantine of versions: what is held, where, why, by which workflow and since when; a lift says who lifted it and why. */
export function formatQuarantine(records: QuarantineRecord[]): string {
  if (!records.length) return 'no quarantined versions';
  const rows = records.map((r) => ({
    version: r.version,
    environment: r.environment,
    state: r.lifted ? 'lifted' : 'quarantined',
    since: r.at,
    workflow: r.workflowId,
    why: r.reason,
  }));
  const table = formatTable(['version', 'environment', 'state', 'since', 'workflow', 'why'], rows);
  const lines = [table[0]];
  records.forEach((r, i) => {
    lines.push(table[i + 1]);
    if (r.lifted) lines.push(`  ${liftedLine(r.lifted)}`);
  });
  return lines.join('\n');
}

/** "lifted by alice (ssh) at ... from quarantine-lift-...: the fix is in 1.0.2". */
export function liftedLine(l: NonNullable<QuarantineRecord['lifted']>): string {
  return `lifted by ${l.by}${l.via === 'none' ? '' : ` (${l.via})`} at ${l.at} from ${l.workflowId}: ${l.reason}`;
}

/** A dry run's plan, as people read it before saying yes. */
export function formatPreview(p: DeploymentPreview): string {
  const lines = [
    `  tag ${p.tag.name} on ${p.tag.commit.slice(0, 12)}${p.tag.existsOnOrigin ? ' (already on origin)' : ''}`,
  ];
  lines.push(`  checks: ${p.checks.length ? p.checks.join('; ') : 'none'}`);
  lines.push('  images:');
  for (const i of p.images)
    lines.push(`    ${i.exists ? '=' : '+'} ${i.reference}${i.exists ? ' (already in the registry)' : ''}`);
  lines.push(`  backup: ${p.backup.enabled ? `to s3://${p.backup.bucket}` : 'skipped'}`);
  lines.push(
    `  migrations: ${'error' in p.migrations ? `unknown (${p.migrations.error})` : p.migrations.pending.length ? `${p.migrations.pending.join(', ')} pending (${p.migrations.applied} applied)` : `none pending (${p.migrations.applied} applied)`}`,
  );
  lines.push('  deployments:');
  for (const d of p.deployments) lines.push(`    ${d.service}: ${d.current.join(', ')} → ${d.next}`);
  if (p.waves && p.waves.length > 1) {
    lines.push(
      '  waves (each rolled out and checked before the next; a failure rolls back the waves done, last first):',
    );
    p.waves.forEach((w, i) => lines.push(`    ${i + 1}. ${w.join(', ')}`));
  }
  lines.push(
    `  traffic: ${p.traffic.strategy}${p.traffic.strategy === 'canary' ? ` ${p.traffic.steps.join(' → ')}%, soak ${formatDuration(p.traffic.soakMs)} each` : ''}`,
  );
  return lines.join('\n');
}

/** " (ssh ED25519 SHA256:...)" for a verified sender; nothing for a name taken as typed. */
function verified(r: SignalRecord): string {
  return r.via ? ` (${r.via}${r.credential ? ` ${r.credential}` : ''})` : '';
}

/** An environment's stop-the-line freeze (`deployctl status deploy-freeze-<env>`): who froze it, why, how to end it. */
export function formatFreezeStatus(s: FreezeStatus, o: FormatOptions = {}): string {
  const colour = s.phase === 'frozen' ? '1;33' : s.phase === 'refused' ? '31' : '32';
  const line = (what: string, r: FreezeRecord) =>
    `  ${what} by ${r.by}${r.via === 'none' ? '' : ` (${r.via}${r.credential ? ` ${r.credential}` : ''})`} at ${r.at}: ${r.reason}`;
  const lines = [`freeze ${s.workflowId}`, `  environment ${s.environment}  phase ${paint(o.colour, colour, s.phase)}`];
  if (s.steering) lines.push(`  steering: ${s.steering}`);
  if (s.frozen) lines.push(line('frozen', s.frozen));
  if (s.phase === 'frozen') {
    lines.push('  new deployments wait at their start; running canaries hold their weight; abort still works');
    if (s.unfreezeCommand) lines.push(`    $ ${s.unfreezeCommand}`);
  }
  if (s.refused) lines.push(`  ${paint(o.colour, '31', 'refused:')} ${s.refused} (nothing was frozen)`);
  if (s.unfrozen) lines.push(line('unfrozen', s.unfrozen));
  for (const i of s.ignoredSignals) lines.push(`  ignored ${i.signal} from ${i.by}: ${i.ignoredBecause}`);
  return lines.join('\n');
}
