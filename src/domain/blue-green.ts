/**
 * The blue-green colour scheme without I/O (runbook "Blue-Green Deployment
 * Strategy"): which Deployment is which colour, which colour a Service
 * selects, and the Deployment of the colour about to take traffic.
 * activities/traffic/blue-green.ts applies it.
 */
import {
  POD_TEMPLATE_HASH_LABEL,
  PodTemplateError,
  type DeploymentLike,
  type Labels,
  type PodTemplateLike,
} from './kube-objects';
import { CHANGE_CAUSE_ANNOTATION, changeCause, VERSION_ANNOTATION, WORKFLOW_ANNOTATION } from './rollout';

/** The two Deployments that take turns serving a service. */
export type Colour = 'blue' | 'green';
/** The label (pods and Service selector) that tells the colours apart; the demo server reads it from the Service selector. */
export const COLOUR_LABEL = 'version';
/** Blue-green: replicas an old colour had before it was scaled down, and when. */
export const SCALED_DOWN_REPLICAS_ANNOTATION = 'deploy-pipelines.dev/scaled-down-replicas';
export const SCALED_DOWN_AT_ANNOTATION = 'deploy-pipelines.dev/scaled-down-at';

/** The colour that takes the next release. */
export function otherColour(c: Colour): Colour {
  return c === 'blue' ? 'green' : 'blue';
}

/** A colour from outside (a signal, a Service selector) is checked before it picks a Deployment. */
export function isColour(v: unknown): v is Colour {
  return v === 'blue' || v === 'green';
}

/**
 * Blue is the service's own Deployment (the one the platform manifests
 * define, selector `app=<service>`, which is immutable); green is
 * `<base>-green` with selector `app=<service>,version=green`. So the base
 * Deployment is never deleted and the names stay stable across releases;
 * the demo server, looking for `<service>-blue`, falls back to the base.
 */
export function colourDeploymentName(base: string, colour: Colour): string {
  return colour === 'blue' ? base : `${base}-green`;
}

/** The colour a Service selector pins, or undefined before the first blue-green release. */
export function selectedColour(selector: Labels | undefined): Colour | undefined {
  const v = selector?.[COLOUR_LABEL];
  return isColour(v) ? v : undefined;
}

/** What a manual rollback reads of one colour's Deployment (activities/contracts ColourDeploymentState). */
export interface ColourRead {
  colour: Colour;
  deployment: string;
  version?: string;
}

/**
 * Where a manual rollback to the previous version goes for a service whose
 * Service selects a colour: back to the other colour when its Deployment
 * exists and runs another version (the one that served before the last
 * switch), else an undo of the Deployment that serves. Undefined when the
 * Service selects no colour: its base Deployment serves, as without
 * blue-green.
 */
export function colourRollback(state: {
  live?: ColourRead;
  other?: ColourRead;
}):
  | { kind: 'switch'; from: Colour; to: Colour; deployment: string; version?: string }
  | { kind: 'undo'; deployment: string }
  | undefined {
  const { live, other } = state;
  if (!live) return undefined;
  if (other && (other.version === undefined || other.version !== live.version))
    return {
      kind: 'switch',
      from: live.colour,
      to: other.colour,
      deployment: other.deployment,
      ...(other.version ? { version: other.version } : {}),
    };
  return { kind: 'undo', deployment: live.deployment };
}

export interface ColourSpec {
  name: string;
  colour: Colour;
  container: string;
  image: string;
  version: string;
  workflowId: string;
  replicas: number;
}

function stripTemplate(t: PodTemplateLike): PodTemplateLike {
  const copy = structuredClone(t);
  if (copy.metadata?.labels) delete copy.metadata.labels[POD_TEMPLATE_HASH_LABEL];
  return copy;
}

function withImage(t: PodTemplateLike, container: string, image: string): PodTemplateLike {
  const containers = t.spec?.containers ?? [];
  if (!containers.some((c) => c.name === container))
    throw new PodTemplateError(
      `the pod template has no container "${container}" (containers: ${containers.map((c) => c.name).join(', ') || 'none'})`,
    );
  return { ...t, spec: { ...t.spec, containers: containers.map((c) => (c.name === container ? { ...c, image } : c)) } };
}

/**
 * The Deployment of the colour about to take traffic, made from the active
 * one: same pod template with the new image, pods and selector labelled with
 * the colour. Throws when the container does not exist.
 */
export function colourDeployment(active: DeploymentLike, spec: ColourSpec): DeploymentLike {
  const template = withImage(stripTemplate(active.spec?.template ?? {}), spec.container, spec.image);
  const selector = { ...(active.spec?.selector.matchLabels ?? {}), [COLOUR_LABEL]: spec.colour };
  const metaLabels = { ...(active.metadata?.labels ?? {}), [COLOUR_LABEL]: spec.colour };
  return {
    metadata: {
      name: spec.name,
      namespace: active.metadata?.namespace,
      labels: metaLabels,
      annotations: {
        [VERSION_ANNOTATION]: spec.version,
        [WORKFLOW_ANNOTATION]: spec.workflowId,
        [CHANGE_CAUSE_ANNOTATION]: changeCause(`blue-green ${spec.colour}`, spec.version, spec.workflowId),
      },
    },
    spec: {
      ...(active.spec ?? { selector: {}, template: {} }),
      replicas: spec.replicas,
      paused: false,
      selector: { matchLabels: selector },
      template: {
        ...template,
        metadata: {
          ...template.metadata,
          labels: { ...(template.metadata?.labels ?? {}), [COLOUR_LABEL]: spec.colour },
          annotations: { ...(template.metadata?.annotations ?? {}), [VERSION_ANNOTATION]: spec.version },
        },
      },
    },
  };
}
