/**
 * Waves: the order services roll out in, from their `dependsOn`. A service
 * goes in the wave after the last of the services it depends on, so every
 * wave only needs waves before it (Kahn's algorithm, by levels). Without any
 * `dependsOn` every service is in one wave: the rollout as it always was.
 */

export interface DependentService {
  name: string;
  dependsOn?: readonly string[];
}

export type WaveOrder =
  | { ok: true; waves: string[][] }
  | { ok: false; error: string; cycle?: string[]; unknown?: { service: string; dependsOn: string }[] };

/**
 * The services in waves, each wave in config order. Refused, naming what is
 * wrong: a dependency on a service the config does not have, a service that
 * depends on itself, or a cycle (`a → b → c → a`).
 */
export function orderWaves(services: readonly DependentService[]): WaveOrder {
  const names = new Set(services.map((s) => s.name));
  const unknown = services.flatMap((s) =>
    (s.dependsOn ?? []).filter((d) => !names.has(d)).map((d) => ({ service: s.name, dependsOn: d })),
  );
  if (unknown.length)
    return {
      ok: false,
      unknown,
      error: `dependsOn names a service the config does not have: ${unknown.map((u) => `${u.service} → ${u.dependsOn}`).join(', ')}`,
    };
  const waveOf = new Map<string, number>();
  const remaining = [...services];
  for (let wave = 0; remaining.length; wave++) {
    const ready = remaining.filter((s) =>
      (s.dependsOn ?? []).every((d) => waveOf.has(d) && (waveOf.get(d) as number) < wave),
    );
    if (!ready.length) {
      const cycle = findCycle(remaining);
      return { ok: false, cycle, error: `dependsOn has a cycle: ${cycle.join(' → ')}` };
    }
    for (const s of ready) {
      waveOf.set(s.name, wave);
      remaining.splice(remaining.indexOf(s), 1);
    }
  }
  const count = Math.max(0, ...waveOf.values()) + 1;
  const waves = Array.from({ length: services.length ? count : 0 }, (_, i) =>
    services.filter((s) => waveOf.get(s.name) === i).map((s) => s.name),
  );
  return { ok: true, waves };
}

/** One cycle among services none of which can go in a wave: followed from the first until a name repeats. */
function findCycle(stuck: readonly DependentService[]): string[] {
  const byName = new Map(stuck.map((s) => [s.name, s]));
  const path: string[] = [];
  let at: DependentService | undefined = stuck[0];
  while (at && !path.includes(at.name)) {
    path.push(at.name);
    // Some dependency is stuck too, or `at` would have been ready.
    at = byName.get((at.dependsOn ?? []).find((d) => byName.has(d)) ?? '');
  }
  return at ? [...path.slice(path.indexOf(at.name)), at.name] : path;
}

/**
 * The waves of the services a deployment rolls out: the config's order kept
 * for the chosen ones, waves left empty by the choice dropped (a service still
 * comes after what it depends on through a service left out).
 */
export function wavesFor(allWaves: readonly string[][], chosen: readonly string[]): string[][] {
  const wanted = new Set(chosen);
  return allWaves.map((w) => w.filter((n) => wanted.has(n))).filter((w) => w.length > 0);
}

/**
 * What a rollback restores, wave by wave, last wave first: each group the
 * records of one wave's Deployments (a record the waves do not place goes with
 * the last wave, so nothing is left out). Empty waves are left out.
 */
export function recordsByWave<R extends { deployment: string }>(
  plan: { waves?: string[][]; services: readonly { name: string; deployment: string }[] },
  records: readonly R[],
): { wave: number; records: R[] }[] {
  const waves = plan.waves ?? [];
  const waveOfDeployment = new Map<string, number>();
  for (const s of plan.services) {
    const i = waves.findIndex((w) => w.includes(s.name));
    if (i >= 0) waveOfDeployment.set(s.deployment, i);
  }
  const last = Math.max(0, waves.length - 1);
  return waves
    .map((_, i) => ({
      wave: i + 1,
      records: records.filter((r) => (waveOfDeployment.get(r.deployment) ?? last) === i),
    }))
    .filter((g) => g.records.length > 0)
    .reverse();
}

/**
 * The rollback's order over an environment of several clusters: the clusters
 * last first, and in each its waves last first. `label` names the group in
 * the step's name ("region-b, wave 2 of 2"); a plan of one cluster and one
 * wave makes one group with no label.
 */
export function restoreOrder<R extends { deployment: string; cluster?: string }>(
  plan: { waves?: string[][]; clusters?: string[]; services: readonly { name: string; deployment: string }[] },
  records: readonly R[],
): { label: string; cluster?: string; records: R[] }[] {
  const clusters = plan.clusters?.length ? [...plan.clusters].reverse() : [undefined];
  const waved = (plan.waves?.length ?? 0) > 1;
  const out: { label: string; cluster?: string; records: R[] }[] = [];
  for (const cluster of clusters) {
    // A record that names no cluster (or one the plan lacks) goes with the first cluster, the environment's own.
    const mine = records.filter((r) =>
      cluster === undefined || plan.clusters?.[0] === cluster
        ? r.cluster === cluster || r.cluster === undefined || !plan.clusters?.includes(r.cluster)
        : r.cluster === cluster,
    );
    if (!mine.length) continue;
    const groups = waved ? recordsByWave(plan, mine) : [{ wave: 0, records: mine }];
    for (const g of groups) {
      const parts = [cluster, waved ? `wave ${g.wave} of ${plan.waves!.length}` : undefined].filter(Boolean);
      out.push({ label: parts.join(', '), ...(cluster ? { cluster } : {}), records: g.records });
    }
  }
  return out;
}
