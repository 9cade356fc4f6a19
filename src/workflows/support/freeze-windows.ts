/**
 * The configured freeze windows of an environment (environments.<name>.freeze,
 * domain/freeze-window.ts), as a deployment meets them before it takes the
 * lock: it waits for the window's end with a durable timer, or is refused
 * when the config says so. Workflow time decides, so replay decides the same.
 */
import { condition } from '@temporalio/workflow';
import { describeFreeze, freezeAt } from '../../domain/freeze-window';
import type { DeployPlan } from '../../domain/plan';
import { shellCommand } from '../../domain/shell';
import type { Tracker } from './tracker';

export type WindowVerdict = { kind: 'clear' } | { kind: 'aborted' } | { kind: 'refused'; reason: string };

export async function waitOutFreezeWindows(
  t: Tracker,
  p: Pick<DeployPlan, 'environment' | 'freeze'>,
  signalTarget: string,
  aborted: () => boolean,
): Promise<WindowVerdict> {
  const freeze = p.freeze;
  if (!freeze?.windows.length) return { kind: 'clear' };
  for (;;) {
    const f = freezeAt(freeze.windows, Date.now());
    if (!f) return { kind: 'clear' };
    const line = describeFreeze(p.environment, f);
    if (freeze.mode === 'refuse') return { kind: 'refused', reason: `${line}: deployments are refused meanwhile` };
    const untilMs = f.until - Date.now();
    t.phase('frozen');
    t.waitFor(`${line}: the deployment starts then`, untilMs, [
      `${shellCommand(['deployctl', 'abort', signalTarget, '--by'])} <name> --reason <text>`,
    ]);
    const stopped = await condition(aborted, untilMs, { summary: `${line}: freeze window` });
    t.doneWaiting();
    if (stopped) return { kind: 'aborted' };
    // The window ended (or, capped, the look-ahead did): look again, a later window may have begun.
  }
}
