/**
 * The audit ledger (issue 23 item 4): per environment, an append-only chain
 * of records in the object store, one per finished deployment, rollback,
 * release stage, approval, freeze and unfreeze. Each record holds the sha256
 * of the record before it (`prev`), and `HEAD.json` holds the sha256 of the
 * last one, so an edited, deleted or reordered object breaks the chain where
 * it happened and `deployctl audit verify` names it.
 *
 * Pure and free of Node built-ins and of zod: the workflows import the types
 * and the fact builders (audit-facts.ts), so hashing is handed in by the
 * caller (activities/audit/chain.ts) and shapes are checked by hand.
 *
 * Layout under `<prefix><environment>/`:
 *   0000000001.json ...   the records, by seq (10 digits, so a listing is in chain order)
 *   HEAD.json             {seq, hash, key} of the last record
 *   events/<workflowId>/<runId>/<eventId>.json   {seq, key}: what makes an append idempotent
 */
import type { VerifyMode } from './identity';
import type { DeploymentTimeline } from './status';

export type AuditEventKind = 'deployment' | 'rollback' | 'release-stage' | 'approval' | 'freeze' | 'unfreeze';
export const AUDIT_EVENT_KINDS: readonly AuditEventKind[] = [
  'deployment',
  'rollback',
  'release-stage',
  'approval',
  'freeze',
  'unfreeze',
];

/** A person in a record: who, when, how verified (`none`: taken as typed) and with which key or issuer. */
export interface AuditPerson {
  by: string;
  at: string;
  via: VerifyMode;
  /** The SSH key's type and fingerprint, or the OIDC issuer (audit-facts.ts verifiedWith): public, never a token. */
  verifiedWith?: string;
  gate?: string;
  note?: string;
  reason?: string;
}

export interface AuditPlanSummary {
  project: string;
  version: string;
  previousVersion?: string;
  environment: string;
  strategy: string;
  /** The release commit (a rollback has none: it returns to what ran before). */
  commit?: string;
  tag?: string;
  services: string[];
  clusters?: string[];
  dryRun?: boolean;
  /** A release's stage: the release workflow. */
  release?: string;
}

export interface AuditMeasurement {
  metric: string;
  track: string;
  value: number | null;
  threshold?: string;
  outcome: string;
  reason?: string;
  error?: boolean;
  dryRun?: boolean;
}

/** The last analysis run: the evidence a deployment or promotion was judged on. */
export interface AuditAnalysis {
  at: string;
  outcome: string;
  weight?: number;
  measurements: AuditMeasurement[];
}

/** What happened, as plain JSON: every field optional, each event fills what it knows. */
export interface AuditFacts {
  requestedBy?: string;
  requestedVia?: VerifyMode;
  requestedWith?: string;
  approvals?: AuditPerson[];
  aborts?: AuditPerson[];
  plan?: AuditPlanSummary;
  /** Image references by service, digest-pinned where the build or the release gave one. */
  images?: Record<string, string>;
  /** ConfigMaps and Secrets a rollout moved to snapshots: names and content hashes, never values. */
  configuration?: { deployment: string; kind: string; to: string; hash?: string; cluster?: string }[];
  migrations?: string[];
  backupKey?: string;
  analysis?: AuditAnalysis;
  rollback?: {
    target?: string;
    workloads: string;
    database: string;
    restore?: { key: string; verified: boolean; differences: string[] };
    attention?: string;
  };
  stage?: { release: string; environment: string; deployment: string; state: string };
  timeline?: DeploymentTimeline;
  outcome?: string;
  reason?: string;
  error?: string;
}

/** What a workflow asks the appendAudit activity to record. */
export interface AuditAppendRequest {
  environment: string;
  workflowId: string;
  /**
   * The workflow's first run id (workflowInfo().firstExecutionRunId): a workflow id can be used again once
   * its run closed (deploy-production-1.0.1 re-run after a failure; a freeze's reserved id), and each run's
   * events are their own.
   */
  runId: string;
  event: AuditEventKind;
  /** Unique within the run, e.g. 'deployment', 'approval-1', 'stage-staging': a retry with the same id appends nothing. */
  eventId: string;
  /** Workflow time of the event (ISO). */
  at: string;
  facts: AuditFacts;
}

