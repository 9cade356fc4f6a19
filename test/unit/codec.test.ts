/**
 * Payload encryption without a server: round trips, tampering and wrong keys
 * are decode errors that say what happened, keys rotate, and the codec
 * server speaks the Temporal UI's JSON protocol with CORS and a bearer token.
 */
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { randomBytes } from 'node:crypto';
import { request, type Server } from 'node:http';
import {
  CodecConfigError,
  CodecError,
  codecFromEnv,
  dataConverterFromEnv,
  EncryptionCodec,
  ENCODING_ENCRYPTED,
  keyFingerprint,
  payloadToJson,
} from '../../src/codec';
import { codecServerSettings, corsOriginsFromEnv, createCodecServer, startCodecServer } from '../../src/codec-server';

const key = () => randomBytes(32).toString('base64');
const text = (u: Uint8Array | null | undefined) => Buffer.from(u ?? new Uint8Array()).toString('utf8');
const codecOf = (env: Record<string, string>) => codecFromEnv(env)!;
const MARKER = 'marker-7f3a-plaintext';
const values = [{ version: '1.0.1', requestedBy: MARKER }, 'text', 42, null, [1, 2, 3], { nested: { deep: [MARKER] } }];
const toPayloads = () => values.map((v) => defaultPayloadConverter.toPayload(v));

test('round trip: every value comes back exactly, and the encrypted form hides it', async () => {
  const codec = codecOf({ DEPLOY_CODEC_KEY: key(), DEPLOY_CODEC_KEY_ID: 'k1' });
  const plain = toPayloads();
  const enc = await codec.encode(plain);
  expect(enc).toHaveLength(plain.length);
  for (const p of enc) {
    expect(text(p.metadata?.encoding)).toBe(ENCODING_ENCRYPTED);
    expect(text(p.metadata?.['encryption-key-id'])).toBe('k1');
    expect(text(p.data)).not.toContain(MARKER);
    expect(Buffer.from(p.data!).toString('base64')).not.toContain(Buffer.from(MARKER).toString('base64'));
  }
  // A fresh IV each time: the same value never encrypts to the same bytes.
  const again = await codec.encode(plain);
  expect(Buffer.from(again[0].data!).equals(Buffer.from(enc[0].data!))).toBe(false);
  const dec = await codec.decode(enc);
  expect(dec.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual(values);
  expect(dec.map((p) => text(p.metadata?.encoding))).toEqual(plain.map((p) => text(p.metadata?.encoding)));
  await expect(codec.encode([])).resolves.toEqual([]);
});

test('payloads that were never encrypted pass through decode (switching the codec on needs no migration)', async () => {
  const codec = codecOf({ DEPLOY_CODEC_KEY: key() });
  const plain = toPayloads();
  expect(await codec.decode(plain)).toEqual(plain);
});

test.each([
  ['a flipped bit in the ciphertext', (p: Payload) => ({ ...p, data: flip(p.data!, 20) })],
  ['a flipped bit in the IV', (p: Payload) => ({ ...p, data: flip(p.data!, 0) })],
  ['a flipped bit in the tag', (p: Payload) => ({ ...p, data: flip(p.data!, p.data!.length - 1) })],
  ['a truncated payload', (p: Payload) => ({ ...p, data: p.data!.subarray(0, p.data!.length - 1) })],
  [
    'the key id swapped for another known one',
    (p: Payload) => ({ ...p, metadata: { ...p.metadata, 'encryption-key-id': Buffer.from('old') } }),
  ],
])('tampering is a decode error, never a silently wrong value: %s', async (_what, tamper) => {
  const codec = codecOf({ DEPLOY_CODEC_KEY: key(), DEPLOY_CODEC_KEY_ID: 'k1', DEPLOY_CODEC_OLD_KEYS: `old:${key()}` });
  const [enc] = await codec.encode([defaultPayloadConverter.toPayload({ by: 'alice' })]);
  const err = await codec.decode([tamper(enc)]).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CodecError);
  expect((err as Error).message).toMatch(/authentication failed: the payload was altered|too short/);
});

