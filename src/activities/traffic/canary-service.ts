/**
 * The canary Service `<service>-canary` (domain/canary-service.ts) for the
 * providers whose router sends to Services (gateway-api, nginx): made from
 * the stable Service when missing, deleted once the route no longer uses it.
 */
import type * as k8s from '@kubernetes/client-node';
import { AlreadyExistsError } from '../clients/kube';
import { configInvalid } from '../failures';
import {
  CANARY_OF_LABEL,
  canaryServiceFrom,
  canaryServiceName,
  CanaryServiceError,
  stableOnlyPatch,
  stableWidenPatch,
} from '../../domain/canary-service';
import type { TrafficContext } from './provider';

/** The canary Service's name, made now if it does not exist (one created meanwhile by a retry is taken as it is). */
export async function ensureCanaryService(ctx: TrafficContext): Promise<string> {
  const { deployments, namespace, service } = ctx;
  const kube = deployments.kube;
  const name = canaryServiceName(service);
  const existing = await kube.findService(namespace, name);
  if (existing) {
    if (existing.metadata?.labels?.[CANARY_OF_LABEL] !== service)
      throw configInvalid(`Service ${name} exists and was not made by a canary of ${service}: rename or delete it`);
    return name;
  }
  const stable = await kube.readService(namespace, service);
  let desired: k8s.V1Service;
  try {
    desired = canaryServiceFrom(stable);
  } catch (err) {
    if (err instanceof CanaryServiceError) throw configInvalid(err.message);
    throw err;
  }
  try {
    await kube.createService(namespace, desired);
  } catch (err) {
    if (!(err instanceof AlreadyExistsError)) throw err;
  }
  return name;
}

/** Deletes the canary Service, when it is one the canary made (never a Service of the same name someone else owns). */
export async function deleteCanaryService(ctx: TrafficContext): Promise<void> {
  const { deployments, namespace, service } = ctx;
  const name = canaryServiceName(service);
  const existing = await deployments.kube.findService(namespace, name);
  if (existing?.metadata?.labels?.[CANARY_OF_LABEL] === service) await deployments.kube.deleteService(namespace, name);
}

/**
 * Narrows the stable Service to the stable pods for the canary's time
 * (domain/canary-service.ts stableOnlyPatch): the router's stable share then
 * reaches stable pods only, and the canary's share its own Service.
 */
export async function narrowStableService(ctx: TrafficContext): Promise<void> {
  const { deployments, namespace, service } = ctx;
  const kube = deployments.kube;
  const [stable, deployment] = await Promise.all([
    kube.readService(namespace, service),
    kube.readDeployment(namespace, service),
  ]);
  let patch;
  try {
    patch = stableOnlyPatch(stable, deployment.spec?.template?.metadata?.labels);
  } catch (err) {
    if (err instanceof CanaryServiceError) throw configInvalid(err.message);
    throw err;
  }
  if (patch) await kube.patchService(namespace, service, patch);
}

/** Widens the stable Service back, when the canary narrowed it (never a selector someone else set). */
export async function widenStableService(ctx: TrafficContext): Promise<void> {
  const { deployments, namespace, service } = ctx;
  const stable = await deployments.kube.findService(namespace, service);
  const patch = stable && stableWidenPatch(stable);
  if (patch) await deployments.kube.patchService(namespace, service, patch);
}
