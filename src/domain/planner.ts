/**
 * The planner: pure and synchronous (design §3.6). Every input is a
 * parameter, so it is tested without any service; the resolvePlan activity
 * reads config and tags, calls it, and the result is fixed in history.
 */
import { metricRulesField } from './analysis-rules';
import type { DeployConfig, EnvironmentConfig, ServiceConfig } from './config';
import type { ApprovalPolicy } from './identity';
import type { CheckedDeployInput } from './input';
import { InputError } from './input';
import { environmentConfig } from './environment-config';
import { tightenOnly, type TightenedSettings } from './policy';
import {
  imageReference,
  stepRoutesFor,
  type CanarySettings,
  type DeployPlan,
  type PlanFacts,
  type PlannedService,
} from './plan';
import { nextVersion, tagOf } from './version';
import { orderWaves, wavesFor } from './waves';

// Declared in plan.ts, which the workflows import; kept exported here for the planner's callers.
export { imageReference };

/** A configured service as the workflows see it; `version` gives its image reference (none: ''). */
export function plannedService(s: ServiceConfig, registry: string, version?: string): PlannedService {
  return {
    name: s.name,
    image: s.image,
    context: s.context,
    dockerfile: s.dockerfile,
    deployment: s.deployment ?? s.name,
    container: s.container ?? s.name,
    reference: version ? imageReference(registry, s.image, version) : '',
    ...(s.configMaps?.length ? { configMaps: s.configMaps.map((c) => ({ name: c.name, path: c.path })) } : {}),
  };
}

/** Computes the plan; throws InputError when the input does not fit the config. */
export function buildPlan(file: DeployConfig, input: CheckedDeployInput, facts: PlanFacts): DeployPlan {
  const environment = input.environment ?? file.defaultEnvironment;
  const env = Object.hasOwn(file.environments, environment) ? file.environments[environment] : undefined;
  if (!env) {
    throw new InputError(
      `unknown environment "${environment}": configured are ${Object.keys(file.environments).join(', ')}`,
    );
  }
  // Its own rollout, traffic, analysis and cluster settings (environments.<name> over the top level).
  const config = environmentConfig(file, environment);
  const version = input.version ?? nextVersion(facts.tags, input.bump as 'patch' | 'minor' | 'major');
  const known = new Map(config.services.map((s) => [s.name, s]));
  for (const name of input.services ?? []) {
    if (!known.has(name))
      throw new InputError(`unknown service "${name}": configured are ${[...known.keys()].join(', ')}`);
  }
  const chosen = input.services ? config.services.filter((s) => input.services!.includes(s.name)) : config.services;
  // The input may only tighten the config: a loosening is refused here, before any side effect.
  const settings = tightenOnly(config, environment, input);
  const strategy = settings.strategy;
  if (strategy !== 'rolling' && !chosen.some((s) => s.name === config.traffic.service)) {
    throw new InputError(
      `strategy "${strategy}" shifts traffic of "${config.traffic.service}", which is not among the chosen services`,
    );
  }
  const previous = previousRelease(facts.tags, version);
  return {
    workflowId: facts.workflowId,
    project: config.project,
    environment,
    namespace: env.namespace,
    version,
    tag: tagOf(version),
    // A release's stage deploys the release's commit, which its tag points at (confirmed by resolvePlan).
    commit: input.release?.commit ?? facts.commit,
    ...(previous ? { previousVersion: previous } : {}),
    strategy,
    requestedBy: input.requestedBy ?? 'unknown',
    dryRun: input.dryRun ?? false,
    backup: settings.backup,
    migrate: settings.migrate,
    allowImageOverwrite: settings.allowImageOverwrite,
    registry: config.registry.host,
    services: chosen.map((s) => plannedService(s, config.registry.host, version)),
    ...wavesOf(config.services, chosen),
    ...clustersPlan(env),
    canary: canarySettings(settings.canary, config),
    blueGreen: {
      ...settings.blueGreen,
      analysisIntervalMs: settings.canary.analysisIntervalMs,
      deleteAfterMs: config.kubernetes.deleteOldColourAfter,
      ...(config.rollout.blueGreen.preview ? { previewService: config.rollout.blueGreen.preview.service } : {}),
    },
    traffic: {
      provider: config.traffic.provider,
      service: config.traffic.service,
      ...(config.traffic.virtualService ? { virtualService: config.traffic.virtualService } : {}),
      ...(config.traffic.httpRoute ? { httpRoute: config.traffic.httpRoute } : {}),
      ...(config.traffic.ingress ? { ingress: config.traffic.ingress } : {}),
      stableSubset: config.traffic.stableSubset,
      canarySubset: config.traffic.canarySubset,
    },
    approvals: approvalPolicy(env.approvals),
    requestedVia: 'none',
    databaseDecisionTimeoutMs: config.rollout.databaseDecisionTimeout,
    rolloutTimeoutMs: config.kubernetes.rolloutTimeout,
    ...(config.temporal.uiUrl ? { uiUrl: config.temporal.uiUrl } : {}),
    taskQueue: config.temporal.taskQueue,
    ...(config.temporal.ioTaskQueue ? { ioTaskQueue: config.temporal.ioTaskQueue } : {}),
    searchAttributes: config.temporal.searchAttributes,
    freeze: { windows: env.freeze.windows, mode: env.freeze.mode, checkIntervalMs: env.freeze.checkInterval },
    ...(input.release ? { release: { workflowId: input.release.workflowId, images: input.release.images } } : {}),
  };
}

