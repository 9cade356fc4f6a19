/**
 * Configuration versioned with the release, without I/O: the content hash
 * that names an immutable snapshot of a ConfigMap or Secret, every place a
 * pod template references one, and the renames that point a template at the
 * snapshots (and back). activities/kubernetes/config-snapshots.ts reads the
 * cluster and the release repository, calls these and writes the result.
 *
 * A snapshot is named `<base>-<hash10>` after its content, so the same
 * content always has the same name (a retry or a second deployment reuses
 * it) and a ReplicaSet that names one keeps meaning that exact content:
 * `kubectl rollout undo` then brings back the configuration with the code.
 */
import { createHash } from 'node:crypto';

export type ConfigKind = 'ConfigMap' | 'Secret';

/** On every snapshot: the object it was taken from (its base). A Secret that carries it is itself a snapshot. */
export const SNAPSHOT_OF_LABEL = 'deploy-pipelines.dev/snapshot-of';
/** On every snapshot: the Deployment it was taken for (what pruning looks at). */
export const SNAPSHOT_DEPLOYMENT_LABEL = 'deploy-pipelines.dev/deployment';
/** On every snapshot: the full content hash (the name carries 10 hex digits of it). */
export const SNAPSHOT_HASH_ANNOTATION = 'deploy-pipelines.dev/content-hash';
/** On every snapshot: the workflow that first took it. */
export const SNAPSHOT_WORKFLOW_ANNOTATION = 'deploy-pipelines.dev/snapshot-workflow-id';
/**
 * On the Deployment: JSON [{kind, name}] of the snapshots taken for it, so
 * pruning gets and deletes them by name and the worker never needs to list
 * Secrets (a list returns every Secret's value in the namespace).
 */
export const SNAPSHOTS_ANNOTATION = 'deploy-pipelines.dev/config-snapshots';
/** On the Deployment: JSON of the renames that undo the last reference change, so a retry after a crash still knows them. */
export const PREVIOUS_REFERENCES_ANNOTATION = 'deploy-pipelines.dev/previous-references';

/** One rename of the references of a pod template; without `kind`, both ConfigMaps and Secrets of that name. */
export interface ReferenceRename {
  kind?: ConfigKind;
  from: string;
  to: string;
}

export interface ConfigReference {
  kind: ConfigKind;
  name: string;
  /** Every reference to it is `optional: true`: the pod starts without it. */
  optional: boolean;
}

export interface SnapshotRef {
  kind: ConfigKind;
  name: string;
}

