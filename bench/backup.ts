/**
 * Backup and restore throughput: a generated database in the sandbox's
 * PostgreSQL, dumped in one run by
 *   (a) `pg_dump > /dev/null`, the floor;
 *   (b) the runbook's "Create Backup": pg_dump to a file, gzip it, `aws s3 cp`
 *       it, delete it;
 *   (c) our backupDatabase activity, run by a real worker process, with each
 *       codec and level tried (config backup.codec / compressionLevel: zstd
 *       beside `pg_dump -Fc -Z0`, or pg_dump's own gzip);
 * plus the reference pipelines (`pg_dump | gzip -6`, `pg_dump | gzip -1` whose
 * output size every object is compared with, `pg_dump -Fc -Z<n>`,
 * `pg_dump -Fc -Z0 | zstd -T0 -<n>`) to /dev/null. Then restores into fresh
 * databases:
 *   (r-a) `pg_restore --single-transaction` of the same dump from a local
 *         file, the floor;
 *   (r-b) the runbook's "Database Rollback": `aws s3 cp` of its .sql.gz,
 *         gunzip, `psql < file`;
 *   (r-c) our restoreDatabase activity from the bucket (checksum, then
 *         S3 -> zstd -d -> pg_restore -> psql in one transaction).
 * Every variant runs once per round, in an order rotated each round, and the
 * ratios use the medians: one sample each on a shared 2-CPU machine moved by
 * up to 2x between identical runs.
 *
 * The databases are our own (bench_backup_<run>, bench_restore_<run>_<n>,
 * owned by app, dropped at the end); objects go under bench/<run>/ in the
 * backup bucket and are deleted. BENCH_BACKUP_MB overrides the database size
 * of the chosen --size (a medium run by hand).
 */
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, Worker } from '@temporalio/worker';
import { closeSync, existsSync, openSync, rmSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createS3Client } from '../src/activities/clients/s3';
import { databaseActivities } from '../src/activities/database';
import type { RestoreResult } from '../src/activities/contracts';
import type { BackupCodec } from '../src/domain/backup';
import { workerProcessEnv } from '../src/worker-memory';
import type { MeasuredBackup, BackupWorkerIn, BackupWorkerOut } from './backup-types';
import {
  adminSql,
  benchConfig,
  bundleToFile,
  databaseUrlFor,
  forkChild,
  loadAverage,
  procWriteBytes,
  REPO_ROOT,
  runCommand,
  runId,
  timed,
  runShell,
  sandboxVar,
  type BenchOptions,
} from './common';
import { median, mib, ms, ratio, type BenchReport, type Target } from './report';
import { devServerEnv, uniqueQueue } from '../test/helpers/temporal';

const PG15_BIN = '/usr/lib/postgresql/15/bin';
/** Rows per MB of pg_database_size with the generator below (measured: about 5200). */
const ROWS_PER_MB = 5200;
const BATCH_ROWS = 250_000;

/** One configuration of the activity: its codec and level, and the upload's buffers when not the config's. */
interface Variant {
  codec: BackupCodec;
  level: number;
  partSizeMiB?: number;
  queueSize?: number;
}

const ZSTD1: Variant = { codec: 'zstd', level: 1 };
const ZSTD3: Variant = { codec: 'zstd', level: 3 };
const GZIP1: Variant = { codec: 'gzip', level: 1 };
const NONE: Variant = { codec: 'none', level: 0 };

const SIZES: Record<
  'small' | 'full',
  { mb: number; variants: Variant[]; gzipLevels: number[]; rounds: number; restoreRounds: number }
> = {
  small: { mb: 20, variants: [ZSTD1, ZSTD3, GZIP1], gzipLevels: [1], rounds: 1, restoreRounds: 1 },
  full: { mb: 520, variants: [ZSTD1, ZSTD3, GZIP1, NONE], gzipLevels: [0, 1, 6], rounds: 3, restoreRounds: 3 },
};

const variantName = (v: Variant) =>
  `${v.codec === 'zstd' ? `zstd -${v.level}` : v.codec === 'gzip' ? `gzip -Z${v.level}` : 'none -Z0'}${v.partSizeMiB ? `, parts ${v.partSizeMiB} MiB x ${v.queueSize}` : ''}`;

/** The reference pipeline that is the variant's dump and compression alone, to /dev/null. */
const aloneRef = (v: Variant) =>
  v.codec === 'zstd'
    ? `pg_dump -Fc -Z0 | zstd -T0 -${v.level} > /dev/null`
    : `pg_dump -Fc -Z${v.codec === 'gzip' ? v.level : 0} > /dev/null`;

const GZIP1_REF = 'pg_dump | gzip -1 | wc -c';

