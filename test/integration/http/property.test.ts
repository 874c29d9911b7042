/**
 * Property: whatever a client sends — valid, almost valid or hostile bodies, headers, query strings and path
 * ids — the API never answers 5xx, every error is a problem document, and every response satisfies the
 * contract (checked by the test client). Seeded, so a failure reproduces; over 2,000 requests in all.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import type { Db } from '../../../src/persistence/db.js';
import { openTestDb } from '../../support/database.js';
import type { TestClient } from '../../support/fixtures.js';
import { IBANS, createTestClient } from '../../support/fixtures.js';
import type { ApiResponse, TestApi } from '../../support/http.js';
import { rawHttp, startTestApi } from '../../support/http.js';
import { createPayoutOverHttp } from './helpers.js';

const SEED = 20261124;

const validPayout = () => ({
  amount: '10.00',
  currency: 'EUR',
  recipient: { type: 'iban', iban: IBANS.DE, holder_name: 'Prop' },
});

/** Strings that have broken APIs before: NUL, lone surrogates, non-canonical UUIDs, year 0000, huge digits. */
const NASTY_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  '\udc00tail',
  '\u202eevil',
  '\r\n',
  'urn:uuid:0192f4f2-7c3e-7a51-9d0e-6c1f2b3a4d5e',
  '0192F4F2-7C3E-7A51-9D0E-6C1F2B3A4D5E',
  '0000-01-01T00:00:00Z',
  '9999-12-31T23:59:59.999-23:59',
  '2016-12-31T23:59:60Z',
  '9'.repeat(400),
  '-0',
  '1e309',
  'NaN',
  "' or 1=1 --",
  '${jndi:ldap://x/a}',
  '<script>alert(1)</script>',
  '%00',
  IBANS.DE,
];

const nastyString = fc.oneof(
  fc.constantFrom(...NASTY_STRINGS),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 600 }),
);

const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  nastyString,
  fc.integer(),
  fc.double(),
  fc.constant(1e308),
  fc.constant(Number.MAX_SAFE_INTEGER + 2),
  fc.constant(null),
  fc.boolean(),
  fc.array(nastyString, { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), nastyString, { maxKeys: 3 }),
);

const CURRENCIES = { EUR: 2, USD: 2, JPY: 0, KWD: 3 } as const;

const validAmount = fc
  .tuple(
    fc.constantFrom(...(Object.keys(CURRENCIES) as Array<keyof typeof CURRENCIES>)),
    fc.bigInt({ min: 1n, max: 10n ** 8n }),
  )
  .map(([currency, minor]) => {
    const digits = CURRENCIES[currency];
    const text = minor.toString().padStart(digits + 1, '0');
    return { currency, amount: digits === 0 ? text : `${text.slice(0, -digits)}.${text.slice(-digits)}` };
  });

const validBody = fc
  .record({
    money: validAmount,
    iban: fc.constantFrom(...Object.values(IBANS)),
    bic: fc.option(fc.constantFrom('COBADEFFXXX', 'NWBKGB2L'), { nil: undefined }),
    holder: fc.string({ minLength: 1, maxLength: 140 }).filter((name) => name.trim() !== ''),
    description: fc.option(fc.string({ maxLength: 500 }), { nil: undefined }),
  })
  .map(({ money, iban, bic, holder, description }) => ({
    ...money,
    recipient: { type: 'iban', iban, holder_name: holder, ...(bic === undefined ? {} : { bic }) },
    ...(description === undefined ? {} : { description }),
  }));

type Json = Record<string, unknown>;

/** A valid body with one field replaced by something hostile, removed, or an unknown field added. */
const almostValidBody = fc
  .tuple(
    validBody,
    fc.constantFrom(
      'amount',
      'currency',
      'description',
      'recipient',
      'recipient.type',
      'recipient.iban',
      'recipient.bic',
      'recipient.holder_name',
      'extra',
      'recipient.extra',
    ),
    fc.option(nastyValue, { nil: undefined }),
  )
  .map(([body, field, value]) => {
    const copy = JSON.parse(JSON.stringify(body)) as Json;
    const [head, tail] = field.split('.') as [string, string | undefined];
    const target = tail === undefined ? copy : (copy[head] as Json);
    const name = tail ?? head;
    if (value === undefined) delete target[name];
    else target[name] = value;
    return copy;
  });

