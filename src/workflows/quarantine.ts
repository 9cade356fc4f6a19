/**
 * `deployctl quarantine list | lift`: the quarantine of versions (a version
 * rolled back or that failed verification anywhere), read or lifted through
 * the worker, which holds the store and the verifiers. A lift is a workflow of
 * its own so its history records who lifted what and why.
 */
import { workflowInfo } from '@temporalio/workflow';
import type { QuarantineRecord } from '../activities/contracts';
import { short } from './activity-options';

export type QuarantineInput =
  { action: 'list' } | { action: 'lift'; version: string; by: string; reason: string; proof?: unknown };

export interface QuarantineResult {
  records: QuarantineRecord[];
}

export async function quarantineWorkflow(input: QuarantineInput): Promise<QuarantineResult> {
  if (input?.action === 'lift') {
    const { version, by, reason, proof } = input;
    const records = await short.approveQuarantineLift({
      workflowId: workflowInfo().workflowId,
      version: String(version),
      by: String(by),
      reason: String(reason),
      ...(proof !== undefined ? { proof } : {}),
    });
    return { records };
  }
  return { records: await short.listQuarantine() };
}
