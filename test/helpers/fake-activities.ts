/**
 * Typed fake activities for workflow tests: they record every call, return
 * plausible results, and can be told to fail (with a named failure type) or
 * be replaced one by one. The real adapters are tested against the sandbox
 * in test/integration.
 */
import { ApplicationFailure } from '@temporalio/common';
import type { Activities, FrozenBy, QuarantineRecord, RestoreResult } from '../../src/activities/contracts';
import type { DeployPlan, RollbackPlan } from '../../src/domain/plan';
import type { ReleasePlan } from '../../src/domain/release';
import type { AnalysisRun, MeasurementOutcome } from '../../src/domain/status';

export interface Call {
  name: keyof Activities;
  args: unknown[];
}

export interface FakeOptions {
  plan?: DeployPlan;
  /** What resolveRelease returns (its workflowId and the stages' ids follow the release's). */
  releasePlan?: ReleasePlan;
  rollbackPlan?: Partial<RollbackPlan>;
  /** The sender check (the real one in the verified-approvals tests); default: nothing verifies. */
  verifySender?: Activities['verifySender'];
  /** Outcome of each analysis run in order; the last repeats. Default: pass. */
  analysis?: MeasurementOutcome[];
  /** Activities that throw a non-retryable failure of this type. */
  fail?: Partial<Record<keyof Activities, string>>;
  /** Replacements for single activities. */
  override?: Partial<Activities>;
  /** Pending migrations reported by migrationStatus. */
  pendingMigrations?: string[];
  /** The environment's line stopped from the start (deployctl freeze); `freeze()` and `unfreeze()` change it later. */
  frozen?: FrozenBy;
  /** Who may freeze and unfreeze (the real check in the freeze tests); default: anyone, taken as typed. */
  verifyFreezer?: Activities['verifyFreezer'];
}