/** Text bodies no JSON parser likes, or likes too much: deep nesting, huge numbers, truncation. */
const hostileText = fc.oneof(
  fc.integer({ min: 1, max: 7000 }).map((depth) => `${'['.repeat(depth)}${']'.repeat(depth)}`),
  fc
    .integer({ min: 1, max: 2500 })
    .map((depth) => `{"amount":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`),
  fc.constantFrom(
    '{"amount": 1e400, "currency": "EUR"}',
    '{"amount": -0}',
    '{"amount": 123456789012345678901234567890}',
  ),
  fc.constantFrom(
    '',
    'null',
    'true',
    '"string"',
    '[]',
    '{',
    '{"a":}',
    '{"__proto__": {"admin": true}}',
    '{"constructor": {"prototype": {}}}',
  ),
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.jsonValue({ maxDepth: 4 }).map((value) => JSON.stringify(value)),
  validBody.map((body) => JSON.stringify(body).slice(0, -3)),
  fc
    .integer({ min: 16 * 1024, max: 20 * 1024 })
    .map((size) => JSON.stringify({ description: 'x'.repeat(size) })),
);

const postBody = fc.oneof(
  { weight: 2, arbitrary: validBody.map((body) => JSON.stringify(body)) },
  { weight: 4, arbitrary: almostValidBody.map((body) => JSON.stringify(body)) },
  { weight: 3, arbitrary: hostileText },
);

/** Header values fetch will send: single-byte characters without controls (raw sockets cover the rest). */
const headerValue = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.string({
    unit: fc
      .integer({ min: 0x20, max: 0xff })
      .filter((code) => code !== 0x7f)
      .map((code) => String.fromCharCode(code)),
    maxLength: 60,
  }),
  fc.constantFrom('x'.repeat(255), 'x'.repeat(256), '"1"', '*', 'W/"1"', '"99999999999"', 'Bearer x'),
);

const contentType = fc.oneof(
  { weight: 6, arbitrary: fc.constant('application/json') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'application/json; charset=utf-8',
      'application/json; charset=utf-16',
      'application/json; charset=latin1',
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
    ),
  },
);

const idempotencyKey = fc.option(
  fc.oneof({ weight: 3, arbitrary: fc.uuid().map(String) }, { weight: 1, arbitrary: headerValue }),
  {
    nil: undefined,
  },
);

const versionTag = fc.oneof(fc.constantFrom('"1"', '"2"', '"3"', '"4"', '*'), headerValue);

/** Percent-encodes UTF-8 (lone surrogates included, as U+FFFD) — or passes raw broken escapes through. */
const queryValue = fc.oneof(
  nastyString.map((value) => Buffer.from(value, 'utf8').toString('hex').replace(/../g, '%$&')),
  fc.constantFrom(
    '%ED%A0%80',
    '%FF%FE',
    '%',
    '%zz',
    '%00',
    '1e309',
    '-1',
    '0',
    '101',
    '20',
    '1.5',
    'created',
    'EUR',
    '2026-01-01T00:00:00Z',
  ),
);

const queryString = fc
  .array(
    fc.tuple(
      fc.oneof(
        fc.constantFrom('limit', 'cursor', 'status', 'currency', 'created_gte', 'created_lt'),
        fc.constantFrom('sort', '__proto__', 'limit[]', ''),
      ),
      queryValue,
    ),
    { maxLength: 5 },
  )
  .map((pairs) => pairs.map(([key, value]) => `${key}=${value}`).join('&'));

const pathId = fc.oneof(
  fc.uuid().map(String),
  fc.uuid().map((id) => id.toUpperCase()),
  fc.uuid().map((id) => `urn:uuid:${id}`),
  fc.constant(randomUUID()),
  nastyString.map((value) => Buffer.from(value, 'utf8').toString('hex').replace(/../g, '%$&')),
  fc.constantFrom(
    '..',
    '%2e%2e',
    '%2F',
    'x'.repeat(5000),
    '%00',
    '%ED%A0%80',
    '0192f4f2-7c3e-7a51-9d0e-6c1f2b3a4d5e%00',
  ),
);

const patchBody = fc.oneof(
  fc.record(
    {
      status: fc.oneof(
        fc.constantFrom('created', 'processing', 'completed', 'failed', 'cancelled'),
        nastyValue,
      ),
      description: fc.oneof(fc.string({ maxLength: 500 }), nastyValue),
      reason: fc.oneof(fc.string({ maxLength: 500 }), nastyValue),
      amount: fc.constant('1.00'),
      recipient: nastyValue,
    },
    { requiredKeys: [] },
  ),
  hostileText.map((text) => ({ __raw: text })),
);

