/**
 * Reading the audit ledger from the object store, for the appender
 * (ledger.ts) and deployctl (cli/commands/audit.ts): sha256 of a record's
 * bytes (the one place the ledger hashes; the domain is handed this
 * function), objects read as text, one environment's objects for
 * verifyChain, the environments under the prefix, a workflow's records.
 */
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import {
  eventsBase,
  headKey,
  isChainKey,
  ledgerBase,
  parseAuditHead,
  parseAuditRecord,
  recordKey,
  verifyChain,
  type AuditHead,
  type AuditRecord,
  type ChainReport,
  type LedgerObjects,
} from '../../domain/audit';
import { ErrorType } from '../../domain/errors';
import { s3Status, storageFailure } from '../clients/s3';

/** The object store and bucket a ledger lives in. */
export interface LedgerStore {
  s3: S3Client;
  bucket: string;
}

/** Bodies read at once. */
const READ_CONCURRENCY = 8;

/** sha256 (hex) of a text's UTF-8 bytes: a record's hash is that of its body as stored. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export const where = (store: LedgerStore, key: string) => `s3://${store.bucket}/${key}`;

/** An object's text and ETag, or undefined when there is no such object. */
export async function readText(store: LedgerStore, key: string): Promise<{ body: string; etag?: string } | undefined> {
  try {
    const got = await store.s3.send(new GetObjectCommand({ Bucket: store.bucket, Key: key }));
    return { body: (await got.Body?.transformToString('utf8')) ?? '', etag: got.ETag };
  } catch (err) {
    if (s3Status(err) === 404 && (err as { name?: string }).name !== 'NoSuchBucket') return undefined;
    throw storageFailure(err, `reading ${where(store, key)}`, ErrorType.ConfigInvalid);
  }
}

/** Every key under `prefix`, or with a delimiter the common prefixes just below it. */
export async function listKeys(store: LedgerStore, prefix: string, o: { delimiter?: string } = {}): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  try {
    do {
      const page = await store.s3.send(
        new ListObjectsV2Command({
          Bucket: store.bucket,
          Prefix: prefix,
          ContinuationToken: token,
          ...(o.delimiter ? { Delimiter: o.delimiter } : {}),
        }),
      );
      const found = o.delimiter
        ? (page.CommonPrefixes ?? []).map((p) => p.Prefix)
        : (page.Contents ?? []).map((c) => c.Key);
      for (const k of found) if (k) keys.push(k);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  } catch (err) {
    throw storageFailure(err, `listing ${where(store, prefix)}`, ErrorType.ConfigInvalid);
  }
  return keys;
}

async function inBatches<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += READ_CONCURRENCY)
    out.push(...(await Promise.all(items.slice(i, i + READ_CONCURRENCY).map(fn))));
  return out;
}

/** The environments that have a ledger under `prefix`, sorted. */
export async function ledgerEnvironments(store: LedgerStore, prefix: string): Promise<string[]> {
  const below = await listKeys(store, prefix, { delimiter: '/' });
  return below.map((p) => p.slice(prefix.length, -1)).sort();
}

/** One environment's objects: every key under its prefix, with the bodies of the records and HEAD. */
export async function readLedger(store: LedgerStore, prefix: string, environment: string): Promise<LedgerObjects> {
  const keys = await listKeys(store, ledgerBase(prefix, environment));
  const index = eventsBase(prefix, environment);
  const objects = await inBatches(
    keys.filter((k) => !k.startsWith(index)),
    async (key) => ({
      key,
      body: isChainKey(prefix, environment, key) ? (await readText(store, key))?.body : undefined,
    }),
  );
  return { prefix, environment, objects };
}

/** Walks one environment's chain (domain/audit.ts verifyChain). */
export async function verifyLedger(store: LedgerStore, prefix: string, environment: string): Promise<ChainReport> {
  return verifyChain(await readLedger(store, prefix, environment), sha256Hex);
}

export interface StoredRecord {
  key: string;
  hash: string;
  record: AuditRecord;
}

/** The record at `key`, with its hash; undefined when missing or not a record (verify says which). */
export async function readRecord(store: LedgerStore, key: string): Promise<StoredRecord | undefined> {
  const got = await readText(store, key);
  if (!got) return undefined;
  const parsed = parseAuditRecord(got.body);
  return 'record' in parsed ? { key, hash: sha256Hex(got.body), record: parsed.record } : undefined;
}

export async function readHead(
  store: LedgerStore,
  prefix: string,
  environment: string,
): Promise<{ head?: AuditHead; etag?: string; exists: boolean }> {
  const got = await readText(store, headKey(prefix, environment));
  if (!got) return { exists: false };
  return { head: parseAuditHead(got.body), etag: got.etag, exists: true };
}

/**
 * A workflow's records in one environment, in seq order: those its event
 * index names, and any after HEAD (an append interrupted before its index).
 */
export async function workflowRecords(
  store: LedgerStore,
  prefix: string,
  environment: string,
  workflowId: string,
): Promise<StoredRecord[]> {
  const indexes = await listKeys(store, `${eventsBase(prefix, environment)}${workflowId}/`);
  const seqs = new Set<number>();
  for (const got of await inBatches(indexes, (k) => readText(store, k))) {
    try {
      const seq = (JSON.parse(got?.body ?? 'null') as { seq?: unknown } | null)?.seq;
      if (typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 1) seqs.add(seq);
    } catch {
      // An index that is not JSON names nothing; verify reads the records themselves.
    }
  }
  // Records after HEAD have no index yet when their append was interrupted: found by walking on from HEAD.
  const { head } = await readHead(store, prefix, environment);
  for (let seq = (head?.seq ?? 0) + 1; ; seq++) {
    const r = await readRecord(store, recordKey(prefix, environment, seq));
    if (!r) break;
    seqs.add(seq);
  }
  const records = await inBatches([...seqs], (seq) => readRecord(store, recordKey(prefix, environment, seq)));
  return records
    .filter((r): r is StoredRecord => r?.record.workflowId === workflowId)
    .sort((a, b) => a.record.seq - b.record.seq);
}
