/** Requests and results of health, smoke, Kubernetes and platform checks and of analysis. */
import type { InEnvironment } from './scope';
import type { PlatformCheck, PodVerdict } from '../../domain/verification';
import type { MeasurementOutcome } from '../../domain/status';

export interface AnalysisRequest extends InEnvironment {
  workflowId: string;
  namespace: string;
  version: string;
  weight: number;
  tracks: ('stable' | 'canary')[];
  /** Version the stable track runs, for {{version}} in stable-track queries (canary queries use `version`). */
  stableVersion?: string;
  /** Range of the rate windows in the queries ({{window}}); defaults to config analysis.window. */
  window?: string;
  /** Only these metrics (by name), when the analysis counts per metric and some are not due; absent: all. */
  metrics?: string[];
}

export interface CheckReport {
  ok: boolean;
  /** One line per check: what passed, what failed and why. */
  lines: string[];
}

export interface KubernetesHealthRequest extends InEnvironment {
  namespace: string;
  deployments: string[];
  /** Restart counts per pod when the rollout began. */
  baselineRestarts: Record<string, number>;
  since: string;
}

export interface PlatformHealthRequest extends InEnvironment {
  /** Database connections when the rollout began: growth beyond the configured limit fails the check. */
  baselineConnections?: number;
}

export interface HealthRequest extends InEnvironment {
  workflowId: string;
  /** Another base URL than config verification.baseUrl, e.g. the new colour before the switch. */
  baseUrl?: string;
}

export interface HealthReport extends CheckReport {
  url: string;
  status: number | null;
  latencyMs: number;
  /** What came back (one line, bounded, secrets removed). */
  body?: string;
  reason?: string;
}

export interface SmokeRequest extends InEnvironment {
  workflowId: string;
  /**
   * Against the preview of the new colour (rollout.blueGreen.preview.url)
   * instead of verification.baseUrl. The URL always comes from the config:
   * the checks send credentials, so the caller never chooses where.
   */
  preview?: boolean;
}

export interface SmokeCheckResult {
  name: string;
  method: string;
  path: string;
  outcome: 'pass' | 'fail' | 'skipped';
  status: number | null;
  latencyMs: number | null;
  reason?: string;
}

export interface SmokeReport extends CheckReport {
  checks: SmokeCheckResult[];
}

export interface DeploymentHealth {
  name: string;
  found: boolean;
  pods: PodVerdict[];
  summary: string;
}

export interface KubernetesReport extends CheckReport {
  namespace: string;
  deployments: DeploymentHealth[];
  problems: string[];
  /** Visible non-failures, e.g. "logs unavailable for 4 pods: error lines not checked". */
  warnings: string[];
  logs: { checked: number; unavailable: number; errorLines: number; limit: number };
}

export interface PlatformReport extends CheckReport {
  outcome: MeasurementOutcome;
  checks: PlatformCheck[];
}

export interface PlatformBaseline {
  at: string;
  databaseConnections: number;
}
