/**
 * The worker process of the backup benchmark: an I/O worker as
 * src/io-worker.ts runs one (a real Temporal worker without workflows, the
 * modules of src/activities/io loaded, started with the project's memory
 * settings) whose one registered activity is the project's backupDatabase,
 * wrapped to measure its wall time, this process's peak RSS and the bytes it
 * wrote to storage. Run by bench/backup.ts with fork(); the config slice, the
 * task queue and the dev server's address come in the environment.
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createS3Client } from '../src/activities/clients/s3';
import { databaseActivities, type DatabaseDeps } from '../src/activities/database';
import { keepAliveInterceptor } from '../src/activities/runtime';
// Loaded, not used: the process holds what the I/O worker (src/io-worker.ts) loads.
import '../src/activities/io';
import { runChild, stopRequested } from '../test/helpers/ipc-child';
import type { BackupWorkerOut, MeasuredBackup, MeasuredBackupRequest } from './backup-types';
import { procStatus, procWriteBytes, resetPeakRss, RssSampler } from './proc';

function send(m: BackupWorkerOut): void {
  process.send?.(m);
}

async function run(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const config = JSON.parse(process.env.BENCH_BACKUP_CONFIG ?? '') as DatabaseDeps['config'];
  const s3 = createS3Client(config.backup);
  // Times every request the activity makes to the object store, to show where its time goes.
  let t0 = 0;
  let requests: MeasuredBackup['s3'] = {};
  s3.middlewareStack.add(
    (next, context) => async (args) => {
      const start = performance.now() - t0;
      try {
        return await next(args);
      } finally {
        const end = performance.now() - t0;
        const name = context.commandName ?? 'unknown';
        const r = (requests[name] ??= { count: 0, totalMs: 0, firstStart: start, lastEnd: end });
        r.count++;
        r.totalMs += end - start;
        r.firstStart = Math.min(r.firstStart, start);
        r.lastEnd = Math.max(r.lastEnd, end);
      }
    },
    { step: 'initialize', name: 'benchTiming' },
  );
  const acts = databaseActivities({
    config,
    databaseUrl: process.env.BENCH_DATABASE_URL ?? '',
    s3,
    releaseDir: () => Promise.reject(new Error('no migrations in the backup benchmark')),
  });

  const measuredBackup = async (req: MeasuredBackupRequest): Promise<MeasuredBackup> => {
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const hwm = resetPeakRss();
    const writesBefore = procWriteBytes('self');
    const sampler = new RssSampler('self', 10).start();
    const before = process.memoryUsage();
    const memory = {
      arrayBuffersBefore: before.arrayBuffers,
      arrayBuffersPeak: before.arrayBuffers,
      heapUsedBefore: before.heapUsed,
      heapUsedPeak: before.heapUsed,
    };
    const heapSampler = setInterval(() => {
      const u = process.memoryUsage();
      memory.arrayBuffersPeak = Math.max(memory.arrayBuffersPeak, u.arrayBuffers);
      memory.heapUsedPeak = Math.max(memory.heapUsedPeak, u.heapUsed);
    }, 10);
    requests = {};
    t0 = performance.now();
    const result = await acts.backupDatabase(req);
    const ms = performance.now() - t0;
    const sampled = sampler.stop();
    clearInterval(heapSampler);
    const writeBytes = procWriteBytes('self') - writesBefore;
    const peakRss = hwm ? Math.max(procStatus('self', 'VmHWM'), sampled) : sampled;
    return {
      result,
      ms,
      rssBefore,
      peakRss,
      peakSource: hwm ? 'VmHWM' : 'sampled every 10 ms',
      writeBytes,
      s3: requests,
      memory,
    };
  };

  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
  try {
    const worker = await Worker.create({
      connection,
      taskQueue: process.env.BENCH_TASK_QUEUE ?? '',
      activities: { measuredBackup },
      interceptors: { activity: [keepAliveInterceptor] },
    });
    const stopped = stopRequested();
    await worker.runUntil(async () => {
      send({ type: 'ready', rss: process.memoryUsage().rss });
      await stopped;
    });
  } finally {
    await connection.close();
  }
}

runChild(run);
