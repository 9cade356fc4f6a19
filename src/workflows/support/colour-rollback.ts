/**
 * A manual rollback of a service whose Service selects a blue-green colour
 * (runbook "Blue-Green": switch the Service back): reads which colour serves,
 * and, rolling back to the previous version, switches traffic to the colour
 * that runs it and reads it back. Otherwise it names the Deployment that
 * serves, which the rollback then undoes as any other.
 */
import { colourRollback } from '../../domain/blue-green';
import type { ColourTarget } from '../../domain/plan';
import { long, short } from '../activity-options';
import type { RollbackResult } from '../rollback-outcome';
import type { Tracker } from './tracker';

export interface ColourRollback {
  /** The Deployment the rest of the rollback acts on for this service (undefined: leave it out). */
  servingDeployment: string | undefined;
  /** Traffic was switched back: from which colour to which, read back. */
  switchedBack?: RollbackResult['blueGreen'];
  /** What the switch did, for the rollback's workloads line. */
  workloads: string;
}

export async function switchColourBack(
  t: Tracker,
  target: ColourTarget,
  served: { name: string; deployment: string },
  o: { toPrevious: boolean },
): Promise<ColourRollback> {
  const service = served.name;
  const state = await t.step(
    'read blue-green colours',
    () => short.readBlueGreen(target),
    (s) =>
      s.live
        ? `${s.service} selects ${s.live.colour} (${s.live.deployment}${s.live.version ? ` ${s.live.version}` : ''})${s.other ? `; ${s.other.colour} is ${s.other.deployment}${s.other.version ? ` ${s.other.version}` : ''} at ${s.other.replicas} replicas` : ''}`
        : `${s.service} selects no colour`,
  );
  const decision = colourRollback(state);
  if (decision?.kind === 'switch' && o.toPrevious) {
    const to = decision.to;
    const at = `${decision.deployment}${decision.version ? `, ${decision.version}` : ''}`;
    await t.step(
      `switch traffic back to ${to}`,
      () => long.abortBlueGreen({ target, colour: to }),
      (r) =>
        Object.entries(r.selector)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
    );
    await t.step(
      `verify traffic on ${to}`,
      async () => {
        const after = await short.readBlueGreen(target);
        const live = after.live;
        const ok =
          live?.colour === to &&
          (decision.version === undefined || live.version === decision.version) &&
          live.readyReplicas > 0;
        if (!ok)
          throw new Error(
            live
              ? `service ${after.service} still sends traffic to ${live.colour} (${live.deployment}${live.version ? `, ${live.version}` : ''}) after switching back to ${to}`
              : `service ${after.service} selects no colour after switching back to ${to}`,
          );
        return after;
      },
      (a) => `${a.service} selects ${to} (${a.live?.deployment}, ${a.live?.readyReplicas} ready)`,
    );
    return {
      // The colour that now serves runs the previous version: undoing it as well would go one further back.
      servingDeployment: undefined,
      switchedBack: {
        service,
        from: decision.from,
        to,
        deployment: decision.deployment,
        ...(decision.version ? { version: decision.version } : {}),
      },
      workloads: `${service}: traffic back on ${to} (${at})`,
    };
  }
  if (!decision) return { servingDeployment: served.deployment, workloads: '' };
  return {
    servingDeployment: decision.kind === 'switch' ? state.live!.deployment : decision.deployment,
    workloads: '',
  };
}
