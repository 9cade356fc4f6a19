/**
 * The backup bucket's objects, as backup, restore and pre-flight use them:
 * list, HEAD, read (pinned to an ETag), hash, upload from a stream, rewrite
 * metadata (with a multipart copy above the single-copy limit), and the
 * clean-up of what an interrupted attempt left. Errors are the SDK's; each
 * caller maps them (clients/s3.ts storageFailure) with what it was doing.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  UploadPartCopyCommand,
  type HeadObjectCommandOutput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { copyRanges, type ListedObject } from '../../domain/backup';
import { copySource, s3Status } from '../clients/s3';

const BINARY = 'application/octet-stream';

/** Object-store limits; tests lower them to exercise the multipart paths. */
export interface ObjectLimits {
  /** Largest object CopyObject rewrites in one request (S3: 5 GiB). */
  singleCopyBytes: number;
  /** Part size of the multipart copy above that. */
  copyPartBytes: number;
}

/** The operations on one bucket; built once per activities object, it holds no state of its own. */
export interface BucketObjects {
  readonly bucket: string;
  list(prefix: string): Promise<ListedObject[]>;
  /** The object's HEAD, or undefined when there is none. */
  head(key: string): Promise<HeadObjectCommandOutput | undefined>;
  /** The object's bytes; IfMatch `etag` so what is read is what was checked. */
  read(key: string, etag: string | undefined, signal?: AbortSignal): Promise<Readable>;
  hash(
    key: string,
    etag: string | undefined,
    onBytes: (n: number) => void,
    signal?: AbortSignal,
  ): Promise<{ sha256: string; bytes: number }>;
  upload(
    key: string,
    body: Readable,
    metadata: Record<string, string>,
    opts: { partSize: number; queueSize: number; contentType?: string },
  ): Upload;
  /** Keeps the object's Content-Type (`contentType`, default application/octet-stream). */
  replaceMetadata(
    key: string,
    etag: string | undefined,
    size: number,
    metadata: Record<string, string>,
    contentType?: string,
  ): Promise<void>;
  deleteQuietly(key: string): Promise<void>;
  abortUploads(key: string): Promise<void>;
}

/** `s3` is only used when an operation runs (the migration tests pass none). */
export function bucketObjects(s3: S3Client, bucket: string, limits: ObjectLimits): BucketObjects {
  async function list(prefix: string): Promise<ListedObject[]> {
    const out: ListedObject[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const o of page.Contents ?? [])
        if (o.Key) out.push({ key: o.Key, size: o.Size, lastModified: o.LastModified });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async function head(key: string): Promise<HeadObjectCommandOutput | undefined> {
    try {
      return await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    } catch (err) {
      if (s3Status(err) === 404) return undefined;
      throw err;
    }
  }

  async function read(key: string, etag: string | undefined, signal?: AbortSignal): Promise<Readable> {
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, IfMatch: etag }), {
      abortSignal: signal,
    });
    return got.Body as Readable;
  }

  /** Reads the whole object and hashes it, never holding more than a chunk. */
  async function hash(
    key: string,
    etag: string | undefined,
    onBytes: (n: number) => void,
    signal?: AbortSignal,
  ): Promise<{ sha256: string; bytes: number }> {
    const body = await read(key, etag, signal);
    const h = createHash('sha256');
    let bytes = 0;
    for await (const chunk of body) {
      h.update(chunk as Buffer);
      bytes += (chunk as Buffer).length;
      onBytes(bytes);
    }
    return { sha256: h.digest('hex'), bytes };
  }

  /** A multipart upload of the stream: memory is about partSize x (queueSize + 1), whatever the size. */
  function upload(
    key: string,
    body: Readable,
    metadata: Record<string, string>,
    opts: { partSize: number; queueSize: number; contentType?: string },
  ): Upload {
    return new Upload({
      client: s3,
      params: { Bucket: bucket, Key: key, Body: body, ContentType: opts.contentType ?? BINARY, Metadata: metadata },
      partSize: opts.partSize,
      queueSize: opts.queueSize,
      leavePartsOnError: false,
    });
  }

  /**
   * Rewrites the object's metadata in place (S3 cannot change metadata
   * otherwise): CopyObject onto itself, or a multipart copy above 5 GiB.
   * CopySourceIfMatch pins the copy to the object this attempt uploaded.
   */
  async function replaceMetadata(
    key: string,
    etag: string | undefined,
    size: number,
    metadata: Record<string, string>,
    contentType = BINARY,
  ): Promise<void> {
    const common = { Bucket: bucket, Key: key, Metadata: metadata, ContentType: contentType };
    if (size <= limits.singleCopyBytes) {
      await s3.send(
        new CopyObjectCommand({
          ...common,
          CopySource: copySource(bucket, key),
          CopySourceIfMatch: etag,
          MetadataDirective: 'REPLACE',
        }),
      );
      return;
    }
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand(common));
    try {
      const parts: { PartNumber: number; ETag?: string }[] = [];
      for (const [i, r] of copyRanges(size, limits.copyPartBytes).entries()) {
        const out = await s3.send(
          new UploadPartCopyCommand({
            Bucket: bucket,
            Key: key,
            UploadId,
            PartNumber: i + 1,
            CopySource: copySource(bucket, key),
            CopySourceRange: `bytes=${r.first}-${r.last}`,
            CopySourceIfMatch: etag,
          }),
        );
        parts.push({ PartNumber: i + 1, ETag: out.CopyPartResult?.ETag });
      }
      await s3.send(
        new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (err) {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => undefined);
      throw err;
    }
  }

  async function deleteQuietly(key: string): Promise<void> {
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  }

  /** Aborts unfinished multipart uploads of exactly `key` (an interrupted attempt's parts). */
  async function abortUploads(key: string): Promise<void> {
    try {
      const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
      for (const u of uploads.Uploads ?? []) {
        if (u.Key === key && u.UploadId)
          await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: u.UploadId }));
      }
    } catch {
      // Best effort: a lifecycle rule (AbortIncompleteMultipartUpload) removes what is left.
    }
  }

  return { bucket, list, head, read, hash, upload, replaceMetadata, deleteQuietly, abortUploads };
}
