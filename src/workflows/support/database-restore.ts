/**
 * The database restore a rollback runs once its decision says restore: the
 * backup streamed back on the I/O queue (when the plan names one), and what
 * the rollback's result and status say of it. A restore that committed but
 * whose row counts differ from the backup's is restored, with the attention
 * a person must give it before reopening traffic.
 */
import { restoreAttention } from '../../domain/backup';
import { proofFlags, type ApprovalPolicy } from '../../domain/identity';
import { shellCommand } from '../../domain/shell';
import { heavy } from '../activity-options';
import type { RollbackResult } from '../rollback-outcome';
import { describeError, type Tracker } from './tracker';

export interface RestoreOutcome {
  database: RollbackResult['database'];
  restore?: RollbackResult['restore'];
  attention?: string;
  /** The restore failed: the status's error. */
  error?: string;
}

/** What a person types to answer the database decision: approve restores `key`, abort keeps the database. */
export function decisionCommands(workflowId: string, key: string, policy: ApprovalPolicy | undefined): string[] {
  const proof = policy ? proofFlags(policy) : '';
  return [
    `${shellCommand(['deployctl', 'approve', workflowId, '--by'])} <name> ${shellCommand(['--note', `restore ${key}`])}${proof}`,
    `${shellCommand(['deployctl', 'abort', workflowId, '--by'])} <name> ${shellCommand(['--reason', 'keep the database'])}${proof}`,
  ];
}

const counts = (tables: Record<string, number>) =>
  Object.entries(tables)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ');

export async function restoreFromBackup(
  t: Tracker,
  o: { ioTaskQueue: string | undefined; workflowId: string; environment: string; key: string; sha256?: string },
): Promise<RestoreOutcome> {
  t.phase('restoring');
  try {
    const r = await t.step(
      'database restore',
      async () => {
        const x = await heavy(o.ioTaskQueue).restoreDatabase({
          workflowId: o.workflowId,
          environment: o.environment,
          key: o.key,
          confirmKey: o.key,
          ...(o.sha256 ? { sha256: o.sha256 } : {}),
        });
        // Committed, but not what the backup recorded: the step (and so the status) says so.
        // A worker from before `verified` existed failed such a restore instead.
        const differences = x.differences ?? [];
        return x.verified === false
          ? { ...x, differences, attention: restoreAttention(x.key, differences) }
          : { ...x, verified: true, differences };
      },
      (x) =>
        x.verified
          ? counts(x.tables)
          : `${counts(x.tables)}${x.expectedTables ? ` (backup: ${counts(x.expectedTables)})` : ''}`,
    );
    return {
      database: r.verified ? 'restored' : 'restored, row counts differ',
      restore: { key: r.key, verified: r.verified, differences: r.differences },
      ...('attention' in r && r.attention ? { attention: r.attention } : {}),
    };
  } catch (err) {
    return { database: 'restore failed', error: `database restore failed: ${describeError(err)}` };
  }
}
