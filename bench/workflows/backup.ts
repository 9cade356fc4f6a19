/**
 * The workflow of the backup benchmark: it runs the backup activity on the
 * worker being measured, once, without retries (a failed attempt must fail
 * the benchmark, not hide inside its timing). The project's workflows are in
 * the same bundle, so the worker's workflow sandbox is the production one.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { MeasuredBackup, MeasuredBackupRequest } from '../backup-types';

const { measuredBackup } = proxyActivities<{ measuredBackup(req: MeasuredBackupRequest): Promise<MeasuredBackup> }>({
  startToCloseTimeout: '2h',
  heartbeatTimeout: '60s',
  retry: { maximumAttempts: 1 },
});

export async function benchBackupWorkflow(req: MeasuredBackupRequest): Promise<MeasuredBackup> {
  return measuredBackup(req);
}

export * from '../../src/workflows';