/** The content of a ConfigMap (`data` text, `binaryData` base64) or of a Secret (`data`, base64). */
export interface ConfigContent {
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

const sortedEntries = (r: Record<string, string> | undefined): [string, string][] =>
  Object.entries(r ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

/**
 * sha256 (hex) over the sorted keys and values, `data` apart from
 * `binaryData`, so that a key moving between them changes the hash. Plain
 * code-unit order, never the locale's: the hash must not depend on the worker.
 */
export function contentHash(c: ConfigContent): string {
  const canonical = JSON.stringify({ data: sortedEntries(c.data), binaryData: sortedEntries(c.binaryData) });
  return createHash('sha256').update(canonical, 'utf8').digest('hex');
}

/** `<base>-<first 10 hex digits of the hash>`. */
export function snapshotName(base: string, hash: string): string {
  return `${base}-${hash.slice(0, 10)}`;
}

/** True when `name` is `base` itself or one of its snapshots (by the naming rule). */
export function isBaseOrSnapshotOf(name: string, base: string): boolean {
  return name === base || (name.startsWith(`${base}-`) && /^[0-9a-f]{10}$/.test(name.slice(base.length + 1)));
}

// ---------------------------------------------------------------------------
// References of a pod template
// ---------------------------------------------------------------------------

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj | undefined => (v && typeof v === 'object' ? (v as Obj) : undefined);
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.map(obj).filter((x): x is Obj => !!x) : []);

/** A place in a template that names a ConfigMap or a Secret: the object holding `name` (and `optional`). */
interface Site {
  kind: ConfigKind;
  holder: Obj;
  /** The field that holds the name: `name`, except `secretName` on a Secret volume. */
  field: 'name' | 'secretName';
}

/**
 * Every site of a pod template that names a ConfigMap or Secret: env
 * valueFrom key refs, envFrom, volumes and projected volume sources, in
 * containers, initContainers and ephemeralContainers alike.
 */
function sites(template: unknown): Site[] {
  const spec = obj(obj(template)?.spec);
  if (!spec) return [];
  const out: Site[] = [];
  const add = (kind: ConfigKind, holder: Obj | undefined, field: Site['field'] = 'name') => {
    if (holder && typeof holder[field] === 'string') out.push({ kind, holder, field });
  };
  const containers = [...list(spec.containers), ...list(spec.initContainers), ...list(spec.ephemeralContainers)];
  for (const c of containers) {
    for (const e of list(c.env)) {
      const from = obj(e.valueFrom);
      add('ConfigMap', obj(from?.configMapKeyRef));
      add('Secret', obj(from?.secretKeyRef));
    }
    for (const e of list(c.envFrom)) {
      add('ConfigMap', obj(e.configMapRef));
      add('Secret', obj(e.secretRef));
    }
  }
  for (const v of list(spec.volumes)) {
    add('ConfigMap', obj(v.configMap));
    add('Secret', obj(v.secret), 'secretName');
    for (const s of list(obj(v.projected)?.sources)) {
      add('ConfigMap', obj(s.configMap));
      add('Secret', obj(s.secret));
    }
  }
  return out;
}

/** The ConfigMaps and Secrets a pod template references, each once, in the order they first appear. */
export function templateReferences(template: unknown): ConfigReference[] {
  const byKey = new Map<string, ConfigReference>();
  for (const s of sites(template)) {
    const name = s.holder[s.field] as string;
    const optional = s.holder.optional === true;
    const key = `${s.kind}/${name}`;
    const seen = byKey.get(key);
    if (seen) seen.optional &&= optional;
    else byKey.set(key, { kind: s.kind, name, optional });
  }
  return [...byKey.values()];
}

/** True when the template names `name` of `kind` anywhere. */
export function references(template: unknown, kind: ConfigKind, name: string): boolean {
  return templateReferences(template).some((r) => r.kind === kind && r.name === name);
}

/** A copy of the template with each reference renamed by `renames` (the first that matches); the input is never changed. */
export function rewriteReferences<T>(template: T, renames: readonly ReferenceRename[]): T {
  const copy = JSON.parse(JSON.stringify(template ?? null)) as T;
  if (!renames.length) return copy;
  for (const s of sites(copy)) {
    const name = s.holder[s.field] as string;
    const hit = renames.find((r) => r.from === name && (r.kind === undefined || r.kind === s.kind));
    if (hit) s.holder[s.field] = hit.to;
  }
  return copy;
}

/** The renames that `renames` would actually make in `template`: those whose `from` it references. */
export function effectiveRenames(template: unknown, renames: readonly ReferenceRename[]): ReferenceRename[] {
  const refs = templateReferences(template);
  return renames.filter(
    (r) => r.from !== r.to && refs.some((x) => x.name === r.from && (r.kind === undefined || r.kind === x.kind)),
  );
}

/** The renames that go back: each `to` named `from` again. */
export function inverseRenames(renames: readonly ReferenceRename[]): ReferenceRename[] {
  return renames.map((r) => ({ ...(r.kind ? { kind: r.kind } : {}), from: r.to, to: r.from }));
}

/** The renames in an annotation (PREVIOUS_REFERENCES_ANNOTATION); undefined when absent or damaged. */
export function parseRenames(raw: string | undefined): ReferenceRename[] | undefined {
  if (!raw) return undefined;
  try {
    const v = JSON.parse(raw) as unknown;
    if (!Array.isArray(v)) return undefined;
    const ok = v.every((r) => {
      const x = obj(r);
      return (
        !!x &&
        typeof x.from === 'string' &&
        typeof x.to === 'string' &&
        (x.kind === undefined || x.kind === 'ConfigMap' || x.kind === 'Secret')
      );
    });
    return ok ? (v as ReferenceRename[]) : undefined;
  } catch {
    return undefined;
  }
}

/** The snapshots recorded on a Deployment (SNAPSHOTS_ANNOTATION); a damaged annotation records none. */
export function parseSnapshotRefs(raw: string | undefined): SnapshotRef[] {
  if (!raw) return [];
  try {
    const v = JSON.parse(raw) as unknown;
    if (!Array.isArray(v)) return [];
    return v
      .map(obj)
      .filter(
        (x): x is Obj =>
          !!x && (x.kind === 'ConfigMap' || x.kind === 'Secret') && typeof x.name === 'string' && !!x.name,
      )
      .map((x) => ({ kind: x.kind as ConfigKind, name: x.name as string }));
  } catch {
    return [];
  }
}

/** `recorded` plus `added`, each once, sorted (so the annotation does not change when nothing new was taken). */
export function mergeSnapshotRefs(recorded: readonly SnapshotRef[], added: readonly SnapshotRef[]): SnapshotRef[] {
  const byKey = new Map([...recorded, ...added].map((r) => [`${r.kind}/${r.name}`, r]));
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
}

/**
 * Which recorded snapshots may go: those that no template still references
 * (the Deployment's and its ReplicaSets': Kubernetes keeps only
 * revisionHistoryLimit of those, so what an undo can reach is kept).
 */
export function snapshotsToPrune(
  recorded: readonly SnapshotRef[],
  templates: readonly unknown[],
): { prune: SnapshotRef[]; keep: SnapshotRef[] } {
  const used = new Set(templates.flatMap((t) => templateReferences(t).map((r) => `${r.kind}/${r.name}`)));
  const prune: SnapshotRef[] = [];
  const keep: SnapshotRef[] = [];
  for (const r of recorded) (used.has(`${r.kind}/${r.name}`) ? keep : prune).push(r);
  return { prune, keep };
}
