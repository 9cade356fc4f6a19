/**
 * Payload encryption for everything the worker and deployctl send through
 * Temporal: workflow inputs, results, signals, queries, activity arguments
 * and results. Histories are kept by the Temporal server (and its database
 * and backups) for as long as the namespace's retention says; a deployment's
 * history carries who approved what, notes, reasons and plans, which must
 * not be readable by whoever can read that database. AES-256-GCM both hides
 * and authenticates: a payload altered at rest fails to decode instead of
 * feeding a forged value to a workflow.
 *
 * Keys rotate without a flag day: every encrypted payload names the id of
 * its key, new payloads use the current key (DEPLOY_CODEC_KEY), and retired
 * keys (DEPLOY_CODEC_OLD_KEYS) still decrypt the histories written with
 * them. Payloads that were never encrypted (written before the codec was
 * switched on) pass through decode unchanged, so switching it on needs no
 * migration either.
 *
 * Not covered by a payload codec: search attribute values, and failure
 * messages and stack traces (the SDK's failure converter keeps them in clear
 * text unless it is built into the workflow bundle with
 * encodeCommonAttributes); keep secrets out of both.
 */
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

export const ENCODING_ENCRYPTED = 'binary/encrypted';
export const METADATA_ENCODING = 'encoding';
export const METADATA_KEY_ID = 'encryption-key-id';

const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** A decode that cannot be done: unknown key, altered data, or a malformed envelope. */
export class CodecError extends Error {
  override name = 'CodecError';
}

/** DEPLOY_CODEC_* set to something unusable; the message names the variable. */
export class CodecConfigError extends Error {
  override name = 'CodecConfigError';
}

export interface CodecKeys {
  /** Id of the key new payloads are encrypted with; stored in each payload's metadata. */
  currentKeyId: string;
  /** Every key that may decrypt, by id; includes the current one. */
  keys: ReadonlyMap<string, Buffer>;
}

/**
 * A stable, non-secret id for a key when none is given: a short SHA-256
 * fingerprint, so two processes with different keys never agree on an id
 * and a wrong key is reported as such instead of as tampering.
 */
export function keyFingerprint(key: Buffer): string {
  return `sha256-${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

function parseKey(value: string, variable: string): Buffer {
  const text = value.trim();
  if (!BASE64_RE.test(text) || text.length % 4 !== 0) {
    throw new CodecConfigError(
      `${variable} must be 32 random bytes in base64 (e.g. \`openssl rand -base64 32\`); it is not base64`,
    );
  }
  const key = Buffer.from(text, 'base64');
  if (key.length !== KEY_BYTES) {
    throw new CodecConfigError(
      `${variable} must be 32 random bytes in base64 (e.g. \`openssl rand -base64 32\`); it decodes to ${key.length} bytes`,
    );
  }
  return key;
}

function checkKeyId(id: string, variable: string): string {
  if (!KEY_ID_RE.test(id))
    throw new CodecConfigError(
      `${variable}: key id ${JSON.stringify(id.slice(0, 70))} must be 1-64 characters of A-Z a-z 0-9 . _ -`,
    );
  return id;
}

/**
 * Reads the keys from the environment; undefined when DEPLOY_CODEC_KEY is
 * unset or empty (no encryption). DEPLOY_CODEC_OLD_KEYS is a comma-separated
 * list of `id:base64key` (or a bare `base64key`, whose id is its
 * fingerprint) for payloads written before a rotation.
 */