/** One stored record. Its hash is the sha256 of the object's bytes, which the writer makes canonicalJson(record). */
export interface AuditRecord {
  v: 1;
  seq: number;
  environment: string;
  workflowId: string;
  runId: string;
  event: AuditEventKind;
  eventId: string;
  at: string;
  /** The worker's clock when the record was written. */
  recordedAt: string;
  facts: AuditFacts;
  /** sha256 (hex) of the previous record's bytes; GENESIS for seq 1. */
  prev: string;
}

export interface AuditHead {
  seq: number;
  hash: string;
  key: string;
}

/** The `prev` of the first record. */
export const GENESIS = '0'.repeat(64);
const SEQ_DIGITS = 10;
const HEX64 = /^[0-9a-f]{64}$/;
export const AUDIT_EVENT_ID = /^[a-z0-9][a-z0-9.-]{0,99}$/;
export const AUDIT_RUN_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

/**
 * JSON with object keys sorted (by UTF-16 code unit, as Array.prototype.sort
 * does), no whitespace, undefined members left out and non-finite numbers as
 * null (as JSON.stringify does): the same value always gives the same bytes,
 * and parsing them back gives a value that serialises to the same bytes.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      const o = value as Record<string, unknown> & { toJSON?: () => unknown };
      if (typeof o.toJSON === 'function') return canonicalJson(o.toJSON());
      if (Array.isArray(value)) return `[${value.map((v) => (isAbsent(v) ? 'null' : canonicalJson(v))).join(',')}]`;
      const keys = Object.keys(o)
        .filter((k) => !isAbsent(o[k]))
        .sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
    }
    default:
      throw new TypeError(`${typeof value} is not JSON`);
  }
}

const isAbsent = (v: unknown) => v === undefined || typeof v === 'function' || typeof v === 'symbol';

/** `<prefix><environment>/`: one environment's ledger. */
export function ledgerBase(prefix: string, environment: string): string {
  return `${prefix}${environment}/`;
}

export function recordKey(prefix: string, environment: string, seq: number): string {
  return `${ledgerBase(prefix, environment)}${String(seq).padStart(SEQ_DIGITS, '0')}.json`;
}

export function headKey(prefix: string, environment: string): string {
  return `${ledgerBase(prefix, environment)}HEAD.json`;
}

/** Where the seq of one event is kept: its idempotency key, and what `audit show <workflowId>` lists. */
export function eventKey(prefix: string, environment: string, workflowId: string, runId: string, eventId: string) {
  return `${eventsBase(prefix, environment)}${workflowId}/${runId}/${eventId}.json`;
}

export function eventsBase(prefix: string, environment: string): string {
  return `${ledgerBase(prefix, environment)}events/`;
}

/** The seq a record key names, or undefined for any other key. */
export function seqOfKey(prefix: string, environment: string, key: string): number | undefined {
  const base = ledgerBase(prefix, environment);
  if (!key.startsWith(base)) return undefined;
  const m = /^(\d{10})\.json$/.exec(key.slice(base.length));
  const seq = m ? Number(m[1]) : 0;
  return seq >= 1 ? seq : undefined;
}

const isPlain = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const str = (v: unknown, max = 1000) => typeof v === 'string' && v.length > 0 && v.length <= max;

/** A record parsed from an object's body, or what is wrong with it (one line). */
export function parseAuditRecord(body: string): { record: AuditRecord } | { problem: string } {
  let v: unknown;
  try {
    v = JSON.parse(body);
  } catch {
    return { problem: 'its body is not JSON' };
  }
  if (!isPlain(v)) return { problem: 'its body is not a JSON object' };
  if (v.v !== 1) return { problem: `unknown record version ${JSON.stringify(v.v)}` };
  if (!Number.isSafeInteger(v.seq) || (v.seq as number) < 1) return { problem: 'its seq is not a positive integer' };
  for (const field of ['environment', 'workflowId', 'runId', 'eventId', 'at', 'recordedAt'] as const)
    if (!str(v[field])) return { problem: `its ${field} is missing` };
  if (!AUDIT_EVENT_KINDS.includes(v.event as AuditEventKind)) return { problem: 'its event is not an audit event' };
  if (!isPlain(v.facts)) return { problem: 'its facts are not an object' };
  if (typeof v.prev !== 'string' || !HEX64.test(v.prev)) return { problem: 'its prev is not a sha256' };
  return { record: v as unknown as AuditRecord };
}