/** Text rows like the integration test's: md5 hex with some words, which gzip compresses about 2:1. */
async function generate(db: string, mb: number, log: (s: string) => void): Promise<number> {
  await adminSql(
    db,
    'SET ROLE app; CREATE TABLE messages (id bigserial PRIMARY KEY, conversation_id int NOT NULL, body text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())',
  );
  let rows = 0;
  const want = mb * 1024 * 1024;
  const size = async () =>
    Number((await adminSql<{ bytes: string }>(db, 'SELECT pg_database_size(current_database()) AS bytes'))[0].bytes);
  let bytes = await size();
  while (bytes < want) {
    const n = Math.max(1000, Math.min(BATCH_ROWS, Math.ceil(((want - bytes) / 1024 / 1024) * ROWS_PER_MB * 1.02)));
    await adminSql(
      db,
      `SET ROLE app; INSERT INTO messages (conversation_id, body) SELECT g % 5000, 'message ' || g || ': ' || md5(random()::text) || ' ' || md5(random()::text) || ' ' || md5(random()::text) || ' the quick brown fox ' || (g % 97) FROM generate_series(${rows + 1}, ${rows + n}) AS g`,
    );
    rows += n;
    bytes = await size();
    log(`generated ${rows} rows, ${mib(bytes)}`);
  }
  // Hint bits and the visibility map set now, so no measured dump pays for them.
  await adminSql(db, 'VACUUM (FREEZE, ANALYZE) messages');
  return size();
}

/**
 * Phases of one backup from its object-store requests: before the upload
 * starts (listing, pg_dump --version, snapshot), the dump streamed into the
 * upload, completing the multipart upload, recording the checksum (the copy
 * of the object onto itself), and what follows (HEAD and checks).
 */
function breakdown(m: MeasuredBackup): {
  before: number;
  upload: number;
  complete: number;
  copy: number;
  after: number;
} {
  const r = (name: string) => m.s3[`${name}Command`];
  const create = r('CreateMultipartUpload') ?? r('PutObject');
  const complete = r('CompleteMultipartUpload');
  const copies = [r('CopyObject'), r('UploadPartCopy')].filter((x): x is NonNullable<typeof x> => !!x);
  const uploadEnd = complete?.firstStart ?? r('PutObject')?.lastEnd ?? NaN;
  const copyEnd = copies.length ? Math.max(...copies.map((c) => c.lastEnd)) : uploadEnd;
  return {
    before: create?.firstStart ?? NaN,
    upload: uploadEnd - (create?.firstStart ?? NaN),
    complete: complete?.totalMs ?? 0,
    copy: copies.length ? copyEnd - Math.min(...copies.map((c) => c.firstStart)) : 0,
    after: m.ms - copyEnd,
  };
}

async function deletePrefix(s3: S3Client, bucket: string, prefix: string): Promise<number> {
  let n = 0;
  for (;;) {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
    const keys = (page.Contents ?? []).map((o) => o.Key!).filter(Boolean);
    for (const Key of keys) await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key }));
    n += keys.length;
    if (!page.IsTruncated || !keys.length) return n;
  }
}

