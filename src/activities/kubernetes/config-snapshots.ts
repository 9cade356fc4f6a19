/**
 * Configuration versioned with the release: immutable, content-named copies
 * (`<base>-<hash10>`) of the ConfigMaps a service takes from the release
 * repository and of the Secrets its pod template references. patchImages
 * then points the template at them in the same write as the images, so each
 * ReplicaSet names the exact configuration it ran with and a rollback (by
 * record or by `rollout undo`) brings it back. Decisions live in
 * domain/config-snapshots.ts.
 *
 * Secret values are copied server-side and never leave this module: results,
 * heartbeats and failures carry names and hashes only.
 */
import type * as k8s from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import type {
  ConfigMapSource,
  PruneConfigSnapshotsRequest,
  PruneConfigSnapshotsResult,
  SnapshotConfigurationRequest,
  SnapshotConfigurationResult,
  SnapshotReference,
} from '../contracts';
import { AlreadyExistsError, retryOnConflict } from '../clients/kube';
import { assertCommit } from '../clients/git';
import { fail, invalidInput } from '../failures';
import { configMapSource } from '../../domain/config-fields';
import {
  contentHash,
  isBaseOrSnapshotOf,
  mergeSnapshotRefs,
  parseSnapshotRefs,
  snapshotName,
  snapshotsToPrune,
  templateReferences,
  SNAPSHOT_DEPLOYMENT_LABEL,
  SNAPSHOT_HASH_ANNOTATION,
  SNAPSHOT_OF_LABEL,
  SNAPSHOT_WORKFLOW_ANNOTATION,
  SNAPSHOTS_ANNOTATION,
  type ConfigContent,
  type ConfigKind,
  type SnapshotRef,
} from '../../domain/config-snapshots';
import { ErrorType } from '../../domain/errors';
import { controlledBy, labelSelector } from '../../domain/kube-objects';
import { readConfigSource } from './config-sources';
import { requireName, type Deployments } from './deployments';

/** One snapshot to make: its name and content, and the references it replaces. */
interface Planned {
  kind: ConfigKind;
  base: string;
  name: string;
  hash: string;
  content: ConfigContent;
  type?: string;
  froms: string[];
}

const secretContent = (s: k8s.V1Secret): ConfigContent => ({ binaryData: s.data ?? {} });
const hashOf = (kind: ConfigKind, o: k8s.V1ConfigMap | k8s.V1Secret): string =>
  contentHash(kind === 'Secret' ? secretContent(o) : o);

function checkedSources(deployment: string, sources: unknown): ConfigMapSource[] {
  if (!Array.isArray(sources)) throw invalidInput(`deployment ${deployment}: configMaps must be a list`);
  return sources.map((s) => {
    const r = configMapSource.safeParse(s);
    if (!r.success)
      throw invalidInput(
        `deployment ${deployment}: configMaps entry ${JSON.stringify(s)}: ${r.error.issues[0].message}`,
      );
    return r.data;
  });
}

