/**
 * The deployment plan: everything a workflow decides on, computed once by the
 * resolvePlan activity (domain/planner.ts) from the worker's config and the
 * workflow input, then fixed in history. Types and tiny pure helpers only,
 * with type imports only, so the workflow bundle stays small.
 */
import type { MetricRules } from './analysis-rules';
import type { FreezeWindow } from './freeze-window';
import type { ApprovalPolicy, VerifyMode } from './identity';

export type Strategy = 'rolling' | 'canary' | 'blue-green';
export type ApprovalMode = 'none' | 'before-full' | 'every-step';

export interface PlannedService {
  name: string;
  image: string;
  context: string;
  dockerfile: string;
  deployment: string;
  container: string;
  /** registry/image:version */
  reference: string;
  /** ConfigMaps made from the release repository at the release's commit (config services[].configMaps); none: absent. */
  configMaps?: { name: string; path: string }[];
}

export interface CanarySettings {
  steps: number[];
  soakMs: number;
  analysisIntervalMs: number;
  approval: ApprovalMode;
  approvalTimeoutMs: number;
  failureLimit: number;
  inconclusiveLimit: number;
  /** Per-metric limits, interval, count and dry run (domain/analysis-rules.ts); absent: whole runs are counted. */
  metricRules?: MetricRules;
  /**
   * What each step routes beside its weight (rollout.canary.steps given as objects), index for index with
   * `steps`; `{}` for a plain weight. Absent when no step has an option, as in plans recorded before it.
   */
  stepRoutes?: StepRoute[];
}

/** A canary step's routing beside its weight: requests with a header always to the canary, a share mirrored to it. */
export interface StepRoute {
  /** Requests carrying this header with this exact value go to the canary whatever the weight. */
  header?: { name: string; value: string };
  /** Percent of the stable traffic copied to the canary (responses discarded). */
  mirror?: number;
}

/** A configured canary step: a weight, or a weight with route options (rollout.canary.steps). */
export type CanaryStepConfig = number | ({ weight: number } & StepRoute);

/** The weights of configured steps. */
export function stepWeights(steps: readonly CanaryStepConfig[]): number[] {
  return steps.map((s) => (typeof s === 'number' ? s : s.weight));
}

/**
 * The route options for `weights` (the plan's steps, the configured ones plus any the input added), taken from
 * the configured step of the same weight; undefined when no step has one, so plans without options stay as they were.
 */
export function stepRoutesFor(
  configured: readonly CanaryStepConfig[],
  weights: readonly number[],
): StepRoute[] | undefined {
  const byWeight = new Map<number, StepRoute>();
  for (const s of configured) {
    if (typeof s === 'number') continue;
    const { weight, ...route } = s;
    if (Object.keys(route).length) byWeight.set(weight, route);
  }
  if (!byWeight.size) return undefined;
  return weights.map((w) => byWeight.get(w) ?? {});
}

/** The step options each traffic provider can apply; a configured option outside its list is refused at config load. */
export const TRAFFIC_PROVIDER_OPTIONS: Readonly<Record<TrafficProviderName, readonly (keyof StepRoute)[]>> = {
  istio: [],
  'gateway-api': ['header', 'mirror'],
  nginx: ['header'],
  replicas: [],
};

/** The route options of the step at `weight` (none: a plain weight, or a plan without options). */
export function stepRouteAt(
  settings: Pick<CanarySettings, 'steps' | 'stepRoutes'>,
  weight: number,
): StepRoute | undefined {
  const route = settings.stepRoutes?.[settings.steps.indexOf(weight)];
  return route && Object.keys(route).length ? route : undefined;
}

/**
 * The traffic providers, named once: the config schema's enum, the plan's
 * type and the activities' factory (which must have one constructor per name)
 * all derive from this list, so adding a provider starts here.
 */
export const TRAFFIC_PROVIDERS = ['istio', 'gateway-api', 'nginx', 'replicas'] as const;
export type TrafficProviderName = (typeof TRAFFIC_PROVIDERS)[number];

export interface TrafficSettings {
  provider: TrafficProviderName;
  service: string;
  virtualService?: string;
  /** gateway-api: the HTTPRoute whose backend weights move (default: the service's name). */
  httpRoute?: string;
  /** nginx: the stable Ingress the canary Ingress copies (default: the service's name). */
  ingress?: string;
  stableSubset: string;
  canarySubset: string;
}

