import { expect } from 'chai';
import sinon from 'sinon';
import { PayoutMessages } from '../../../src/messaging/payout-message.js';
import type { TestClient } from '../../support/fixtures.js';
import { IBANS, createTestClient, payoutInput } from '../../support/fixtures.js';
import { startTestApi } from '../../support/http.js';
import { useTestApi } from './helpers.js';

describe('POST /api/payouts', () => {
  const api = useTestApi(5);
  let client: TestClient;

  beforeEach(async () => {
    client = await createTestClient(api.db, 'create');
  });
  afterEach(() => sinon.restore());

  it('creating a payout succeeds', async () => {
    const response = await api.request('POST', '/api/payouts', {
      key: client.key,
      json: payoutInput({ amount: '1250.5' }),
      headers: { 'x-request-id': 'req-create-1' },
    });

    expect(response.status).to.equal(201);
    const payout = response.body;
    expect(payout).to.include({
      amount: '1250.50',
      currency: 'EUR',
      status: 'created',
      description: 'Invoice 42',
      version: 1,
    });
    expect(payout.recipient).to.deep.equal({
      type: 'iban',
      iban_last4: IBANS.DE.slice(-4),
      iban_masked: `${'*'.repeat(IBANS.DE.length - 4)}${IBANS.DE.slice(-4)}`,
      bic: null,
      holder_name: 'Jane Doe',
    });
    expect(payout.available_actions).to.deep.equal(['cancel']);
    expect(response.text).to.not.include(IBANS.DE);
    expect(response.headers.get('location')).to.equal(`/api/payouts/${payout.id}`);
    expect(response.headers.get('etag')).to.equal('"1"');
    expect(response.headers.get('x-request-id')).to.equal('req-create-1');

    const row = await api.db('payouts').where({ id: payout.id }).first();
    expect(row).to.include({
      client_id: client.clientId,
      amount_minor: '125050',
      currency: 'EUR',
      status: 'created',
    });
    const history = await api.db('payout_events').where({ payout_id: payout.id });
    expect(history).to.have.length(1);
    expect(history[0]).to.include({
      from_status: null,
      to_status: 'created',
      event: 'CREATE',
      actor_role: 'client',
      request_id: 'req-create-1',
    });
    const outbox = await api.db('outbox').whereRaw(`payload->>'payout_id' = ?`, [payout.id]);
    expect(outbox).to.have.length(1);
    expect(outbox[0].payload).to.include({
      payout_id: payout.id,
      client_id: client.clientId,
      request_id: 'req-create-1',
    });
    expect(outbox[0].published_at).to.equal(null);

    const read = await api.request('GET', response.headers.get('location')!, { key: client.key });
    expect(read.status).to.equal(200);
    expect(read.body).to.deep.equal(payout);
  });

  it('creating a payout schedules processing', async () => {
    const scheduler = new PayoutMessages();
    const spy = sinon.spy(scheduler, 'messageFor');
    const own = await startTestApi(api.db, { scheduler });
    try {
      const response = await own.request('POST', '/api/payouts', { key: client.key, json: payoutInput() });
      expect(response.status).to.equal(201);
      expect(spy.calledOnce).to.equal(true);
      expect(spy.firstCall.args).to.deep.equal([
        {
          payoutId: response.body.id,
          clientId: client.clientId,
          requestId: response.headers.get('x-request-id'),
          command: { seq: 1, type: 'process', try: 1, delay_ms: 0 },
        },
      ]);
      // The message the port made is the one waiting in the outbox, committed with the payout.
      const outbox = await api.db('outbox').where({ payout_id: response.body.id });
      expect(outbox.map((row: { id: string }) => row.id)).to.deep.equal([spy.firstCall.returnValue.id]);
    } finally {
      await own.close();
    }
  });
});
