/**
 * appendAudit: one record at the end of an environment's audit ledger
 * (layout and record: domain/audit.ts), idempotent by (workflow id, run id,
 * event id), safe against appenders racing for the same environment.
 *
 * Each attempt: read HEAD and check its record still has the hash HEAD
 * holds; walk on past HEAD over records an interrupted append left (their
 * links checked, their event index written); look up this event's index;
 * else create the next record with If-None-Match: * (a 412 means another
 * appender took the seq: start over), write its index, move HEAD forward
 * with If-Match (never backwards). versitygw, MinIO and S3 honour both
 * conditions (checked against the sandbox's versitygw: ten racing creates of
 * one key, one 200 and nine 412).
 *
 * An environment's HEAD is created (seq 0, naming no record) before its
 * first record, so records without a HEAD mean it was deleted: that ledger
 * is broken, and nothing is appended to it.
 *
 * The invariant that makes retries safe: HEAD names seq n only once the
 * event index of every record up to n exists. So a record of this event is
 * either named by its index or lies after HEAD, where the walk sees it.
 * Crash points:
 *   - before the record: nothing was written; the retry appends.
 *   - after the record, before its index: the record lies after HEAD (no one
 *     moves HEAD past it without writing its index); the retry's walk finds
 *     it as its own and writes the index; any other appender's walk writes
 *     the index for it.
 *   - after the index, before HEAD: the index answers the retry; HEAD lags,
 *     and this or the next append (any event) moves it.
 *   - after HEAD: the index answers.
 * The index is read after the walk, so an append that lands between the two
 * reads is seen by one of them.
 *
 * Facts pass through the worker's redactor before they are written; a chain
 * that does not verify where the append joins it is AuditLedgerBroken (not
 * retried: appending would bury the break); the store unreachable is
 * StorageUnavailable (retried).
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import {
  AUDIT_EVENT_ID,
  AUDIT_EVENT_KINDS,
  AUDIT_RUN_ID,
  canonicalJson,
  eventKey,
  GENESIS,
  headKey,
  parseAuditRecord,
  recordKey,
  type AuditAppendRequest,
  type AuditEventKind,
  type AuditHead,
  type AuditRecord,
} from '../../domain/audit';
import { dnsName } from '../../domain/config-fields';
import { ErrorType } from '../../domain/errors';
import { s3Status, storageFailure } from '../clients/s3';
import type { AuditAppendResult } from '../contracts/audit';
import { fail, invalidInput } from '../failures';
import { readHead, readRecord, readText, sha256Hex, where, type LedgerStore, type StoredRecord } from './chain';

export interface AuditLedgerDeps extends LedgerStore {
  prefix: string;
  /** The configured environments: a ledger is kept for these only (a workflow's input names any string). */
  environments?: readonly string[];
  /** audit.enabled; false: nothing is written. */
  enabled?: boolean;
  /** The worker's redactor (redactor.ts `value`): every secret it knows replaced by *** in the facts. */
  redact?: <T>(value: T) => T;
  now?: () => Date;
  /** Longest pause after losing a race for a seq (a random share of it, so racers spread out). */
  contentionDelayMs?: number;
}

const LEDGER_WORKFLOW_ID = /^[A-Za-z0-9][A-Za-z0-9.-]{0,254}$/;

/** Attempts after losing races before the activity gives up for now (retried by Temporal: StorageUnavailable). */
const MAX_ROUNDS = 50;
/** A record's facts are a summary; anything larger is a bug in what the workflow hands over. */
const MAX_FACTS_BYTES = 128 * 1024;

