/**
 * The audit ledger's pure side: canonical JSON, the keys, and the chain
 * check (every way an object can be edited, deleted, moved or added). The
 * facts the workflows record: audit-facts.test.ts.
 */
import { createHash } from 'node:crypto';
import {
  canonicalJson,
  eventKey,
  GENESIS,
  headKey,
  isChainKey,
  parseAuditRecord,
  recordKey,
  seqOfKey,
  verifyChain,
  type AuditRecord,
  type LedgerObjects,
} from '../../src/domain/audit';
import { auditSchema, auditSettings } from '../../src/domain/config-audit';
import { testConfig } from '../helpers/plan';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const PREFIX = 'audit/';
const ENV = 'production';

/** A ledger of `n` records as the appender writes it: canonical bodies, each linked to the one before, and HEAD. */
function ledger(n: number, environment = ENV): { objects: LedgerObjects['objects']; bodies: string[] } {
  const objects: LedgerObjects['objects'] = [];
  const bodies: string[] = [];
  let prev = GENESIS;
  for (let seq = 1; seq <= n; seq++) {
    const record: AuditRecord = {
      v: 1,
      seq,
      environment,
      workflowId: `deploy-${environment}-1.0.${seq}`,
      runId: `run-${seq}`,
      event: 'deployment',
      eventId: 'deployment',
      at: `2026-01-01T00:00:0${seq % 10}.000Z`,
      recordedAt: '2026-01-01T00:00:10.000Z',
      facts: { requestedBy: 'alice', outcome: 'succeeded' },
      prev,
    };
    const body = canonicalJson(record);
    bodies.push(body);
    objects.push({ key: recordKey(PREFIX, environment, seq), body });
    prev = sha256(body);
  }
  if (n > 0)
    objects.push({
      key: headKey(PREFIX, environment),
      body: JSON.stringify({ seq: n, hash: prev, key: recordKey(PREFIX, environment, n) }),
    });
  return { objects, bodies };
}

const verify = (objects: LedgerObjects['objects']) =>
  verifyChain({ prefix: PREFIX, environment: ENV, objects }, sha256);
const key = (seq: number) => recordKey(PREFIX, ENV, seq);
const edit = (body: string, f: (r: AuditRecord) => void) => {
  const r = JSON.parse(body) as AuditRecord;
  f(r);
  return canonicalJson(r);
};
const replace = (objects: LedgerObjects['objects'], k: string, body: string | undefined) =>
  objects.map((o) => (o.key === k ? { key: k, body } : o));
const without = (objects: LedgerObjects['objects'], k: string) => objects.filter((o) => o.key !== k);

describe('canonical JSON', () => {
  test('sorted keys at every depth, no whitespace, undefined left out, arrays in order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, undefined, 'x'], c: null }, e: undefined })).toBe(
      '{"a":{"c":null,"d":[3,null,"x"]},"b":1}',
    );
  });

  test('the same value in another key order gives the same bytes, and parsing them back gives them again', () => {
    const a = { z: 'ü\n"', y: [1.5, -0, 1e21], x: { q: true, p: false } };
    const b = { x: { p: false, q: true }, y: [1.5, 0, 1e21], z: 'ü\n"' };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalJson(JSON.parse(canonicalJson(a)))).toBe(canonicalJson(a));
  });

  test('non-finite numbers are null, as in JSON; what is not JSON is refused', () => {
    expect(canonicalJson([NaN, Infinity])).toBe('[null,null]');
    expect(() => canonicalJson(BigInt(1))).toThrow(/bigint is not JSON/);
  });
});

describe('keys', () => {
  test('records by a 10-digit seq, HEAD, and the event index by workflow, run and event', () => {
    expect(recordKey(PREFIX, ENV, 12)).toBe('audit/production/0000000012.json');
    expect(headKey(PREFIX, ENV)).toBe('audit/production/HEAD.json');
    expect(eventKey(PREFIX, ENV, 'deploy-production-1.0.1', 'r1', 'approval-1')).toBe(
      'audit/production/events/deploy-production-1.0.1/r1/approval-1.json',
    );
    expect(seqOfKey(PREFIX, ENV, 'audit/production/0000000012.json')).toBe(12);
    for (const k of ['audit/production/12.json', 'audit/production/0000000000.json', 'audit/staging/0000000001.json'])
      expect(seqOfKey(PREFIX, ENV, k)).toBeUndefined();
    expect(isChainKey(PREFIX, ENV, 'audit/production/events/x/r/y.json')).toBe(false);
  });
});

