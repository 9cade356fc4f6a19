/**
 * What an automatic rollback is handed by the deployment it undoes, checked
 * against the plan before anything is rolled back: the image references
 * records would set, the traffic targets it would move, and the backup key
 * it would offer to restore. Pure, so the rules are tested without a
 * cluster or a bucket; the confirmRollback activity applies them.
 */
import { parseBackupKey } from './backup';
import { differences } from './differences';
import { colourTarget, trafficService, trafficTarget, type DeployPlan, type TrafficTarget } from './plan';
import { isVersion } from './version';
import { isBaseOrSnapshotOf, type ReferenceRename } from './config-snapshots';

const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

/** `ref` names `registry/image` by tag, digest, or both: nothing else (no other registry, image or characters). */
export function isImageOf(ref: string, registry: string, image: string): boolean {
  const base = `${registry}/${image}`;
  if (typeof ref !== 'string' || !ref.startsWith(base)) return false;
  const rest = ref.slice(base.length);
  const m = /^(?::([^@]+))?(?:@(.+))?$/.exec(rest);
  if (!m || (m[1] === undefined && m[2] === undefined)) return false;
  return (m[1] === undefined || TAG_RE.test(m[1])) && (m[2] === undefined || DIGEST_RE.test(m[2]));
}

/** What a record sets: a Deployment's previous images and the version annotation that goes with them. */
export interface HandedRecord {
  deployment: string;
  previousImages: Record<string, string>;
  previousVersion?: string;
  /** The cluster the Deployment is in: one of the plan's clusters. */
  cluster?: string;
  /** ConfigMap/Secret references to put back (a snapshot to the base or older snapshot it replaced). */
  previousReferences?: ReferenceRename[];
}

/**
 * The records a rollback acts on: each names a Deployment of the plan, and
 * sets that service's container to an image of its configured registry (or
 * one of registry.previousHosts, where earlier releases came from) and name. Other containers (sidecars the Deployment ran beside it) are left
 * out: a deployment never changed them, so a rollback has nothing to set there.
 */
export function checkedRecords(
  records: readonly HandedRecord[],
  plan: Pick<DeployPlan, 'registry' | 'services' | 'clusters'>,
  previousRegistries: readonly string[] = [],
): { records: HandedRecord[]; problems: string[] } {
  const registries = [plan.registry, ...previousRegistries];
  const problems: string[] = [];
  const out: HandedRecord[] = [];
  for (const r of records) {
    const svc = plan.services.find((s) => s.deployment === r?.deployment);
    if (!svc) {
      problems.push(`record for deployment ${JSON.stringify(r?.deployment)}: not a Deployment this plan changes`);
      continue;
    }
    const image = r.previousImages?.[svc.container];
    if (typeof image !== 'string') {
      problems.push(`record for deployment ${svc.deployment}: no image for container ${svc.container}`);
      continue;
    }
    if (!registries.some((registry) => isImageOf(image, registry, svc.image))) {
      problems.push(
        `record for deployment ${svc.deployment}: image ${JSON.stringify(image)} is not ${registries.map((r) => `${r}/${svc.image}`).join(' or ')} (registry.host, registry.previousHosts)`,
      );
      continue;
    }
    if (r.previousVersion !== undefined && !isVersion(r.previousVersion)) {
      problems.push(
        `record for deployment ${svc.deployment}: previousVersion ${JSON.stringify(r.previousVersion)} is not a version`,
      );
      continue;
    }
    if (r.cluster !== undefined && !plan.clusters?.includes(r.cluster)) {
      problems.push(
        `record for deployment ${svc.deployment}: cluster ${JSON.stringify(r.cluster)} is not one of the environment's (${plan.clusters?.join(', ') || 'none'})`,
      );
      continue;
    }
    const references = referenceProblems(r.previousReferences);
    if (typeof references === 'string') {
      problems.push(`record for deployment ${svc.deployment}: ${references}`);
      continue;
    }
    out.push({
      deployment: svc.deployment,
      previousImages: { [svc.container]: image },
      ...(r.previousVersion !== undefined ? { previousVersion: r.previousVersion } : {}),
      ...(r.cluster !== undefined ? { cluster: r.cluster } : {}),
      ...(references.length ? { previousReferences: references } : {}),
    });
  }
  return { records: out, problems };
}