export function auditLedger(deps: AuditLedgerDeps) {
  const { prefix } = deps;
  const now = deps.now ?? (() => new Date());
  const redact = deps.redact ?? (<T>(v: T) => v);
  const delayMs = deps.contentionDelayMs ?? 50;
  const broken = (environment: string, message: string) =>
    fail.AuditLedgerBroken(
      `the audit ledger of ${environment} does not verify: ${message}; nothing was appended (run deployctl audit verify --env ${environment})`,
      { environment },
    );

  async function put(key: string, body: string, condition: { IfNoneMatch?: string; IfMatch?: string }) {
    await deps.s3.send(
      new PutObjectCommand({
        Bucket: deps.bucket,
        Key: key,
        Body: body,
        ContentType: 'application/json',
        ...condition,
      }),
    );
  }

  /** Creates `key` unless it exists; false when it did (someone else created it first). */
  async function create(key: string, body: string): Promise<boolean> {
    try {
      await put(key, body, { IfNoneMatch: '*' });
      return true;
    } catch (err) {
      if (isConflict(err)) return false;
      throw storageFailure(err, `writing ${where(deps, key)}`, ErrorType.ConfigInvalid);
    }
  }

  /** The event index of a record: the same bytes whoever writes it, so racing writers agree. */
  const writeIndex = (r: AuditRecord, key: string) =>
    create(
      eventKey(prefix, r.environment, r.workflowId, r.runId, r.eventId),
      canonicalJson({ seq: r.seq, key, workflowId: r.workflowId, runId: r.runId, eventId: r.eventId }),
    );

  /** HEAD forward to `to` (never back): If-Match on what was read, re-read on a conflict. */
  async function moveHead(environment: string, to: AuditHead, read: { seq: number; etag?: string; exists: boolean }) {
    let current = read;
    for (let round = 0; round < MAX_ROUNDS && current.seq < to.seq; round++) {
      try {
        await put(
          headKey(prefix, environment),
          canonicalJson(to),
          current.exists && current.etag ? { IfMatch: current.etag } : { IfNoneMatch: '*' },
        );
        return;
      } catch (err) {
        if (!isConflict(err)) throw storageFailure(err, `moving ${environment}'s HEAD`, ErrorType.ConfigInvalid);
        const again = await readHead(deps, prefix, environment);
        current = { seq: again.head?.seq ?? 0, etag: again.etag, exists: again.exists };
      }
    }
  }

  const result = (s: StoredRecord, appended: boolean): AuditAppendResult => ({
    seq: s.record.seq,
    key: s.key,
    hash: s.hash,
    appended,
  });
  const isOurs = (r: AuditRecord, req: AuditAppendRequest) =>
    r.workflowId === req.workflowId && r.runId === req.runId && r.eventId === req.eventId;

  async function appendAudit(raw: AuditAppendRequest): Promise<AuditAppendResult> {
    if (deps.enabled === false) return { seq: 0, key: '', hash: '', appended: false, disabled: true };
    const req = checked(raw);
    if (deps.environments && !deps.environments.includes(req.environment))
      throw invalidInput(
        `environment ${JSON.stringify(req.environment)} is not in the configuration (${deps.environments.join(', ')})`,
      );
    const facts = redact(req.facts);
    const { environment } = req;
    for (let round = 0; round < MAX_ROUNDS; round++) {
      // Where the chain ends as far as HEAD knows, checked against the record it names.
      const h = await readHead(deps, prefix, environment);
      if (h.exists && !h.head) throw broken(environment, `${headKey(prefix, environment)} is not a ledger head`);
      if (!h.exists) {
        // HEAD comes before the first record, so a record without it means HEAD was deleted: never append past that.
        if (await readText(deps, recordKey(prefix, environment, 1)))
          throw broken(environment, `${headKey(prefix, environment)} is missing while the ledger has records`);
        await create(headKey(prefix, environment), canonicalJson({ seq: 0, hash: GENESIS, key: '' }));
        continue;
      }
      let tail: AuditHead = h.head ?? { seq: 0, hash: GENESIS, key: '' };
      if (h.head && h.head.seq > 0) {
        const expected = recordKey(prefix, environment, h.head.seq);
        const at = h.head.key === expected ? await readRecord(deps, expected) : undefined;
        if (at?.record.seq !== h.head.seq || at.hash !== h.head.hash)
          throw broken(environment, `record ${expected} is missing or no longer has the sha256 HEAD holds`);
      }
      // Records past HEAD: an append interrupted before it moved HEAD, or one racing this one.
      let ours: StoredRecord | undefined;
      for (;;) {
        const key = recordKey(prefix, environment, tail.seq + 1);
        const got = await readText(deps, key);
        if (!got) break;
        const parsed = parseAuditRecord(got.body);
        if (!('record' in parsed)) throw broken(environment, `record ${key}: ${parsed.problem}`);
        const next = { key, hash: sha256Hex(got.body), record: parsed.record };
        if (
          next.record.seq !== tail.seq + 1 ||
          next.record.environment !== environment ||
          next.record.prev !== tail.hash
        )
          throw broken(environment, `record ${key} does not follow the record before it`);
        await writeIndex(next.record, key);
        if (isOurs(next.record, req)) ours = next;
        tail = { seq: next.record.seq, hash: next.hash, key };
      }
      const headNow = { seq: h.head?.seq ?? 0, etag: h.etag, exists: h.exists };
      const indexed = ours ?? (await fromIndex(req));
      if (indexed) {
        await moveHead(environment, tail, headNow);
        return result(indexed, false);
      }
      const record: AuditRecord = {
        v: 1,
        seq: tail.seq + 1,
        environment,
        workflowId: req.workflowId,
        runId: req.runId,
        event: req.event,
        eventId: req.eventId,
        at: req.at,
        recordedAt: now().toISOString(),
        facts,
        prev: tail.hash,
      };
      const key = recordKey(prefix, environment, record.seq);
      const body = canonicalJson(record);
      if (!(await create(key, body))) {
        // Another appender took this seq: start over from its record.
        await new Promise((resolve) => setTimeout(resolve, Math.random() * delayMs));
        continue;
      }
      await writeIndex(record, key);
      const hash = sha256Hex(body);
      await moveHead(environment, { seq: record.seq, hash, key }, headNow);
      return { seq: record.seq, key, hash, appended: true };
    }
    throw fail.StorageUnavailable(
      `the audit ledger of ${environment} is busy: ${MAX_ROUNDS} appends in a row took the next seq first`,
    );
  }

  /** The record this event's index names, checked to be this event's. */
  async function fromIndex(req: AuditAppendRequest): Promise<StoredRecord | undefined> {
    const k = eventKey(prefix, req.environment, req.workflowId, req.runId, req.eventId);
    const got = await readText(deps, k);
    if (!got) return undefined;
    let seq: unknown;
    try {
      seq = (JSON.parse(got.body) as { seq?: unknown }).seq;
    } catch {
      seq = undefined;
    }
    const named = Number.isSafeInteger(seq)
      ? await readRecord(deps, recordKey(prefix, req.environment, seq as number))
      : undefined;
    if (!named || !isOurs(named.record, req))
      throw broken(req.environment, `the event index ${k} does not name this event's record`);
    return named;
  }

  return { appendAudit };
}