describe('verifyChain', () => {
  test('an empty ledger verifies with no records', () => {
    expect(verify([])).toEqual({ environment: ENV, records: 0, ok: true, unanchored: 0, foreign: [] });
  });

  test('an untouched chain verifies, its tail the last record', () => {
    const { objects } = ledger(5);
    const r = verify(objects);
    expect(r).toMatchObject({ ok: true, records: 5, unanchored: 0, tail: { seq: 5, key: key(5) } });
    expect(r.tail!.hash).toBe(sha256(objects[4].body!));
  });

  test('an edit of a middle record names it (its sha256 no longer matches the next prev)', () => {
    const { objects, bodies } = ledger(5);
    const r = verify(
      replace(
        objects,
        key(3),
        edit(bodies[2], (x) => (x.facts.outcome = 'rolled-back')),
      ),
    );
    expect(r).toMatchObject({ ok: false, records: 2, break: { key: key(3), problem: 'changed' } });
    expect(r.break!.message).toContain(`record ${key(3)} was changed`);
  });

  test("an edit of a record's own prev names that record, not the one before", () => {
    const { objects, bodies } = ledger(5);
    const r = verify(
      replace(
        objects,
        key(3),
        edit(bodies[2], (x) => (x.prev = 'f'.repeat(64))),
      ),
    );
    expect(r.break).toMatchObject({ key: key(3), problem: 'changed' });
  });

  test('an edit of the first record, and of its prev, name it', () => {
    const { objects, bodies } = ledger(3);
    expect(
      verify(
        replace(
          objects,
          key(1),
          edit(bodies[0], (x) => (x.at = 'x')),
        ),
      ).break?.key,
    ).toBe(key(1));
    expect(
      verify(
        replace(
          objects,
          key(1),
          edit(bodies[0], (x) => (x.prev = 'a'.repeat(64))),
        ),
      ).break?.key,
    ).toBe(key(1));
  });

  test('an edit of the last record shows against HEAD and names it', () => {
    const { objects, bodies } = ledger(4);
    const r = verify(
      replace(
        objects,
        key(4),
        edit(bodies[3], (x) => (x.facts.requestedBy = 'mallory')),
      ),
    );
    expect(r.break).toMatchObject({ key: key(4), problem: 'changed' });
    expect(r.break!.message).toMatch(/no longer matches audit\/production\/HEAD.json/);
  });

  test('whitespace alone is a change: the hash is of the bytes', () => {
    const { objects, bodies } = ledger(3);
    expect(verify(replace(objects, key(2), `${bodies[1]}\n`)).break?.key).toBe(key(2));
  });

  test('a body that is not a record, or not JSON, is named unreadable', () => {
    const { objects } = ledger(3);
    expect(verify(replace(objects, key(2), 'hello')).break).toMatchObject({ key: key(2), problem: 'unreadable' });
    expect(verify(replace(objects, key(2), '{"v":1}')).break).toMatchObject({ key: key(2), problem: 'unreadable' });
  });

  test('a deleted middle record is named missing', () => {
    const { objects } = ledger(5);
    const r = verify(without(objects, key(3)));
    expect(r).toMatchObject({ ok: false, records: 2, break: { key: key(3), problem: 'missing' } });
  });

  test('a deleted first record is named', () => {
    expect(verify(without(ledger(3).objects, key(1))).break).toMatchObject({ key: key(1), problem: 'missing' });
  });

  test('a deleted last record is named through HEAD', () => {
    const r = verify(without(ledger(4).objects, key(4)));
    expect(r.break).toMatchObject({ key: key(4), problem: 'missing' });
    expect(r.break!.message).toMatch(/HEAD.json names seq 4/);
  });

  test('every record deleted, HEAD kept: the first is named', () => {
    const { objects } = ledger(3);
    expect(verify(objects.filter((o) => o.key === headKey(PREFIX, ENV))).break?.key).toBe(key(1));
  });

  test('a record that vanished between the listing and the read counts as deleted', () => {
    expect(verify(replace(ledger(3).objects, key(2), undefined)).break).toMatchObject({
      key: key(2),
      problem: 'missing',
    });
  });

  test('two records swapped (reordered) are named where they do not belong', () => {
    const { objects, bodies } = ledger(4);
    const swapped = replace(replace(objects, key(2), bodies[2]), key(3), bodies[1]);
    expect(verify(swapped).break).toMatchObject({ key: key(2), problem: 'misplaced' });
  });

  test("another environment's record copied in is misplaced", () => {
    const { objects } = ledger(2);
    const staging = ledger(3, 'staging').bodies[2];
    expect(verify([...objects, { key: key(3), body: staging }]).break).toMatchObject({
      key: key(3),
      problem: 'misplaced',
    });
  });

  test('foreign objects under the prefix are listed, not counted; the event index is not part of the chain', () => {
    const { objects } = ledger(2);
    const r = verify([
      ...objects,
      { key: 'audit/production/notes.txt', body: 'hi' },
      { key: 'audit/production/12.json', body: '{}' },
      { key: 'audit/production/events/deploy-x/r/deployment.json', body: '{"seq":1}' },
    ]);
    expect(r).toMatchObject({
      ok: true,
      records: 2,
      foreign: ['audit/production/notes.txt', 'audit/production/12.json'],
    });
  });

  test('a HEAD that lags (an append interrupted before it moved HEAD) verifies, the records after it unanchored', () => {
    const { objects, bodies } = ledger(4);
    const lagging = replace(
      objects,
      headKey(PREFIX, ENV),
      JSON.stringify({ seq: 2, hash: sha256(bodies[1]), key: key(2) }),
    );
    expect(verify(lagging)).toMatchObject({ ok: true, records: 4, unanchored: 2, tail: { seq: 4 } });
  });

  test('a missing HEAD, or one that is not a head, breaks the chain', () => {
    const { objects } = ledger(2);
    const h = headKey(PREFIX, ENV);
    expect(verify(without(objects, h)).break).toMatchObject({ key: h, problem: 'missing' });
    expect(verify(replace(objects, h, '{"seq":2}')).break).toMatchObject({ key: h, problem: 'unreadable' });
    expect(verify(replace(objects, h, JSON.stringify({ seq: 2, hash: GENESIS, key: key(1) }))).break?.key).toBe(h);
  });
});