/** The canary's settings; route options (stepRoutes) only when a configured step has one, so other plans stay as they were. */
function canarySettings(chosen: TightenedSettings['canary'], config: DeployConfig): CanarySettings {
  const stepRoutes = stepRoutesFor(config.rollout.canary.steps, chosen.steps);
  return {
    ...chosen,
    failureLimit: config.analysis.failureLimit,
    inconclusiveLimit: config.analysis.inconclusiveLimit,
    ...metricRulesField(config.analysis),
    ...(stepRoutes ? { stepRoutes } : {}),
  };
}

/**
 * The waves of the chosen services when the config orders them (dependsOn);
 * one wave, today's rollout, is left out of the plan so plans without an
 * order stay as they were.
 */
function wavesOf(all: DeployConfig['services'], chosen: DeployConfig['services']): { waves?: string[][] } {
  const order = orderWaves(all);
  if (!order.ok) throw new InputError(order.error);
  const waves = wavesFor(
    order.waves,
    chosen.map((s) => s.name),
  );
  return waves.length > 1 ? { waves } : {};
}

/** The environment's clusters in order and what happens between two, when it names its clusters. */
function clustersPlan(env: DeployConfig['environments'][string]): Pick<DeployPlan, 'clusters' | 'betweenClusters'> {
  if (!env.clusters?.length) return {};
  const b = env.betweenClusters;
  return {
    clusters: env.clusters.map((c) => c.name),
    betweenClusters: { pauseMs: b.pause, approval: b.approval, approvalTimeoutMs: b.approvalTimeout },
  };
}

/** The environment's approvals as the plan carries them (the verifier's settings stay on the worker). */
export function approvalPolicy(a: EnvironmentConfig['approvals']): ApprovalPolicy {
  return {
    verify: a.verify,
    approvers: a.approvers,
    required: a.required,
    allowSelfApproval: a.allowSelfApproval,
    maxPauseMs: a.maxPause,
  };
}

/** The newest release tag below `version`: what a rollback returns to. */
export function previousRelease(tags: readonly string[], version: string): string | undefined {
  const below = tags.filter((t) => /^v\d+\.\d+\.\d+$/.test(t)).map((t) => t.slice(1));
  const cmp = (a: string, b: string) => {
    const pa = a.split('.').map(Number);
    const pb = b.split('.').map(Number);
    return pa[0] - pb[0] || pa[1] - pb[1] || pa[2] - pb[2];
  };
  return below
    .filter((v) => cmp(v, version) < 0)
    .sort(cmp)
    .at(-1);
}
