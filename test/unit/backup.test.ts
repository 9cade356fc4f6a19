import {
  backupAgeProblem,
  backupContentType,
  backupKey,
  backupKeyPrefix,
  backupTimestamp,
  codecLevelProblem,
  copyRanges,
  decodeMetadata,
  dumpCompression,
  encodeMetadata,
  formatAge,
  headProblems,
  isTransientPgCode,
  isTransientPgMessage,
  latestBackup,
  parseBackupKey,
  parseBackupTimestamp,
  restoreCodec,
  restorePreludeSql,
  rowCountDifferences,
  toolErrorSummary,
  newestOtherBackup,
  ZSTD_DECOMPRESS_ARGS,
  type BackupCodec,
} from '../../src/domain/backup';

const at = new Date('2026-11-26T03:08:11.456Z');
const SHA = 'a'.repeat(64);

describe('backup keys', () => {
  test("follow the runbook's postgres/<db>_<version>_<time> naming with a sortable UTC time", () => {
    expect(backupTimestamp(at)).toBe('20261126T030811Z');
    expect(backupKey({ prefix: 'postgres/', database: 'ai_saas_prod', version: '1.0.1', at })).toBe(
      'postgres/ai_saas_prod_1.0.1_20261126T030811Z.dump',
    );
  });

  test('parse back from the right, so database names with "_" and pre-release versions survive', () => {
    const key = backupKey({ prefix: 'postgres/', database: 'ai_saas_prod', version: '2.0.0-rc.1', at });
    expect(parseBackupKey(key, 'postgres/')).toEqual({
      key,
      database: 'ai_saas_prod',
      version: '2.0.0-rc.1',
      createdAt: new Date('2026-11-26T03:08:11Z'),
      zstd: false,
    });
  });

  test("name their codec: .dump.zst is a zstd frame, .dump is pg_dump's archive as it wrote it (gzip, none, or before zstd)", () => {
    const key = (codec?: BackupCodec) =>
      backupKey({ prefix: 'postgres/', database: 'ai_saas_prod', version: '1.0.1', at, codec });
    expect(key('zstd')).toBe('postgres/ai_saas_prod_1.0.1_20261126T030811Z.dump.zst');
    expect(key('gzip')).toBe('postgres/ai_saas_prod_1.0.1_20261126T030811Z.dump');
    expect(key('none')).toBe('postgres/ai_saas_prod_1.0.1_20261126T030811Z.dump');
    expect(key()).toBe('postgres/ai_saas_prod_1.0.1_20261126T030811Z.dump');
    expect(parseBackupKey(key('zstd'), 'postgres/')).toMatchObject({
      database: 'ai_saas_prod',
      version: '1.0.1',
      zstd: true,
    });
    expect(parseBackupKey(key('gzip'), 'postgres/')).toMatchObject({ version: '1.0.1', zstd: false });
    expect(backupContentType('zstd')).toBe('application/zstd');
    expect(backupContentType('gzip')).toBe('application/octet-stream');
    expect(backupContentType('none')).toBe('application/octet-stream');
  });

  test.each([
    ['another prefix', 'other/ai_saas_prod_1.0.1_20261126T030811Z.dump'],
    ['a runbook-era .sql.gz', 'postgres/ai_saas_prod_1.0.1_1764126491.sql.gz'],
    ['a nested path', 'postgres/x/ai_saas_prod_1.0.1_20261126T030811Z.dump'],
    ['no version', 'postgres/ai_20261126T030811Z.dump'],
    ['an impossible date', 'postgres/ai_saas_prod_1.0.1_20261341T030811Z.dump'],
    ['a bad database name', 'postgres/1db_1.0.1_20261126T030811Z.dump'],
    ['another codec', 'postgres/ai_saas_prod_1.0.1_20261126T030811Z.dump.gz'],
    ['a zstd frame of something else', 'postgres/ai_saas_prod_1.0.1_20261126T030811Z.sql.zst'],
  ])('ignore %s', (_what, key) => {
    expect(parseBackupKey(key, 'postgres/')).toBeUndefined();
  });

  test('the listing prefix of one database and version rejects names that could escape it', () => {
    expect(backupKeyPrefix('postgres/', 'ai_saas_prod', '1.0.1')).toBe('postgres/ai_saas_prod_1.0.1_');
    expect(() => backupKeyPrefix('postgres/', 'ai saas', '1.0.1')).toThrow('invalid database name');
    expect(() => backupKeyPrefix('postgres/', 'db', '1.0.1/../x')).toThrow('invalid version');
  });

  test('timestamps round-trip and reject near misses', () => {
    expect(parseBackupTimestamp(backupTimestamp(at))?.toISOString()).toBe('2026-11-26T03:08:11.000Z');
    expect(parseBackupTimestamp('20260230T000000Z')).toBeUndefined();
    expect(parseBackupTimestamp('2026-11-26T03:08:11Z')).toBeUndefined();
  });
});

