/**
 * A release: one version, tagged and built once, promoted through the stages
 * (environments) in order with the same image digests, each stage a deployment
 * of its own that does not rebuild or retag. Between stages a promotion gate:
 * a soak in the stage before with its analysis passing, and the approvals the
 * next environment requires (workflows/release.ts). Types and the pure
 * planner; the resolveRelease activity calls it with the worker's config.
 */
import type { DeployConfig } from './config';
import { environmentConfig } from './environment-config';
import type { ApprovalPolicy, VerifyMode } from './identity';
import { InputError, type CheckedReleaseInput } from './input';
import type { PlannedService } from './plan';
import { approvalPolicy, plannedService } from './planner';
import { tagOf } from './version';
import { metricRulesField, type MetricRules } from './analysis-rules';

/** What must hold before a release is promoted into a stage (environments.<name>.promotion). */
export interface PromotionRule {
  /** The stage the release soaks in first. */
  from: string;
  fromNamespace: string;
  soakMs: number;
  analysisIntervalMs: number;
  /** The stage before's analysis limits (its analysis.failureLimit / inconclusiveLimit). */
  failureLimit: number;
  inconclusiveLimit: number;
  /** The stage before's per-metric rules, when its metrics set any (domain/analysis-rules.ts). */
  metricRules?: MetricRules;
  approval: boolean;
  approvalTimeoutMs: number;
}

export interface ReleaseStage {
  environment: string;
  namespace: string;
  /** The child deployment of this stage (`<release id>-<environment>`). */
  workflowId: string;
  /** Who may steer this stage and approve the promotion into it. */
  approvals: ApprovalPolicy;
  /** How the requester was verified for this stage (each stage's verifier checks the same proof). */
  requestedVia: VerifyMode;
  /** Absent for the first stage. */
  promotion?: PromotionRule;
}

export interface ReleasePlan {
  workflowId: string;
  project: string;
  version: string;
  tag: string;
  /** The release commit: tagged, built and migrated in every stage. */
  commit: string;
  requestedBy: string;
  registry: string;
  services: PlannedService[];
  stages: ReleaseStage[];
  uiUrl?: string;
  /** Where the release's image build runs (temporal.ioTaskQueue); absent: the deployments' task queue. */
  ioTaskQueue?: string;
  searchAttributes: boolean;
}

/** The images a release's stages deploy: the build's digest-pinned references, by service. */
export type ReleaseImages = Record<string, string>;

/** What a stage's deployment is handed by its release (domain/input `release`), confirmed by the worker before it is used. */
export interface ReleaseHandover {
  workflowId: string;
  commit: string;
  images: ReleaseImages;
  requestedVia: VerifyMode;
}

/** The plan before the requester is verified for each stage. */
export type ReleaseDraft = Omit<ReleasePlan, 'requestedBy' | 'stages'> & {
  stages: Omit<ReleaseStage, 'requestedVia'>[];
};

/** The stages a release goes through: release.stages (default: every environment as written), or the input's subset in that order. */
export function releaseStages(config: DeployConfig, through?: readonly string[]): string[] {
  const configured = config.release.stages ?? Object.keys(config.environments);
  if (!through) return configured;
  const unknown = through.filter((s) => !configured.includes(s));
  if (unknown.length)
    throw new InputError(
      `through: ${unknown.join(', ')} ${unknown.length > 1 ? 'are' : 'is'} not a release stage; the stages are ${configured.join(' → ')}`,
    );
  return configured.filter((s) => through.includes(s));
}

/** The release's plan; throws InputError when the input does not fit the config. Requester fields are filled by the caller after verification. */
export function planRelease(
  config: DeployConfig,
  input: CheckedReleaseInput,
  facts: { workflowId: string; commit: string },
): ReleaseDraft {
  const names = releaseStages(config, input.through);
  const stages = names.map((environment, i) => {
    const env = config.environments[environment];
    const stage: Omit<ReleaseStage, 'requestedVia'> = {
      environment,
      namespace: env.namespace,
      workflowId: `${facts.workflowId}-${environment}`,
      approvals: approvalPolicy(env.approvals),
    };
    if (i === 0) return stage;
    const from = names[i - 1];
    const before = environmentConfig(config, from);
    return {
      ...stage,
      promotion: {
        from,
        fromNamespace: config.environments[from].namespace,
        soakMs: env.promotion.soak,
        analysisIntervalMs: env.promotion.analysisInterval,
        failureLimit: before.analysis.failureLimit,
        inconclusiveLimit: before.analysis.inconclusiveLimit,
        ...metricRulesField(before.analysis),
        approval: env.promotion.approval,
        approvalTimeoutMs: env.promotion.approvalTimeout,
      },
    };
  });
  return {
    workflowId: facts.workflowId,
    project: config.project,
    version: input.version,
    tag: tagOf(input.version),
    commit: facts.commit,
    registry: config.registry.host,
    services: config.services.map((s) => plannedService(s, config.registry.host, input.version)),
    stages,
    ...(config.temporal.uiUrl ? { uiUrl: config.temporal.uiUrl } : {}),
    ...(config.temporal.ioTaskQueue ? { ioTaskQueue: config.temporal.ioTaskQueue } : {}),
    searchAttributes: config.temporal.searchAttributes,
  };
}

/** The child deployment id of a stage; the release id plus the environment stays within the id rule's length. */
export function stageWorkflowId(releaseId: string, environment: string): string {
  return `${releaseId}-${environment}`;
}
