/**
 * The quarantine of versions. A version rolled back, or that failed
 * verification, in any environment is quarantined: promoting it and rolling
 * back to it are refused, with the reason and the workflow that quarantined
 * it, until an approver lifts the quarantine.
 *
 * The records live in the backup bucket (config.backup.bucket), one JSON
 * object per quarantine at `<prefix><version>/<workflowId>.json`, so the
 * workers of every environment read the same list, and a quarantine is keyed
 * by business ids (design §3.11): a retry finds the first write and returns
 * it. A lift is written into the records it lifts (who, verified how, why,
 * when, from which workflow); nothing is deleted, so the list is also the
 * history. Keys are made of a checked version (domain/version.ts) and a
 * checked workflow id (domain/workflow-id.ts) only, so none leaves the prefix.
 *
 * Writes are conditional where the store honours it (If-None-Match on a new
 * record, If-Match on a lift), so two attempts racing each other keep the
 * first record and never lose a lift. A record that cannot be read counts as
 * an active quarantine (the version stays refused) until it is lifted.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { z } from 'zod';
import { dnsName } from '../domain/config-fields';
import { ErrorType } from '../domain/errors';
import type { VerifyMode } from '../domain/identity';
import { workflowIdProblem } from '../domain/workflow-id';
import { s3Status, storageFailure } from './clients/s3';
import type {
  LiftQuarantineRequest,
  QuarantineOfRequest,
  QuarantineRecord,
  QuarantineRequest,
} from './contracts/quarantine';
import { checkedVersion, fail, invalidInput, messageOf, oneLine } from './failures';

export type {
  LiftQuarantineRequest,
  QuarantineLift,
  QuarantineOfRequest,
  QuarantineRecord,
  QuarantineRequest,
} from './contracts/quarantine';

/** Where the worker keeps the records in the backup bucket. */
export const QUARANTINE_PREFIX = 'quarantine/';

export interface QuarantineDeps {
  s3: S3Client;
  /** The backup bucket (config.backup.bucket). */
  bucket: string;
  /** The records' key prefix, QUARANTINE_PREFIX in the worker; a "/" is added when it does not end in one. */
  prefix: string;
  now?: () => Date;
}

const VIA: readonly VerifyMode[] = ['none', 'ssh', 'oidc'];
/** Longest reason kept; a longer one (a verification's output) is cut, never refused, so a quarantine always lands. */
const MAX_REASON = 1000;
/** Records read at once when listing. */
const READ_CONCURRENCY = 8;

const text = z.string().max(10_000);
const recordSchema = z.object({
  version: text,
  environment: text,
  workflowId: text,
  reason: text,
  at: z.iso.datetime(),
  lifted: z
    .object({ by: text, via: z.enum(['none', 'ssh', 'oidc']), reason: text, at: z.iso.datetime(), workflowId: text })
    .optional(),
});

/** A record as read, with what a conditional rewrite of it needs. */
interface Stored {
  key: string;
  etag?: string;
  record: QuarantineRecord;
}

