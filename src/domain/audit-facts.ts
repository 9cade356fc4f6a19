/**
 * What each audited event records (domain/audit.ts AuditFacts), built from
 * what the workflows already hold: the plan, the status, a rollback's result,
 * a signal's record. Pure and deterministic (the workflows call these), and
 * compact: names, digests and outcomes, the last analysis only, no logs.
 *
 * A sender's `credential` is never copied as it is. The verifiers put there
 * the SSH key's type and fingerprint ("ED25519 SHA256:…", identity/ssh.ts)
 * or the token's issuer ("issuer https://…", identity/oidc.ts): public
 * values, a hash of a public key in allowed_signers and a URL, that let no
 * one sign or sign in, and are exactly what an auditor needs to know which
 * key or issuer vouched for a person. So they are kept, as `verifiedWith`,
 * but only when they have one of those two shapes: anything else (a token or
 * a signature a future verifier might put there) is dropped, never recorded.
 */
import type { AuditAnalysis, AuditFacts, AuditPerson, AuditPlanSummary } from './audit';
import type { VerifyMode } from './identity';
import type { DeployPlan, RollbackPlan, RollbackTarget } from './plan';
import type { ReleasePlan } from './release';
import type { AnalysisRun, DeploymentStatus, SignalRecord, StageStatus } from './status';

const SSH_FINGERPRINT = /^[A-Z][A-Z0-9-]{1,19} SHA256:[A-Za-z0-9+/]{43}=?$/;
const OIDC_ISSUER = /^issuer https?:\/\/[^\s]{1,500}$/;
/** Longest note or reason kept; people's texts are capped on the way in too, this keeps a record small. */
const MAX_TEXT = 1000;

/** The public part of a sender's proof, or undefined (see the top of this file). */
export function verifiedWith(credential: string | undefined): string | undefined {
  if (credential === undefined) return undefined;
  return SSH_FINGERPRINT.test(credential) || OIDC_ISSUER.test(credential) ? credential : undefined;
}