export function fakeActivities(opts: FakeOptions = {}) {
  const calls: Call[] = [];
  /** The quarantine store: kept in memory (the real one, on S3, is tested in test/integration/quarantine.test.ts). */
  const quarantine: QuarantineRecord[] = [];
  /** The audit ledger, in memory (the real one, on S3, is tested in test/integration/audit.test.ts). */
  const audit = new Map<string, { environment: string; seq: number; key: string; hash: string }>();
  const weights: number[] = [];
  let analysisRuns = 0;
  let frozen = opts.frozen;
  /** Every answer freezeState gave, in order: what a held deployment saw each time it looked. */
  const freezeChecks: (FrozenBy | undefined)[] = [];
  const record = (name: keyof Activities, args: unknown[]) => {
    calls.push({ name, args });
    const type = opts.fail?.[name];
    if (type) throw ApplicationFailure.create({ type, message: `${name} failed (fake)`, nonRetryable: true });
  };
  const plan = () => {
    if (!opts.plan) throw new Error('no plan given to the fake');
    return opts.plan;
  };
  const ok = (line: string) => ({ ok: true, lines: [line] });
  const base: Activities = {
    async resolvePlan(req) {
      record('resolvePlan', [req]);
      // A release's stage: the environment it names, and the release's hand-over as the real planner records it.
      const input = req.input as {
        environment?: string;
        release?: { workflowId: string; images: Record<string, string> };
      };
      return {
        ...plan(),
        workflowId: req.workflowId,
        ...(input?.release
          ? {
              environment: input.environment ?? plan().environment,
              release: { workflowId: input.release.workflowId, images: input.release.images },
            }
          : {}),
      };
    },
    async resolveRelease(req) {
      record('resolveRelease', [req]);
      if (!opts.releasePlan) throw new Error('no release plan given to the fake');
      return {
        ...opts.releasePlan,
        workflowId: req.workflowId,
        stages: opts.releasePlan.stages.map((s) => ({ ...s, workflowId: `${req.workflowId}-${s.environment}` })),
      };
    },
    async verifySender(req) {
      record('verifySender', [req]);
      return opts.verifySender ? opts.verifySender(req) : { ok: false, reason: 'this test verifies no sender' };
    },
    async previewDeployment(p) {
      record('previewDeployment', [p]);
      return {
        tag: { name: p.tag, commit: p.commit, existsOnOrigin: false },
        images: p.services.map((s) => ({ service: s.name, reference: s.reference, exists: false })),
        migrations: { pending: opts.pendingMigrations ?? [], applied: 1 },
        deployments: p.services.map((s) => ({
          service: s.name,
          current: [`${p.registry}/${s.image}:1.0.0`],
          next: s.reference,
        })),
        traffic: { strategy: p.strategy, steps: p.canary.steps, soakMs: p.canary.soakMs },
        backup: { enabled: p.backup, bucket: 'ai-saas-backups' },
        checks: ['test'],
      };
    },
    async confirmPlan(req) {
      record('confirmPlan', [req]);
      return { environment: req.plan.environment, ...(req.image ? { image: 'reference' as const } : {}) };
    },
    async confirmRollback(req) {
      record('confirmRollback', [req]);
      return { records: req.records };
    },
    async lockHolder(req) {
      record('lockHolder', [req]);
      return { workflowId: 'deploy-holder' };
    },
    // The lock's lease bookkeeping (every minute while a deployment holds it): not recorded, so call lists
    // show the deployment's own steps; the holder is open, as it is while a test's deployment runs.
    async lockHolderState() {
      return { open: true, status: 'RUNNING' };
    },
    // Whether the line is stopped: asked before every canary step, so not recorded (call lists show the
    // deployment's own steps); `freezeChecks` keeps each answer.
    async freezeState() {
      freezeChecks.push(frozen);
      return frozen ? { frozen } : {};
    },
    async verifyFreezer(req) {
      record('verifyFreezer', [req]);
      if (opts.verifyFreezer) return opts.verifyFreezer(req);
      const approvals = opts.plan?.approvals ?? { verify: 'none', approvers: [], required: 1, allowSelfApproval: true };
      return { ok: true, by: req.input.by, via: 'none', approvals };
    },
    async resolveRollback(req) {
      record('resolveRollback', [req]);
      const p = plan();
      return {
        workflowId: req.workflowId,
        project: p.project,
        environment: p.environment,
        namespace: p.namespace,
        services: p.services,
        target: req.input.toVersion
          ? { kind: 'version', version: req.input.toVersion }
          : req.input.toRevision
            ? { kind: 'revision', revision: req.input.toRevision }
            : { kind: 'previous' },
        restoreDatabase: req.input.restoreDatabase ?? false,
        ...(req.input.restoreDatabase
          ? { backupKey: req.input.backupKey ?? 'postgres/ai_saas_prod_1.0.1_1.dump' }
          : {}),
        reason: req.input.reason ?? 'manual',
        requestedBy: req.input.requestedBy ?? 'unknown',
        approvals: p.approvals,
        databaseDecisionTimeoutMs: p.databaseDecisionTimeoutMs,
        rolloutTimeoutMs: p.rolloutTimeoutMs,
        traffic: p.traffic,
        registry: p.registry,
        ...(p.ioTaskQueue ? { ioTaskQueue: p.ioTaskQueue } : {}),
        searchAttributes: false,
        ...opts.rollbackPlan,
      };
    },
    async preflight(p) {
      record('preflight', [p]);
      return {
        database: { version: 'PostgreSQL 15.18', connections: { ai_saas_prod: 3 } },
        cluster: { deployments: [], notReadyPods: [] },
        redis: { ok: true, detail: 'PONG' },
        problems: [],
      };
    },
    async runPreDeploymentChecks(req) {
      record('runPreDeploymentChecks', [req]);
      return { checks: [{ name: 'test', command: 'npm run test', durationMs: 5 }] };
    },
    async createReleaseTag(req) {
      record('createReleaseTag', [req]);
      return { tag: `v${req.version}`, commit: req.commit, created: true };
    },
    async buildImages(req) {
      record('buildImages', [req]);
      return Object.fromEntries(
        req.services.map((s) => [
          s.name,
          {
            service: s.name,
            reference: `${s.image}@sha256:${'a'.repeat(64)}`,
            tagReference: `${s.image}:${req.version}`,
            digest: `sha256:${'a'.repeat(64)}`,
            reused: false,
          },
        ]),
      );
    },
    async backupDatabase(req) {
      record('backupDatabase', [req]);
      const key = `postgres/ai_saas_prod_${req.version}_1.dump`;
      return {
        key,
        bucket: 'backups',
        database: 'ai_saas_prod',
        version: req.version,
        bytes: 1000,
        sha256: 'b'.repeat(64),
        createdAt: '2026-01-01T00:00:00.000Z',
        reused: false,
        readBack: false,
        durationMs: 5,
      };
    },
    async migrationStatus(req) {
      record('migrationStatus', [req]);
      return {
        mode: 'builtin',
        applied: ['0001_baseline.sql'],
        pending: opts.pendingMigrations ?? [],
        known: true,
        missing: [],
        outOfOrder: [],
      };
    },
    async applyMigrations(req) {
      record('applyMigrations', [req]);
      return {
        mode: 'builtin',
        applied: (opts.pendingMigrations ?? []).map((file) => ({ file, checksum: 'c'.repeat(64), durationMs: 3 })),
        alreadyApplied: 0,
        durationMs: 3,
      };
    },
    async restoreDatabase(req) {
      record('restoreDatabase', [req]);
      return fakeRestore(req.key);
    },
    async readClusterState(req) {
      record('readClusterState', [req]);
      const deployments = (req.deployments ?? []).map((name) => ({
        name,
        revision: 1,
        generation: 1,
        observedGeneration: 1,
        replicas: 2,
        readyReplicas: 2,
        updatedReplicas: 2,
        availableReplicas: 2,
        images: { [name]: `${name}:1.0.0` },
        version: '1.0.0',
        selector: { app: name },
        rolledOut: true,
        status: 'rolled out',
      }));
      return { namespace: req.namespace, deployments, pods: [], services: [], notReady: [], restartCount: 0 };
    },
    async patchImages(req) {
      record('patchImages', [req]);
      return {
        records: req.updates.map((u) => ({
          deployment: u.deployment,
          revision: 1,
          previousImages: { [u.container]: `${u.deployment}:1.0.0` },
          previousVersion: '1.0.0',
          images: { [u.container]: u.image },
          ...(u.references?.length
            ? { previousReferences: u.references.map((r) => ({ ...r, from: r.to, to: r.from })) }
            : {}),
          changed: true,
        })),
      };
    },
    async waitForRollout(req) {
      record('waitForRollout', [req]);
      return {
        deployments: req.deployments.map((deployment) => ({
          deployment,
          revision: 2,
          images: {},
          readyReplicas: 2,
          message: 'successfully rolled out',
        })),
      };
    },
    async rollbackImages(req) {
      record('rollbackImages', [req]);
      return {
        deployments: req.records.map((r) => ({
          deployment: r.deployment,
          revision: 3,
          images: r.previousImages,
          readyReplicas: 2,
          message: 'successfully rolled out',
        })),
      };
    },
    async undoRollout(req) {
      record('undoRollout', [req]);
      return {
        deployment: req.deployment,
        fromRevision: 2,
        toRevision: req.toRevision ?? 1,
        skipped: false,
        images: {},
        revision: 3,
      };
    },
    async snapshotConfiguration(req) {
      record('snapshotConfiguration', [req]);
      return { deployments: req.deployments.map((d) => ({ deployment: d.deployment, references: [] })) };
    },
    async pruneConfigSnapshots(req) {
      record('pruneConfigSnapshots', [req]);
      return { deployments: req.deployments.map((deployment) => ({ deployment, deleted: [], kept: [] })) };
    },
    async startCanary(target) {
      record('startCanary', [target]);
      return { deployment: `${target.service}-canary` };
    },
    async setCanaryWeight(req) {
      record('setCanaryWeight', [req]);
      weights.push(req.weight);
      return { weight: req.weight, observed: { stable: 100 - req.weight, canary: req.weight } };
    },
    async promoteCanary(target) {
      record('promoteCanary', [target]);
    },
    async abortCanary(target) {
      record('abortCanary', [target]);
      weights.push(0);
    },
    async prepareBlueGreen(target) {
      record('prepareBlueGreen', [target]);
      return {
        active: { colour: 'blue', deployment: target.service, replicas: 4, images: {}, version: '1.0.0' },
        target: { colour: 'green', deployment: `${target.service}-green` },
        alreadyActive: false,
      };
    },
    async switchBlueGreen(req) {
      record('switchBlueGreen', [req]);
      return { colour: req.colour, selector: { app: req.target.service, version: req.colour } };
    },
    async scaleDownOldColour(req) {
      record('scaleDownOldColour', [req]);
      return { deployment: req.target.service, previousReplicas: 4, deleteAfterMs: 3_600_000 };
    },
    async deleteOldColour(req) {
      record('deleteOldColour', [req]);
      return { deployment: req.target.service, deleted: false, reason: 'the base Deployment is kept' };
    },
    async abortBlueGreen(req) {
      record('abortBlueGreen', [req]);
      return { colour: req.colour, selector: { app: req.target.service, version: req.colour } };
    },
    async readBlueGreen(target) {
      record('readBlueGreen', [target]);
      // A Service that selects no colour: its base Deployment serves.
      return { service: target.service, selector: { app: target.service } };
    },
    async analyzeCanary(req): Promise<AnalysisRun> {
      record('analyzeCanary', [req]);
      const list = opts.analysis ?? ['pass'];
      const outcome = list[Math.min(analysisRuns, list.length - 1)];
      analysisRuns++;
      return {
        at: new Date().toISOString(),
        outcome,
        weight: req.weight,
        measurements: [
          {
            metric: 'error-rate',
            track: req.tracks[0],
            value: outcome === 'inconclusive' ? null : outcome === 'pass' ? 0.001 : 0.3,
            outcome,
            ...(outcome === 'fail'
              ? { reason: '0.3 > 0.01' }
              : outcome === 'inconclusive'
                ? { reason: 'no data' }
                : {}),
          },
        ],
      };
    },
    // The renamed analysis activity is the same fake, recorded (and failed or overridden) as analyzeCanary,
    // so the tests count analysis runs by one name whichever name a workflow's history uses.
    async runAnalysis(req) {
      return activities.analyzeCanary(req);
    },
    async checkHealth(req) {
      record('checkHealth', [req]);
      return ok('GET /health: 200 {"status":"ok"}');
    },
    async runSmokeChecks(req) {
      record('runSmokeChecks', [req]);
      return ok('sign in: 200');
    },
    async checkKubernetesHealth(req) {
      record('checkKubernetesHealth', [req]);
      return ok('all pods Ready');
    },
    async checkPlatformHealth(req) {
      record('checkPlatformHealth', [req]);
      return ok('database connections steady');
    },
    async podRestarts(req) {
      record('podRestarts', [req]);
      return {};
    },
    async platformBaseline(req) {
      record('platformBaseline', [req]);
      return { at: new Date().toISOString(), databaseConnections: 5 };
    },
    async quarantineVersion(req) {
      record('quarantineVersion', [req]);
      const found = quarantine.find((q) => q.version === req.version && q.workflowId === req.workflowId);
      if (found) return found;
      const r = { ...req, at: new Date().toISOString() };
      quarantine.push(r);
      return r;
    },
    async quarantineOf(req) {
      record('quarantineOf', [req]);
      return quarantine.find((q) => q.version === req.version && !q.lifted);
    },
    async listQuarantine() {
      record('listQuarantine', []);
      return [...quarantine];
    },
    async liftQuarantine(req) {
      record('liftQuarantine', [req]);
      const active = quarantine.filter((q) => q.version === req.version && !q.lifted);
      if (!active.length)
        throw ApplicationFailure.create({
          type: 'NotQuarantined',
          message: `version ${req.version} is not quarantined`,
          nonRetryable: true,
        });
      const at = new Date().toISOString();
      for (const q of active)
        q.lifted = { by: req.by, via: req.via, reason: req.reason, at, workflowId: req.workflowId };
      return active;
    },
    async approveQuarantineLift(req) {
      record('approveQuarantineLift', [req]);
      return activities.liftQuarantine({ ...req, via: 'none' });
    },
    async notify(event) {
      record('notify', [event]);
      return { delivered: 1, failed: 0 };
    },
    async writeSummary(req) {
      record('writeSummary', [req]);
      return { markdown: `# Deployment Summary - v${req.plan.version}`, key: `summaries/${req.plan.version}.md` };
    },
    async appendAudit(req) {
      record('appendAudit', [req]);
      // One seq per environment and (run, event), as the ledger gives it; its hash stands in for the record's.
      const id = JSON.stringify([req.environment, req.workflowId, req.runId, req.eventId]);
      const known = audit.get(id);
      if (known) return { seq: known.seq, key: known.key, hash: known.hash, appended: false };
      const seq = [...audit.values()].filter((a) => a.environment === req.environment).length + 1;
      const entry = {
        environment: req.environment,
        seq,
        key: `audit/${req.environment}/${seq}`,
        hash: `${seq}`.padStart(64, '0'),
      };
      audit.set(id, entry);
      return { seq, key: entry.key, hash: entry.hash, appended: true };
    },
  };
  const activities: Activities = { ...base };
  for (const [name, fn] of Object.entries(opts.override ?? {}) as [
    keyof Activities,
    (...a: unknown[]) => Promise<unknown>,
  ][]) {
    (activities as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
      calls.push({ name, args });
      return fn(...args);
    };
  }
  return {
    activities,
    calls,
    weights,
    quarantine,
    freezeChecks,
    /** Stops the environment's line: freezeState reports it frozen from now on. */
    freeze: (f: Omit<FrozenBy, 'via' | 'at' | 'workflowId'> & Partial<FrozenBy>) => {
      frozen = {
        via: 'none',
        at: new Date().toISOString(),
        workflowId: 'deploy-freeze-(fake)',
        ...f,
      };
    },
    /** Lets the line run again. */
    unfreeze: () => {
      frozen = undefined;
    },
    names: () => calls.map((c) => c.name),
    count: (name: keyof Activities) => calls.filter((c) => c.name === name).length,
    argsOf: <T = unknown>(name: keyof Activities) => calls.filter((c) => c.name === name).map((c) => c.args[0] as T),
  };
}

/** What restoreDatabase returns in the fakes: the key restored, with the row counts of a healthy database. */
export function fakeRestore(key: string): RestoreResult {
  return {
    key,
    database: 'ai_saas_prod',
    bytes: 1000,
    sha256: 'b'.repeat(64),
    tables: { users: 1000 },
    expectedTables: { users: 1000 },
    verified: true,
    differences: [],
    durationMs: 10,
  };
}
