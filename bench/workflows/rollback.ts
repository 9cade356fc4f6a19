/**
 * The floor of the rollback benchmark: the least a durable abort can do. The
 * workflow waits for one signal, then runs one activity that sends one patch
 * to the apiserver (the VirtualService back to stable 100); no status, no
 * steering, no verification. The canary's abort is measured against it. The
 * project's workflows (and the tests' parent) are in the same bundle.
 */
import { condition, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';

export interface FloorTarget {
  namespace: string;
  name: string;
}

export const floorAbortSignal = defineSignal('floorAbort');

const { patchToStable } = proxyActivities<{ patchToStable(t: FloorTarget): Promise<void> }>({
  startToCloseTimeout: '20s',
  retry: { initialInterval: '200ms', maximumAttempts: 10 },
});

export async function rollbackFloorWorkflow(target: FloorTarget): Promise<void> {
  let aborted = false;
  setHandler(floorAbortSignal, () => {
    aborted = true;
  });
  await condition(() => aborted);
  await patchToStable(target);
}

export * from '../../test/helpers/test-workflows';
