/** Requests and results of planning, pre-flight, checks, the release tag and image builds. */
import type { CheckedDeployInput, DeployInput } from '../../domain/input';
import type { Colour } from '../../domain/blue-green';
import type { ColourTarget, DeployPlan, PlannedService, TrafficTarget } from '../../domain/plan';
import type { HandedRecord } from '../../domain/rollback-handover';

export interface ResolvePlanRequest {
  workflowId: string;
  input: DeployInput | CheckedDeployInput;
}

export interface DeploymentPreview {
  tag: { name: string; commit: string; existsOnOrigin: boolean };
  images: { service: string; reference: string; exists: boolean }[];
  migrations: { pending: string[]; applied: number } | { error: string };
  deployments: { service: string; current: string[]; next: string }[];
  /** Service names per wave, in rollout order (previews made before waves have none). */
  waves?: string[][];
  traffic: { strategy: string; steps: number[]; soakMs: number };
  backup: { enabled: boolean; bucket: string };
  checks: string[];
}

export interface PreflightResult {
  database: { version: string; connections: Record<string, number>; latestBackup?: { key: string; ageMs: number } };
  cluster: {
    deployments: { name: string; ready: number; replicas: number; images: string[] }[];
    notReadyPods: string[];
  };
  redis: { ok: boolean; detail: string };
  problems: string[];
}

export interface ChecksRequest {
  workflowId: string;
  commit: string;
}

export interface CheckOutcome {
  name: string;
  command: string;
  durationMs: number;
}

export interface ChecksResult {
  checks: CheckOutcome[];
}

export interface TagRequest {
  workflowId: string;
  version: string;
  commit: string;
}

export interface TagResult {
  tag: string;
  commit: string;
  /** False when the tag was already on the remote at this commit (a retry or a re-run). */
  created: boolean;
}

export interface BuildImagesRequest {
  workflowId: string;
  version: string;
  commit: string;
  services: PlannedService[];
  allowOverwrite: boolean;
}

export interface BuiltImage {
  service: string;
  /** registry/image@sha256:... — what later steps deploy. */
  reference: string;
  /** registry/image:version */
  tagReference: string;
  digest: string;
  /** True when the image was already in the registry and was not rebuilt. */
  reused: boolean;
}

export type ImagesResult = Record<string, BuiltImage>;

export type ServiceProgress =
  { state: 'pending' | 'building' | 'pushing' } | { state: 'pushed' | 'reused'; digest: string };

/** What the activity heartbeats: per-service progress, read back after a retry. */
export interface ImagesProgress {
  services: Record<string, ServiceProgress>;
}

/** A plan handed to a child workflow, and the image it was told to deploy, for the worker to confirm against config. */
export interface ConfirmPlanRequest {
  plan: DeployPlan;
  /** The traffic service's image the parent handed over (digest-pinned by the build, or the plan's reference). */
  image?: string;
}

export interface PlanConfirmed {
  environment: string;
  /** How the image was confirmed: the plan's reference, or the registry's digest of the plan's version. */
  image?: 'reference' | 'digest';
}

/** What a deployment hands its automatic rollback, for the worker to confirm before anything is rolled back. */
export interface ConfirmRollbackRequest {
  plan: DeployPlan;
  records: HandedRecord[];
  canary?: TrafficTarget;
  blueGreen?: { target: ColourTarget; back: Colour };
  /** Switches in clusters before the last (an environment of several clusters). */
  earlierBlueGreen?: { target: ColourTarget; back: Colour }[];
  backupKey?: string;
}

export interface RollbackConfirmed {
  /** The records to act on: each Deployment's service container only, each image confirmed. */
  records: HandedRecord[];
}
