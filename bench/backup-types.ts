/** Messages and results shared by the backup benchmark, its worker process and its workflow (types only). */
import type { BackupResult } from '../src/activities/contracts';

export interface MeasuredBackupRequest {
  workflowId: string;
  version: string;
}

export interface MeasuredBackup {
  result: BackupResult;
  /** Wall time of backupDatabase inside the activity. */
  ms: number;
  /** The worker's RSS just before the backup. */
  rssBefore: number;
  /** The worker's peak RSS during the backup (VmHWM after a reset, or the sampled peak). */
  peakRss: number;
  peakSource: 'VmHWM' | 'sampled every 10 ms';
  /** Peaks of Node's own accounting during the backup (sampled every 10 ms): Buffers (arrayBuffers) and the JS heap, before and at their peak. */
  memory: { arrayBuffersBefore: number; arrayBuffersPeak: number; heapUsedBefore: number; heapUsedPeak: number };
  /** Bytes the worker (and pg_dump, once reaped) caused to be written to storage during the backup. */
  writeBytes: number;
  /** The object-store requests the activity made, per command: count, total time, first start and last end (ms from the activity's start). */
  s3: Record<string, { count: number; totalMs: number; firstStart: number; lastEnd: number }>;
}

export type BackupWorkerIn = { type: 'stop' };
export type BackupWorkerOut = { type: 'ready'; rss: number } | { type: 'failed'; message: string };
