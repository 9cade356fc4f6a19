/**
 * Blue-green traffic (runbook "Blue-Green Deployment Strategy"): the colour
 * that serves no traffic gets the new version, then the Service's selector
 * switches to it in one write; the old colour is scaled down after the
 * monitoring window and deleted later. It lives with traffic because the
 * Service switch is what moves the users; the colour scheme itself is
 * domain/blue-green.ts. Every step is idempotent: a re-run after a crash
 * reads where it got to.
 */
import type * as k8s from '@kubernetes/client-node';
import type {
  BlueGreenPrepared,
  BlueGreenState,
  BlueGreenTarget,
  ColourDeploymentState,
  DeleteColourResult,
  ScaleDownResult,
  SwitchResult,
} from '../contracts';
import { retryOnConflict } from '../clients/kube';
import { fail, invalidInput as invalid } from '../failures';
import { requireName, type Deployments } from '../kubernetes/deployments';
import {
  colourDeployment,
  colourDeploymentName,
  COLOUR_LABEL,
  isColour,
  otherColour,
  SCALED_DOWN_AT_ANNOTATION,
  SCALED_DOWN_REPLICAS_ANNOTATION,
  selectedColour,
  type Colour,
} from '../../domain/blue-green';
import { PodTemplateError } from '../../domain/kube-objects';
import { containerImages, rolloutStatus, VERSION_ANNOTATION } from '../../domain/rollout';

/** What every step after prepare acts on: the release's target and one colour. */
interface ColourRequest {
  target: BlueGreenTarget;
  colour: Colour;
}

/** The colour a request names, once the request is known to be well formed. */
function colourOf(t: BlueGreenTarget, colour: unknown): Colour {
  if (!isColour(colour)) throw invalid(`colour must be "blue" or "green", got ${JSON.stringify(colour)}`);
  requireName('namespace', t.namespace);
  requireName('service', t.service);
  return colour;
}

/** The service's own Deployment: blue. */
function base(t: BlueGreenTarget): string {
  return t.deployment ?? t.service;
}