function flip(data: Uint8Array, at: number): Uint8Array {
  const copy = Buffer.from(data);
  copy[at] ^= 1;
  return copy;
}

test('too short or without a key id: a clear error', async () => {
  const codec = codecOf({ DEPLOY_CODEC_KEY: key(), DEPLOY_CODEC_KEY_ID: 'k1' });
  const [enc] = await codec.encode([defaultPayloadConverter.toPayload('x')]);
  await expect(codec.decode([{ ...enc, data: new Uint8Array(5) }])).rejects.toThrow(/5 bytes is too short/);
  await expect(codec.decode([{ ...enc, metadata: { encoding: enc.metadata!.encoding } }])).rejects.toThrow(
    /no "encryption-key-id"/,
  );
});

test('a wrong key: an unknown key id names the id and what to set; a different key under the same id says so', async () => {
  const writer = codecOf({ DEPLOY_CODEC_KEY: key() });
  const [enc] = await writer.encode([defaultPayloadConverter.toPayload('secret plan')]);
  const reader = codecOf({ DEPLOY_CODEC_KEY: key() });
  const err = (await reader.decode([enc]).catch((e: unknown) => e)) as Error;
  expect(err).toBeInstanceOf(CodecError);
  expect(err.message).toContain(`encrypted with key id "${writer.keyId}", which this process does not have`);
  expect(err.message).toContain('DEPLOY_CODEC_OLD_KEYS');

  const sameId = codecOf({ DEPLOY_CODEC_KEY: key(), DEPLOY_CODEC_KEY_ID: writer.keyId });
  await expect(sameId.decode([enc])).rejects.toThrow(
    `the key registered under "${writer.keyId}" is not the one it was encrypted with`,
  );
  // In a batch, the message says which payload.
  await expect(reader.decode([defaultPayloadConverter.toPayload('ok'), enc])).rejects.toThrow(/payload 2 of 2/);
});

test('key rotation: old payloads decrypt with a retired key, new ones use the new key', async () => {
  const k1 = key();
  const k2 = key();
  const before = codecOf({ DEPLOY_CODEC_KEY: k1, DEPLOY_CODEC_KEY_ID: '2025-01' });
  const [old] = await before.encode([defaultPayloadConverter.toPayload({ v: 'old' })]);
  const after = codecOf({
    DEPLOY_CODEC_KEY: k2,
    DEPLOY_CODEC_KEY_ID: '2025-06',
    DEPLOY_CODEC_OLD_KEYS: `2025-01:${k1}`,
  });
  const [fresh] = await after.encode([defaultPayloadConverter.toPayload({ v: 'new' })]);
  expect(text(fresh.metadata?.['encryption-key-id'])).toBe('2025-06');
  expect((await after.decode([old, fresh])).map((p) => defaultPayloadConverter.fromPayload(p))).toEqual([
    { v: 'old' },
    { v: 'new' },
  ]);
  // The process that only knows the old key cannot read the new payload, and says which key it needs.
  await expect(before.decode([fresh])).rejects.toThrow(
    /key id "2025-06", which this process does not have \(known: 2025-01\)/,
  );
  // Bare old keys are known by their fingerprint, the default id.
  const bare = codecOf({ DEPLOY_CODEC_KEY: k1 });
  const [byPrint] = await bare.encode([defaultPayloadConverter.toPayload(1)]);
  const rotated = codecOf({ DEPLOY_CODEC_KEY: k2, DEPLOY_CODEC_OLD_KEYS: ` ${k1} , 2025-01:${k1}` });
  expect(text(byPrint.metadata?.['encryption-key-id'])).toBe(keyFingerprint(Buffer.from(k1, 'base64')));
  expect(defaultPayloadConverter.fromPayload((await rotated.decode([byPrint]))[0])).toBe(1);
});