describe('parseAuditRecord', () => {
  test('names what is wrong', () => {
    const body = ledger(1).bodies[0];
    expect(parseAuditRecord(body)).toHaveProperty('record.seq', 1);
    expect(parseAuditRecord(edit(body, (r) => ((r as { event: string }).event = 'x')))).toEqual({
      problem: 'its event is not an audit event',
    });
    expect(parseAuditRecord(edit(body, (r) => (r.prev = 'xyz')))).toEqual({ problem: 'its prev is not a sha256' });
  });
});

describe('config', () => {
  test('on by default, in the backup bucket under audit/, unless the audit section says otherwise', () => {
    expect(auditSettings(testConfig())).toEqual({ enabled: true, bucket: 'ai-saas-backups', prefix: 'audit/' });
    expect(auditSettings({ ...testConfig(), audit: auditSchema.parse({ bucket: 'ledger-bucket' }) }).bucket).toBe(
      'ledger-bucket',
    );
  });

  test('a prefix must end in "/" and stay a plain key path', () => {
    for (const prefix of ['audit', '/audit/', '../audit/', 'a b/'])
      expect(auditSchema.safeParse({ prefix }).success).toBe(false);
    expect(auditSchema.safeParse({ prefix: 'ledgers/audit/' }).success).toBe(true);
  });
});