describe('codecs', () => {
  test("zstd runs beside pg_dump -Z0, multi-threaded, from stdin to stdout; gzip is pg_dump's own -Z; none is -Z0", () => {
    expect(dumpCompression('zstd', 1)).toEqual({ pgDumpLevel: 0, zstdArgs: ['-q', '-T0', '-1', '-c'] });
    expect(dumpCompression('zstd', 19)).toEqual({ pgDumpLevel: 0, zstdArgs: ['-q', '-T0', '-19', '-c'] });
    expect(dumpCompression('gzip', 6)).toEqual({ pgDumpLevel: 6 });
    expect(dumpCompression('gzip', 0)).toEqual({ pgDumpLevel: 0 });
    expect(dumpCompression('none', 3)).toEqual({ pgDumpLevel: 0 });
    expect(ZSTD_DECOMPRESS_ARGS).toEqual(['-q', '-d', '-c']);
  });

  test.each([
    [
      'zstd',
      0,
      'compressionLevel 0 does not suit codec zstd: it takes 1-19 (for an uncompressed dump, set codec: none)',
    ],
    ['zstd', 20, 'compressionLevel 20 does not suit codec zstd: it takes 1-19'],
    ['gzip', 10, 'compressionLevel 10 does not suit codec gzip: it takes 0-9'],
  ] as const)('a level %s does not take is refused: %s %i', (codec, level, message) => {
    expect(codecLevelProblem(codec, level)).toBe(message);
    expect(() => dumpCompression(codec, level)).toThrow(message);
  });

  test('a restore decompresses what the key says, and refuses a key whose metadata names another codec', () => {
    const zst = { key: 'k.dump.zst', zstd: true };
    const dump = { key: 'k.dump', zstd: false };
    expect(restoreCodec(zst, { codec: 'zstd' })).toEqual({ zstd: true });
    expect(restoreCodec(dump, { codec: 'gzip' })).toEqual({ zstd: false });
    expect(restoreCodec(dump, { codec: 'none' })).toEqual({ zstd: false });
    // Backups made before zstd have no codec in their metadata: pg_restore reads them as they are.
    expect(restoreCodec(dump, {})).toEqual({ zstd: false });
    expect(restoreCodec(zst, {})).toEqual({ zstd: true });
    expect(restoreCodec(dump, { codec: 'zstd' })).toEqual({
      problem: 'its key ends in .dump but its metadata says codec zstd',
    });
    expect(restoreCodec(zst, { codec: 'gzip' })).toEqual({
      problem: 'its key ends in .dump.zst but its metadata says codec gzip',
    });
  });
});

describe('backup metadata', () => {
  test('round-trips, URI-encoding what S3 would refuse', () => {
    const m = {
      workflowId: 'deploy/ai-saas 1.0.1 ✓',
      database: 'ai_saas_prod',
      version: '1.0.1',
      createdAt: at.toISOString(),
      tool: 'pg_dump (PostgreSQL) 15.18',
      sha256: SHA,
      bytes: 1234,
      rowCounts: { users: 1000 },
      codec: 'zstd' as const,
      level: 3,
    };
    const raw = encodeMetadata(m);
    expect(raw).toMatchObject({ codec: 'zstd', level: '3' });
    expect(Object.values(raw).every((v) => /^[\x20-\x7e]*$/.test(v))).toBe(true);
    expect(decodeMetadata(raw)).toEqual(m);
  });

  test('row counts that would overflow the 2 KB metadata budget are left out', () => {
    const rowCounts = Object.fromEntries(
      Array.from({ length: 100 }, (_, i) => [`table_with_a_long_name_${i}`, 123456789]),
    );
    const raw = encodeMetadata({
      workflowId: 'w',
      database: 'd',
      version: '1.0.0',
      createdAt: at.toISOString(),
      rowCounts,
    });
    expect(raw['row-counts']).toBeUndefined();
    expect(JSON.stringify(raw).length).toBeLessThan(2048);
  });

  test('malformed values decode as absent rather than wrong', () => {
    expect(
      decodeMetadata({
        sha256: 'xyz',
        bytes: '-1',
        'row-counts': '%7Bbad',
        'workflow-id': '%E0%A4%A',
        codec: 'lz4',
        level: 'x',
      }),
    ).toEqual({});
    expect(decodeMetadata(undefined)).toEqual({});
  });
});