/**
 * The references a record puts back, each a snapshot (`<base>-<hash10>`)
 * renamed to its base or another snapshot of the same base: a rollback may
 * return a Deployment to its own configuration's earlier versions, never point
 * it at another object. A problem is returned as a line.
 */
function referenceProblems(given: unknown): ReferenceRename[] | string {
  if (given === undefined) return [];
  if (!Array.isArray(given)) return 'previousReferences must be a list';
  const out: ReferenceRename[] = [];
  for (const r of given as Partial<ReferenceRename>[]) {
    const from = r?.from;
    const to = r?.to;
    const kind = r?.kind;
    if (kind !== undefined && kind !== 'ConfigMap' && kind !== 'Secret')
      return `previousReferences: kind ${JSON.stringify(kind)} is neither ConfigMap nor Secret`;
    const base = typeof from === 'string' ? /^([a-z0-9][-a-z0-9.]*)-[0-9a-f]{10}$/.exec(from)?.[1] : undefined;
    if (!base || typeof to !== 'string' || !isBaseOrSnapshotOf(to, base))
      return `previousReferences: ${JSON.stringify(from)} → ${JSON.stringify(to)} is not a snapshot going back to its own base or an earlier snapshot of it`;
    out.push({ ...(kind ? { kind } : {}), from: from!, to });
  }
  return out;
}

/**
 * A canary or blue-green target handed to a rollback: the plan's own traffic
 * target (its Service, namespace, container, traffic settings and the
 * deployment's id), with an image of the traffic service.
 */
export function trafficTargetProblems(given: Partial<TrafficTarget>, plan: DeployPlan): string[] {
  const svc = trafficService(plan);
  const image = given?.image;
  const problems: string[] = [];
  if (!svc) problems.push(`the plan does not deploy the traffic service ${plan.traffic.service}`);
  else if (typeof image !== 'string' || !isImageOf(image, plan.registry, svc.image))
    problems.push(`image ${JSON.stringify(image)} is not ${plan.registry}/${svc.image}`);
  // A target in one of the plan's clusters is that cluster's; any other cluster shows as a difference below.
  const cluster = given?.cluster;
  const inCluster = typeof cluster === 'string' && plan.clusters?.includes(cluster) ? { ...plan, cluster } : plan;
  const full = trafficTarget(inCluster, plan.workflowId, image);
  // The blue-green hand-over carries the colour target's fields only (no traffic settings).
  const expected = given && 'traffic' in given ? full : colourTarget(full);
  return [...problems, ...differences(given, expected).filter((d) => !d.startsWith('image '))];
}

/**
 * Why `key` is not a backup this configuration may restore (undefined: it
 * may): under the configured prefix, of the configured database, in the
 * form backups are written (domain/backup.ts), never absolute or with `..`.
 */
export function backupKeyProblem(key: string, backup: { prefix: string; database: string }): string | undefined {
  if (typeof key !== 'string' || key === '') return 'backupKey is empty: name a backup key or leave it out';
  if (key.startsWith('/')) return `backupKey ${JSON.stringify(key)} is an absolute path: give the key in the bucket`;
  if (key.split('/').some((part) => part === '..' || part === '.'))
    return `backupKey ${JSON.stringify(key)} contains ".." or ".": give the key as listed in the bucket`;
  const parsed = parseBackupKey(key, backup.prefix);
  if (!parsed)
    return `backupKey ${JSON.stringify(key)} is not a backup under ${backup.prefix} (${backup.prefix}<database>_<version>_<timestamp>.dump or .dump.zst)`;
  if (parsed.database !== backup.database)
    return `backupKey ${JSON.stringify(key)} is a backup of ${parsed.database}, not of ${backup.database}`;
  return undefined;
}
