/**
 * deployctl stats as people read it: what was listed and what was left out,
 * one row of figures per environment and one for all together, each figure
 * beside the counts it stands on, then the definitions it was computed by.
 */
import type { DeploymentFact, DoraReport, Figures, Restore, Spread } from '../domain/dora';
import { formatDuration } from '../domain/duration';

/** What visibility listed in the window, and what of it the figures count. */
export interface Listed {
  listed: number;
  /** Not ended: no result yet, so not in the figures. */
  running: number;
  /** Listed but not deployments: refused (the lock, a freeze, bad input) or dry runs. */
  notDeployments: { refused: number; planned: number };
  /** Closed without a result (terminated, cancelled, timed out): nothing says how they ended. */
  withoutResult: { workflowId: string; status: string }[];
  facts: DeploymentFact[];
}

const pct = (r: number) => `${Number((r * 100).toFixed(1))}%`;
const rate = (n: number) => Number(n.toFixed(2)).toString();

function spread(s: Spread): string {
  return s.medianMs === null ? '-' : `median ${formatDuration(s.medianMs)}, p90 ${formatDuration(s.p90Ms ?? 0)}`;
}

function restore(r: Restore): string {
  const counts = [
    `${r.restored} restored`,
    ...(r.notRestored
      ? [
          `${r.notRestored} not restored${r.oldestOpen ? `, the oldest ${r.oldestOpen.workflowId} open ${formatDuration(r.oldestOpen.ageMs)}` : ''}`,
        ]
      : []),
    ...(r.unmeasured ? [`${r.unmeasured} unmeasured`] : []),
  ];
  return `${spread(r)} (${counts.join(', ')})`;
}

/** One scope's figures as label and value lines, the counts beside each figure. */
function block(scope: string, f: Figures): string[] {
  const { deploymentFrequency: df, leadTime: lt, changeFailureRate: cfr, timeToRestore: ttr } = f;
  const failures = cfr.failures;
  const before = cfr.failedBeforeRollout ? `; ${cfr.failedBeforeRollout} failed before their rollout` : '';
  const rows: [string, string][] = [
    ['deployment frequency', `${df.successes} live: ${rate(df.perDay)}/day, ${rate(df.perWeek)}/week (${df.band})`],
    [
      'lead time for changes',
      `${spread(lt)} (${lt.measured} measured${lt.missing ? `, ${lt.missing} without commit time` : ''})`,
    ],
    [
      'change failure rate',
      cfr.rate === null
        ? `- (no rollout began${before})`
        : `${pct(cfr.rate)} (${failures.total} of ${cfr.began} begun: ${failures.rolledBack} rolled back, ${failures.aborted} aborted, ${failures.failed} failed${before})`,
    ],
    ['time to restore: stable', ttr.failures ? restore(ttr.toStable) : '- (no change failures)'],
    ['time to restore: next success', ttr.failures ? restore(ttr.toNextSuccess) : '- (no change failures)'],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  return [scope, ...rows.map(([label, value]) => `  ${label.padEnd(width)}  ${value}`)];
}

export function formatDora(report: DoraReport, listed: Listed, environment?: string): string[] {
  const w = report.window;
  const scopes = Object.entries(report.environments);
  const left = [
    `${listed.running} running`,
    `${listed.notDeployments.refused} refused`,
    `${listed.notDeployments.planned} dry runs`,
    `${listed.withoutResult.length} closed without a result`,
  ];
  const lines = [
    `DORA figures${environment ? ` of ${environment}` : ''}, ${w.since} → ${w.until} (${rate(w.days)} days)`,
    `${listed.facts.length} deployments counted of ${listed.listed} listed; not counted: ${left.join(', ')}${report.overall.fromSteps ? `; ${report.overall.fromSteps} read from their steps (no timeline)` : ''}`,
  ];
  if (listed.withoutResult.length)
    lines.push(`  without a result: ${listed.withoutResult.map((x) => `${x.workflowId} (${x.status})`).join(', ')}`);
  lines.push('');
  if (!listed.facts.length) lines.push('no deployments in the window', '');
  else {
    for (const [env, f] of scopes) lines.push(...block(env, f), '');
    // All together only adds something when there is more than one environment.
    if (scopes.length > 1) lines.push(...block('all environments', report.overall), '');
  }
  lines.push('Definitions:', ...report.definitions.map((d) => `  - ${d}`));
  return lines;
}