describe('a verified backup', () => {
  test('has a checksum and a byte count equal to the stored size', () => {
    expect(headProblems({ contentLength: 10, metadata: { sha256: SHA, bytes: 10 } })).toEqual([]);
    expect(
      headProblems({ contentLength: 10, metadata: { sha256: SHA, bytes: 10 } }, { sha256: SHA, bytes: 10 }),
    ).toEqual([]);
  });

  test('an interrupted upload (no checksum yet) never looks verified', () => {
    expect(headProblems({ contentLength: 10, metadata: {} })).toEqual([
      'no sha256 metadata (the upload never finished)',
      'no byte count metadata (the upload never finished)',
    ]);
  });

  test('a size or checksum mismatch is named', () => {
    expect(headProblems({ contentLength: 9, metadata: { sha256: SHA, bytes: 10 } })).toEqual([
      'size 9 differs from the 10 bytes uploaded',
    ]);
    expect(
      headProblems(
        { contentLength: 10, metadata: { sha256: SHA, bytes: 10 } },
        { sha256: 'b'.repeat(64), bytes: 10 },
      )[0],
    ).toMatch(/^sha256 aaaaaaaaaaaa… differs/);
  });

  test('row counts after a restore are compared table by table', () => {
    expect(rowCountDifferences({ users: 3, messages: 5 }, { users: 3, messages: 5, extra: 1 })).toEqual([]);
    expect(rowCountDifferences({ users: 3, messages: 5 }, { users: 2, messages: null })).toEqual([
      'users 3 → 2',
      'messages 5 → missing',
    ]);
    expect(rowCountDifferences(undefined, { users: 2 })).toEqual([]);
  });
});

describe('the newest backup and its age', () => {
  const objects = [
    { key: 'postgres/ai_saas_prod_1.0.0_20261120T000000Z.dump', size: 10 },
    { key: 'postgres/ai_saas_prod_1.0.1_20261125T120000Z.dump', size: 20 },
    { key: 'postgres/ai_saas_prod_0.9.0_20261126T000000Z.dump.partial', size: 1 },
    { key: 'postgres/ai_saas_staging_9.9.9_20261126T020000Z.dump', size: 30 },
    { key: 'postgres/README', size: 1 },
  ];

  test('is chosen by the time in the key, for this database only', () => {
    expect(latestBackup(objects, 'postgres/', 'ai_saas_prod')).toEqual({
      key: objects[1].key,
      version: '1.0.1',
      createdAt: new Date('2026-11-25T12:00:00Z'),
      size: 20,
    });
    expect(latestBackup(objects, 'postgres/', 'nothing')).toBeUndefined();
  });

  test('older than the maximum fails with the runbook advice', () => {
    const latest = latestBackup(objects, 'postgres/', 'ai_saas_prod');
    const now = new Date('2026-11-26T03:00:00Z');
    expect(backupAgeProblem(latest, now, 26 * 3_600_000, 's3://b/postgres/')).toBeUndefined();
    expect(backupAgeProblem(latest, now, 10 * 3_600_000, 's3://b/postgres/')).toBe(
      `latest backup ${objects[1].key} is 15.0h old (maximum 10.0h): confirm backup schedule is running`,
    );
    expect(backupAgeProblem(undefined, now, 1, 's3://b/postgres/')).toBe(
      'no backup of the database in s3://b/postgres/: confirm backup schedule is running',
    );
  });

  test('ages read well', () => {
    expect([formatAge(5_000), formatAge(600_000), formatAge(3 * 3_600_000), formatAge(72 * 3_600_000)]).toEqual([
      '5s',
      '10m',
      '3.0h',
      '3.0d',
    ]);
  });
});

