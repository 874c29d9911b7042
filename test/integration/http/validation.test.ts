/**
 * Every validation rule of SPEC.md, over HTTP: each bad input is a 400 problem document whose `errors` name
 * the field, nothing is stored, and two bad fields are two errors.
 */
import { expect } from 'chai';
import type { TestClient } from '../../support/fixtures.js';
import { BAD_CHECKSUM_IBAN, IBANS, createTestClient, payoutInput } from '../../support/fixtures.js';
import { createPayoutOverHttp, fieldErrorsOf, useTestApi } from './helpers.js';

type Body = Record<string, unknown>;

const valid = (): Body => payoutInput() as unknown as Body;
const withRecipient = (recipient: Body): Body => ({
  ...valid(),
  recipient: { ...(valid().recipient as Body), ...recipient },
});

/** [what, body, the field named] — one row per rule of SPEC.md's payout table. */
const INVALID_BODIES: Array<[string, Body, string]> = [
  ['amount as a JSON number', { ...valid(), amount: 1250.5 }, '/body/amount'],
  ['amount missing', { ...valid(), amount: undefined }, '/body/amount'],
  ['amount zero', { ...valid(), amount: '0' }, '/body/amount'],
  ['amount zero with decimals', { ...valid(), amount: '0.00' }, '/body/amount'],
  ['amount negative', { ...valid(), amount: '-1.00' }, '/body/amount'],
  ['amount with an exponent', { ...valid(), amount: '1e3' }, '/body/amount'],
  ['amount with a leading zero', { ...valid(), amount: '01.50' }, '/body/amount'],
  ['amount with a trailing dot', { ...valid(), amount: '1.' }, '/body/amount'],
  ['amount without an integer part', { ...valid(), amount: '.5' }, '/body/amount'],
  ['amount with a comma', { ...valid(), amount: '1,50' }, '/body/amount'],
  ['amount with spaces', { ...valid(), amount: ' 1.50' }, '/body/amount'],
  ['amount with a plus sign', { ...valid(), amount: '+1.50' }, '/body/amount'],
  ['EUR amount with 3 decimals', { ...valid(), amount: '1.001' }, '/body/amount'],
  ['JPY amount with decimals', { ...valid(), currency: 'JPY', amount: '100.5' }, '/body/amount'],
  ['KWD amount with 4 decimals', { ...valid(), currency: 'KWD', amount: '1.0001' }, '/body/amount'],
  ['EUR amount above its maximum', { ...valid(), amount: '1000000.01' }, '/body/amount'],
  ['JPY amount above its maximum', { ...valid(), currency: 'JPY', amount: '150000001' }, '/body/amount'],
  ['a huge amount', { ...valid(), amount: '9'.repeat(20) }, '/body/amount'],
  ['currency in lower case', { ...valid(), currency: 'eur' }, '/body/currency'],
  ['currency not ISO 4217 shaped', { ...valid(), currency: 'EURO' }, '/body/currency'],
  ['currency outside the whitelist', { ...valid(), currency: 'SEK' }, '/body/currency'],
  ['currency unknown', { ...valid(), currency: 'XYZ' }, '/body/currency'],
  ['currency missing', { ...valid(), currency: undefined }, '/body/currency'],
  ['recipient missing', { ...valid(), recipient: undefined }, '/body/recipient'],
  ['recipient not an object', { ...valid(), recipient: 'DE89370400440532013000' }, '/body/recipient'],
  ['recipient type unknown', withRecipient({ type: 'swift' }), '/body/recipient/type'],
  ['recipient type missing', withRecipient({ type: undefined }), '/body/recipient/type'],
  ['iban missing', withRecipient({ iban: undefined }), '/body/recipient/iban'],
  ['iban with a wrong checksum', withRecipient({ iban: BAD_CHECKSUM_IBAN }), '/body/recipient/iban'],
  [
    'iban too short for its country',
    withRecipient({ iban: 'DE8937040044053201300' }),
    '/body/recipient/iban',
  ],
  [
    'iban of a country without IBANs',
    withRecipient({ iban: 'US12345678901234567890' }),
    '/body/recipient/iban',
  ],
  ['iban with punctuation', withRecipient({ iban: 'DE89-3704-0044-0532-0130-00' }), '/body/recipient/iban'],
  ['bic malformed', withRecipient({ bic: 'COBA' }), '/body/recipient/bic'],
  ['holder name empty', withRecipient({ holder_name: '' }), '/body/recipient/holder_name'],
  ['holder name blank', withRecipient({ holder_name: '   ' }), '/body/recipient/holder_name'],
  ['holder name too long', withRecipient({ holder_name: 'x'.repeat(141) }), '/body/recipient/holder_name'],
  [
    'holder name with a control character',
    withRecipient({ holder_name: 'Jane\u0007Doe' }),
    '/body/recipient/holder_name',
  ],
  ['holder name with NUL', withRecipient({ holder_name: 'Jane\u0000Doe' }), '/body/recipient/holder_name'],
  [
    'holder name with a lone surrogate',
    withRecipient({ holder_name: 'Jane \ud800' }),
    '/body/recipient/holder_name',
  ],
  ['holder name missing', withRecipient({ holder_name: undefined }), '/body/recipient/holder_name'],
  ['unknown recipient field', withRecipient({ account: '123' }), '/body/recipient/account'],
  ['description too long', { ...valid(), description: 'x'.repeat(501) }, '/body/description'],
  ['description with NUL', { ...valid(), description: 'a\u0000b' }, '/body/description'],
  ['description with a lone surrogate', { ...valid(), description: '\udc00 invoice' }, '/body/description'],
  ['description with a control character', { ...valid(), description: 'a\u001bb' }, '/body/description'],
  ['description not a string', { ...valid(), description: 42 }, '/body/description'],
  ['unknown field', { ...valid(), fee: '1.00' }, '/body/fee'],
  ['client-chosen status', { ...valid(), status: 'completed' }, '/body/status'],
];

