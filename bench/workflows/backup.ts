/**
 * The workflow of the backup benchmark: it runs the backup activity once,
 * without retries (a failed attempt must fail the benchmark, not hide inside
 * its timing), on the I/O worker being measured (its task queue, as the
 * deploy workflow sends a backup to temporal.ioTaskQueue).
 */
import { proxyActivities } from '@temporalio/workflow';
import type { MeasuredBackup, MeasuredBackupRequest } from '../backup-types';

export async function benchBackupWorkflow(
  req: MeasuredBackupRequest & { ioTaskQueue: string },
): Promise<MeasuredBackup> {
  const { measuredBackup } = proxyActivities<{ measuredBackup(r: MeasuredBackupRequest): Promise<MeasuredBackup> }>({
    startToCloseTimeout: '2h',
    heartbeatTimeout: '60s',
    retry: { maximumAttempts: 1 },
    taskQueue: req.ioTaskQueue,
  });
  return measuredBackup({ workflowId: req.workflowId, version: req.version });
}

export * from '../../src/workflows';
