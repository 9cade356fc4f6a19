/** Notifications and the deployment summary. */
import type { DeployPlan } from '../../domain/plan';
import type { DeploymentStatus } from '../../domain/status';
import type { ChangeEntry } from '../../domain/summary';

export type { NotificationEvent, NotificationKind } from '../../domain/notification';

export interface NotificationResult {
  delivered: number;
  failed: number;
}

export interface SummaryRequest {
  plan: DeployPlan;
  status: DeploymentStatus;
  migrations: string[];
  backupKey?: string;
}

export interface SummaryResult {
  markdown: string;
  key?: string;
  changelogCommit?: string;
}

export interface ReleaseChangesRequest {
  version: string;
  /** The tag to compare with; by default the newest tag reachable before `ref`. */
  previousTag?: string;
  /** What is released; by default tag v<version> when it exists, else HEAD of the checkout. */
  ref?: string;
}

export interface ReleaseChanges {
  /** The previous tag, or null for a first release. */
  from: string | null;
  to: string;
  toSha: string;
  /** Oldest first, merges left out. */
  commits: Required<ChangeEntry>[];
  /** Migration files added since the previous tag (builtin migrations directory). */
  migrations: string[];
}

/** The contract's result plus where things went. */
export interface SummaryReport extends SummaryResult {
  title: string;
  stored?: { bucket: string; key: string };
  changelog?: { status: 'committed' | 'already-present'; commit: string | null; file: string };
}