export function codecKeysFromEnv(env: Record<string, string | undefined>): CodecKeys | undefined {
  const current = env.DEPLOY_CODEC_KEY?.trim();
  if (!current) {
    if (env.DEPLOY_CODEC_OLD_KEYS?.trim() || env.DEPLOY_CODEC_KEY_ID?.trim()) {
      throw new CodecConfigError(
        'DEPLOY_CODEC_OLD_KEYS / DEPLOY_CODEC_KEY_ID are set but DEPLOY_CODEC_KEY is not: set the current key too',
      );
    }
    return undefined;
  }
  const key = parseKey(current, 'DEPLOY_CODEC_KEY');
  const currentKeyId = env.DEPLOY_CODEC_KEY_ID?.trim()
    ? checkKeyId(env.DEPLOY_CODEC_KEY_ID.trim(), 'DEPLOY_CODEC_KEY_ID')
    : keyFingerprint(key);
  const keys = new Map<string, Buffer>([[currentKeyId, key]]);
  const old = (env.DEPLOY_CODEC_OLD_KEYS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  old.forEach((entry, i) => {
    const variable = `DEPLOY_CODEC_OLD_KEYS entry ${i + 1}`;
    const colon = entry.indexOf(':');
    const oldKey = parseKey(colon >= 0 ? entry.slice(colon + 1) : entry, variable);
    const id = colon >= 0 ? checkKeyId(entry.slice(0, colon), variable) : keyFingerprint(oldKey);
    const known = keys.get(id);
    if (known && !known.equals(oldKey))
      throw new CodecConfigError(`${variable}: key id "${id}" is already used by another key`);
    keys.set(id, oldKey);
  });
  return { currentKeyId, keys };
}

/**
 * AES-256-GCM over the whole serialized Payload (metadata included, so the
 * original encoding is hidden and restored exactly). The encrypted payload's
 * data is IV (12 bytes) || ciphertext || tag (16 bytes); its key id is also
 * authenticated as additional data, so moving a payload under another id
 * fails like any other alteration.
 */
export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly keyring: CodecKeys) {
    if (!keyring.keys.has(keyring.currentKeyId))
      throw new CodecConfigError(`the current key id "${keyring.currentKeyId}" has no key`);
  }

  get keyId(): string {
    return this.keyring.currentKeyId;
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    const id = this.keyring.currentKeyId;
    const key = this.keyring.keys.get(id)!;
    return Promise.resolve(
      payloads.map((payload) => {
        const plain = temporal.api.common.v1.Payload.encode(payload).finish();
        const iv = randomBytes(IV_BYTES);
        const cipher = createCipheriv('aes-256-gcm', key, iv);
        cipher.setAAD(utf8.encode(id));
        const body = Buffer.concat([cipher.update(plain), cipher.final()]);
        return {
          metadata: { [METADATA_ENCODING]: utf8.encode(ENCODING_ENCRYPTED), [METADATA_KEY_ID]: utf8.encode(id) },
          data: Buffer.concat([iv, body, cipher.getAuthTag()]),
        };
      }),
    );
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    try {
      return Promise.resolve(payloads.map((p, i) => this.decodeOne(p, i, payloads.length)));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new CodecError(String(err)));
    }
  }

  private decodeOne(payload: Payload, index: number, count: number): Payload {
    const encoding = payload.metadata?.[METADATA_ENCODING];
    if (!encoding || fromUtf8.decode(encoding) !== ENCODING_ENCRYPTED) return payload;
    const which = count > 1 ? `payload ${index + 1} of ${count}` : 'payload';
    const rawId = payload.metadata?.[METADATA_KEY_ID];
    if (!rawId) throw new CodecError(`cannot decrypt ${which}: no "${METADATA_KEY_ID}" in its metadata`);
    const id = fromUtf8.decode(rawId);
    const key = this.keyring.keys.get(id);
    if (!key) {
      throw new CodecError(
        `cannot decrypt ${which}: it was encrypted with key id "${id.slice(0, 70)}", which this process does not have (known: ${[...this.keyring.keys.keys()].join(', ')}); set DEPLOY_CODEC_KEY to that key or add it to DEPLOY_CODEC_OLD_KEYS as ${id.slice(0, 70)}:<base64 key>`,
      );
    }
    const data = payload.data ?? new Uint8Array();
    if (data.length < IV_BYTES + TAG_BYTES)
      throw new CodecError(
        `cannot decrypt ${which} (key id "${id}"): ${data.length} bytes is too short to be an encrypted payload`,
      );
    const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(0, IV_BYTES));
    decipher.setAAD(utf8.encode(id));
    decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(buf.subarray(IV_BYTES, buf.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new CodecError(
        `cannot decrypt ${which} (key id "${id}"): authentication failed: the payload was altered, or the key registered under "${id}" is not the one it was encrypted with`,
      );
    }
    try {
      return temporal.api.common.v1.Payload.decode(plain);
    } catch (err) {
      throw new CodecError(`cannot decode ${which} (key id "${id}") after decryption: ${(err as Error).message}`);
    }
  }
}

/** The codec the environment asks for, or undefined when DEPLOY_CODEC_KEY is not set. */
export function codecFromEnv(env: Record<string, string | undefined> = process.env): EncryptionCodec | undefined {
  const keys = codecKeysFromEnv(env);
  return keys ? new EncryptionCodec(keys) : undefined;
}

/** The dataConverter option for Worker.create and new Client: the codec when configured, nothing otherwise. */
export function dataConverterFromEnv(
  env: Record<string, string | undefined> = process.env,
): { dataConverter: { payloadCodecs: PayloadCodec[] } } | Record<string, never> {
  const codec = codecFromEnv(env);
  return codec ? { dataConverter: { payloadCodecs: [codec] } } : {};
}

/** Payloads in the proto3 JSON form of the codec-server protocol and `temporal workflow show --output json`. */
export interface JsonPayload {
  metadata?: Record<string, string> | null;
  data?: string | null;
}

export function payloadFromJson(p: JsonPayload): Payload {
  if (!p || typeof p !== 'object') throw new CodecError('a payload must be an object {metadata, data}');
  const metadata: Record<string, Uint8Array> = {};
  if (p.metadata !== undefined && p.metadata !== null) {
    if (typeof p.metadata !== 'object' || Array.isArray(p.metadata))
      throw new CodecError('payload metadata must be an object of base64 strings');
    for (const [k, v] of Object.entries(p.metadata)) {
      if (typeof v !== 'string' || (v !== '' && !BASE64_RE.test(v)))
        throw new CodecError(`payload metadata "${k.slice(0, 64)}" must be base64`);
      metadata[k] = Buffer.from(v, 'base64');
    }
  }
  if (
    p.data !== undefined &&
    p.data !== null &&
    (typeof p.data !== 'string' || (p.data !== '' && !BASE64_RE.test(p.data)))
  ) {
    throw new CodecError('payload data must be base64');
  }
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

export function payloadToJson(p: Payload): JsonPayload {
  const b64 = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('base64');
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
    data: b64(p.data ?? new Uint8Array()),
  };
}
