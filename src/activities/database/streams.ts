/**
 * Stream pieces of backup and restore, and the heartbeat of their long
 * steps. Every byte of a dump or a restore flows through streams with
 * backpressure, so memory stays bounded whatever the database size.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { DatabaseProgress } from '../contracts';
import type { ActivityRuntime } from '../runtime';

const HEARTBEAT_MS = 1000;

/**
 * Hashes and counts the bytes that pass. `beforeEnd` runs before the end of
 * the stream is passed on and can fail it; with `holdLast` the final chunk is
 * also held back until then, so a consumer can never see a complete input
 * that has not been checked.
 */
export class Meter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private digestHex?: string;
  private held?: Buffer;
  bytes = 0;

  constructor(
    private readonly opts: {
      holdLast?: boolean;
      beforeEnd?: (m: Meter) => Promise<void>;
      onBytes?: (bytes: number) => void;
    } = {},
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.opts.onBytes?.(this.bytes);
    if (!this.opts.holdLast) return cb(null, chunk);
    const prev = this.held;
    this.held = chunk;
    cb(null, prev);
  }

  override _flush(cb: TransformCallback): void {
    const finish = this.opts.beforeEnd ? this.opts.beforeEnd(this) : Promise.resolve();
    finish.then(
      () => cb(null, this.held),
      (err: Error) => cb(err),
    );
  }

  digest(): string {
    this.digestHex ??= this.hash.digest('hex');
    return this.digestHex;
  }
}

/** Passes pg_restore's script through and inserts `sql` right after its `BEGIN;`, so it runs in the restore's transaction. */
export class InsertAfterBegin extends Transform {
  private head: Buffer[] = [];
  private headBytes = 0;
  private done = false;

  constructor(private readonly sql: string) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.done) return cb(null, chunk);
    this.head.push(chunk);
    this.headBytes += chunk.length;
    const text = Buffer.concat(this.head).toString('latin1');
    const m = /^BEGIN;\r?\n/m.exec(text);
    if (m) {
      const cut = m.index + m[0].length;
      const all = Buffer.concat(this.head);
      this.done = true;
      this.head = [];
      this.push(all.subarray(0, cut));
      this.push(Buffer.from(this.sql));
      return cb(null, all.subarray(cut));
    }
    if (this.headBytes > 1024 * 1024)
      return cb(new Error('pg_restore printed no BEGIN; in its first MiB: cannot restore in one transaction'));
    cb();
  }

  override _flush(cb: TransformCallback): void {
    cb(
      this.done
        ? null
        : new Error('pg_restore printed no BEGIN;: the archive is empty or not a pg_dump custom-format archive'),
    );
  }
}

/**
 * Heartbeats `progress()` now and every second until the returned stop is
 * called: a dump or a restore of one large table makes no other sign of life.
 */
export function heartbeatTicker(rt: ActivityRuntime, progress: () => DatabaseProgress): () => void {
  rt.heartbeat(progress());
  const t = setInterval(() => rt.heartbeat(progress()), HEARTBEAT_MS);
  return () => clearInterval(t);
}

/** The object key the previous attempt was writing, from its last heartbeat. */
export function previousKey(details: unknown): string | undefined {
  const key = (details as { key?: unknown } | undefined)?.key;
  return typeof key === 'string' ? key : undefined;
}

/** `p`'s value, or undefined when it fails or takes longer than `ms` (a child that will not exit). */
export async function settleWithin<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([p.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