export function parseAuditHead(body: string): AuditHead | undefined {
  try {
    const v: unknown = JSON.parse(body);
    if (!isPlain(v) || !Number.isSafeInteger(v.seq) || (v.seq as number) < 0) return undefined;
    // The head an environment's ledger starts with, written before its first record: names no record.
    if (v.seq === 0) return v.key === '' && v.hash === GENESIS ? { seq: 0, hash: GENESIS, key: '' } : undefined;
    if (typeof v.key === 'string' && typeof v.hash === 'string' && HEX64.test(v.hash))
      return { seq: v.seq as number, hash: v.hash, key: v.key };
  } catch {
    // reported as unreadable below
  }
  return undefined;
}

export type ChainProblem = 'missing' | 'changed' | 'unreadable' | 'misplaced';

/** What verifying one environment's ledger found: intact, or the first break, naming the object. */
export interface ChainReport {
  environment: string;
  /** Records that verified (before the break, if any). */
  records: number;
  ok: boolean;
  /** The last record (an intact ledger that has one). */
  tail?: AuditHead;
  /** Records after the one HEAD names: an append was interrupted before it moved HEAD; the next append moves it. */
  unanchored: number;
  break?: { key: string; problem: ChainProblem; message: string };
  /** Objects under the environment's prefix that are no part of the ledger: left out, listed for a person to look at. */
  foreign: string[];
}

/** One environment's objects as listed: key and body (undefined: it vanished between the listing and the read). */
export interface LedgerObjects {
  prefix: string;
  environment: string;
  objects: { key: string; body: string | undefined }[];
}

/** Whether verifyChain reads this object's body (records and HEAD; the event index is not part of the chain). */
export function isChainKey(prefix: string, environment: string, key: string): boolean {
  return key === headKey(prefix, environment) || seqOfKey(prefix, environment, key) !== undefined;
}

type Slot = { key: string; record: AuditRecord; hash: string } | { key: string; problem: ChainProblem; why: string };

/**
 * Walks one environment's chain from seq 1 and reports the first break. An
 * edit of record k changes its sha256, so it shows as record k+1's `prev` (or
 * HEAD's hash) no longer matching; an edit of k's own `prev` also breaks the
 * link before it. The object named is the one whose change explains what is
 * seen: when both links of record k are broken, k; when only the link after
 * k-1, k-1. `sha256` hashes a body's UTF-8 bytes (hex).
 */
