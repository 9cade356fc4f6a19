import { judgeValue } from '../../src/domain/analysis';
import {
  classifyQueryResponse,
  classifyRangeResponse,
  escapePromString,
  parseSampleValue,
  placeholdersOf,
  renderQuery,
  TemplateError,
} from '../../src/domain/promql';

const vector = (...values: string[]) => ({
  status: 'success',
  data: {
    resultType: 'vector',
    result: values.map((v, i) => ({ metric: { i: String(i) }, value: [1700000000.123, v] })),
  },
});

describe('renderQuery', () => {
  const tpl =
    'sum(rate(http_requests_total{track="{{track}}",version="{{version}}",namespace="{{ namespace }}"}[{{window}}]))';

  test('fills every placeholder', () => {
    expect(renderQuery(tpl, { track: 'canary', version: '1.0.1', namespace: 'ai-saas', window: '1m' })).toBe(
      'sum(rate(http_requests_total{track="canary",version="1.0.1",namespace="ai-saas"}[1m]))',
    );
  });

  test('escapes values so they cannot change the selector', () => {
    const q = renderQuery(tpl, { track: 'stable', version: '1"} or vector(1) #', namespace: 'a\\b', window: '30s' });
    expect(q).toContain('version="1\\"} or vector(1) #"');
    expect(q).toContain('namespace="a\\\\b"');
    expect(escapePromString('x\ny')).toBe('x\\ny');
  });

  test('a {{version}} nobody knows is an error, not an empty label', () => {
    expect(() => renderQuery(tpl, { track: 'stable', namespace: 'ai-saas', window: '1m' })).toThrow(TemplateError);
    expect(() => renderQuery(tpl, { track: 'stable', namespace: 'ai-saas', window: '1m' })).toThrow(
      'the stable version is not known',
    );
  });

  test('a query without {{version}} needs no version', () => {
    expect(renderQuery('up{track="{{track}}"}', { track: 'stable', namespace: 'x', window: '1m' })).toBe(
      'up{track="stable"}',
    );
  });

  test('unknown placeholders and bad windows are refused', () => {
    expect(() => renderQuery('x{a="{{service}}"}', { track: 'stable', namespace: 'x', window: '1m' })).toThrow(
      'unknown placeholder {{service}}',
    );
    expect(() =>
      renderQuery('x[{{window}}]', { track: 'stable', namespace: 'x', window: '1m] or vector(0) #' }),
    ).toThrow('window must look like');
  });

  test('placeholdersOf lists them once', () => {
    expect(placeholdersOf('{{track}} {{track}} {{window}}')).toEqual(['track', 'window']);
  });
});

describe('parseSampleValue', () => {
  test.each([
    ['0.25', 0.25],
    ['1e-3', 0.001],
    ['NaN', Number.NaN],
    ['+Inf', Number.POSITIVE_INFINITY],
    ['-Inf', Number.NEGATIVE_INFINITY],
  ])('%s', (raw, expected) => expect(parseSampleValue(raw)).toBe(expected));

  test.each([[''], ['abc'], [3], [null]])('%p is not a value', (raw) => expect(parseSampleValue(raw)).toBeUndefined());
});

describe('classifyQueryResponse: only one finite number can ever pass', () => {
  test('one series gives its value', () => {
    expect(classifyQueryResponse(200, vector('0.004'))).toEqual({ kind: 'value', value: 0.004 });
  });

  test('a scalar gives its value', () => {
    expect(
      classifyQueryResponse(200, { status: 'success', data: { resultType: 'scalar', result: [1, '12'] } }),
    ).toEqual({ kind: 'value', value: 12 });
  });

  test('an empty vector is no data', () => {
    const r = classifyQueryResponse(200, vector());
    expect(r).toEqual({ kind: 'none', reason: expect.stringContaining('no data') });
  });

  test('several series are refused rather than guessed at', () => {
    const r = classifyQueryResponse(200, vector('0.1', '0.2'));
    expect(r).toEqual({ kind: 'none', reason: expect.stringContaining('2 series') });
  });

  test('a query error says what Prometheus said', () => {
    const r = classifyQueryResponse(400, {
      status: 'error',
      errorType: 'bad_data',
      error: 'parse error at char 5: unexpected "}"',
    });
    expect(r).toEqual({
      kind: 'none',
      reason: 'query error (bad_data): parse error at char 5: unexpected "}"',
      error: true,
    });
  });

  test('non-JSON, missing data, matrices and malformed samples are none', () => {
    expect(classifyQueryResponse(502, 'Bad Gateway').kind).toBe('none');
    expect(classifyQueryResponse(200, { status: 'success' }).kind).toBe('none');
    expect(classifyQueryResponse(200, { status: 'success', data: { resultType: 'matrix', result: [] } }).kind).toBe(
      'none',
    );
    expect(
      classifyQueryResponse(200, {
        status: 'success',
        data: { resultType: 'vector', result: [{ metric: {}, value: [1] }] },
      }).kind,
    ).toBe('none');
    expect(
      classifyQueryResponse(200, {
        status: 'success',
        data: { resultType: 'vector', result: [{ metric: {}, value: [1, 'x'] }] },
      }).kind,
    ).toBe('none');
  });

  test.each([['NaN'], ['+Inf'], ['-Inf']])('%s passes through as a value that judgeValue keeps inconclusive', (raw) => {
    const r = classifyQueryResponse(200, vector(raw));
    expect(r.kind).toBe('value');
    if (r.kind === 'value') expect(judgeValue(r.value, { max: 0.01 }).outcome).toBe('inconclusive');
  });
});

describe('classifyRangeResponse: the samples of one series for compare', () => {
  const matrix = (result: unknown[]) => ({ status: 'success', data: { resultType: 'matrix', result } });

  test('one series gives its finite samples, oldest first; NaN and ±Inf are left out', () => {
    const r = classifyRangeResponse(
      200,
      matrix([
        {
          metric: {},
          values: [
            [1, '0.25'],
            [2, 'NaN'],
            [3, '0.5'],
            [4, '+Inf'],
            [5, '0.75'],
          ],
        },
      ]),
    );
    expect(r).toEqual({ kind: 'samples', values: [0.25, 0.5, 0.75] });
  });

  test('no series, or no finite sample, is no data (not an error)', () => {
    expect(classifyRangeResponse(200, matrix([]))).toEqual({
      kind: 'none',
      reason: 'no data (no matching series in the window)',
    });
    expect(classifyRangeResponse(200, matrix([{ values: [[1, 'NaN']] }]))).toMatchObject({
      kind: 'none',
      reason: expect.stringContaining('no finite sample'),
    });
  });

  test('several series are refused; a query error or a body that is not a matrix is an error', () => {
    expect(classifyRangeResponse(200, matrix([{ values: [] }, { values: [] }]))).toMatchObject({
      kind: 'none',
      reason: expect.stringContaining('2 series'),
    });
    expect(classifyRangeResponse(400, { status: 'error', errorType: 'bad_data', error: 'bad' })).toMatchObject({
      kind: 'none',
      error: true,
    });
    expect(classifyRangeResponse(200, { status: 'success', data: { resultType: 'vector', result: [] } })).toMatchObject(
      { kind: 'none', error: true },
    );
  });
});