describe('property: no client input yields a 5xx', () => {
  let db: Db;
  let api: TestApi;
  let client: TestClient;
  let payoutId: string;
  let requests = 0;
  const statuses = new Map<number, number>();

  before(async () => {
    db = openTestDb(5);
    api = await startTestApi(db);
    client = await createTestClient(db, 'property');
    payoutId = await createPayoutOverHttp(api, client.key, validPayout());
  });
  after(async () => {
    await api.close();
    await db.destroy();
  });

  /** The contract check runs inside `api.request`; this adds what the property is about. */
  function expectSafe(response: ApiResponse): void {
    requests += 1;
    statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
    expect(response.status, response.text.slice(0, 300)).to.be.below(500);
    if (response.status >= 400)
      expect(response.headers.get('content-type')).to.match(/^application\/problem\+json/);
  }

  it('POST /api/payouts with generated bodies, content types and headers', async () => {
    await fc.assert(
      fc.asyncProperty(
        postBody,
        contentType,
        idempotencyKey,
        fc.option(headerValue, { nil: undefined }),
        async (body, type, idempotencyKey, requestId) => {
          const headers: Record<string, string> = { 'content-type': type };
          if (idempotencyKey !== undefined) headers['idempotency-key'] = idempotencyKey;
          if (requestId !== undefined) headers['x-request-id'] = requestId;
          expectSafe(await api.request('POST', '/api/payouts', { key: client.key, headers, body }));
        },
      ),
      { seed: SEED, numRuns: 900 },
    );
  });

  it('GET /api/payouts with generated query strings', async () => {
    await fc.assert(
      fc.asyncProperty(queryString, async (query) => {
        expectSafe(await api.request('GET', `/api/payouts?${query}`, { key: client.key }));
      }),
      { seed: SEED, numRuns: 500 },
    );
  });

  it('every payout route with generated path ids, methods and conditional headers', async () => {
    // Real payouts of this client and of nobody, so that the answers run from 200/204 to 404/409/412.
    const known: string[] = [];
    for (let i = 0; i < 8; i += 1) {
      known.push(await createPayoutOverHttp(api, client.key, validPayout()));
    }
    await fc.assert(
      fc.asyncProperty(
        fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...known) }, { weight: 3, arbitrary: pathId }),
        fc.constantFrom('', '/events', '/events/', '/'),
        fc.constantFrom('GET', 'GET', 'PATCH', 'PATCH', 'DELETE', 'PUT', 'POST', 'HEAD', 'OPTIONS'),
        fc.option(versionTag, { nil: undefined }),
        fc.option(
          fc.constantFrom(
            { description: 'x' },
            { status: 'cancelled' },
            { status: 'completed', reason: 'r' },
          ),
          {
            nil: undefined,
          },
        ),
        async (id, suffix, method, tag, change) => {
          const headers: Record<string, string> = {};
          if (tag !== undefined)
            headers[method === 'GET' || method === 'HEAD' ? 'if-none-match' : 'if-match'] = tag;
          const json = ['PATCH', 'POST', 'PUT'].includes(method)
            ? (change ?? { description: 'y' })
            : undefined;
          expectSafe(
            await api.request(method, `/api/payouts/${id}${suffix}`, { key: client.key, headers, json }),
          );
        },
      ),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('PATCH of a real payout with generated bodies and If-Match', async () => {
    await fc.assert(
      fc.asyncProperty(
        patchBody,
        fc.option(headerValue, { nil: undefined }),
        fc.boolean(),
        async (body, ifMatch, asOperator) => {
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (ifMatch !== undefined) headers['if-match'] = ifMatch;
          const raw = '__raw' in body ? String(body.__raw) : JSON.stringify(body);
          const key = asOperator ? client.operatorKey : client.key;
          expectSafe(await api.request('PATCH', `/api/payouts/${payoutId}`, { key, headers, body: raw }));
        },
      ),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('raw requests with bytes fetch refuses to send: control characters, obs-text, broken UTF-8', async () => {
    const bytes = fc.uint8Array({ minLength: 1, maxLength: 40 });
    await fc.assert(
      fc.asyncProperty(
        bytes,
        bytes,
        fc.constantFrom('x-request-id', 'idempotency-key', 'authorization', 'if-match', 'content-type'),
        async (value, path, name) => {
          const head = Buffer.concat([
            Buffer.from('GET /api/payouts/'),
            Buffer.from(path.filter((byte) => byte > 0x20 && byte !== 0x7f)),
            Buffer.from(
              ` HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer ${client.key}\r\n${name}: `,
            ),
            Buffer.from(value),
            Buffer.from('\r\n\r\n'),
          ]);
          const response = await rawHttp(api.port, head);
          requests += 1;
          expect(response.status).to.be.within(200, 499);
          if (response.status >= 400)
            expect(response.headers['content-type']).to.match(/^application\/problem\+json/);
          expect(response.headers['x-request-id']).to.match(/^[A-Za-z0-9._:-]{1,128}$/);
        },
      ),
      { seed: SEED, numRuns: 200 },
    );
  });

  it('sent at least 2,000 requests, reaching every kind of answer', () => {
    expect(requests).to.be.at.least(2000);
    // A generator that only ever produced one kind of request would prove little.
    expect([...statuses.keys()], JSON.stringify([...statuses])).to.include.members([
      200, 201, 304, 400, 404, 405, 412, 413, 415,
    ]);
  });
});
