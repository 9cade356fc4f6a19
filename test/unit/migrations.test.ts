import {
  describeSqlError,
  orderMigrationFiles,
  planMigrations,
  runsInTransaction,
  sqlPosition,
  transactionControl,
} from '../../src/domain/migrations';

describe('migration files', () => {
  test('run in numeric order, then by name; other files are ignored', () => {
    expect(orderMigrationFiles(['10_c.sql', '0002_b.sql', 'README.md', '9_a.sql', '0002_a.sql', '.gitkeep'])).toEqual([
      '0002_a.sql',
      '0002_b.sql',
      '9_a.sql',
      '10_c.sql',
    ]);
  });

  test('a .sql file without a leading number is an error, not a silently skipped migration', () => {
    expect(() => orderMigrationFiles(['0001_a.sql', 'fix.sql', 'notes.sql'])).toThrow(
      'migration file names must start with a number and "_" (e.g. 0003_add_table.sql): fix.sql, notes.sql',
    );
  });

  test('a leading deploy:no-transaction comment runs the file outside a transaction', () => {
    expect(runsInTransaction('CREATE TABLE t (id int);')).toBe(true);
    expect(runsInTransaction('-- deploy:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (id);')).toBe(false);
    expect(
      runsInTransaction('-- Speeds up lookups.\n\n--   deploy:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (id);'),
    ).toBe(false);
    expect(runsInTransaction('CREATE TABLE t (id int);\n-- deploy:no-transaction\n')).toBe(true);
  });
});

describe('planning', () => {
  const f = (filename: string, checksum = `sum-${filename}`) => ({ filename, checksum });

  test('pending files are the unrecorded ones, in folder order', () => {
    const plan = planMigrations([f('0001_a.sql'), f('0002_b.sql'), f('0003_c.sql')], [f('0001_a.sql')]);
    expect(plan).toEqual({ pending: ['0002_b.sql', '0003_c.sql'], changed: [], missing: [], outOfOrder: [] });
  });

  test('an applied file whose content changed is named with both checksums', () => {
    const plan = planMigrations([f('0001_a.sql', 'new'), f('0002_b.sql')], [f('0001_a.sql', 'old')]);
    expect(plan.changed).toEqual([{ filename: '0001_a.sql', recorded: 'old', current: 'new' }]);
  });

  test('recorded files absent from the release and files that arrive out of order are reported', () => {
    const plan = planMigrations(
      [f('0001_a.sql'), f('0002_b.sql'), f('0003_c.sql')],
      [f('0000_gone.sql'), f('0001_a.sql'), f('0003_c.sql')],
    );
    expect(plan.missing).toEqual(['0000_gone.sql']);
    expect(plan.outOfOrder).toEqual(['0002_b.sql']);
    expect(plan.pending).toEqual(['0002_b.sql']);
  });

  test('nothing to do on an up-to-date database', () => {
    expect(planMigrations([f('0001_a.sql')], [f('0001_a.sql')]).pending).toEqual([]);
    expect(planMigrations([], []).pending).toEqual([]);
  });
});

describe('error positions', () => {
  const sql = 'CREATE TABLE a (id int);\n\nCREATE TABLEE b (id int);\n';

  test("PostgreSQL's character position becomes line:column", () => {
    expect(sqlPosition(sql, '34')).toEqual({ line: 3, column: 8 });
    expect(sqlPosition(sql, 1)).toEqual({ line: 1, column: 1 });
    expect(sqlPosition(sql, undefined)).toBeUndefined();
    expect(sqlPosition(sql, '0')).toBeUndefined();
    expect(sqlPosition(sql, 1000)).toBeUndefined();
  });

  test('characters, not UTF-16 units, are counted', () => {
    expect(sqlPosition('-- 🙂 é\nSELEC 1;', 8)).toEqual({ line: 2, column: 1 });
  });

  test('the message names the file and where in it', () => {
    expect(
      describeSqlError('0003_x.sql', sql, {
        message: 'syntax error at or near "TABLEE"',
        position: '34',
        code: '42601',
      }),
    ).toBe('0003_x.sql:3:8: syntax error at or near "TABLEE" (SQLSTATE 42601)');
    expect(describeSqlError('0003_x.sql', sql, { message: 'relation "t" does not exist' })).toBe(
      '0003_x.sql: relation "t" does not exist',
    );
  });
});

describe('transactionControl (issue 16 item 7)', () => {
  test.each([
    ['CREATE TABLE a (x int);\nCOMMIT;\nCREATE TABLE b (y int);', 'COMMIT@2'],
    ["INSERT INTO t VALUES ('COMMIT;');", ''],
    ['DO $$ BEGIN PERFORM 1; END $$;', ''],
    ['CREATE FUNCTION f() RETURNS int AS $body$ BEGIN RETURN 1; END; $body$ LANGUAGE plpgsql;\nbegin;', 'BEGIN@2'],
    ['-- COMMIT;\n/* COMMIT;\n */ SELECT 1;', ''],
    ['SAVEPOINT s; ROLLBACK TO SAVEPOINT s; rollback;', 'ROLLBACK@1'],
    ['SELECT CASE WHEN true THEN 1 END;\nstart   transaction;', 'START TRANSACTION@2'],
    ['SELECT "commit" FROM x; END;', 'END@1'],
    ['SELECT 1; BEGINNING;', ''],
  ])('%j -> %s', (sql, want) => {
    expect(
      transactionControl(sql)
        .map((f) => `${f.statement}@${f.line}`)
        .join(','),
    ).toBe(want);
  });
});
