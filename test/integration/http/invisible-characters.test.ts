/**
 * Invisible and direction-changing characters over HTTP: a holder name with a format character, or any stored
 * text (description, reason) with a bidi control, is a 400 naming the field, and nothing is stored.
 */
import { expect } from 'chai';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutInput } from '../../support/fixtures.js';
import { createPayoutOverHttp, fieldErrorsOf, useTestApi } from './helpers.js';

type Body = Record<string, unknown>;

const MESSAGE = 'must not contain invisible or direction-changing characters';

const valid = (): Body => payoutInput() as unknown as Body;
const withHolderName = (holderName: string): Body => ({
  ...valid(),
  recipient: { ...(valid().recipient as Body), holder_name: holderName },
});

/** [what, body, the field named] */
const INVALID_CREATES: Array<[string, Body, string]> = [
  [
    'holder name with U+202E (right-to-left override)',
    withHolderName('Jane \u202eeoD'),
    '/body/recipient/holder_name',
  ],
  [
    'holder name with U+2066 (left-to-right isolate)',
    withHolderName('\u2066Jane Doe'),
    '/body/recipient/holder_name',
  ],
  [
    'holder name with U+200B (zero-width space)',
    withHolderName('Jane\u200bDoe'),
    '/body/recipient/holder_name',
  ],
  [
    'holder name with U+200F (right-to-left mark)',
    withHolderName('Jane Doe\u200f'),
    '/body/recipient/holder_name',
  ],
  [
    'description with U+2066 (left-to-right isolate)',
    { ...valid(), description: 'Invoice \u206642' },
    '/body/description',
  ],
  [
    'description with U+202E (right-to-left override)',
    { ...valid(), description: '\u202eInvoice 42' },
    '/body/description',
  ],
  [
    'description with U+061C (Arabic letter mark)',
    { ...valid(), description: 'Invoice\u061c 42' },
    '/body/description',
  ],
];

describe('invisible and direction-changing characters over HTTP', () => {
  const api = useTestApi(3);
  let client: TestClient;

  before(async () => {
    client = await createTestClient(api.db, 'invisible');
  });

  describe('POST /api/payouts', () => {
    let refused: TestClient;
    before(async () => {
      refused = await createTestClient(api.db, 'invisible-refused');
    });

    for (const [what, body, pointer] of INVALID_CREATES) {
      it(`${what} → 400 naming ${pointer}`, async () => {
        const errors = fieldErrorsOf(
          await api.request('POST', '/api/payouts', { key: refused.key, json: body }),
        );
        expect(errors).to.deep.equal({ [pointer]: MESSAGE });
      });
    }

    it('stored nothing for any of them', async () => {
      const rows = await api.db('payouts').where({ client_id: refused.clientId }).select('id');
      expect(rows).to.deep.equal([]);
    });

    it('a description keeps the format characters that are not bidi controls (an emoji joined by U+200D)', async () => {
      const description = 'Family 👨\u200d👩\u200d👧 trip\u200b';
      const response = await api.request('POST', '/api/payouts', {
        key: client.key,
        json: { ...valid(), description },
      });
      expect(response.status, response.text).to.equal(201);
      expect(response.body.description).to.equal(description);
    });
  });

  describe('PATCH /api/payouts/{id}', () => {
    const patch = (id: string, body: unknown) =>
      api.request('PATCH', `/api/payouts/${id}`, { key: client.key, json: body });

    it('a description with U+2067 → 400 naming /body/description', async () => {
      const id = await createPayoutOverHttp(api, client.key, valid());
      expect(fieldErrorsOf(await patch(id, { description: 'Invoice \u206742\u2069' }))).to.deep.equal({
        '/body/description': MESSAGE,
      });
    });

    it('a reason with U+202B → 400 naming /body/reason, and the payout is unchanged', async () => {
      const id = await createPayoutOverHttp(api, client.key, valid());
      expect(
        fieldErrorsOf(await patch(id, { status: 'cancelled', reason: 'asked \u202bto cancel' })),
      ).to.deep.equal({
        '/body/reason': MESSAGE,
      });
      const read = await api.request('GET', `/api/payouts/${id}`, { key: client.key });
      expect(read.body).to.include({ status: 'created', description: 'Invoice 42', version: 1 });
    });
  });

  it('POST /api/payouts/{id}/retry: a reason with U+200E → 400 naming /body/reason', async () => {
    const id = await createPayoutOverHttp(api, client.key, valid());
    const response = await api.request('POST', `/api/payouts/${id}/retry`, {
      key: client.operatorKey,
      json: { reason: 'outage over\u200e' },
    });
    expect(fieldErrorsOf(response)).to.deep.equal({ '/body/reason': MESSAGE });
  });
});
