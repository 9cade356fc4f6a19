/**
 * How deployctl audit prints: one line per environment for `verify`, and a
 * record readably for `show`. What a record holds was typed by people (notes,
 * reasons) and passed through the worker; control characters are replaced
 * before it reaches a terminal, so a record cannot move the cursor or
 * rewrite what was printed before it.
 */
import type { AuditPerson, AuditRecord, ChainReport } from '../domain/audit';

const clean = (s: unknown): string => String(s).replace(/\p{Cc}/gu, ' ');
const short = (hash: string) => `${hash.slice(0, 12)}…`;
const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

/** "production: 12 records, chain intact, head sha256 abcd…", or the first break naming its object. */
export function chainLine(r: ChainReport): string {
  const foreign = r.foreign.length
    ? `; ${plural(r.foreign.length, 'object')} under the prefix that are no part of the ledger: ${r.foreign.map(clean).join(', ')}`
    : '';
  if (r.break)
    return `${r.environment}: BROKEN at ${clean(r.break.key)}: ${clean(r.break.message)} (${plural(r.records, 'record')} verified before it)${foreign}`;
  if (!r.tail) return `${r.environment}: no records (nothing recorded yet, or the whole ledger was removed)${foreign}`;
  const lag = r.unanchored
    ? `, ${plural(r.unanchored, 'record')} after HEAD (an append was interrupted before moving HEAD; the next append moves it)`
    : '';
  return `${r.environment}: ${plural(r.records, 'record')}, chain intact, head sha256 ${short(r.tail.hash)}${lag}${foreign}`;
}

function person(p: AuditPerson): string {
  const how = p.via === 'none' ? 'not verified' : `${p.via}${p.verifiedWith ? ` ${p.verifiedWith}` : ''}`;
  const gate = p.gate ? ` at gate ${p.gate}` : '';
  const said = p.note ?? p.reason;
  return clean(`${p.by} (${how}) at ${p.at}${gate}${said ? `: ${JSON.stringify(said)}` : ''}`);
}

/** One record, readably: the event, who asked and approved and how each was verified, what, and how it ended. */
export function formatAuditRecord(r: AuditRecord, where: { bucket: string; key: string; hash: string }): string {
  const f = r.facts;
  const lines = [`${r.environment} #${r.seq} ${r.event} (${r.eventId}) at ${r.at}, recorded ${r.recordedAt}`];
  const add = (label: string, value: string | undefined) => {
    if (value) lines.push(`  ${label.padEnd(12)}${clean(value)}`);
  };
  add('workflow', `${r.workflowId} (run ${r.runId})`);
  if (f.requestedBy)
    add(
      'requested',
      `${f.requestedBy} (${!f.requestedVia || f.requestedVia === 'none' ? 'not verified' : f.requestedVia}${f.requestedWith ? ` ${f.requestedWith}` : ''})`,
    );
  if (f.plan) {
    const p = f.plan;
    add(
      'plan',
      `${p.project} ${p.version}${p.previousVersion ? ` (from ${p.previousVersion})` : ''} to ${p.environment}, ${p.strategy}` +
        `${p.commit ? `, commit ${p.commit.slice(0, 12)}` : ''}${p.dryRun ? ', dry run' : ''}`,
    );
    add('services', [...p.services, ...(p.clusters?.length ? [`(clusters ${p.clusters.join(', ')})`] : [])].join(', '));
  }
  if (f.stage)
    add('stage', `${f.stage.environment} of ${f.stage.release} (deployment ${f.stage.deployment}): ${f.stage.state}`);
  for (const a of f.approvals ?? []) add('approved', person(a));
  for (const a of f.aborts ?? []) add('aborted', person(a));
  for (const [service, image] of Object.entries(f.images ?? {})) add('image', `${service} ${image}`);
  for (const c of f.configuration ?? [])
    add(
      'config',
      `${c.cluster ? `${c.cluster}: ` : ''}${c.deployment} ${c.kind} ${c.to}${c.hash ? ` (sha256 ${short(c.hash)})` : ''}`,
    );
  if (f.migrations) add('migrations', f.migrations.length ? f.migrations.join(', ') : 'none');
  add('backup', f.backupKey);
  if (f.analysis) {
    const a = f.analysis;
    const m = a.measurements.map(
      (x) => `${x.metric} ${x.track} ${x.value ?? 'no data'}${x.threshold ? ` (${x.threshold})` : ''} ${x.outcome}`,
    );
    add('analysis', `${a.outcome} at ${a.at}${a.weight !== undefined ? `, weight ${a.weight}%` : ''}: ${m.join('; ')}`);
  }
  if (f.rollback) {
    const b = f.rollback;
    add('rollback', `${b.target ? `to ${b.target}; ` : ''}workloads ${b.workloads}; database ${b.database}`);
    if (b.restore)
      add('restore', `${b.restore.key}, ${b.restore.verified ? 'row counts match' : b.restore.differences.join('; ')}`);
    add('attention', b.attention);
  }
  add('outcome', `${f.outcome ?? '(none)'}${f.reason ? `: ${f.reason}` : ''}`);
  add('error', f.error && f.error !== f.reason ? f.error : undefined);
  add('object', `s3://${where.bucket}/${where.key}, sha256 ${where.hash}, prev ${r.prev}`);
  return lines.join('\n');
}