export function verifyChain(listing: LedgerObjects, sha256: (text: string) => string): ChainReport {
  const { prefix, environment } = listing;
  const hKey = headKey(prefix, environment);
  const events = eventsBase(prefix, environment);
  const found = new Map<number, { key: string; body: string | undefined }>();
  const foreign: string[] = [];
  let head: { body: string | undefined } | undefined;
  for (const o of listing.objects) {
    const seq = seqOfKey(prefix, environment, o.key);
    if (o.key === hKey) head = o;
    else if (seq !== undefined) found.set(seq, o);
    else if (!o.key.startsWith(events)) foreign.push(o.key);
  }
  const report = (records: number, rest: Partial<ChainReport>): ChainReport => ({
    environment,
    records,
    ok: !rest.break,
    unanchored: 0,
    foreign,
    ...rest,
  });
  const broken = (records: number, key: string, problem: ChainProblem, message: string) =>
    report(records, { break: { key, problem, message } });

  // A loop, not Math.max(...keys): a ledger of 100k records would overflow the argument list.
  let last = 0;
  for (const seq of found.keys()) if (seq > last) last = seq;
  const slots: Slot[] = [];
  for (let seq = 1; seq <= last + 1; seq++) slots[seq] = slotOf(seq);
  function slotOf(seq: number): Slot {
    const key = recordKey(prefix, environment, seq);
    const o = found.get(seq);
    if (!o || o.body === undefined) return { key, problem: 'missing', why: 'it is missing (deleted)' };
    const parsed = parseAuditRecord(o.body);
    if ('problem' in parsed) return { key, problem: 'unreadable', why: `it is not an audit record: ${parsed.problem}` };
    const r = parsed.record;
    if (r.seq !== seq || r.environment !== environment)
      return {
        key,
        problem: 'misplaced',
        why: `it holds seq ${r.seq} of ${JSON.stringify(r.environment)}: moved, or another record copied over it`,
      };
    return { key, record: r, hash: sha256(o.body) };
  }

  const parsedHead = head?.body === undefined ? undefined : parseAuditHead(head.body);
  /** Whether the link after `seq` (the next record's prev, or HEAD) says seq's hash is not `hash`. */
  const nextLinkBroken = (seq: number, hash: string): boolean => {
    const next = slots[seq + 1];
    if (next && 'record' in next) return next.record.prev !== hash;
    return parsedHead?.seq === seq && parsedHead.hash !== hash;
  };

  for (let seq = 1; seq <= last; seq++) {
    const s = slots[seq];
    if (!('record' in s)) return broken(seq - 1, s.key, s.problem, `record ${s.key}: ${s.why}`);
    const before = seq === 1 ? undefined : (slots[seq - 1] as Extract<Slot, { record: AuditRecord }>);
    const expected = before ? before.hash : GENESIS;
    if (s.record.prev === expected) continue;
    if (!before)
      return broken(0, s.key, 'changed', `record ${s.key} was changed: its prev is not the start of a chain`);
    if (nextLinkBroken(seq, s.hash))
      return broken(
        seq - 1,
        s.key,
        'changed',
        `record ${s.key} was changed: its prev no longer matches the sha256 of ${before.key}, and its own sha256 no longer matches the link after it`,
      );
    return broken(
      seq - 2,
      before.key,
      'changed',
      `record ${before.key} was changed: its sha256 no longer matches the prev of ${s.key}`,
    );
  }

  if (!head) {
    if (last === 0) return report(0, {});
    // HEAD is written before the first record, so records without it mean it was deleted.
    return broken(last, hKey, 'missing', `${hKey} is missing: it was deleted (the ledger's records remain)`);
  }
  if (!parsedHead || (parsedHead.seq > 0 && parsedHead.key !== recordKey(prefix, environment, parsedHead.seq)))
    return broken(last, hKey, 'unreadable', `${hKey} is not a ledger head: it was changed`);
  if (parsedHead.seq === 0) {
    // The first append was interrupted after its record, before it moved HEAD: the next append moves it.
    const tail = last ? (slots[last] as Extract<Slot, { record: AuditRecord }>) : undefined;
    return report(last, { ...(tail ? { tail: { seq: last, hash: tail.hash, key: tail.key } } : {}), unanchored: last });
  }
  if (parsedHead.seq > last) {
    const key = recordKey(prefix, environment, last + 1);
    return broken(
      last,
      key,
      'missing',
      `record ${key} is missing: ${hKey} names seq ${parsedHead.seq} as the last record (deleted, or HEAD was changed)`,
    );
  }
  const anchored = slots[parsedHead.seq] as Extract<Slot, { record: AuditRecord }>;
  if (anchored.hash !== parsedHead.hash)
    return broken(
      parsedHead.seq - 1,
      anchored.key,
      'changed',
      `record ${anchored.key} was changed: its sha256 no longer matches ${hKey} (or HEAD was changed)`,
    );
  const tail = slots[last] as Extract<Slot, { record: AuditRecord }>;
  return report(last, { tail: { seq: last, hash: tail.hash, key: tail.key }, unanchored: last - parsedHead.seq });
}
