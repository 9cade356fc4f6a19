import { orderWaves, recordsByWave, wavesFor } from '../../src/domain/waves';

const svc = (name: string, ...dependsOn: string[]) => ({ name, dependsOn });

test('without dependsOn every service is in one wave, in config order', () => {
  expect(orderWaves([svc('a'), svc('b'), svc('c')])).toEqual({ ok: true, waves: [['a', 'b', 'c']] });
});

test('a service goes in the wave after the last of its dependencies', () => {
  const order = orderWaves([svc('gateway', 'auth', 'chat'), svc('auth'), svc('chat', 'auth'), svc('frontend')]);
  expect(order).toEqual({ ok: true, waves: [['auth', 'frontend'], ['chat'], ['gateway']] });
});

test('a cycle is refused, naming it from a service on it', () => {
  const order = orderWaves([svc('a', 'c'), svc('b', 'a'), svc('c', 'b'), svc('d')]);
  expect(order.ok).toBe(false);
  if (order.ok) return;
  expect(order.cycle).toEqual(['a', 'c', 'b', 'a']);
  expect(order.error).toBe('dependsOn has a cycle: a → c → b → a');
});

test('a service that depends on itself is a cycle of one', () => {
  const order = orderWaves([svc('a', 'a')]);
  expect(order).toMatchObject({ ok: false, error: 'dependsOn has a cycle: a → a' });
});

test('a cycle behind a service that only waits on it is still named without that service', () => {
  const order = orderWaves([svc('x', 'a'), svc('a', 'b'), svc('b', 'a')]);
  expect(order).toMatchObject({ ok: false, cycle: ['a', 'b', 'a'] });
});

test('an unknown dependency is refused with the service that names it', () => {
  expect(orderWaves([svc('a', 'nope'), svc('b')])).toMatchObject({
    ok: false,
    error: 'dependsOn names a service the config does not have: a → nope',
  });
});

test('a deployment of some services keeps their order and drops the waves left empty', () => {
  expect(wavesFor([['auth', 'frontend'], ['chat'], ['gateway']], ['gateway', 'frontend'])).toEqual([
    ['frontend'],
    ['gateway'],
  ]);
});

test('a rollback restores the records wave by wave, last wave first', () => {
  const plan = {
    waves: [['auth'], ['chat', 'gateway']],
    services: [
      { name: 'auth', deployment: 'auth-d' },
      { name: 'chat', deployment: 'chat-d' },
      { name: 'gateway', deployment: 'gw-d' },
    ],
  };
  const records = [{ deployment: 'auth-d' }, { deployment: 'chat-d' }, { deployment: 'gw-d' }, { deployment: 'odd' }];
  expect(recordsByWave(plan, records)).toEqual([
    { wave: 2, records: [{ deployment: 'chat-d' }, { deployment: 'gw-d' }, { deployment: 'odd' }] },
    { wave: 1, records: [{ deployment: 'auth-d' }] },
  ]);
});
