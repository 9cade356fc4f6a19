/** The config's `backup` section: where database backups go, and how they are compressed and uploaded. */
import { z } from 'zod';
import { BACKUP_CODECS, codecLevelProblem } from './backup';
import { duration, url } from './config-fields';

export const backupSchema = z
  .strictObject({
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name'),
    prefix: z.string().max(256).default('postgres/'),
    endpoint: url.optional(),
    region: z.string().min(1).max(64).default('us-east-1'),
    forcePathStyle: z.boolean().default(false),
    /** Pre-flight fails when the newest backup is older than this. */
    maxAge: duration('backup maxAge').default(26 * 3_600_000),
    /** Read the whole object back and compare its hash after upload. */
    verifyReadBack: z.boolean().default(false),
    /**
     * zstd: pg_dump -Fc -Z0 through a multi-threaded zstd (`.dump.zst`); gzip: pg_dump's own zlib (`.dump`,
     * the format before zstd); none: -Z0. zstd -1 measured fastest and smallest here (docs/benchmarks.md).
     */
    codec: z.enum(BACKUP_CODECS).default('zstd'),
    /** The codec's level: zstd 1-19, gzip 0-9 (pg_dump -Z); none ignores it. */
    compressionLevel: z.number().int().min(0).max(19).default(1),
    /** Multipart upload part size; at most 10,000 parts, so 8 MiB allows 80 GiB dumps. Memory is about partSize x (queueSize + 1). */
    partSizeMiB: z.number().int().min(5).max(512).default(8),
    /** Parts uploaded at once. */
    queueSize: z.number().int().min(1).max(16).default(2),
    /** Another environment may keep its backups under the same bucket prefix (otherwise refused at load). */
    shared: z.boolean().default(false),
  })
  .superRefine((b, ctx) => {
    const problem = codecLevelProblem(b.codec, b.compressionLevel);
    if (problem) ctx.addIssue({ code: 'custom', path: ['compressionLevel'], message: problem });
  });