test('unset: no codec and no dataConverter, so nothing changes', () => {
  expect(codecFromEnv({})).toBeUndefined();
  expect(codecFromEnv({ DEPLOY_CODEC_KEY: '  ' })).toBeUndefined();
  expect(dataConverterFromEnv({})).toEqual({});
  const set = dataConverterFromEnv({ DEPLOY_CODEC_KEY: key() });
  expect('dataConverter' in set && set.dataConverter.payloadCodecs[0]).toBeInstanceOf(EncryptionCodec);
});

test.each([
  [
    'a key that is not base64',
    { DEPLOY_CODEC_KEY: 'not base64!' },
    /DEPLOY_CODEC_KEY must be 32 random bytes in base64.*not base64/,
  ],
  ['a 16-byte key', { DEPLOY_CODEC_KEY: randomBytes(16).toString('base64') }, /DEPLOY_CODEC_KEY .*decodes to 16 bytes/],
  [
    'a key id with a space',
    { DEPLOY_CODEC_KEY: randomBytes(32).toString('base64'), DEPLOY_CODEC_KEY_ID: 'a b' },
    /DEPLOY_CODEC_KEY_ID: key id "a b" must be/,
  ],
  [
    'a short old key',
    { DEPLOY_CODEC_KEY: randomBytes(32).toString('base64'), DEPLOY_CODEC_OLD_KEYS: 'old:short' },
    /DEPLOY_CODEC_OLD_KEYS entry 1 must be 32 random bytes/,
  ],
  [
    'two keys under one id',
    {
      DEPLOY_CODEC_KEY: randomBytes(32).toString('base64'),
      DEPLOY_CODEC_KEY_ID: 'k',
      DEPLOY_CODEC_OLD_KEYS: `k:${randomBytes(32).toString('base64')}`,
    },
    /key id "k" is already used by another key/,
  ],
  [
    'old keys without a current key',
    { DEPLOY_CODEC_OLD_KEYS: `k:${randomBytes(32).toString('base64')}` },
    /DEPLOY_CODEC_KEY is not/,
  ],
])('bad settings name the variable: %s', (_what, env, message) => {
  expect(() => codecFromEnv(env)).toThrow(CodecConfigError);
  expect(() => codecFromEnv(env)).toThrow(message);
});

test('a bad key never appears in the error message', () => {
  const bad = randomBytes(31).toString('base64');
  try {
    codecFromEnv({ DEPLOY_CODEC_KEY: bad });
    throw new Error('accepted');
  } catch (err) {
    expect((err as Error).message).not.toContain(bad);
  }
});

