/**
 * A build, backup or restore sent to temporal.ioTaskQueue carries a schedule-to-start timeout
 * (workflows/activity-options.ts heavy); when it fires, no I/O worker polls the queue, and the
 * deployment fails with one line that says so. The time-skipping server cannot skip time while an
 * activity waits for a poller, so the conversion is checked here on the failure Temporal delivers.
 */
import { ActivityFailure, ApplicationFailure, RetryState, TimeoutFailure, TimeoutType } from '@temporalio/common';
import { noIoWorker } from '../../src/workflows/activity-options';

const delivered = (timeoutType: TimeoutType) =>
  new ActivityFailure(
    'activity timed out',
    'backupDatabase',
    '7',
    RetryState.NON_RETRYABLE_FAILURE,
    undefined,
    new TimeoutFailure('activity timeout', undefined, timeoutType),
  );

test('a schedule-to-start timeout becomes a non-retryable NoIoWorker failure naming the step, the queue and what to do', () => {
  const f = noIoWorker(delivered(TimeoutType.SCHEDULE_TO_START), 'backupDatabase', 'deployments-io');
  expect(f).toBeInstanceOf(ApplicationFailure);
  expect(f?.type).toBe('NoIoWorker');
  expect(f?.nonRetryable).toBe(true);
  expect(f?.message).toBe(
    'no I/O worker took backupDatabase from task queue deployments-io within 15 minutes: start one on it (npm run worker:io), or unset temporal.ioTaskQueue for new deployments',
  );
});

test('any other failure of the step is left as it is', () => {
  expect(noIoWorker(delivered(TimeoutType.START_TO_CLOSE), 'backupDatabase', 'q')).toBeUndefined();
  expect(noIoWorker(delivered(TimeoutType.HEARTBEAT), 'buildImages', 'q')).toBeUndefined();
  expect(
    noIoWorker(ApplicationFailure.create({ type: 'BackupFailed', message: 'x' }), 'backupDatabase', 'q'),
  ).toBeUndefined();
  expect(noIoWorker(new Error('boom'), 'restoreDatabase', 'q')).toBeUndefined();
});
