/**
 * The object store (S3 or an S3-compatible server such as versitygw or
 * MinIO) behind backups and summaries: one client built from config.backup
 * and the worker's environment, and the error mapping of its answers.
 */
import { S3Client } from '@aws-sdk/client-s3';
import type { DeployConfig } from '../../domain/config';
import { ErrorType, type ErrorTypeName } from '../../domain/errors';
import { failure, isFailure, oneLine } from '../failures';

/**
 * The S3 client for config.backup, used by backups, restores and summaries
 * alike, so a summary lands in the same store as the backups. Region,
 * endpoint and addressing come from config.backup alone (the example config
 * fills them from AWS_REGION and S3_ENDPOINT); credentials are
 * AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) of `env`
 * when set, else the SDK's default chain (profiles, instance roles). Checksums
 * only WHEN_REQUIRED because S3-compatible stores (versitygw, MinIO) do not all
 * accept the SDK's default CRC headers; integrity is the backup's own SHA-256.
 */
export function createS3Client(backup: DeployConfig['backup'], env: NodeJS.ProcessEnv = process.env): S3Client {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  return new S3Client({
    region: backup.region,
    ...(backup.endpoint ? { endpoint: backup.endpoint } : {}),
    forcePathStyle: backup.forcePathStyle,
    ...(accessKeyId && secretAccessKey
      ? {
          credentials: {
            accessKeyId,
            secretAccessKey,
            ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
          },
        }
      : {}),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

export function s3Status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/** An object-store error: access and request errors need a person; the rest (network, 5xx, throttling) is retried. */
export function storageFailure(err: unknown, what: string, permanent: ErrorTypeName): Error {
  if (isFailure(err)) return err;
  const status = s3Status(err);
  const e = err as { name?: string; message?: string; code?: string };
  const message = `${what}: ${oneLine(`${e.name && e.name !== 'Error' ? `${e.name} ` : ''}${e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}`)}`;
  // 412: the object changed between two reads; the next attempt starts over from HEAD.
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 412 && status !== 429) {
    return failure(permanent, message, { httpStatus: status });
  }
  return failure(ErrorType.StorageUnavailable, message, { httpStatus: status });
}

/** The CopySource header: bucket and key, each path segment URL-encoded. */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}