/** The store refused a conditional write: the object exists already, or changed since it was read. */
function isConflict(err: unknown): boolean {
  const status = s3Status(err);
  return status === 412 || status === 409;
}

/** The request as the ledger takes it: each id within its rule (so keys stay inside the prefix), facts plain JSON. */
function checked(req: AuditAppendRequest): AuditAppendRequest {
  const r = (req ?? {}) as Partial<Record<keyof AuditAppendRequest, unknown>>;
  if (!dnsName.safeParse(r.environment).success)
    throw invalidInput(`environment: ${JSON.stringify(r.environment)} is not an environment name`);
  // The id rule's characters (keys stay inside the prefix), but up to 255: a deployment's automatic rollback is
  // named after it with a suffix, which may pass the rule's 200 characters.
  if (typeof r.workflowId !== 'string' || !LEDGER_WORKFLOW_ID.test(r.workflowId))
    throw fail.InvalidWorkflowId(
      `workflowId: ${JSON.stringify(r.workflowId)} is not a workflow id (letters, digits, "." and "-", at most 255)`,
    );
  if (typeof r.runId !== 'string' || !AUDIT_RUN_ID.test(r.runId))
    throw invalidInput(`runId: ${JSON.stringify(r.runId)} is not a run id`);
  if (!AUDIT_EVENT_KINDS.includes(r.event as AuditEventKind))
    throw invalidInput(`event: ${JSON.stringify(r.event)} is not one of ${AUDIT_EVENT_KINDS.join(', ')}`);
  if (typeof r.eventId !== 'string' || !AUDIT_EVENT_ID.test(r.eventId))
    throw invalidInput(`eventId: ${JSON.stringify(r.eventId)} is not an event id (a-z, 0-9, ".", "-")`);
  if (typeof r.at !== 'string' || Number.isNaN(Date.parse(r.at)))
    throw invalidInput(`at: ${JSON.stringify(r.at)} is not an ISO time`);
  if (!r.facts || typeof r.facts !== 'object' || Array.isArray(r.facts)) throw invalidInput('facts: a JSON object');
  let size: number;
  try {
    size = Buffer.byteLength(canonicalJson(r.facts));
  } catch (err) {
    throw invalidInput(`facts: ${(err as Error).message}`);
  }
  if (size > MAX_FACTS_BYTES) throw invalidInput(`facts: ${size} bytes, more than ${MAX_FACTS_BYTES}`);
  return req;
}