/** The configuration snapshot activities, over one set of Deployment operations and the release source. */
export function configSnapshotActivities(deployments: Deployments, sourceAt?: (commit: string) => Promise<string>) {
  const { kube, runtime } = deployments;

  /** A Secret, or undefined when it is missing and every reference to it is optional. */
  async function readSecret(namespace: string, name: string, optional: boolean, deployment: string) {
    try {
      return await kube.readSecret(namespace, name);
    } catch (err) {
      const notFound = err instanceof ApplicationFailure && err.type === ErrorType.KubernetesNotFound;
      if (notFound && optional) return undefined;
      if (notFound)
        throw fail.KubernetesNotFound(
          `deployment ${deployment} references Secret ${name}, which does not exist in namespace ${namespace}`,
          { deployment, secret: name, namespace },
        );
      throw err;
    }
  }

  /** The Secrets the template references, each planned from its base (a snapshot's base is its label). */
  async function planSecrets(namespace: string, deployment: string, template: unknown): Promise<Planned[]> {
    const planned = new Map<string, Planned>();
    for (const ref of templateReferences(template).filter((r) => r.kind === 'Secret')) {
      runtime.heartbeat({ snapshot: deployment, reading: `Secret/${ref.name}` });
      let source = await readSecret(namespace, ref.name, ref.optional, deployment);
      if (!source) continue;
      const base = source.metadata?.labels?.[SNAPSHOT_OF_LABEL] ?? ref.name;
      if (base !== ref.name)
        source = await readSecret(namespace, requireName('snapshot base', base), ref.optional, deployment);
      if (!source) continue;
      const hash = contentHash(secretContent(source));
      const seen = planned.get(base);
      if (seen) seen.froms.push(ref.name);
      else
        planned.set(base, {
          kind: 'Secret',
          base,
          name: snapshotName(base, hash),
          hash,
          content: secretContent(source),
          ...(source.type ? { type: source.type } : {}),
          froms: [ref.name],
        });
    }
    return [...planned.values()];
  }

  /** The configured ConfigMaps, read from the release at the commit; each must be referenced by the template. */
  async function planConfigMaps(deployment: string, template: unknown, sources: ConfigMapSource[], commit: string) {
    if (!sources.length) return [];
    if (!sourceAt) throw fail.ConfigInvalid('the worker has no release source to read ConfigMaps from');
    const root = await sourceAt(commit);
    const refs = templateReferences(template).filter((r) => r.kind === 'ConfigMap');
    const planned: Planned[] = [];
    for (const s of sources) {
      const froms = refs.filter((r) => isBaseOrSnapshotOf(r.name, s.name)).map((r) => r.name);
      if (!froms.length)
        throw fail.ConfigInvalid(
          `deployment ${deployment} does not reference ConfigMap ${s.name} (configured in services[].configMaps); its pod template references ${refs.map((r) => r.name).join(', ') || 'no ConfigMap'}`,
          { deployment, configMap: s.name },
        );
      runtime.heartbeat({ snapshot: deployment, reading: `ConfigMap/${s.name}` });
      const content = await readConfigSource(root, s.path, `ConfigMap ${s.name} of deployment ${deployment}`);
      const hash = contentHash(content);
      planned.push({ kind: 'ConfigMap', base: s.name, name: snapshotName(s.name, hash), hash, content, froms });
    }
    return planned;
  }

  /** Records the snapshots on the Deployment before they exist, so one made just before a crash is still pruned. */
  async function record(namespace: string, deployment: string, added: SnapshotRef[], removed = new Set<string>()) {
    if (!added.length && !removed.size) return;
    await retryOnConflict(
      `record snapshots on deployment ${deployment}`,
      async () => {
        const d = await kube.readDeployment(namespace, deployment);
        const raw = d.metadata?.annotations?.[SNAPSHOTS_ANNOTATION];
        const recorded = parseSnapshotRefs(raw).filter((r) => !removed.has(`${r.kind}/${r.name}`));
        const next = JSON.stringify(mergeSnapshotRefs(recorded, added));
        if (next === raw) return;
        await kube.patchDeployment(namespace, deployment, {
          metadata: { resourceVersion: d.metadata?.resourceVersion, annotations: { [SNAPSHOTS_ANNOTATION]: next } },
        });
      },
      deployments.signal(),
    );
  }

  /** Creates the snapshot, or reuses the one already there when it holds the same content. */
  async function ensure(namespace: string, deployment: string, workflowId: string, p: Planned): Promise<void> {
    const metadata = {
      name: p.name,
      labels: { [SNAPSHOT_OF_LABEL]: p.base, [SNAPSHOT_DEPLOYMENT_LABEL]: deployment },
      annotations: { [SNAPSHOT_HASH_ANNOTATION]: p.hash, [SNAPSHOT_WORKFLOW_ANNOTATION]: workflowId },
    };
    runtime.heartbeat({ snapshot: deployment, creating: `${p.kind}/${p.name}` });
    try {
      if (p.kind === 'ConfigMap') await kube.createConfigMap(namespace, { metadata, immutable: true, ...p.content });
      else
        await kube.createSecret(namespace, {
          metadata,
          immutable: true,
          data: p.content.binaryData,
          ...(p.type ? { type: p.type } : {}),
        });
    } catch (err) {
      if (!(err instanceof AlreadyExistsError)) throw err;
      const existing =
        p.kind === 'ConfigMap' ? await kube.readConfigMap(namespace, p.name) : await kube.readSecret(namespace, p.name);
      if (hashOf(p.kind, existing) !== p.hash)
        throw fail.ConfigInvalid(
          `${p.kind} ${p.name} already exists in namespace ${namespace} with other content than the snapshot of ${p.base} (hash ${p.hash}): it was not made by this pipeline; delete or rename it`,
          { kind: p.kind, name: p.name, base: p.base, deployment },
        );
    }
  }

  return {
    /**
     * Immutable snapshots of each Deployment's configured ConfigMaps (from
     * the release repository at the commit) and of every Secret its current
     * pod template references; returns the renames for patchImages.
     * Idempotent: the same content makes the same name, and an existing
     * snapshot with that content is reused.
     */
    async snapshotConfiguration(req: SnapshotConfigurationRequest): Promise<SnapshotConfigurationResult> {
      const namespace = requireName('namespace', req.namespace);
      if (typeof req.workflowId !== 'string' || !req.workflowId) throw invalidInput('workflowId is required');
      if (!Array.isArray(req.deployments)) throw invalidInput('deployments must be a list');
      const wanted = req.deployments.map((d) => ({
        deployment: requireName('deployment', d?.deployment),
        sources: checkedSources(d.deployment, d.configMaps ?? []),
      }));
      const commit = wanted.some((w) => w.sources.length) ? assertCommit(req.commit) : req.commit;
      const out: SnapshotConfigurationResult = { deployments: [] };
      for (const { deployment, sources } of wanted) {
        const d = await kube.readDeployment(namespace, deployment);
        const template = d.spec?.template;
        const planned = [
          ...(await planConfigMaps(deployment, template, sources, commit)),
          ...(await planSecrets(namespace, deployment, template)),
        ];
        await record(
          namespace,
          deployment,
          planned.map((p) => ({ kind: p.kind, name: p.name })),
        );
        for (const p of planned) await ensure(namespace, deployment, req.workflowId, p);
        const references: SnapshotReference[] = planned.flatMap((p) =>
          p.froms.map((from) => ({ kind: p.kind, base: p.base, from, to: p.name, hash: p.hash })),
        );
        out.deployments.push({ deployment, references });
      }
      return out;
    },

    /**
     * Deletes the snapshots recorded on each Deployment that neither its pod
     * template nor any of its ReplicaSets references (Kubernetes keeps
     * revisionHistoryLimit of those: what `rollout undo` can reach is kept).
     * By name only: the worker never lists Secrets. Run it after the
     * rollout, under the environment lock, so a deployment's snapshots are
     * already in its template.
     */
    async pruneConfigSnapshots(req: PruneConfigSnapshotsRequest): Promise<PruneConfigSnapshotsResult> {
      const namespace = requireName('namespace', req.namespace);
      if (!Array.isArray(req.deployments)) throw invalidInput('deployments must be a list');
      const out: PruneConfigSnapshotsResult = { deployments: [] };
      for (const deployment of req.deployments.map((n) => requireName('deployment', n))) {
        const d = await kube.readDeployment(namespace, deployment);
        const replicaSets = controlledBy(
          await kube.listReplicaSets(namespace, labelSelector(d.spec?.selector.matchLabels)),
          new Set([d.metadata?.uid ?? '']),
        );
        const recorded = parseSnapshotRefs(d.metadata?.annotations?.[SNAPSHOTS_ANNOTATION]);
        const { prune, keep } = snapshotsToPrune(recorded, [
          d.spec?.template,
          ...replicaSets.map((r) => r.spec?.template),
        ]);
        for (const p of prune) {
          runtime.heartbeat({ prune: deployment, deleting: `${p.kind}/${p.name}` });
          await kube.deleteConfigObject(p.kind, namespace, p.name);
        }
        const key = (r: SnapshotRef) => `${r.kind}/${r.name}`;
        // Re-read under the resourceVersion: a snapshot recorded meanwhile stays recorded.
        if (prune.length) await record(namespace, deployment, [], new Set(prune.map(key)));
        out.deployments.push({ deployment, deleted: prune.map(key), kept: keep.map(key) });
      }
      return out;
    },
  };
}