/** The blue-green activities, over one set of Deployment operations. */
export function blueGreenActivities(deployments: Deployments) {
  const { kube } = deployments;
  const deleteAfterMs = deployments.settings.deleteOldColourAfter;

  /** Sets the colour in the Service selector (keeping its other keys) and reads it back. */
  const selectColour = async (namespace: string, service: string, colour: Colour): Promise<SwitchResult> => {
    const before = await kube.readService(namespace, service);
    if (before.spec?.selector?.[COLOUR_LABEL] !== colour)
      await kube.patchService(namespace, service, { spec: { selector: { [COLOUR_LABEL]: colour } } });
    const after = await kube.readService(namespace, service);
    const selector = after.spec?.selector ?? {};
    if (selector[COLOUR_LABEL] !== colour)
      throw fail.TrafficNotApplied(
        `service ${service}: selector reads ${JSON.stringify(selector)} after setting ${COLOUR_LABEL}=${colour}`,
      );
    return { colour, selector };
  };

  /** The preview Service (the operator's, never created here) selects the new colour, so it can be smoke-tested. */
  const pointPreview = async (namespace: string, t: BlueGreenTarget, colour: Colour) => {
    const service = requireName('previewService', t.previewService!);
    if (service === t.service) throw invalid(`the preview service must not be the live service ${t.service}`);
    if (!(await kube.findService(namespace, service)))
      throw invalid(
        `preview service ${service} not found in ${namespace}: create it (a copy of ${t.service} without the ${COLOUR_LABEL} selector) or remove rollout.blueGreen.preview`,
      );
    await selectColour(namespace, service, colour);
    return { service, colour };
  };

  /** Scales a colour to 0, remembering its size and when, for abort and for deleteOldColour. */
  const scaleToZero = (namespace: string, name: string, previous: number) =>
    deployments.scale(namespace, name, 0, {
      [SCALED_DOWN_REPLICAS_ANNOTATION]: String(previous),
      [SCALED_DOWN_AT_ANNOTATION]: new Date().toISOString(),
    });

  /** The replicas a colour had before it was scaled down (at least 1). */
  const recordedReplicas = (d: k8s.V1Deployment): number => {
    const recorded = Number(d.metadata?.annotations?.[SCALED_DOWN_REPLICAS_ANNOTATION]);
    return Number.isInteger(recorded) && recorded > 0 ? recorded : 1;
  };

  /**
   * The first blue-green release: the service's own Deployment becomes blue
   * (its pods get `version: blue`: one rollout with the same image) and the
   * Service is pinned to blue before green exists, so green's pods, which
   * also carry `app=<service>`, take no traffic early.
   */
  const adoptBlue = async (
    namespace: string,
    service: string,
    name: string,
    active: k8s.V1Deployment,
  ): Promise<void> => {
    if (active.spec?.template.metadata?.labels?.[COLOUR_LABEL] !== 'blue') {
      await retryOnConflict(
        `label deployment ${name} blue`,
        async () => {
          const d = await kube.readDeployment(namespace, name);
          if (d.spec?.template.metadata?.labels?.[COLOUR_LABEL] === 'blue') return;
          await kube.patchDeployment(namespace, name, {
            metadata: { resourceVersion: d.metadata?.resourceVersion },
            spec: { template: { metadata: { labels: { [COLOUR_LABEL]: 'blue' } } } },
          });
        },
        deployments.signal(),
      );
      await deployments.wait(namespace, [name]);
    }
    await selectColour(namespace, service, 'blue');
  };

  return {
    /**
     * Runbook "Blue-Green": the colour that does not serve traffic gets the
     * new version and is awaited (the first time, blue is adopted first: see
     * adoptBlue).
     */
    async prepareBlueGreen(t: BlueGreenTarget): Promise<BlueGreenPrepared> {
      const namespace = requireName('namespace', t.namespace);
      requireName('service', t.service);
      const baseName = requireName('deployment', base(t));
      const svc = await kube.readService(namespace, t.service);
      let activeColour = selectedColour(svc.spec?.selector);
      const activeName = colourDeploymentName(baseName, activeColour ?? 'blue');
      let active = await kube.readDeployment(namespace, activeName);
      if (!activeColour) {
        await adoptBlue(namespace, t.service, activeName, active);
        activeColour = 'blue';
        active = await kube.readDeployment(namespace, activeName);
      }
      const activeImages = containerImages(active.spec?.template);
      if (!(t.container in activeImages))
        throw invalid(
          `deployment ${activeName} has no container "${t.container}" (containers: ${Object.keys(activeImages).join(', ')})`,
        );
      const replicas = active.spec?.replicas || recordedReplicas(active);
      const activeVersion = active.metadata?.annotations?.[VERSION_ANNOTATION];
      const activeState = {
        colour: activeColour,
        deployment: activeName,
        replicas,
        images: activeImages,
        ...(activeVersion ? { version: activeVersion } : {}),
      };
      if (activeImages[t.container] === t.image && activeVersion === t.version) {
        return { active: activeState, target: { colour: activeColour, deployment: activeName }, alreadyActive: true };
      }
      const targetColour = otherColour(activeColour);
      const targetName = colourDeploymentName(baseName, targetColour);
      if (targetName === baseName) {
        // Blue is the base Deployment: new image, back to full size, its selector untouched.
        await deployments.patchImages({
          workflowId: t.workflowId,
          namespace,
          deployment: targetName,
          images: { [t.container]: t.image },
          version: t.version,
          action: 'blue-green blue',
          replicas,
          templateLabels: { [COLOUR_LABEL]: targetColour },
          annotations: { [SCALED_DOWN_REPLICAS_ANNOTATION]: null, [SCALED_DOWN_AT_ANNOTATION]: null },
        });
      } else {
        let desired: k8s.V1Deployment;
        try {
          desired = colourDeployment(active, {
            name: targetName,
            colour: targetColour,
            container: t.container,
            image: t.image,
            version: t.version,
            workflowId: t.workflowId,
            replicas,
          }) as k8s.V1Deployment;
        } catch (err) {
          if (err instanceof PodTemplateError) throw invalid(err.message);
          throw err;
        }
        await deployments.upsert(namespace, desired);
      }
      await deployments.wait(namespace, [targetName]);
      const preview = t.previewService ? await pointPreview(namespace, t, targetColour) : undefined;
      return {
        active: activeState,
        target: { colour: targetColour, deployment: targetName },
        alreadyActive: false,
        ...(preview ? { preview } : {}),
      };
    },

    /** Runbook "Switch traffic to green": the Service selector takes the colour, once that colour's Deployment is rolled out. */
    async switchBlueGreen(req: ColourRequest): Promise<SwitchResult> {
      const colour = colourOf(req.target, req.colour);
      const name = colourDeploymentName(base(req.target), colour);
      const d = await kube.readDeployment(req.target.namespace, name);
      const s = rolloutStatus(d);
      if (!s.done || (d.spec?.replicas ?? 0) === 0) {
        throw fail.TrafficNotApplied(
          `not switching ${req.target.service} to ${colour}: ${(d.spec?.replicas ?? 0) === 0 ? `deployment ${name} has 0 replicas` : s.message}`,
        );
      }
      return selectColour(req.target.namespace, req.target.service, colour);
    },

    /** After the monitoring window: the old colour goes to 0 replicas (remembering how many it had) and is deleted later. */
    async scaleDownOldColour(req: ColourRequest): Promise<ScaleDownResult> {
      const colour = colourOf(req.target, req.colour);
      const namespace = req.target.namespace;
      const name = colourDeploymentName(base(req.target), colour);
      const svc = await kube.readService(namespace, req.target.service);
      if (selectedColour(svc.spec?.selector) === colour)
        throw invalid(`service ${req.target.service} still sends traffic to ${colour}: switch before scaling it down`);
      const d = await kube.findDeployment(namespace, name);
      if (!d) return { deployment: name, previousReplicas: 0, deleteAfterMs };
      const previous = d.spec?.replicas ?? 0;
      if (previous === 0)
        return {
          deployment: name,
          previousReplicas: Number(d.metadata?.annotations?.[SCALED_DOWN_REPLICAS_ANNOTATION] ?? 0) || 0,
          deleteAfterMs,
        };
      await scaleToZero(namespace, name, previous);
      return { deployment: name, previousReplicas: previous, deleteAfterMs };
    },

    /**
     * Deletes the old colour once the workflow has waited deleteAfterMs. The
     * base Deployment (blue) is never deleted: it stays at 0 replicas as the
     * next release's blue. A colour the Service selects is never deleted.
     */
    async deleteOldColour(req: ColourRequest): Promise<DeleteColourResult> {
      const colour = colourOf(req.target, req.colour);
      const name = colourDeploymentName(base(req.target), colour);
      const svc = await kube.readService(req.target.namespace, req.target.service);
      if (selectedColour(svc.spec?.selector) === colour)
        return { deployment: name, deleted: false, reason: `service ${req.target.service} selects ${colour}` };
      if (name === base(req.target))
        return {
          deployment: name,
          deleted: false,
          reason: 'the base Deployment is kept at 0 replicas as the next blue',
        };
      const deleted = await kube.deleteDeployment(req.target.namespace, name);
      return { deployment: name, deleted, ...(deleted ? {} : { reason: 'already deleted' }) };
    },

    /**
     * Read-only, for a manual rollback: the colour the Service selects, and
     * the other colour's Deployment when it exists, each with its version,
     * replicas and images. The workflow decides from this (domain
     * colourRollback) and switches with abortBlueGreen, so a retried step
     * never flips traffic twice.
     */
    async readBlueGreen(t: BlueGreenTarget): Promise<BlueGreenState> {
      const namespace = requireName('namespace', t.namespace);
      requireName('service', t.service);
      const baseName = requireName('deployment', base(t));
      const svc = await kube.readService(namespace, t.service);
      const selector = svc.spec?.selector ?? {};
      const live = selectedColour(selector);
      if (!live) return { service: t.service, selector };
      const read = async (colour: Colour): Promise<ColourDeploymentState | undefined> => {
        const name = colourDeploymentName(baseName, colour);
        const d = await kube.findDeployment(namespace, name);
        if (!d) return undefined;
        const version = d.metadata?.annotations?.[VERSION_ANNOTATION];
        return {
          colour,
          deployment: name,
          ...(version ? { version } : {}),
          replicas: d.spec?.replicas ?? 0,
          readyReplicas: d.status?.readyReplicas ?? 0,
          images: containerImages(d.spec?.template),
        };
      };
      const [liveState, otherState] = await Promise.all([read(live), read(otherColour(live))]);
      return {
        service: t.service,
        selector,
        // A Service that selects a colour whose Deployment is gone still says which colour it selects.
        live: liveState ?? {
          colour: live,
          deployment: colourDeploymentName(baseName, live),
          replicas: 0,
          readyReplicas: 0,
          images: {},
        },
        ...(otherState ? { other: otherState } : {}),
      };
    },

    /**
     * Abort: traffic back to `colour` (scaled back up and awaited first if it
     * was scaled down), then the other colour scaled to 0. Idempotent.
     */
    async abortBlueGreen(req: ColourRequest): Promise<SwitchResult & { scaledDown?: string }> {
      const colour = colourOf(req.target, req.colour);
      const namespace = req.target.namespace;
      const backName = colourDeploymentName(base(req.target), colour);
      const back = await kube.readDeployment(namespace, backName);
      if ((back.spec?.replicas ?? 0) === 0) {
        await deployments.scale(namespace, backName, recordedReplicas(back), {
          [SCALED_DOWN_REPLICAS_ANNOTATION]: null,
          [SCALED_DOWN_AT_ANNOTATION]: null,
        });
      }
      await deployments.wait(namespace, [backName]);
      const switched = await selectColour(namespace, req.target.service, colour);
      const otherName = colourDeploymentName(base(req.target), otherColour(colour));
      const other = await kube.findDeployment(namespace, otherName);
      if (other && (other.spec?.replicas ?? 0) > 0) await scaleToZero(namespace, otherName, other.spec?.replicas ?? 0);
      return { ...switched, ...(other ? { scaledDown: otherName } : {}) };
    },
  };
}