describe('validation over HTTP', () => {
  const api = useTestApi(5);
  let client: TestClient;

  before(async () => {
    client = await createTestClient(api.db, 'validation');
  });

  const post = (body: unknown) => api.request('POST', '/api/payouts', { key: client.key, json: body });

  describe('POST /api/payouts names the field of every rule', () => {
    let own: TestClient;
    before(async () => {
      own = await createTestClient(api.db, 'invalid');
    });

    for (const [what, body, pointer] of INVALID_BODIES) {
      it(`${what} → 400 naming ${pointer}`, async () => {
        const errors = fieldErrorsOf(await api.request('POST', '/api/payouts', { key: own.key, json: body }));
        expect(Object.keys(errors)).to.deep.equal([pointer]);
        expect(errors[pointer]).to.be.a('string').and.not.equal('');
        // An error never echoes the account number it refuses.
        expect(JSON.stringify(errors)).to.not.match(/DE89370400440532013/);
      });
    }

    it('stored nothing for any of them', async () => {
      const rows = await api.db('payouts').where({ client_id: own.clientId }).select('id');
      expect(rows).to.deep.equal([]);
    });
  });

  it('two bad fields → two errors, one per field', async () => {
    const errors = fieldErrorsOf(await post({ ...valid(), amount: 12.5, currency: 'eur' }));
    expect(Object.keys(errors).sort()).to.deep.equal(['/body/amount', '/body/currency']);
  });

  it('every bad field of a bad body is named at once, across the contract and the domain rules', async () => {
    const errors = fieldErrorsOf(
      await post({
        amount: '1.001',
        currency: 'EUR',
        recipient: { type: 'iban', iban: BAD_CHECKSUM_IBAN, bic: 'X', holder_name: '' },
        description: 'x'.repeat(501),
        extra: true,
      }),
    );
    // Shape errors from the contract (bic, holder_name, description, extra) and rule errors from the domain
    // (EUR has 2 decimals, the IBAN checksum) in one answer.
    expect(Object.keys(errors).sort()).to.deep.equal([
      '/body/amount',
      '/body/description',
      '/body/extra',
      '/body/recipient/bic',
      '/body/recipient/holder_name',
      '/body/recipient/iban',
    ]);
    expect(errors['/body/amount']).to.match(/decimal places/);
    expect(errors['/body/recipient/iban']).to.match(/checksum/);
  });

  it('accepts the canonical amount forms and answers with the currency minor digits', async () => {
    for (const [amount, currency, expected] of [
      ['1250.5', 'EUR', '1250.50'],
      ['0.01', 'EUR', '0.01'],
      ['1000000', 'EUR', '1000000.00'],
      ['150000000', 'JPY', '150000000'],
      ['1.250', 'KWD', '1.250'],
    ] as const) {
      const response = await post({ ...valid(), amount, currency });
      expect(response.status, `${amount} ${currency}: ${response.text}`).to.equal(201);
      expect(response.body.amount).to.equal(expected);
    }
  });

  it('normalises the IBAN (spaces, case) and masks it in the response', async () => {
    const response = await post(withRecipient({ iban: 'gb29 nwbk 6016 1331 9268 19', bic: 'nwbkgb2l' }));
    expect(response.status).to.equal(201);
    expect(response.body.recipient).to.include({ iban_last4: '6819', bic: 'NWBKGB2L' });
    expect(response.text).to.not.include(IBANS.GB);
  });

  it('rejects a body that is not an object', async () => {
    for (const body of [[], ['a'], 'text', 42, null]) {
      const response = await api.request('POST', '/api/payouts', {
        key: client.key,
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
      });
      expect(fieldErrorsOf(response), JSON.stringify(body)).to.deep.equal({ '/body': 'must be an object' });
    }
  });

  it('reports a missing body as /body', async () => {
    for (const headers of [{}, { 'content-type': 'application/json' }] as Array<Record<string, string>>) {
      const response = await api.request('POST', '/api/payouts', { key: client.key, headers });
      expect(fieldErrorsOf(response)).to.deep.equal({ '/body': 'is required' });
    }
  });

  describe('PATCH /api/payouts/{id}', () => {
    let id: string;
    before(async () => {
      id = await createPayoutOverHttp(api, client.key, valid());
    });
    const patch = (body: unknown, headers: Record<string, string> = {}) =>
      api.request('PATCH', `/api/payouts/${id}`, { key: client.key, json: body, headers });

    for (const field of ['amount', 'currency', 'recipient']) {
      it(`${field} is immutable → 400 naming it`, async () => {
        const errors = fieldErrorsOf(await patch({ [field]: valid()[field] }));
        expect(errors).to.have.keys(`/body/${field}`);
        expect(errors[`/body/${field}`]).to.match(/immutable/);
      });
    }

    it('names every immutable field and every bad field at once', async () => {
      const errors = fieldErrorsOf(
        await patch({ amount: '1.00', currency: 'USD', status: 'paid', description: 7 }),
      );
      expect(Object.keys(errors).sort()).to.deep.equal([
        '/body/amount',
        '/body/currency',
        '/body/description',
        '/body/status',
      ]);
    });

    it('an empty change, a NUL in the description or a malformed If-Match → 400 naming it', async () => {
      expect(fieldErrorsOf(await patch({}))).to.have.keys('/body');
      expect(fieldErrorsOf(await patch({ description: 'a\u0000' }))).to.have.keys('/body/description');
      expect(fieldErrorsOf(await patch({ reason: 'r\ud800' }))).to.have.keys('/body/reason');
      expect(fieldErrorsOf(await patch({ description: 'x' }, { 'if-match': 'W/"1"' }))).to.have.keys(
        '/header/if-match',
      );
    });

    it('an operator resolving a payout must give a reason', async () => {
      const response = await api.request('PATCH', `/api/payouts/${id}`, {
        key: client.operatorKey,
        json: { status: 'failed' },
      });
      expect(fieldErrorsOf(response)).to.have.keys('/body/reason');
    });
  });

  describe('ids, query parameters and headers', () => {
    it('a payout id that is not a canonical UUID → 400 naming /path/id', async () => {
      for (const id of [
        'urn:uuid:0192f4f2-7c3e-7a51-9d0e-6c1f2b3a4d5e',
        '0192F4F2-7C3E-7A51-9D0E-6C1F2B3A4D5E',
        '0192f4f27c3e7a519d0e6c1f2b3a4d5e',
        '{0192f4f2-7c3e-7a51-9d0e-6c1f2b3a4d5e}',
        'not-a-uuid',
        '%00',
        '1%27%20or%201%3D1',
      ]) {
        for (const path of [`/api/payouts/${id}`, `/api/payouts/${id}/events`]) {
          const errors = fieldErrorsOf(await api.request('GET', path, { key: client.key }));
          expect(errors, path).to.have.keys('/path/id');
        }
      }
    });

    it('every bad query parameter is named', async () => {
      const response = await api.request(
        'GET',
        '/api/payouts?limit=0&cursor=%00&status=paid&currency=eur&created_gte=0000-01-01T00:00:00Z&created_lt=2026-02-30T00:00:00Z&sort=asc',
        { key: client.key },
      );
      expect(Object.keys(fieldErrorsOf(response)).sort()).to.deep.equal([
        '/query/created_gte',
        '/query/created_lt',
        '/query/currency',
        '/query/cursor',
        '/query/limit',
        '/query/sort',
        '/query/status',
      ]);
    });

    it('dates outside what PostgreSQL and a JS Date hold exactly → 400', async () => {
      for (const value of [
        '0000-01-01T00:00:00Z',
        '10000-01-01T00:00:00Z',
        '2026-11-24T10:00:00',
        '2026-11-24T10:00:00.1234Z',
        '2016-12-31T23:59:60Z',
        '2026-11-24 10:00:00Z',
        '-2026-11-24T10:00:00Z',
      ]) {
        const errors = fieldErrorsOf(
          await api.request('GET', `/api/payouts?created_gte=${encodeURIComponent(value)}`, {
            key: client.key,
          }),
        );
        expect(errors, value).to.have.keys('/query/created_gte');
      }
    });

    it('limit outside 1..100, a repeated parameter, a forged cursor → 400', async () => {
      for (const query of [
        'limit=101',
        'limit=-1',
        'limit=1.5',
        'limit=abc',
        'limit=99999999999999999999999',
      ]) {
        expect(
          fieldErrorsOf(await api.request('GET', `/api/payouts?${query}`, { key: client.key })),
          query,
        ).to.have.keys('/query/limit');
      }
      expect(
        fieldErrorsOf(
          await api.request('GET', '/api/payouts?status=created&status=failed', { key: client.key }),
        ),
      ).to.have.keys('/query/status');
      const forged = Buffer.from('v1:0').toString('base64url');
      expect(
        fieldErrorsOf(await api.request('GET', `/api/payouts?cursor=${forged}`, { key: client.key })),
      ).to.have.keys('/query/cursor');
    });

    it('an Idempotency-Key that is empty, too long or not printable ASCII → 400 naming the header', async () => {
      for (const key of ['', 'x'.repeat(256), 'clé', 'tab\tinside']) {
        const response = await api.request('POST', '/api/payouts', {
          key: client.key,
          json: valid(),
          headers: { 'idempotency-key': key },
        });
        expect(fieldErrorsOf(response), key).to.have.keys('/header/idempotency-key');
      }
    });
  });
});