export interface DeployPlan {
  workflowId: string;
  project: string;
  environment: string;
  namespace: string;
  version: string;
  tag: string;
  /** The release commit (head of the release branch on origin when planned): tagged, built and migrated. */
  commit: string;
  /** The release commit's committer time (git %cI): where lead time for changes starts. Plans from before have none. */
  committedAt?: string;
  previousVersion?: string;
  strategy: Strategy;
  requestedBy: string;
  dryRun: boolean;
  backup: boolean;
  migrate: boolean;
  allowImageOverwrite: boolean;
  registry: string;
  services: PlannedService[];
  /**
   * Service names in the order they roll out (config dependsOn): each wave is
   * rolled out and checked before the next starts. Absent: one wave of all
   * services, as plans recorded before it and configs without an order have.
   */
  waves?: string[][];
  /**
   * The clusters of the environment in rollout order (environments.<name>.clusters): each a wave of the
   * whole service order, `betweenClusters` between two. Absent: the environment's one cluster.
   */
  clusters?: string[];
  betweenClusters?: { pauseMs: number; approval: boolean; approvalTimeoutMs: number };
  /** The cluster a child workflow (canary, blue-green) acts in; a fact of one run, one of `clusters`. */
  cluster?: string;
  canary: CanarySettings;
  blueGreen: {
    monitorMs: number;
    analysisIntervalMs: number;
    approval: boolean;
    approvalTimeoutMs: number;
    deleteAfterMs: number;
    /** The Service that shows the new colour before the switch (rollout.blueGreen.preview). */
    previewService?: string;
  };
  traffic: TrafficSettings;
  /** Who may steer it and how they prove it (the environment's approvals). */
  approvals: ApprovalPolicy;
  /** How requestedBy was verified (none: typed). */
  requestedVia: VerifyMode;
  /** Plans recorded before `approvals` (read through policyOf). */
  approvers?: string[];
  requiredApprovals?: number;
  databaseDecisionTimeoutMs: number;
  rolloutTimeoutMs: number;
  uiUrl?: string;
  taskQueue: string;
  /** Where image builds and backups run (temporal.ioTaskQueue); absent: taskQueue (and in plans recorded before it). */
  ioTaskQueue?: string;
  /** Upsert the Deploy* search attributes (the server must have them registered). */
  searchAttributes: boolean;
  /**
   * When the environment does not take deployments (environments.<name>.freeze): configured windows, and how
   * often a held deployment or canary looks again at a stopped line (deployctl freeze). Plans recorded before it have none.
   */
  freeze?: { windows: FreezeWindow[]; mode: 'wait' | 'refuse'; checkIntervalMs: number };
  /** A stage of a release: its release workflow and the images built once for every stage (no tag, no build here). */
  release?: { workflowId: string; images: Record<string, string> };
}

export type RollbackTarget =
  { kind: 'previous' } | { kind: 'revision'; revision: number } | { kind: 'version'; version: string };

/** A manual rollback, resolved by the resolveRollback activity from config and input. */
export interface RollbackPlan {
  workflowId: string;
  project: string;
  environment: string;
  namespace: string;
  services: PlannedService[];
  target: RollbackTarget;
  /** A restore was asked for: it still waits for an approval. */
  restoreDatabase: boolean;
  backupKey?: string;
  reason: string;
  requestedBy: string;
  /** Plans recorded before it have approvers (and later requiredApprovals): read through policyOf. */
  approvals?: ApprovalPolicy;
  requestedVia?: VerifyMode;
  approvers?: string[];
  /** Distinct approvers a restore needs; plans recorded before it was added have none: 1. */
  requiredApprovals?: number;
  databaseDecisionTimeoutMs: number;
  rolloutTimeoutMs: number;
  traffic: TrafficSettings;
  registry: string;
  uiUrl?: string;
  /** Where a restore runs (temporal.ioTaskQueue); absent: the deployments' task queue. */
  ioTaskQueue?: string;
  searchAttributes: boolean;
}