export async function backupBench(opts: BenchOptions, log: (s: string) => void): Promise<BenchReport> {
  const startedAt = new Date();
  const loadStart = loadAverage();
  const size = SIZES[opts.size];
  const mb = Number(process.env.BENCH_BACKUP_MB) || size.mb;
  if (!process.env.PG_BIN && existsSync(PG15_BIN)) process.env.PG_BIN = PG15_BIN; // the same pg_dump for every variant, without Debian's wrapper
  const base = benchConfig();
  const run = runId();
  const db = `bench_backup_${run}`;
  const prefix = `bench/${run}/`;
  const bucket = base.backup.bucket;
  const s3 = createS3Client(base.backup);
  const pgBin = (name: string) => (base.database.clientBin ? path.join(base.database.clientBin, name) : name);
  const pgDump = pgBin('pg_dump');
  const conninfoOf = (database: string) => {
    const u = new URL(databaseUrlFor(database));
    u.password = '';
    return u.toString();
  };
  const password = decodeURIComponent(new URL(databaseUrlFor(db)).password);
  const conninfo = conninfoOf(db);
  const pgEnv: NodeJS.ProcessEnv = { ...process.env, PGPASSWORD: password, PG_DUMP: pgDump, CONNINFO: conninfo };
  const awsEnv = {
    ...process.env,
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    AWS_DEFAULT_REGION: base.backup.region,
  };
  const endpoint = base.backup.endpoint ?? sandboxVar('S3_ENDPOINT');
  const tmpFile = path.join(os.tmpdir(), `bench_backup_${run}.sql`);
  const archiveFile = path.join(os.tmpdir(), `bench_backup_${run}.dump`);
  const restoreFile = path.join(os.tmpdir(), `bench_restore_${run}.sql`);
  const tmpFiles = [tmpFile, `${tmpFile}.gz`, archiveFile, `${archiveFile}.zst`, restoreFile, `${restoreFile}.gz`];
  const bundle = await bundleToFile(path.join(REPO_ROOT, 'bench/workflows/backup.ts'));
  const env = await devServerEnv();
  // The workflow runs here; the backup runs in the I/O worker process being measured.
  const workflowQueue = uniqueQueue('bench-backup-workflows');
  const workflows = await Worker.create({
    connection: env.nativeConnection,
    taskQueue: workflowQueue,
    workflowBundle: { codePath: bundle.codePath },
  });
  const workflowsRunning = workflows.run();
  const configured: Variant = { codec: base.backup.codec, level: base.backup.compressionLevel };
  const isConfigured = (v: Variant) =>
    v.codec === configured.codec && (v.codec === 'none' || v.level === configured.level) && !v.partSizeMiB;
  const runbookKey = (k: number) => `${prefix}runbook/${k}/${path.basename(tmpFile)}.gz`;

  /** (a) the floor. */
  const floorOnce = async () =>
    (await runCommand(pgDump, ['--no-password', `--dbname=${conninfo}`], { env: pgEnv, stdout: 'ignore' })).ms;

  /** (b) the runbook, step by step; the write counter of this process sees its file (reaped children count). */
  const runbookOnce = async (k: number) => {
    const writesBefore = procWriteBytes('self');
    const fd = openSync(tmpFile, 'w');
    let dumpMs: number;
    try {
      dumpMs = (await runCommand(pgDump, ['--no-password', `--dbname=${conninfo}`], { env: pgEnv, stdout: fd })).ms;
    } finally {
      closeSync(fd);
    }
    const plainBytes = statSync(tmpFile).size;
    const gzipMs = (await runCommand('gzip', [tmpFile])).ms;
    const gzBytes = statSync(`${tmpFile}.gz`).size;
    const uploadMs = (
      await runCommand(
        'aws',
        [
          's3',
          'cp',
          `${tmpFile}.gz`,
          `s3://${bucket}/${runbookKey(k)}`,
          '--endpoint-url',
          endpoint,
          '--only-show-errors',
        ],
        { env: awsEnv },
      )
    ).ms;
    const rmMs = (await runCommand('rm', ['-f', `${tmpFile}.gz`])).ms;
    return {
      ms: dumpMs + gzipMs + uploadMs + rmMs,
      dumpMs,
      gzipMs,
      uploadMs,
      rmMs,
      plainBytes,
      gzBytes,
      writes: procWriteBytes('self') - writesBefore,
    };
  };

  /** (c) our activity on a fresh worker process. */
  let k = 0;
  const activityOnce = async (v: Variant) => {
    const taskQueue = uniqueQueue('bench-backup-io');
    const config = {
      database: { ...base.database, name: db },
      backup: {
        ...base.backup,
        prefix,
        codec: v.codec,
        compressionLevel: v.level,
        partSizeMiB: v.partSizeMiB ?? base.backup.partSizeMiB,
        queueSize: v.queueSize ?? base.backup.queueSize,
      },
    };
    // Started as the project starts a worker: its heap flags and malloc arenas (src/worker-memory.ts).
    const child = await forkChild<BackupWorkerIn, BackupWorkerOut>('backup-worker.ts', {
      ...workerProcessEnv(process.env),
      TEMPORAL_ADDRESS: env.address,
      BENCH_TASK_QUEUE: taskQueue,
      BENCH_BACKUP_CONFIG: JSON.stringify(config),
      BENCH_DATABASE_URL: databaseUrlFor(db),
    });
    try {
      const ready = await child.next((_m): _m is BackupWorkerOut => true);
      if (ready.type === 'failed') throw new Error(`backup worker: ${ready.message}`);
      const id = `bench-backup-${run}-${++k}`;
      const m = await env.client.workflow.execute<
        (req: { workflowId: string; version: string; ioTaskQueue: string }) => Promise<MeasuredBackup>
      >('benchBackupWorkflow', {
        taskQueue: workflowQueue,
        workflowId: id,
        args: [{ workflowId: id, version: '1.0.0', ioTaskQueue: taskQueue }],
      });
      return { ...m, idleRss: ready.rss };
    } finally {
      await child.stop({ type: 'stop' });
    }
  };

  /** The reference pipelines: the runbook's compressors and each variant's dump and compression alone, to /dev/null. */
  const zstdLevels = [...new Set(size.variants.filter((v) => v.codec === 'zstd').map((v) => v.level))];
  const refs: { what: string; script: string }[] = [
    {
      what: 'pg_dump | gzip -6 > /dev/null',
      script: '"$PG_DUMP" --no-password --dbname="$CONNINFO" | gzip -6 > /dev/null',
    },
    { what: GZIP1_REF, script: '"$PG_DUMP" --no-password --dbname="$CONNINFO" | gzip -1 | wc -c' },
    ...size.gzipLevels.map((l) => ({
      what: `pg_dump -Fc -Z${l} > /dev/null`,
      script: `"$PG_DUMP" --no-password -Fc -Z${l} --dbname="$CONNINFO" > /dev/null`,
    })),
    ...zstdLevels.map((l) => ({
      what: `pg_dump -Fc -Z0 | zstd -T0 -${l} > /dev/null`,
      script: `"$PG_DUMP" --no-password -Fc -Z0 --dbname="$CONNINFO" | zstd -q -T0 -${l} -c > /dev/null`,
    })),
  ];

  type Item = { key: string; label: string; once: (k: number) => Promise<number> };
  const floors: number[] = [];
  const runbooks: Awaited<ReturnType<typeof runbookOnce>>[] = [];
  const activityRuns = new Map<Variant, Awaited<ReturnType<typeof activityOnce>>[]>(size.variants.map((v) => [v, []]));
  const refRuns = new Map<string, number[]>(refs.map((r) => [r.what, []]));
  let gzip1Bytes = NaN;
  const items: Item[] = [
    { key: 'floor', label: '(a) floor', once: async () => floors[floors.push(await floorOnce()) - 1] },
    {
      key: 'runbook',
      label: '(b) runbook',
      once: async (round) => runbooks[runbooks.push(await runbookOnce(round)) - 1].ms,
    },
    ...size.variants.map((v) => ({
      key: variantName(v),
      label: `(c) ${variantName(v)}`,
      once: async () => {
        const m = await activityOnce(v);
        activityRuns.get(v)!.push(m);
        return m.ms;
      },
    })),
    ...refs.map((r) => ({
      key: r.what,
      label: r.what,
      once: async () => {
        const out = await runShell(r.script, pgEnv);
        if (r.what === GZIP1_REF) gzip1Bytes = Number(out.stdout.trim());
        refRuns.get(r.what)!.push(out.ms);
        return out.ms;
      },
    })),
  ];

  // --- restore -------------------------------------------------------------------------
  const restoreConfig = {
    database: { ...base.database, name: db, verifyTables: ['messages'] },
    backup: { ...base.backup, prefix },
  };
  const restoreActs = databaseActivities({
    config: restoreConfig,
    databaseUrl: databaseUrlFor(db),
    s3,
    releaseDir: () => Promise.reject(new Error('no migrations in the backup benchmark')),
  });
  let fresh = 0;
  /** A new empty database owned by app for one restore, dropped after it; only `restore` is timed. */
  const intoFresh = async (restore: (database: string) => Promise<number>): Promise<number> => {
    const target = `bench_restore_${run}_${++fresh}`;
    await adminSql('postgres', `CREATE DATABASE ${target} OWNER app`);
    try {
      const t = await restore(target);
      const [{ n }] = await adminSql<{ n: string }>(target, 'SELECT count(*) AS n FROM messages');
      if (Number(n) !== rows) throw new Error(`restore into ${target} has ${n} messages, the database ${rows}`);
      return t;
    } finally {
      await adminSql('postgres', `DROP DATABASE IF EXISTS ${target} WITH (FORCE)`);
    }
  };
  let rows = 0;
  const restoreEnv = (target: string) => ({ ...process.env, PGPASSWORD: password, CONNINFO: conninfoOf(target) });
  /** (r-a) pg_restore of the same dump (the zstd object's archive, as pg_dump wrote it) from a local file. */
  const restoreFloorOnce = () =>
    intoFresh(
      async (target) =>
        (
          await runCommand(
            pgBin('pg_restore'),
            ['--single-transaction', '--no-password', `--dbname=${conninfoOf(target)}`, archiveFile],
            { env: restoreEnv(target), stdout: 'ignore' },
          )
        ).ms,
    );
  /** (r-b) the runbook: download the .sql.gz, gunzip it, psql < file, as written there. */
  const restoreRunbookOnce = () =>
    intoFresh(async (target) => {
      const t0 = performance.now();
      await runCommand(
        'aws',
        [
          's3',
          'cp',
          `s3://${bucket}/${runbookKey(0)}`,
          `${restoreFile}.gz`,
          '--endpoint-url',
          endpoint,
          '--only-show-errors',
        ],
        { env: awsEnv },
      );
      await runCommand('gunzip', ['-f', `${restoreFile}.gz`]);
      await runShell('psql -X -q --no-password --dbname="$CONNINFO" < "$FILE" > /dev/null', {
        ...restoreEnv(target),
        FILE: restoreFile,
      });
      const t = performance.now() - t0;
      rmSync(restoreFile, { force: true });
      return t;
    });
  /** (r-c) our restore activity from the bucket, in this process in a mock activity context; its phases from its heartbeats. */
  const restorePhases = new Map<string, Record<string, number>[]>();
  const restoreOursOnce = (key: string) =>
    intoFresh(async (target) => {
      const env = new MockActivityEnvironment(undefined, { logger: new DefaultLogger('ERROR') });
      const t0 = performance.now();
      const starts: [string, number][] = [];
      env.on('heartbeat', (d: { phase?: string }) => {
        if (d.phase && d.phase !== starts[starts.length - 1]?.[0]) starts.push([d.phase, performance.now()]);
      });
      const r: RestoreResult = await env.run(() =>
        restoreActs.restoreDatabase({ workflowId: `bench-restore-${run}`, key, confirmKey: key, database: target }),
      );
      const t = performance.now() - t0;
      if (!r.verified) throw new Error(`restore of ${key} into ${target} not verified: ${r.differences.join(', ')}`);
      const phases: Record<string, number> = {};
      starts.forEach(([phase, at], i) => (phases[phase] = (starts[i + 1]?.[1] ?? t0 + t) - at));
      restorePhases.set(key, [...(restorePhases.get(key) ?? []), { ...phases, total: t }]);
      return t;
    });

  try {
    await adminSql('postgres', `CREATE DATABASE ${db} OWNER app`);
    log(`database ${db}: generating ${mb} MB`);
    const dbBytes = await generate(db, mb, log);
    rows = Number((await adminSql<{ n: string }>(db, 'SELECT count(*) AS n FROM messages'))[0].n);
    const tool = (await runCommand(pgDump, ['--version'])).stdout.trim();
    const zstdVersion = (await runCommand('zstd', ['--version'])).stdout.trim();
    log('warm-up dump (not measured)');
    await floorOnce();

    // Rounds of every variant, the order rotated each round; the floor also opens and closes the run.
    for (let round = 0; round < size.rounds; round++) {
      const order = items.map((_, i) => items[(i + round * 2) % items.length]);
      for (const item of order) {
        const t = await item.once(round);
        log(`round ${round + 1}: ${item.label}: ${ms(t)}`);
      }
    }
    floors.push(await floorOnce());

    const floor = median(floors);
    const runbook = median(runbooks.map((r) => r.ms));
    const rb = runbooks.reduce((best, r) => (Math.abs(r.ms - runbook) < Math.abs(best.ms - runbook) ? r : best));
    const ours = size.variants.map((v) => {
      const runs = activityRuns.get(v)!;
      const t = median(runs.map((r) => r.ms));
      // The run closest to the median stands for the variant in the breakdown.
      const rep = runs.reduce((best, r) => (Math.abs(r.ms - t) < Math.abs(best.ms - t) ? r : best));
      return {
        v,
        runs,
        ms: t,
        rep,
        peakRss: Math.max(...runs.map((r) => r.peakRss)),
        writeBytes: Math.max(...runs.map((r) => r.writeBytes)),
      };
    });
    const refMedian = (what: string) => median(refRuns.get(what) ?? []);
    const each = (xs: number[]) => (xs.length > 1 ? xs.map((x) => ms(x)).join(', ') : '');

    // Restores of the configured codec's object (and of gzip's, for comparison) into fresh databases.
    const restoreVariant = ours.find((o) => isConfigured(o.v)) ?? ours[0];
    const gzipVariant = ours.find((o) => o.v.codec === 'gzip' && o.v !== restoreVariant.v);
    const restoreKey = restoreVariant.rep.result.key;
    await runCommand(
      'aws',
      [
        's3',
        'cp',
        `s3://${bucket}/${restoreKey}`,
        `${archiveFile}.zst`,
        '--endpoint-url',
        endpoint,
        '--only-show-errors',
      ],
      { env: awsEnv },
    );
    // The same dump as pg_dump wrote it: the object decompressed (a zstd object) or as it is.
    if (restoreKey.endsWith('.zst'))
      await runCommand('zstd', ['-q', '-d', '-f', `${archiveFile}.zst`, '-o', archiveFile]);
    else await runCommand('mv', [`${archiveFile}.zst`, archiveFile]);
    const archiveBytes = statSync(archiveFile).size;
    const unzstdMs = restoreKey.endsWith('.zst')
      ? (await runShell(`zstd -q -d -c "${archiveFile}.zst" > /dev/null`, process.env)).ms
      : 0;
    const readMs = (await timed(() => restoreActs.backupExists(restoreKey))).ms; // a HEAD, for scale
    const hashMs = (
      await timed(async () => {
        const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: restoreKey }));
        for await (const _chunk of got.Body as AsyncIterable<Buffer>) void _chunk;
      })
    ).ms;
    const restoreItems: { key: string; label: string; once: () => Promise<number>; runs: number[] }[] = [
      { key: 'r-floor', label: '(r-a) pg_restore from a local file', once: restoreFloorOnce, runs: [] },
      { key: 'r-runbook', label: '(r-b) runbook', once: restoreRunbookOnce, runs: [] },
      {
        key: 'r-ours',
        label: `(r-c) restoreDatabase, ${variantName(restoreVariant.v)}`,
        once: () => restoreOursOnce(restoreKey),
        runs: [],
      },
      ...(gzipVariant
        ? [
            {
              key: 'r-gzip',
              label: `(r-c) restoreDatabase, ${variantName(gzipVariant.v)}`,
              once: () => restoreOursOnce(gzipVariant.rep.result.key),
              runs: [],
            },
          ]
        : []),
    ];
    log('warm-up restore (not measured)');
    await restoreFloorOnce();
    for (let round = 0; round < size.restoreRounds; round++) {
      const order = restoreItems.map((_, i) => restoreItems[(i + round) % restoreItems.length]);
      for (const item of order) {
        const t = await item.once();
        item.runs.push(t);
        log(`restore round ${round + 1}: ${item.label}: ${ms(t)}`);
      }
    }
    const rMedian = (key: string) => median(restoreItems.find((r) => r.key === key)?.runs ?? []);
    const rFloor = rMedian('r-floor');
    const rRunbook = rMedian('r-runbook');
    const rOurs = rMedian('r-ours');

    const targets: Target[] = [];
    for (const o of ours) {
      const vsFloor = o.ms / floor;
      const vsRunbook = o.ms / runbook;
      const name = variantName(o.v);
      const alone = refMedian(aloneRef(o.v)) / floor;
      const b = breakdown(o.rep);
      const vsGzip1 = o.rep.result.bytes / gzip1Bytes;
      targets.push(
        {
          name: `(c) ${name} vs (a) floor`,
          measured: ratio(vsFloor),
          wanted: '<= 1.50x',
          pass: vsFloor <= 1.5,
          ...(vsFloor > 1.5
            ? {
                why: `${aloneRef(o.v).replace(' > /dev/null', '')} alone takes ${ratio(alone)} the floor; dump + upload took ${ms(b.upload)}, the snapshot and listing before it ${ms(b.before)}, completing the upload ${ms(b.complete)} and the checksum copy ${ms(b.copy)}: the upload into S3 (versitygw) runs on the same 2 CPUs as pg_dump${o.v.codec === 'zstd' ? ' and zstd' : ''}`,
              }
            : {}),
        },
        {
          name: `(c) ${name} vs (b) runbook`,
          measured: ratio(vsRunbook),
          wanted: '<= 0.30x',
          pass: vsRunbook <= 0.3,
          ...(vsRunbook > 0.3
            ? {
                why: `the runbook took ${ratio(runbook / floor)} the floor here (its gzip -6 ${ms(rb.gzipMs)}); ${aloneRef(o.v).replace(' > /dev/null', '')} alone takes ${ratio(refMedian(aloneRef(o.v)) / runbook)} of the runbook`,
              }
            : {}),
        },
        ...(o.v.codec === 'none'
          ? []
          : [
              {
                name: `(c) ${name} object vs pg_dump | gzip -1`,
                measured: ratio(vsGzip1),
                wanted: '<= 1.10x',
                pass: vsGzip1 <= 1.1,
                ...(vsGzip1 > 1.1
                  ? {
                      why: `${name} made ${mib(o.rep.result.bytes)} of the custom-format dump, gzip -1 ${mib(gzip1Bytes)} of the plain one`,
                    }
                  : {}),
              },
            ]),
        {
          name: `(c) ${name} worker peak RSS`,
          measured: mib(o.peakRss),
          wanted: '< 200 MiB',
          pass: o.peakRss < 200 * 1024 * 1024,
          ...(o.peakRss >= 200 * 1024 * 1024
            ? {
                why: `the worker holds ${mib(o.rep.rssBefore)} before the backup starts; the backup adds ${mib(o.peakRss - o.rep.rssBefore)}`,
              }
            : {}),
        },
        {
          name: `(c) ${name} bytes written to local disk`,
          measured: Number.isNaN(o.writeBytes) ? 'n/a' : `${o.writeBytes} B`,
          wanted: '0 B',
          pass: o.writeBytes === 0,
          ...(Number.isNaN(o.writeBytes) ? { why: '/proc/<pid>/io is not readable here' } : {}),
        },
      );
    }
    const rVsFloor = rOurs / rFloor;
    const rRuns = restorePhases.get(restoreKey) ?? [];
    const rPhase = rRuns.reduce<Record<string, number>>(
      (best, r) => (Math.abs(r.total - rOurs) < Math.abs((best.total ?? Infinity) - rOurs) ? r : best),
      {},
    );
    targets.push({
      name: `(r-c) restore, ${variantName(restoreVariant.v)} vs (r-a) pg_restore from a local file`,
      measured: ratio(rVsFloor),
      wanted: '<= 1.30x',
      pass: rVsFloor <= 1.3,
      ...(rVsFloor > 1.3
        ? {
            why: `the activity's phases (the run closest to the median): checking ${ms(rPhase.checking ?? NaN)} (HEAD and a full read of the object for its sha256, before anything is touched; a bare GET of it took ${ms(hashMs)}), restoring ${ms(rPhase.restoring ?? NaN)} (S3 -> sha256 -> ${restoreKey.endsWith('.zst') ? `zstd -d (alone ${ms(unzstdMs)}) -> ` : ''}pg_restore -> the worker -> psql, every byte of the SQL through the worker, against ${ms(rFloor)} for pg_restore straight into the server), verifying ${ms(rPhase.verifying ?? NaN)} (row counts)`,
          }
        : {}),
    });

    const meets = ours
      .filter((o) => o.ms / floor <= 1.5 && o.ms / runbook <= 0.3 && o.rep.result.bytes / gzip1Bytes <= 1.1)
      .map((o) => variantName(o.v));
    const notes = [
      `${meets.length ? `Variants that meet the backup targets (time and size) in this run: ${meets.join('; ')}.` : `No variant tried meets every backup target in this run (tried ${ours.map((o) => variantName(o.v)).join('; ')}).`} The example config uses ${variantName(configured)} with ${base.backup.partSizeMiB} MiB parts x ${base.backup.queueSize}.`,
      `Object sizes are compared with \`pg_dump | gzip -1\` of the plain dump (${mib(gzip1Bytes)}, measured in the same run): the runbook's format at gzip's fastest level. The runbook itself uses gzip -6 (${mib(rb.gzBytes)}).`,
      `Restores go into a new empty database each (created and dropped outside the timing) and are checked to hold every row. (r-a) is \`pg_restore --single-transaction\` of the ${variantName(restoreVariant.v)} object's archive decompressed to a local file (${mib(archiveBytes)}), the same dump; (r-b) is the runbook's \`aws s3 cp\` of its .sql.gz, \`gunzip\` and \`psql < file\` (plain SQL, no single transaction); (r-c) is the restoreDatabase activity run in this process in a mock activity context: HEAD, a full read to check the sha256, then S3 -> sha256 -> ${restoreKey.endsWith('.zst') ? 'zstd -d -> ' : ''}pg_restore -> psql in one transaction (after dropping the schemas the role owns), then the row count of messages.`,
      `Peak RSS is the I/O worker process's (temporal.ioTaskQueue: a real Temporal worker without workflows, run with node on compiled code and the project's memory settings, as src/io-worker.ts runs: native connection, the modules of src/activities/io loaded, the backup activity registered; the workflow that schedules it runs in the benchmark's process), ${ours[0]?.rep.peakSource ?? ''}, reset just before the backup; the highest of the runs. RSS just before the backup and what the backup added, per variant: ${ours.map((o) => `${variantName(o.v)}: ${mib(o.rep.rssBefore)} + ${mib(o.peakRss - o.rep.rssBefore)}`).join('; ')}; an idle worker of this kind holds ${ours.map((o) => mib(Math.min(...o.runs.map((r) => r.idleRss)))).join(' / ')}.`,
      `Of what the backup added, Node's Buffers (arrayBuffers) peaked at +${ours.map((o) => `${mib(o.rep.memory.arrayBuffersPeak - o.rep.memory.arrayBuffersBefore)} (${variantName(o.v)})`).join(', ')} and the JS heap at +${ours.map((o) => mib(o.rep.memory.heapUsedPeak - o.rep.memory.heapUsedBefore)).join(' / ')}: the upload's part buffers (partSize x (queueSize + 1)) plus the Buffers already sent and not yet collected by the garbage collector.`,
      `Local disk writes are /proc/<worker>/io write_bytes over the activity, pg_dump and zstd included (reaped children count towards their parent); the same counter saw ${mib(rb.writes)} written by one run of the runbook's sequence, whose dump file is ${mib(rb.plainBytes)}.`,
      'pg_dump, the runbook and the activity use the same pg_dump binary, role (app over TCP) and database; the activity also exports a snapshot and counts the configured verifyTables in it (here: messages), records the checksum with a server-side copy of the object onto itself, and checks the result, as it does in production. With zstd, pg_dump -Fc -Z0 writes into a pipe that zstd -T0 reads, as `pg_dump | zstd` in a shell: the worker only sees the compressed bytes.',
      '"Until the first upload request" includes dumping the first part: the upload starts once a part is full (a dump smaller than one part is sent with one PutObject at its end).',
      "The machine is shared: the S3 store (versitygw), PostgreSQL, the dev server and the worker run on the same 2 CPUs as the dump, and other people's tests ran at the same time (see the load average); the variants ran in rotated rounds and the ratios use medians.",
    ];

    return {
      name: 'backup',
      title: 'Backup throughput',
      size: opts.size,
      startedAt,
      durationMs: Date.now() - startedAt.getTime(),
      load: { start: loadStart, end: loadAverage() },
      setup: [
        `database: ${mib(dbBytes)} (pg_database_size) of generated md5-text rows (table messages with a primary key, ${rows} rows); plain dump ${mib(rb.plainBytes)}, gzip -1 ${mib(gzip1Bytes)}, gzip -6 ${mib(rb.gzBytes)}`,
        `${size.rounds} round(s) of every backup variant and ${size.restoreRounds} of every restore, order rotated each round, after a warm-up; the floor once more at the end; a fresh worker process for each run of the backup activity`,
        `tools: ${tool}; ${zstdVersion}; server PostgreSQL 15 in the sandbox; S3: versitygw on loopback`,
      ],
      tables: [
        {
          title: 'Backup: medians of the rounds (ratios against the floor)',
          columns: [
            'variant',
            'median',
            'each run',
            'vs (a) floor',
            'vs (b) runbook',
            'object',
            'vs gzip -1',
            'peak RSS',
            'disk writes',
          ],
          rows: [
            ['(a) pg_dump > /dev/null', ms(floor), each(floors), ratio(1), ratio(floor / runbook), '', '', '', ''],
            [
              `(b) runbook: dump ${ms(rb.dumpMs)} + gzip ${ms(rb.gzipMs)} + aws s3 cp ${ms(rb.uploadMs)} + rm ${ms(rb.rmMs)}`,
              ms(runbook),
              each(runbooks.map((r) => r.ms)),
              ratio(runbook / floor),
              ratio(1),
              mib(rb.gzBytes),
              ratio(rb.gzBytes / gzip1Bytes),
              '',
              mib(rb.writes),
            ],
            ...ours.map((o) => [
              `(c) backupDatabase, ${variantName(o.v)}${isConfigured(o.v) ? ' (example config)' : ''}`,
              ms(o.ms),
              each(o.runs.map((r) => r.ms)),
              ratio(o.ms / floor),
              ratio(o.ms / runbook),
              mib(o.rep.result.bytes),
              ratio(o.rep.result.bytes / gzip1Bytes),
              mib(o.peakRss),
              Number.isNaN(o.writeBytes) ? 'n/a' : `${o.writeBytes} B`,
            ]),
            ...refs.map((r) => [
              `reference: ${r.what}`,
              ms(refMedian(r.what)),
              each(refRuns.get(r.what)!),
              ratio(refMedian(r.what) / floor),
              ratio(refMedian(r.what) / runbook),
              r.what === GZIP1_REF ? mib(gzip1Bytes) : '',
              r.what === GZIP1_REF ? ratio(1) : '',
              '',
              '',
            ]),
          ],
        },
        {
          title:
            "Where the backup activity's time goes (the run closest to each median, from the times of its object-store requests)",
          columns: [
            'variant',
            'until the first upload request',
            'dump + upload',
            'dump and compression alone to /dev/null',
            'complete upload',
            'record checksum (copy)',
            'after',
            'total',
          ],
          rows: ours.map((o) => {
            const b = breakdown(o.rep);
            return [
              variantName(o.v),
              ms(b.before),
              ms(b.upload),
              ms(refMedian(aloneRef(o.v))),
              ms(b.complete),
              ms(b.copy),
              ms(b.after),
              ms(o.rep.ms),
            ];
          }),
        },
        {
          title: 'Restore into a fresh database: medians of the rounds (ratios against pg_restore from a local file)',
          columns: ['variant', 'median', 'each run', 'vs (r-a) floor', 'vs (r-b) runbook'],
          rows: [
            ...restoreItems.map((r) => [
              r.key === 'r-ours' ? `${r.label} (example config)` : r.label,
              ms(median(r.runs)),
              each(r.runs),
              ratio(median(r.runs) / rFloor),
              ratio(median(r.runs) / rRunbook),
            ]),
            [`reference: HEAD of the object`, ms(readMs), '', '', ''],
            [
              `reference: GET of the whole object (${mib(restoreVariant.rep.result.bytes)})`,
              ms(hashMs),
              '',
              ratio(hashMs / rFloor),
              '',
            ],
            ...(unzstdMs
              ? [[`reference: zstd -d of the object to /dev/null`, ms(unzstdMs), '', ratio(unzstdMs / rFloor), '']]
              : []),
          ],
        },
      ],
      targets,
      notes,
    };
  } finally {
    for (const f of tmpFiles) rmSync(f, { force: true });
    workflows.shutdown();
    await workflowsRunning.catch(() => undefined);
    bundle.remove();
    await env.teardown().catch(() => undefined);
    await adminSql('postgres', `DROP DATABASE IF EXISTS ${db} WITH (FORCE)`).catch((err: unknown) =>
      log(`could not drop ${db}: ${String(err)}`),
    );
    await deletePrefix(s3, bucket, prefix).catch((err: unknown) =>
      log(`could not delete s3://${bucket}/${prefix}: ${String(err)}`),
    );
    s3.destroy();
  }
}