export function quarantineActivities(deps: QuarantineDeps) {
  const { s3, bucket } = deps;
  const prefix = deps.prefix === '' || deps.prefix.endsWith('/') ? deps.prefix : `${deps.prefix}/`;
  const now = deps.now ?? (() => new Date());
  const where = (key: string) => `s3://${bucket}/${key}`;
  const keyOf = (version: string, workflowId: string) => `${prefix}${version}/${workflowId}.json`;

  /** The version and workflow id of a record's key, or undefined for any other object under the prefix. */
  function keyParts(key: string): { version: string; workflowId: string } | undefined {
    const m = /^([^/]+)\/([^/]+)\.json$/.exec(key.slice(prefix.length));
    if (!key.startsWith(prefix) || !m) return undefined;
    const [, version, workflowId] = m;
    return keyOf(version, workflowId) === key && isVersionKey(version) && !workflowIdProblem(workflowId, { lock: true })
      ? { version, workflowId }
      : undefined;
  }

  async function read(key: string): Promise<Stored | undefined> {
    try {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const body = (await got.Body?.transformToString('utf8')) ?? '';
      return { key, etag: got.ETag, record: decode(key, body, got.LastModified) };
    } catch (err) {
      if (s3Status(err) === 404) return undefined;
      throw storageFailure(err, `reading the quarantine record ${where(key)}`, ErrorType.ConfigInvalid);
    }
  }

  /** The record in the object; an object that is not one stays a quarantine, named by its key, until lifted. */
  function decode(key: string, body: string, lastModified: Date | undefined): QuarantineRecord {
    const parts = keyParts(key)!;
    let problem: string;
    try {
      const parsed = recordSchema.safeParse(JSON.parse(body));
      if (parsed.success && parsed.data.version === parts.version && parsed.data.workflowId === parts.workflowId) {
        return parsed.data;
      }
      problem = parsed.success ? 'its version or workflow id is not its key' : 'not a quarantine record';
    } catch (err) {
      problem = oneLine(messageOf(err));
    }
    return {
      ...parts,
      environment: 'unknown',
      reason: `the quarantine record ${where(key)} cannot be read (${problem}); lift it to clear it`,
      at: (lastModified ?? new Date(0)).toISOString(),
    };
  }

  async function write(key: string, record: QuarantineRecord, condition: { IfNoneMatch?: string; IfMatch?: string }) {
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: `${JSON.stringify(record, null, 2)}\n`,
        ContentType: 'application/json',
        ...condition,
      }),
    );
  }

  async function keysUnder(keyPrefix: string): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await s3.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: keyPrefix, ContinuationToken: token }),
        );
        for (const o of page.Contents ?? []) if (o.Key && keyParts(o.Key)) keys.push(o.Key);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    } catch (err) {
      throw storageFailure(err, `listing the quarantine records under ${where(keyPrefix)}`, ErrorType.ConfigInvalid);
    }
    return keys;
  }

  /** Every record under `keyPrefix`, newest first; one deleted meanwhile is left out. */
  async function records(keyPrefix: string): Promise<Stored[]> {
    const keys = await keysUnder(keyPrefix);
    const out: Stored[] = [];
    for (let i = 0; i < keys.length; i += READ_CONCURRENCY) {
      const batch = await Promise.all(keys.slice(i, i + READ_CONCURRENCY).map(read));
      for (const s of batch) if (s) out.push(s);
    }
    return out.sort((a, b) => newestFirst(a.record, b.record));
  }

  return {
    /**
     * Quarantines `version` on behalf of `workflowId`. Idempotent: a record of
     * the same version and workflow is never rewritten, and its first write is
     * what every attempt returns.
     */
    async quarantineVersion(req: QuarantineRequest): Promise<QuarantineRecord> {
      const version = checkedVersion(req.version);
      const workflowId = checkedWorkflowId(req.workflowId);
      const environment = checkedEnvironment(req.environment);
      const reason = checkedReason(req.reason);
      const key = keyOf(version, workflowId);
      const first = await read(key);
      if (first) return first.record;
      const record: QuarantineRecord = { version, environment, workflowId, reason, at: now().toISOString() };
      try {
        await write(key, record, { IfNoneMatch: '*' });
      } catch (err) {
        // Another attempt wrote first: its record is the one.
        if (isConflict(err)) {
          const won = await read(key);
          if (won) return won.record;
        }
        throw storageFailure(err, `writing the quarantine record ${where(key)}`, ErrorType.ConfigInvalid);
      }
      return record;
    },

    /** The newest quarantine of `version` that is not lifted; undefined when the version may be deployed. */
    async quarantineOf(req: QuarantineOfRequest): Promise<QuarantineRecord | undefined> {
      const version = checkedVersion(req.version);
      return (await records(`${prefix}${version}/`)).find((s) => !s.record.lifted)?.record;
    },

    /** Every quarantine, newest first, lifted ones with their lift. */
    async listQuarantine(): Promise<QuarantineRecord[]> {
      return (await records(prefix)).map((s) => s.record);
    },

    /**
     * Lifts every active quarantine of `version` and returns the records this
     * lift (`workflowId`) lifted, newest first; a retry returns them again.
     * A version with nothing to lift is refused (NotQuarantined).
     */
    async liftQuarantine(req: LiftQuarantineRequest): Promise<QuarantineRecord[]> {
      const version = checkedVersion(req.version);
      const workflowId = checkedWorkflowId(req.workflowId);
      const by = checkedPerson(req.by);
      const via = checkedVia(req.via);
      const reason = checkedReason(req.reason);
      const all = await records(`${prefix}${version}/`);
      const ours = (s: Stored) => s.record.lifted?.workflowId === workflowId;
      if (!all.some((s) => !s.record.lifted || ours(s))) {
        throw fail.NotQuarantined(`version ${version} is not quarantined: there is nothing to lift`, { version });
      }
      const lifted: QuarantineRecord[] = all.filter(ours).map((s) => s.record);
      const at = now().toISOString();
      for (const s of all.filter((x) => !x.record.lifted)) {
        const record: QuarantineRecord = { ...s.record, lifted: { by, via, reason, at, workflowId } };
        try {
          await write(s.key, record, s.etag ? { IfMatch: s.etag } : {});
          lifted.push(record);
        } catch (err) {
          if (!isConflict(err)) throw storageFailure(err, `lifting ${where(s.key)}`, ErrorType.ConfigInvalid);
          // Changed since it was read: deleted or lifted meanwhile (kept as it is), else the next attempt starts over.
          const again = await read(s.key);
          if (!again) continue;
          if (again.record.lifted?.workflowId === workflowId) lifted.push(again.record);
          else if (!again.record.lifted) throw fail.StorageUnavailable(`lifting ${where(s.key)}: it changed meanwhile`);
        }
      }
      return lifted.sort(newestFirst);
    },
  };
}