export interface PlanFacts {
  workflowId: string;
  /** Tags present in the release repository, for `bump` and the previous version. */
  tags: string[];
  /** Head of the release branch on origin. */
  commit: string;
}

/** Which canary steps wait for a person before traffic moves to them. */
export function needsApprovalBefore(weight: number, mode: ApprovalMode): boolean {
  return mode === 'every-step' || (mode === 'before-full' && weight === 100);
}

/** Where an image of a release lives: `registry/image:version`. */
export function imageReference(registry: string, image: string, version: string): string {
  return `${registry}/${image}:${version}`;
}

/** References the build step returned, by service name (digest-pinned where the registry gave one). */
export type BuiltReferences = Readonly<Record<string, { reference: string } | undefined>>;

/**
 * The image a service runs in this release: the digest-pinned reference the
 * build returned, else the plan's tag reference. Computed from fields every
 * recorded plan has, so plans fixed in older histories keep working.
 */
export function releaseImage(service: PlannedService, built?: BuiltReferences): string {
  return built?.[service.name]?.reference ?? service.reference;
}

/** The planned service whose traffic a canary or blue-green moves, when the plan deploys it. */
export function trafficService(plan: Pick<DeployPlan, 'services' | 'traffic'>): PlannedService | undefined {
  return plan.services.find((s) => s.name === plan.traffic.service);
}

/**
 * The traffic service's new image: `pinned` (the build's digest, handed to a
 * child workflow), else the plan's reference; a plan without the service
 * falls back to the Service's name as the image name, as it always has.
 */
export function trafficImage(
  plan: Pick<DeployPlan, 'services' | 'traffic' | 'registry' | 'version'>,
  pinned?: string,
): string {
  return pinned ?? trafficService(plan)?.reference ?? imageReference(plan.registry, plan.traffic.service, plan.version);
}

/** What the canary activities act on: one Service whose traffic moves (activities/contracts `CanaryTarget`). */
export interface TrafficTarget {
  workflowId: string;
  /** Whose cluster the traffic moves in (targets recorded before it: the default environment's). */
  environment?: string;
  /** Which of the environment's clusters (none: its first, or only, one). */
  cluster?: string;
  namespace: string;
  version: string;
  /** The Deployment (and Service) that takes traffic, e.g. api-gateway. */
  service: string;
  container: string;
  /** New image reference, digest-pinned when known. */
  image: string;
  traffic: TrafficSettings;
}

/** What the blue-green activities act on (activities/kubernetes `BlueGreenTarget`). */
export interface ColourTarget {
  workflowId: string;
  environment?: string;
  cluster?: string;
  namespace: string;
  /** The Service whose selector picks the colour. */
  service: string;
  /** The Service's own Deployment, which is blue (the activities default to the Service's name). */
  deployment?: string;
  container: string;
  image: string;
  version: string;
  /** A Service prepare points at the new colour, for its smoke checks before the switch. */
  previewService?: string;
}

/**
 * The traffic target of a release, one shape for every workflow that moves
 * traffic. `workflowId` is the workflow people signal (it labels the canary);
 * `image` as for trafficImage.
 */
export function trafficTarget(
  plan: Pick<DeployPlan, 'namespace' | 'services' | 'traffic' | 'registry' | 'version'> & {
    environment?: string;
    cluster?: string;
  },
  workflowId: string,
  image?: string,
): TrafficTarget {
  return {
    workflowId,
    ...(plan.environment ? { environment: plan.environment } : {}),
    ...(plan.cluster ? { cluster: plan.cluster } : {}),
    namespace: plan.namespace,
    version: plan.version,
    service: plan.traffic.service,
    container: trafficService(plan)?.container ?? plan.traffic.service,
    image: trafficImage(plan, image),
    traffic: plan.traffic,
  };
}

/** The same target for the blue-green activities; `deployment` names the blue Deployment when it is not the Service's name. */
export function colourTarget(target: TrafficTarget, deployment?: string): ColourTarget {
  return {
    workflowId: target.workflowId,
    ...(target.environment ? { environment: target.environment } : {}),
    ...(target.cluster ? { cluster: target.cluster } : {}),
    namespace: target.namespace,
    service: target.service,
    ...(deployment ? { deployment } : {}),
    container: target.container,
    image: target.image,
    version: target.version,
  };
}
