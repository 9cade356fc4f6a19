/**
 * The reference half of an image patch: which ConfigMap/Secret renames a
 * change makes, the renames that undo it (recorded on the Deployment so a
 * retry after a crash still knows them), and the part of the strategic merge
 * patch that carries them, so images and references change in one write and
 * one revision.
 */
import {
  effectiveRenames,
  inverseRenames,
  parseRenames,
  PREVIOUS_REFERENCES_ANNOTATION,
  rewriteReferences,
  type ReferenceRename,
} from './config-snapshots';
import type { DeploymentLike, PodTemplateLike } from './kube-objects';
import { containerImages, VERSION_ANNOTATION, WORKFLOW_ANNOTATION } from './rollout';

export interface ReferencesRecord {
  /** Every rename is already in the template (nothing to write for references). */
  applied: boolean;
  /** The renames that go back; undefined when the change names no references. */
  previous?: ReferenceRename[];
}

/**
 * What a change's renames replace. As previousRecord does for images: when
 * this workflow already made the same change (a retry after a crash), the
 * record kept on the object is the truth, not the template as it is now.
 */
export function referencesRecord(
  d: DeploymentLike,
  workflowId: string,
  version: string,
  images: Record<string, string>,
  references: readonly ReferenceRename[] | undefined,
): ReferencesRecord {
  if (!references) return { applied: true };
  const template = d.spec?.template;
  const effective = effectiveRenames(template, references);
  if (effective.length) return { applied: false, previous: inverseRenames(effective) };
  const a = d.metadata?.annotations ?? {};
  const current = containerImages(template);
  const sameChange =
    a[WORKFLOW_ANNOTATION] === workflowId &&
    a[VERSION_ANNOTATION] === version &&
    Object.entries(images).every(([c, img]) => current[c] === img);
  const recorded = sameChange ? parseRenames(a[PREVIOUS_REFERENCES_ANNOTATION]) : undefined;
  return { applied: true, previous: recorded ?? [] };
}

interface PatchBody {
  metadata: { annotations: Record<string, unknown> };
  spec: { template: { metadata?: Record<string, unknown>; spec?: Record<string, unknown> } };
}

interface ContainerLike {
  name: string;
  image?: string;
}

/**
 * Adds the renames to an image patch (domain/rollout.ts imagePatch): the
 * rewritten containers (with the new images), init containers and volumes,
 * whole, since envFrom and projected sources have no merge key, and the
 * annotation that records how to go back.
 */
export function referencePatch(
  body: PatchBody,
  template: PodTemplateLike | undefined,
  images: Record<string, string>,
  references: readonly ReferenceRename[],
  previous: readonly ReferenceRename[],
): void {
  body.metadata.annotations[PREVIOUS_REFERENCES_ANNOTATION] = JSON.stringify(previous);
  const effective = effectiveRenames(template, references);
  if (!effective.length) return;
  const spec = (rewriteReferences(template, effective) as { spec?: Record<string, unknown> }).spec ?? {};
  const out: Record<string, unknown> = { ...(body.spec.template.spec ?? {}) };
  const containers = (spec.containers ?? []) as ContainerLike[];
  out.containers = containers.map((c) => (images[c.name] ? { ...c, image: images[c.name] } : c));
  if (spec.initContainers) out.initContainers = spec.initContainers;
  if (spec.volumes) out.volumes = spec.volumes;
  body.spec.template.spec = out;
}
