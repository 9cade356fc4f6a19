/**
 * One worker process of the scale-out test (test/workflows/scale-out.test.ts):
 * a real Temporal worker (native connection, the tests' prebuilt bundle, the
 * production worker's keep-alive heartbeats) on the shared task queue, with
 * the tests' fake activities. It tells its parent, over IPC, its identity and
 * each activity attempt it starts and finishes; the first attempt of the
 * activity named by SCALE_OUT_HOLD (`<activity>:<workflowId>`) never
 * finishes, so the test can kill this process in the middle of it.
 */
import { Context } from '@temporalio/activity';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { Activities } from '../../src/activities/contracts';
import { keepAliveInterceptor } from '../../src/activities/runtime';
import type { DeployPlan } from '../../src/domain/plan';
import { fakeActivities } from './fake-activities';
import { runChild, stopRequested } from './ipc-child';

export type ScaleOutWorkerIn = { type: 'stop' };

export interface AttemptEvent {
  type: 'attempt';
  phase: 'started' | 'held' | 'completed';
  activity: string;
  workflowId: string;
  attempt: number;
  /** When it happened in this process: ms since the epoch, comparable across processes of the machine. */
  t: number;
}

export type ScaleOutWorkerOut =
  { type: 'ready'; identity: string } | AttemptEvent | { type: 'failed'; message: string };

const send = (m: ScaleOutWorkerOut): void => void process.send?.(m);
const now = (): number => performance.timeOrigin + performance.now();

/** Every fake activity, reporting its attempts; the held one waits until the process dies. */
function reporting(fakes: Activities, hold: string): Activities {
  const out: Record<string, unknown> = {};
  for (const [name, fn] of Object.entries(fakes) as [string, (...a: unknown[]) => Promise<unknown>][]) {
    out[name] = async (...args: unknown[]) => {
      const { info } = Context.current();
      const workflowId = info.workflowExecution?.workflowId ?? '';
      const at = (phase: AttemptEvent['phase']) =>
        send({
          type: 'attempt',
          phase,
          activity: name,
          workflowId,
          attempt: info.attempt,
          t: now(),
        });
      at('started');
      if (`${name}:${workflowId}` === hold && info.attempt === 1) {
        at('held');
        await new Promise(() => undefined);
      }
      const result = await fn(...args);
      at('completed');
      return result;
    };
  }
  return out as unknown as Activities;
}

async function run(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const plan = JSON.parse(process.env.SCALE_OUT_PLAN ?? 'null') as DeployPlan;
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
  try {
    const worker = await Worker.create({
      connection,
      namespace: process.env.TEMPORAL_NAMESPACE ?? 'default',
      taskQueue: process.env.SCALE_OUT_TASK_QUEUE ?? '',
      workflowBundle: { codePath: process.env.SCALE_OUT_BUNDLE ?? '' },
      activities: reporting(fakeActivities({ plan }).activities, process.env.SCALE_OUT_HOLD ?? ''),
      interceptors: { activity: [keepAliveInterceptor] },
    });
    const stopped = stopRequested();
    await worker.runUntil(async () => {
      send({ type: 'ready', identity: worker.options.identity });
      await stopped;
    });
  } finally {
    await connection.close();
  }
}

runChild(run);
