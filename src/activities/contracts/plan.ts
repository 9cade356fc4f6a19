/** Requests and results of planning, pre-flight, checks, the release tag and image builds. */
import type { CheckedDeployInput, DeployInput } from '../../domain/input';
import type { PlannedService } from '../../domain/plan';

export interface ResolvePlanRequest {
  workflowId: string;
  input: DeployInput | CheckedDeployInput;
}

export interface DeploymentPreview {
  tag: { name: string; commit: string; existsOnOrigin: boolean };
  images: { service: string; reference: string; exists: boolean }[];
  migrations: { pending: string[]; applied: number } | { error: string };
  deployments: { service: string; current: string[]; next: string }[];
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
