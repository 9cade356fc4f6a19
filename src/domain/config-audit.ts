/**
 * `audit` in the config: where the audit ledger (domain/audit.ts) lives. One
 * store for every environment (not overridable per environment), so
 * `deployctl audit verify` finds every environment's chain under one prefix,
 * in the top-level backup bucket unless another is named, through the same
 * S3 endpoint, region and credentials as the backups.
 */
import { z } from 'zod';

export const auditSchema = z
  .strictObject({
    /** Off: appendAudit records nothing (and says so in its result). */
    enabled: z.boolean().default(true),
    /** Default: backup.bucket. A bucket of its own can carry S3 Object Lock (docs/operations.md "Audit ledger"). */
    bucket: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'an S3 bucket name')
      .optional(),
    /** Each environment's chain lives under <prefix><environment>/. */
    prefix: z
      .string()
      .regex(/^([A-Za-z0-9][A-Za-z0-9._-]*\/)+$/, 'a key prefix ending in "/", such as audit/')
      .max(256)
      .default('audit/'),
  })
  .prefault({});

export interface AuditSettings {
  enabled: boolean;
  bucket: string;
  prefix: string;
}

/** The ledger's settings with the bucket resolved (backup.bucket unless audit.bucket names one). */
export function auditSettings(config: {
  audit: z.output<typeof auditSchema>;
  backup: { bucket: string };
}): AuditSettings {
  return {
    enabled: config.audit.enabled,
    bucket: config.audit.bucket ?? config.backup.bucket,
    prefix: config.audit.prefix,
  };
}