/** A key segment that is a version exactly as parseVersion writes it (no "v", nothing a path could read). */
function isVersionKey(segment: string): boolean {
  try {
    return checkedVersion(segment) === segment;
  } catch {
    return false;
  }
}

function newestFirst(a: QuarantineRecord, b: QuarantineRecord): number {
  return (
    Date.parse(b.at) - Date.parse(a.at) ||
    a.version.localeCompare(b.version) ||
    a.workflowId.localeCompare(b.workflowId)
  );
}

/** The store refused a conditional write: the object exists already, or changed since it was read. */
function isConflict(err: unknown): boolean {
  const status = s3Status(err);
  return status === 412 || status === 409;
}

function checkedWorkflowId(id: unknown): string {
  // The lock prefix is no concern here: only the charset, which keeps the key inside the prefix.
  const problem = workflowIdProblem(id, { lock: true });
  if (problem) throw fail.InvalidWorkflowId(`workflowId: ${problem}`);
  return id as string;
}

function checkedEnvironment(name: unknown): string {
  if (!dnsName.safeParse(name).success) {
    throw invalidInput(`environment: ${JSON.stringify(name)} is not an environment name (a lowercase DNS label)`);
  }
  return name as string;
}

function checkedPerson(by: unknown): string {
  if (typeof by !== 'string' || !/^[^\p{Cc}]{1,256}$/u.test(by) || by.trim() === '') {
    throw invalidInput('by: who lifts the quarantine is required (one line, at most 256 characters)');
  }
  return by.trim();
}

function checkedVia(via: unknown): VerifyMode {
  if (!VIA.includes(via as VerifyMode)) {
    throw invalidInput(`via: ${JSON.stringify(via)} is not how a person was verified (none, ssh or oidc)`);
  }
  return via as VerifyMode;
}

function checkedReason(reason: unknown): string {
  const line = typeof reason === 'string' ? oneLine(reason.replace(/\p{Cc}/gu, ' ')) : '';
  if (line === '') throw invalidInput('reason: a reason is required');
  return line.length > MAX_REASON ? `${line.slice(0, MAX_REASON - 1)}…` : line;
}
