/**
 * The worker process of the concurrency benchmark: a real Temporal worker
 * (native connection, prebuilt bundle of src/workflows and the tests'
 * parent workflow, the SDK's default options as src/worker.ts uses them,
 * every adapter module loaded) with instant fakes registered for the
 * activities the canary workflow calls. It reports when each canary starts soaking and
 * when each setCanaryWeight starts, batched over IPC (the times are taken
 * when the events happen, not when they are sent).
 */
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { Context } from '@temporalio/activity';
import type { Activities } from '../src/activities/contracts';
import { keepAliveInterceptor } from '../src/activities/runtime';
// Loaded, not used: the process holds every adapter's modules, as the production worker (src/worker.ts) does.
import '../src/activities';
import { runChild, stopRequested } from '../test/helpers/ipc-child';
import type { ActivityEvent, ConcurrencyWorkerOut } from './concurrency-types';
import { nowMs } from './common';

function send(m: ConcurrencyWorkerOut): void {
  process.send?.(m);
}

let pending: ActivityEvent[] = [];
function record(e: ActivityEvent): void {
  pending.push(e);
}
const flush = setInterval(() => {
  if (!pending.length) return;
  send({ type: 'events', events: pending });
  pending = [];
}, 25);
const memory = setInterval(() => send({ type: 'memory', heapUsed: process.memoryUsage().heapUsed }), 1000);

const workflowId = (): string => Context.current().info.workflowExecution?.workflowId ?? '';

/** Only what canaryWorkflow calls (its plan has approvals.verify none: no verifySender); each returns at once. */
const activities: Partial<Activities> = {
  async confirmPlan(req) {
    return { environment: req.plan.environment, ...(req.image ? { image: 'reference' as const } : {}) };
  },
  async startCanary(target) {
    return { deployment: `${target.service}-canary` };
  },
  async setCanaryWeight(req) {
    record({ workflowId: workflowId(), what: 'weight', weight: req.weight, t: nowMs() });
    return { weight: req.weight, observed: { stable: 100 - req.weight, canary: req.weight } };
  },
  async promoteCanary() {},
  async abortCanary() {},
  /** Asked before each promotion (stop the line): never frozen here. */
  async freezeState() {
    return {};
  },
  async runAnalysis(req) {
    return {
      at: new Date().toISOString(),
      outcome: 'pass',
      weight: req.weight,
      measurements: [{ metric: 'error-rate', track: 'canary', value: 0.001, outcome: 'pass' }],
    };
  },
  async notify(event) {
    if (event.kind === 'step-promoted' && event.weight !== undefined)
      record({ workflowId: workflowId(), what: 'soaking', weight: event.weight, t: nowMs() });
    return { delivered: 1, failed: 0 };
  },
};

async function run(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS });
  try {
    const worker = await Worker.create({
      connection,
      taskQueue: process.env.BENCH_TASK_QUEUE ?? '',
      workflowBundle: { codePath: process.env.BENCH_BUNDLE ?? '' },
      activities,
      interceptors: { activity: [keepAliveInterceptor] },
      // The cache under test (the product's temporal.maxCachedWorkflows); unset: the SDK's default.
      ...(process.env.BENCH_MAX_CACHED_WORKFLOWS
        ? { maxCachedWorkflows: Number(process.env.BENCH_MAX_CACHED_WORKFLOWS) }
        : {}),
    });
    const stopped = stopRequested();
    await worker.runUntil(async () => {
      send({ type: 'ready', rss: process.memoryUsage().rss, maxCachedWorkflows: worker.options.maxCachedWorkflows });
      await stopped;
    });
  } finally {
    clearInterval(flush);
    clearInterval(memory);
    await connection.close();
  }
}

runChild(run);
