import { devServerDynamicConfigArgs, dynamicConfigValues } from '../../scripts/temporal-dynamic-config';

test("the project's dynamic config reaches every dev server as flags: the transfer queue's read limit among them", () => {
  const values = dynamicConfigValues();
  expect(values['history.transferProcessorMaxPollRPS']).toBe(500);
  expect(values['system.forceSearchAttributesCacheRefreshOnRead']).toBe(true);
  const args = devServerDynamicConfigArgs();
  expect(args).toContain('history.transferProcessorMaxPollRPS=500');
  expect(args.filter((a) => a === '--dynamic-config-value')).toHaveLength(Object.keys(values).length);
});

test("a test's own settings win over the file; server defaults leave the file out", () => {
  expect(devServerDynamicConfigArgs({ 'history.transferProcessorMaxPollRPS': 20 })).toContain(
    'history.transferProcessorMaxPollRPS=20',
  );
  expect(devServerDynamicConfigArgs({ 'system.enableActivityEagerExecution': true }, {})).toEqual([
    '--dynamic-config-value',
    'system.enableActivityEagerExecution=true',
  ]);
});

test('only settings without constraints apply to a dev server; a malformed file is refused', () => {
  const text = [
    'a.b:',
    '  - value: 1',
    '    constraints: { namespace: x }',
    '  - value: 2',
    'c.d:',
    '  - value: "s"',
    '    constraints: {}',
  ].join('\n');
  expect(dynamicConfigValues(text)).toEqual({ 'a.b': 2, 'c.d': 's' });
  expect(() => dynamicConfigValues('a.b: 3')).toThrow(/a\.b is not a list of \{value, constraints\}/);
});