describe('PostgreSQL failures', () => {
  test('bad credentials and missing databases need a person; a server that is down or busy is retried', () => {
    expect(isTransientPgCode('28P01')).toBe(false);
    expect(isTransientPgCode('3D000')).toBe(false);
    expect(isTransientPgCode('42601')).toBe(false);
    expect(isTransientPgCode(undefined)).toBe(false);
    expect(isTransientPgCode('ECONNREFUSED')).toBe(true);
    expect(isTransientPgCode('57P03')).toBe(true);
    expect(isTransientPgCode('55P03')).toBe(true);
  });

  test.each([
    [
      'pg_dump: error: connection to server at "127.0.0.1", port 15432 failed: FATAL:  password authentication failed for user "app"',
      false,
    ],
    [
      'pg_dump: error: connection to server at "127.0.0.1", port 15432 failed: FATAL:  database "nope" does not exist',
      false,
    ],
    ['pg_dump: error: query failed: ERROR:  permission denied for table secrets', false],
    ['pg_dump: error: connection to server at "127.0.0.1", port 15432 failed: Connection refused', true],
    ['pg_dump: error: connection to server on socket "/tmp/.s.PGSQL.5432" failed: No such file or directory', true],
    [
      'pg_dump: error: connection to server at "127.0.0.1", port 15432 failed: FATAL:  the database system is starting up',
      true,
    ],
    ['psql:<stdin>:12: ERROR:  canceling statement due to lock timeout', true],
    ['pg_dump: error: Dumping the contents of table "x" failed: server closed the connection unexpectedly', true],
  ])('%s -> transient %s', (stderr, transient) => {
    expect(isTransientPgMessage(stderr)).toBe(transient);
  });

  test('tool output is summarised to its error lines', () => {
    expect(
      toolErrorSummary(
        'pg_dump: last built-in OID is 16383\npg_dump: error: query failed: ERROR:  permission denied for table s\npg_dump: detail: Query was: LOCK TABLE s\n',
      ),
    ).toBe('pg_dump: error: query failed: ERROR:  permission denied for table s');
    expect(toolErrorSummary('')).toBe('(no output)');
  });
});

test('a multipart copy covers every byte once', () => {
  expect(copyRanges(10, 4)).toEqual([
    { first: 0, last: 3 },
    { first: 4, last: 7 },
    { first: 8, last: 9 },
  ]);
  expect(copyRanges(8, 4)).toHaveLength(2);
  expect(copyRanges(0, 4)).toEqual([]);
  expect(() => copyRanges(1, 0)).toThrow();
});

test('the restore prelude empties the schemas the role owns and recreates public as PostgreSQL 15 makes it', () => {
  const sql = restorePreludeSql(60_000);
  expect(sql).toContain('SET LOCAL lock_timeout = 60000;');
  expect(sql).toContain("pg_has_role(nspowner, 'MEMBER')");
  expect(sql).toContain('CREATE SCHEMA public AUTHORIZATION pg_database_owner;');
  expect(sql).not.toMatch(/COMMIT|BEGIN;/);
});

describe('newestOtherBackup (issue 16 item 6)', () => {
  const at = (iso: string) => new Date(iso);
  test("counts another tool's dumps of the database by upload time, never this tool's keys or another database's", () => {
    const objects = [
      { key: 'postgres/ai_saas_prod_1.0.0_1764460800.sql.gz', lastModified: at('2026-11-30T00:00:00Z') },
      { key: 'postgres/ai_saas_prod-nightly.sql.gz', lastModified: at('2026-11-30T03:00:00Z') },
      { key: 'postgres/ai_saas_prod_1.0.1_20261130T040000Z.dump', lastModified: at('2026-11-30T04:00:00Z') },
      { key: 'postgres/ai_saas_prodx_1.sql.gz', lastModified: at('2026-11-30T05:00:00Z') },
      { key: 'postgres/old/ai_saas_prod_1.sql.gz', lastModified: at('2026-11-30T06:00:00Z') },
    ];
    expect(newestOtherBackup(objects, 'postgres/', 'ai_saas_prod')).toEqual({
      key: 'postgres/ai_saas_prod-nightly.sql.gz',
      createdAt: at('2026-11-30T03:00:00Z'),
    });
    expect(newestOtherBackup([], 'postgres/', 'ai_saas_prod')).toBeUndefined();
  });
});