describe('codec server', () => {
  const TOKEN = 'codec-token-5b1d';
  const UI = 'http://127.0.0.1:8233';
  let server: Server;
  let base: string;
  let codec: EncryptionCodec;

  beforeAll(async () => {
    codec = codecOf({ DEPLOY_CODEC_KEY: key(), DEPLOY_CODEC_KEY_ID: 'ui' });
    server = createCodecServer({ codec, corsOrigins: [UI], authToken: TOKEN, maxBodyBytes: 64 * 1024 });
    base = `http://127.0.0.1:${await startCodecServer(server, 0)}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  test('listens on loopback only', () => {
    expect((server.address() as { address: string }).address).toBe('127.0.0.1');
  });

  test('encode then decode over HTTP, in the JSON form of the Temporal UI', async () => {
    const plain = toPayloads().map(payloadToJson);
    const enc = (await (await post('/encode', { payloads: plain })).json()) as {
      payloads: { metadata: Record<string, string>; data: string }[];
    };
    expect(enc.payloads).toHaveLength(plain.length);
    expect(Buffer.from(enc.payloads[0].metadata.encoding, 'base64').toString()).toBe(ENCODING_ENCRYPTED);
    expect(JSON.stringify(enc)).not.toContain(Buffer.from(MARKER).toString('base64'));
    const res = await post('/decode', enc, { authorization: `Bearer ${TOKEN}`, 'x-namespace': 'default' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const dec = (await res.json()) as { payloads: unknown[] };
    expect(dec).toEqual({ payloads: plain });
    // The codec in this process reads what the server encrypted.
    expect(Buffer.from((dec.payloads[0] as { data: string }).data, 'base64').toString()).toContain(MARKER);
  });

  test('CORS: the UI origin may call (preflight without a token), another origin gets no CORS headers', async () => {
    const pre = await fetch(`${base}/decode`, {
      method: 'OPTIONS',
      headers: {
        origin: UI,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type,authorization,x-namespace',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(UI);
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/Authorization/);
    expect(pre.headers.get('access-control-allow-headers')).toMatch(/X-Namespace/);
    const ok = await post('/decode', { payloads: [] }, { authorization: `Bearer ${TOKEN}`, origin: UI });
    expect(ok.headers.get('access-control-allow-origin')).toBe(UI);
  });

  test('another Origin is refused, even with the token: a page elsewhere cannot use the key', async () => {
    const evil = await post(
      '/decode',
      { payloads: [] },
      { authorization: `Bearer ${TOKEN}`, origin: 'http://evil.example' },
    );
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    expect(((await evil.json()) as { error: string }).error).toMatch(
      /origin http:\/\/evil\.example is not allowed .*DEPLOY_CODEC_CORS_ORIGINS/,
    );
    const pre = await fetch(`${base}/decode`, {
      method: 'OPTIONS',
      headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(pre.status).toBe(403);
  });

  test('a Host header that is not the address it listens on is refused (DNS rebinding)', async () => {
    const port = new URL(base).port;
    const send = (host: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          {
            host: '127.0.0.1',
            port,
            path: '/decode',
            method: 'POST',
            headers: { host, authorization: `Bearer ${TOKEN}` },
          },
          (res) => {
            let body = '';
            res.setEncoding('utf8').on('data', (d: string) => (body += d));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify({ payloads: [] }));
      });
    const rebound = await send(`attacker.example:${port}`);
    expect(rebound.status).toBe(403);
    expect((JSON.parse(rebound.body) as { error: string }).error).toMatch(
      /Host "attacker\.example:\d+" is not .*DEPLOY_CODEC_ALLOWED_HOSTS/,
    );
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) expect((await send(host)).status).toBe(200);
  });

  test('with a key configured, an unencrypted payload sent to /decode is refused, not passed through', async () => {
    const plain = toPayloads().map(payloadToJson);
    const enc = (await (await post('/encode', { payloads: plain.slice(0, 1) })).json()) as { payloads: unknown[] };
    const res = await post('/decode', { payloads: [...enc.payloads, plain[1]] });
    expect(res.status).toBe(400);
    const body = await res.text();
    expect(body).toMatch(/payload 2 of 2 is not encrypted/);
    expect(body).not.toContain(plain[1].data!);
  });

  test('the bearer token is required when configured', async () => {
    const attempts: Record<string, string>[] = [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: TOKEN },
      { authorization: `Basic ${TOKEN}` },
    ];
    for (const headers of attempts) {
      const res = await post('/decode', { payloads: [] }, headers);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: 'missing or wrong bearer token' });
    }
  });

  test.each([
    ['a body that is not JSON', '/decode', 'not json', 400, /must be JSON/],
    ['no "payloads" array', '/decode', { payload: [] }, 400, /"payloads": an array/],
    ['data that is not base64', '/decode', { payloads: [{ data: '!!!' }] }, 400, /payload data must be base64/],
    [
      'metadata that is not base64',
      '/decode',
      { payloads: [{ metadata: { encoding: 42 } }] },
      400,
      /metadata "encoding" must be base64/,
    ],
    [
      'a payload under an unknown key',
      '/decode',
      {
        payloads: [
          {
            metadata: {
              encoding: Buffer.from(ENCODING_ENCRYPTED).toString('base64'),
              'encryption-key-id': Buffer.from('nope').toString('base64'),
            },
            data: 'AAAA',
          },
        ],
      },
      400,
      /key id "nope", which this process does not have/,
    ],
    ['a body over the size limit', '/decode', { payloads: [], pad: 'x'.repeat(70 * 1024) }, 413, /larger than/],
    ['another path', '/other', { payloads: [] }, 404, /POST \/encode or POST \/decode/],
  ])('%s is a clear error', async (_what, path, body, status, message) => {
    const res = await post(path, body);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { error: string }).error).toMatch(message);
  });

  test('GET is refused', async () => {
    const res = await fetch(`${base}/decode`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(405);
  });

  test('CORS origins come from the environment', () => {
    expect(corsOriginsFromEnv({})).toEqual(['http://127.0.0.1:8233', 'http://localhost:8233']);
    expect(corsOriginsFromEnv({ TEMPORAL_UI_URL: 'http://127.0.0.1:18233/namespaces' })).toEqual([
      'http://127.0.0.1:18233',
    ]);
    expect(corsOriginsFromEnv({ DEPLOY_CODEC_CORS_ORIGINS: 'https://ui.example.com/, http://127.0.0.1:8233' })).toEqual(
      ['https://ui.example.com', 'http://127.0.0.1:8233'],
    );
    expect(() => corsOriginsFromEnv({ DEPLOY_CODEC_CORS_ORIGINS: 'not a url' })).toThrow(/DEPLOY_CODEC_CORS_ORIGINS/);
  });
});

describe('codec server settings', () => {
  const KEY = { DEPLOY_CODEC_KEY: randomBytes(32).toString('base64') };

  test('on loopback by default, where no token is required', () => {
    const s = codecServerSettings(KEY);
    expect(s).toMatchObject({ host: '127.0.0.1', port: 8888 });
    expect(s.authToken).toBeUndefined();
    expect(codecServerSettings({ ...KEY, DEPLOY_CODEC_SERVER_HOST: '::1' }).host).toBe('::1');
  });

  test('listening beyond loopback without a token is refused with one line naming what to set', () => {
    for (const host of ['0.0.0.0', '192.0.2.10', '::']) {
      expect(() => codecServerSettings({ ...KEY, DEPLOY_CODEC_SERVER_HOST: host })).toThrow(CodecConfigError);
      expect(() => codecServerSettings({ ...KEY, DEPLOY_CODEC_SERVER_HOST: host })).toThrow(
        /^DEPLOY_CODEC_SERVER_HOST=\S+ is not loopback: set DEPLOY_CODEC_AUTH_TOKEN/,
      );
    }
    expect(
      codecServerSettings({ ...KEY, DEPLOY_CODEC_SERVER_HOST: '0.0.0.0', DEPLOY_CODEC_AUTH_TOKEN: 'codec-token-1' }),
    ).toMatchObject({ host: '0.0.0.0', authToken: 'codec-token-1' });
  });

  test('the server itself refuses a non-loopback host without a token', () => {
    expect(() =>
      createCodecServer({ codec: codecOf(KEY), corsOrigins: ['http://127.0.0.1:8233'], host: '0.0.0.0' }),
    ).toThrow(/not loopback: set DEPLOY_CODEC_AUTH_TOKEN/);
  });

  test('allowed Host headers beyond the listening address come from DEPLOY_CODEC_ALLOWED_HOSTS', () => {
    expect(
      codecServerSettings({ ...KEY, DEPLOY_CODEC_ALLOWED_HOSTS: 'codec.example.com, codec.internal:8443' })
        .allowedHosts,
    ).toEqual(['codec.example.com', 'codec.internal:8443']);
  });
});
