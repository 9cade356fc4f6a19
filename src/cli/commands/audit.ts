/**
 * deployctl audit verify | show: the audit ledger (domain/audit.ts), read
 * straight from the object store, not through Temporal: verifying must not
 * depend on the system whose actions it checks being up. deployctl reads the
 * worker's config file (DEPLOY_CONFIG, default deploy.config.yaml) for the
 * bucket, prefix, endpoint and region, and the S3 credentials from the
 * AWS_* environment, as the worker does. Read-only: nothing is ever written.
 */
import { S3Client } from '@aws-sdk/client-s3';
import { Command } from 'commander';
import { ledgerEnvironments, verifyLedger, workflowRecords, type LedgerStore } from '../../activities/audit/chain';
import { createS3Client } from '../../activities/clients/s3';
import { messageOf } from '../../activities/failures';
import type { ChainReport } from '../../domain/audit';
import { auditSettings, type AuditSettings } from '../../domain/config-audit';
import { configFilePath, loadConfig } from '../../load-config';
import { chainLine, formatAuditRecord } from '../audit-format';
import { ExitCode } from '../exit-codes';
import { CliError, workflowIdArg, type Ctx } from '../session';

interface Ledger extends LedgerStore, AuditSettings {
  /** Where the store is, for messages. */
  endpoint: string;
  configFile: string;
  /** The configured environments: each is verified, so one whose whole ledger is gone shows as having none. */
  configured: string[];
}

const ENV_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function envOption(v: string): string {
  if (!ENV_RE.test(v)) throw new CliError(`invalid --env ${JSON.stringify(v)}: an environment name`, ExitCode.BadInput);
  return v;
}

/** The ledger's store from the worker's config file and the AWS_* environment. */
function openLedger(ctx: Ctx): Ledger {
  const configFile = configFilePath(ctx.env);
  let config;
  try {
    config = loadConfig(configFile, ctx.env);
  } catch (err) {
    throw new CliError(messageOf(err), ExitCode.BadInput);
  }
  const settings = auditSettings(config);
  const s3: S3Client = createS3Client(config.backup, ctx.env);
  return {
    s3,
    ...settings,
    endpoint: config.backup.endpoint ?? `S3 (${config.backup.region})`,
    configFile,
    configured: Object.keys(config.environments),
  };
}

/** A store error as one line that says what to do. */
function storeError(err: unknown, l: Ledger): CliError {
  const m = messageOf(err);
  const status = (err as { details?: { httpStatus?: number }[] }).details?.[0]?.httpStatus;
  let what: string;
  if (/Could not load credentials|credential/i.test(m) && !status)
    what = 'no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY as the worker has them';
  else if (/NoSuchBucket/.test(m))
    what = `bucket ${l.bucket} does not exist at ${l.endpoint}: check audit.bucket (or backup.bucket) in ${l.configFile}`;
  else if (/SignatureDoesNotMatch|InvalidAccessKeyId/.test(m))
    what = `the object store at ${l.endpoint} does not accept the S3 credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY`;
  else if (status === 403)
    what = `the S3 credentials may not read s3://${l.bucket}/${l.prefix}: grant s3:ListBucket and s3:GetObject, or use the worker's`;
  else if (status === undefined || status >= 500)
    what = `the object store at ${l.endpoint} cannot be reached or failed: check backup.endpoint in ${l.configFile} and that the store is up`;
  else what = 'the object store refused the request';
  return new CliError(`${what} (${m.split('\n')[0]})`, ExitCode.Error);
}

async function withLedger<T>(ctx: Ctx, fn: (l: Ledger) => Promise<T>): Promise<T> {
  const l = openLedger(ctx);
  if (!l.enabled) ctx.err(`deployctl: note: audit.enabled is false in ${l.configFile}: the worker records nothing new`);
  try {
    return await fn(l);
  } catch (err) {
    throw err instanceof CliError ? err : storeError(err, l);
  } finally {
    l.s3.destroy();
  }
}

/** The environments to read: the one asked for, else every configured one and every one with a ledger. */
async function environments(l: Ledger, env: string | undefined): Promise<string[]> {
  if (env) return [env];
  const found = (await ledgerEnvironments(l, l.prefix)).filter((e) => ENV_RE.test(e));
  return [...new Set([...l.configured, ...found])].sort();
}

export function addAuditCommands(program: Command, ctx: Ctx, exit: { code: number }): void {
  const audit = program
    .command('audit')
    .description(
      "The audit ledger: each environment's hash-chained record of deployments, rollbacks, release stages, approvals and freezes, in the object store.",
    )
    .addHelpText(
      'after',
      '\nReads DEPLOY_CONFIG (default deploy.config.yaml) and the AWS_* credentials, as the worker does.\nExamples:\n  deployctl audit verify\n  deployctl audit verify --env production --json\n  deployctl audit show deploy-production-1.0.1',
    );

  audit
    .command('verify')
    .description(
      `Walk each environment's chain from its first record and report the first break (an object edited, deleted or moved), naming it; exit ${ExitCode.Failed} on a break.`,
    )
    .option('--env <name>', 'only this environment (default: every environment with a ledger)', envOption)
    .option('--json', 'the reports as JSON')
    .action(async (o: { env?: string; json?: boolean }) => {
      const reports = await withLedger(ctx, async (l) => {
        const out: ChainReport[] = [];
        for (const env of await environments(l, o.env)) out.push(await verifyLedger(l, l.prefix, env));
        if (o.json) ctx.out(JSON.stringify({ bucket: l.bucket, prefix: l.prefix, ledgers: out }, null, 2));
        else if (!out.length) ctx.out(`no audit ledger under s3://${l.bucket}/${l.prefix}`);
        else for (const r of out) ctx.out(chainLine(r));
        return out;
      });
      if (reports.some((r) => !r.ok)) exit.code = ExitCode.Failed;
    });

  audit
    .command('show')
    .description(
      "Print a workflow's records: the event, who requested and approved and how each was verified, the plan, images, migrations, analysis and outcome.",
    )
    .argument(
      '<workflowId>',
      'the deployment, rollback, release or freeze workflow id',
      workflowIdArg({ lock: true, freeze: true }),
    )
    .option('--env <name>', 'only this environment (default: every environment with a ledger)', envOption)
    .option('--json', 'the records as JSON')
    .action(async (workflowId: string, o: { env?: string; json?: boolean }) => {
      await withLedger(ctx, async (l) => {
        const found = [];
        for (const env of await environments(l, o.env))
          found.push(...(await workflowRecords(l, l.prefix, env, workflowId)));
        if (!found.length)
          throw new CliError(
            `no audit records of ${workflowId} under s3://${l.bucket}/${l.prefix}${o.env ? `${o.env}/` : ''}`,
            ExitCode.NotFound,
          );
        if (o.json)
          ctx.out(
            JSON.stringify(
              found.map((s) => ({ key: s.key, sha256: s.hash, record: s.record })),
              null,
              2,
            ),
          );
        else ctx.out(found.map((s) => formatAuditRecord(s.record, { bucket: l.bucket, ...s })).join('\n\n'));
      });
    });
}