const cut = (text: string | undefined) =>
  text === undefined ? undefined : text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 1)}…` : text;

/** A signal's sender as the ledger records them. */
export function auditPerson(r: SignalRecord, gate?: string): AuditPerson {
  return {
    by: r.by,
    at: r.at,
    via: r.via ?? 'none',
    ...opt('verifiedWith', verifiedWith(r.credential)),
    ...opt('gate', gate),
    ...opt('note', cut(r.note)),
    ...opt('reason', cut(r.reason)),
  };
}

/** The last analysis as evidence: each measurement's value against its threshold and verdict. */
export function auditAnalysis(run: AnalysisRun | undefined): AuditAnalysis | undefined {
  if (!run) return undefined;
  return {
    at: run.at,
    outcome: run.outcome,
    ...opt('weight', run.weight),
    measurements: run.measurements.map((m) => ({
      metric: m.metric,
      track: m.track,
      value: m.value,
      outcome: m.outcome,
      ...opt('threshold', m.threshold),
      ...opt('reason', cut(m.reason)),
      ...(m.error ? { error: true } : {}),
      ...(m.dryRun ? { dryRun: true } : {}),
    })),
  };
}

function planSummary(plan: DeployPlan): AuditPlanSummary {
  return {
    project: plan.project,
    version: plan.version,
    ...opt('previousVersion', plan.previousVersion),
    environment: plan.environment,
    strategy: plan.strategy,
    commit: plan.commit,
    tag: plan.tag,
    services: plan.services.map((s) => s.name),
    ...opt('clusters', plan.clusters),
    ...(plan.dryRun ? { dryRun: true } : {}),
    ...opt('release', plan.release?.workflowId),
  };
}

/** What the status knows of people and evidence, shared by deployments and rollbacks. */
function fromStatus(status: DeploymentStatus): AuditFacts {
  return {
    ...(status.approvals.length ? { approvals: status.approvals.map((a) => auditPerson(a)) } : {}),
    ...(status.aborts.length ? { aborts: status.aborts.map((a) => auditPerson(a)) } : {}),
    ...opt('analysis', auditAnalysis(status.lastAnalysis)),
    ...(status.configuration?.length
      ? {
          configuration: status.configuration.map((c) => ({
            deployment: c.deployment,
            kind: c.kind,
            to: c.to,
            // A Secret's sha256 would let whoever reads the ledger test guesses of its value offline.
            ...(c.kind === 'Secret' ? {} : { hash: c.hash }),
            ...opt('cluster', c.cluster),
          })),
        }
      : {}),
    ...opt('timeline', status.timeline),
    ...opt('error', cut(status.error)),
  };
}

/**
 * A finished deployment: who asked and how that was verified, who approved,
 * the plan, the images (the build's digests: `extra.images`, else a release's,
 * else the plan's tag references), migrations, backup, the last analysis and
 * the outcome.
 */
export function deploymentFacts(
  plan: DeployPlan,
  status: DeploymentStatus,
  outcome: string,
  reason?: string,
  extra: { images?: Record<string, string>; migrations?: string[]; backupKey?: string } = {},
): AuditFacts {
  const images =
    extra.images ??
    plan.release?.images ??
    status.release?.images ??
    Object.fromEntries(plan.services.map((s) => [s.name, s.reference]));
  return {
    requestedBy: plan.requestedBy,
    requestedVia: plan.requestedVia,
    plan: planSummary(plan),
    images,
    ...(extra.migrations ? { migrations: extra.migrations } : {}),
    ...opt('backupKey', extra.backupKey),
    ...fromStatus(status),
    outcome,
    ...opt('reason', cut(reason ?? status.error)),
  };
}

/** What a rollback returns, as the ledger needs it (workflows/rollback-outcome.ts RollbackResult has these fields). */
export interface RollbackSummary {
  outcome: string;
  workloads: string;
  database: string;
  reason?: string;
  restore?: { key: string; verified: boolean; differences: string[] };
  attention?: string;
}

function targetText(t: RollbackTarget): string {
  if (t.kind === 'revision') return `revision ${t.revision}`;
  if (t.kind === 'version') return `version ${t.version}`;
  return 'previous';
}

/** A rollback, manual (its plan says who asked and what to) or a deployment's automatic one (no plan). */
export function rollbackFacts(status: DeploymentStatus, result: RollbackSummary, plan?: RollbackPlan): AuditFacts {
  return {
    requestedBy: plan?.requestedBy ?? status.requestedBy,
    ...opt('requestedVia', plan?.requestedVia),
    ...(plan ? { plan: rollbackPlanSummary(plan, status) } : {}),
    rollback: {
      ...opt('target', plan ? targetText(plan.target) : undefined),
      workloads: result.workloads,
      database: result.database,
      ...opt('restore', result.restore),
      ...opt('attention', cut(result.attention)),
    },
    ...opt('backupKey', result.restore?.key ?? plan?.backupKey),
    ...fromStatus(status),
    outcome: result.outcome,
    ...opt('reason', cut(result.reason ?? plan?.reason)),
  };
}

function rollbackPlanSummary(plan: RollbackPlan, status: DeploymentStatus): AuditPlanSummary {
  return {
    project: plan.project,
    version: status.version,
    environment: plan.environment,
    strategy: 'rollback',
    services: plan.services.map((s) => s.name),
  };
}

/** One stage of a release, as it ended: its deployment, the images every stage deploys, and its state. */
export function releaseStageFacts(
  release: Pick<ReleasePlan, 'workflowId' | 'project' | 'version' | 'commit' | 'requestedBy'>,
  stage: StageStatus,
  images: Record<string, string>,
  extra: { requestedVia?: VerifyMode; approvals?: SignalRecord[] } = {},
): AuditFacts {
  return {
    requestedBy: release.requestedBy,
    ...opt('requestedVia', extra.requestedVia),
    ...(extra.approvals?.length ? { approvals: extra.approvals.map((a) => auditPerson(a)) } : {}),
    stage: {
      release: release.workflowId,
      environment: stage.environment,
      deployment: stage.workflowId,
      state: stage.state,
    },
    images,
    outcome: stage.state,
    ...opt('reason', cut(stage.reason)),
  };
}

/** One approval as it was accepted at a gate: who, verified how, for which gate. */
export function approvalFacts(record: SignalRecord, gate?: string): AuditFacts {
  return {
    approvals: [auditPerson(record, gate)],
    outcome: record.signal === 'approve' ? 'approved' : record.signal,
  };
}

/** A freeze or an unfreeze of an environment's line (deployctl freeze): who, verified how, and why. */
export function freezeFacts(
  record: { by: string; reason: string; via?: VerifyMode; credential?: string },
  outcome: 'frozen' | 'unfrozen' = 'frozen',
): AuditFacts {
  return {
    requestedBy: record.by,
    requestedVia: record.via ?? 'none',
    ...opt('requestedWith', verifiedWith(record.credential)),
    outcome,
    reason: cut(record.reason) ?? '',
  };
}

/** `{[name]: value}` when value is defined, else nothing: keeps absent fields out of the record. */
function opt<K extends string, V>(name: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [name]: value }) as { [P in K]?: V };
}
