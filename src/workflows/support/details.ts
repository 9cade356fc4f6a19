/**
 * The "current details" of a workflow's page in the Temporal UI (Temporal's
 * user metadata, issue 16 item 9): what the deployment is doing, what it
 * waits for and the commands that answer it, and how it ended, in a few lines
 * of Temporal markdown, so a person reads it without opening the status JSON.
 * The Tracker sets it whenever the status changes in a way that matters.
 */
import type { DeploymentStatus } from '../../domain/status';

const FINAL = ['succeeded', 'failed', 'rolled-back', 'aborted', 'planned'];

/** The details for one status; `notes` are lines a workflow adds (e.g. the environment lock it holds). */
export function currentDetails(s: DeploymentStatus, notes: readonly string[] = []): string {
  const lines: string[] = [];
  const what = s.workflow === 'deploy' ? 'deployment' : s.workflow;
  lines.push(`**${s.phase}** — ${what} of ${s.version} on ${s.environment}${s.strategy ? ` (${s.strategy})` : ''}`);
  if (FINAL.includes(s.phase)) {
    if (s.error) lines.push(`**why:** ${s.error}`);
    if (s.endedAt) lines.push(`ended at ${s.endedAt}`);
  }
  const w = s.waitingFor;
  if (w) {
    lines.push(
      `**waiting for:** ${w.what} (since ${w.since}${w.timeoutAt ? `, until ${w.timeoutAt} at the latest` : ''})`,
    );
    for (const c of w.commands ?? []) lines.push(`- \`${c}\``);
  }
  const running = s.steps.filter((x) => x.state === 'running').map((x) => x.name);
  if (running.length) lines.push(`**running:** ${running.join(', ')}`);
  const c = s.canary;
  if (c && !FINAL.includes(s.phase))
    lines.push(
      `**canary:** ${c.weight}% (steps ${c.steps.join(' → ')})${c.paused ? ', paused' : ''}${c.soakEndsAt ? `, soak until ${c.soakEndsAt}` : ''}`,
    );
  if (s.lastAnalysis)
    lines.push(
      `**last analysis:** ${s.lastAnalysis.outcome}${s.lastAnalysis.weight !== undefined ? ` at ${s.lastAnalysis.weight}%` : ''} (${s.lastAnalysis.at})`,
    );
  if (s.children.length) lines.push(`**child workflows:** ${s.children.join(', ')}`);
  const approved = s.approvals.map((a) => `${a.by} (${a.reason ?? a.signal})`);
  if (approved.length) lines.push(`**approved by:** ${approved.join(', ')}`);
  const ignored = s.ignoredSignals.at(-1);
  if (ignored) lines.push(`**last ignored signal:** ${ignored.signal} from ${ignored.by}: ${ignored.ignoredBecause}`);
  lines.push(...notes);
  const failed = s.steps.filter((x) => x.state === 'failed');
  const done = s.steps.filter((x) => x.state === 'succeeded').length;
  lines.push(
    `steps: ${done} done${failed.length ? `, failed: ${failed.map((x) => x.name).join(', ')}` : ''} — the \`status\` query has them all`,
  );
  return lines.join('\n');
}
