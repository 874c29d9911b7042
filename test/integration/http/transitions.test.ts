/**
 * Every (role, current status, requested status) over PATCH, with the expected answer from a table written from
 * SPEC and the machine issue (test/support/patch-status-table.ts, not read from the machine, so a change of either
 * shows here): a role that may never send the event behind the requested status → 403; a state that does not
 * accept it → 409 with the available actions; a cancel → 200 and the payout cancelled; an operator's
 * `completed`/`failed` of a payout in flight → 202, recorded for the worker to carry out against the provider (the
 * payout stays `processing`).
 */
import { expect } from 'chai';
import sinon from 'sinon';
import { ProviderTransientError } from '../../../src/domain/provider.js';
import { PayoutProcessor } from '../../../src/consumers/process-payout.js';
import { PAYOUT_STATUSES } from '../../../src/machines/payout-lifecycle.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutIn } from '../../support/fixtures.js';
import { API_ROLES, expectedPatchStatus } from '../../support/patch-status-table.js';
import { useTestApi } from './helpers.js';

describe('PATCH status: every (role, status, requested status)', () => {
  const api = useTestApi(5);
  afterEach(() => sinon.restore());
  let client: TestClient;

  before(async () => {
    client = await createTestClient(api.db, 'transitions');
  });

  for (const role of API_ROLES) {
    for (const from of PAYOUT_STATUSES) {
      for (const to of PAYOUT_STATUSES) {
        const expected = expectedPatchStatus(role, from, to);
        it(`${role}: ${from} → ${to} is ${expected}`, async () => {
          const id = (await payoutIn(api.ctx, client, from)).id;
          const key = role === 'operator' ? client.operatorKey : client.key;
          const before = await api.request('GET', `/api/payouts/${id}`, { key });
          const response = await api.request('PATCH', `/api/payouts/${id}`, {
            key,
            json: { status: to, reason: `test: ${role} moves ${from} to ${to}` },
            headers: { 'x-request-id': `transition-${role}-${from}-${to}` },
          });
          expect(response.status, response.text).to.equal(expected);

          const after = await api.request('GET', `/api/payouts/${id}`, { key });
          if (expected === 200 || expected === 202) {
            expect(response.body.status).to.equal(expected === 200 ? to : from);
            expect(response.body.version).to.equal(before.body.version + 1);
            expect(response.headers.get('etag')).to.equal(`"${before.body.version + 1}"`);
            const events = await api.request('GET', `/api/payouts/${id}/events`, { key: client.key });
            const last = events.body.data.at(-1);
            expect(last).to.include({
              from,
              to: expected === 200 ? to : from,
              actor_role: role,
              request_id: `transition-${role}-${from}-${to}`,
            });
            expect(last.reason).to.equal(`test: ${role} moves ${from} to ${to}`);
            if (expected === 202) {
              expect(response.body.stage).to.equal('submitting');
              expect(response.body.failure).to.equal(null);
            }
          } else {
            // Refused means untouched.
            expect(after.body).to.deep.equal(before.body);
          }
          if (expected === 409) {
            expect(response.body).to.include({ code: 'transition_not_allowed', payout_status: from });
            expect(response.body.available_actions).to.deep.equal(before.body.available_actions);
          }
          if (expected === 403) expect(response.body.code).to.equal('forbidden');
        });
      }
    }
  }

  it('available_actions follow the role: an operator may resolve a processing payout, a client may not', async () => {
    const id = (await payoutIn(api.ctx, client, 'processing')).id;
    const asClient = await api.request('GET', `/api/payouts/${id}`, { key: client.key });
    const asOperator = await api.request('GET', `/api/payouts/${id}`, { key: client.operatorKey });
    expect(asClient.body.available_actions).to.deep.equal([]);
    expect(asOperator.body.available_actions).to.deep.equal(['succeed', 'fail']);
  });

  /** The worker's run for a payout, carried out here without the broker: the same processor a worker uses. */
  async function work(id: string): Promise<void> {
    const message = {
      schema_version: 1 as const,
      message_id: '00000000-0000-7000-8000-000000000000',
      payout_id: id,
      client_id: client.clientId,
      request_id: 'worker-test',
    };
    await new PayoutProcessor(api.ctx.service, api.ctx.provider).process(message);
  }

  it("an operator's request to fail waits for the submit in flight: the provider paid, so it overrules the request", async () => {
    const id = (await payoutIn(api.ctx, client, 'processing')).id;
    const fail = await api.request('PATCH', `/api/payouts/${id}`, {
      key: client.operatorKey,
      json: { status: 'failed', reason: 'recipient asked to stop' },
    });
    expect(fail.status).to.equal(202);
    expect(await api.db('provider_transfers').where({ payout_id: id })).to.have.length(0);
    // The submit START issued is still outstanding: the worker carries it out (the provider pays: it has the
    // last word), or, when it is unavailable, voids the key as the operator asked.
    await work(id);
    const after = await api.request('GET', `/api/payouts/${id}`, { key: client.key });
    expect(after.body.status).to.equal('completed');
    const events = await api.request('GET', `/api/payouts/${id}/events`, { key: client.key });
    expect(events.body.data.at(-1).reason).to.match(/overruled the operator's request to fail/);
    const effects = await api.db('provider_transfers').where({ idempotency_key: id });
    expect(effects).to.have.length(1);
    expect(effects[0]).to.include({ result: 'succeeded' });
  });

  it("an operator's request to fail is carried out when the provider is unavailable: the key voided, the payout failed", async () => {
    const id = (await payoutIn(api.ctx, client, 'processing')).id;
    const fail = await api.request('PATCH', `/api/payouts/${id}`, {
      key: client.operatorKey,
      json: { status: 'failed', reason: 'recipient asked to stop' },
    });
    expect(fail.status).to.equal(202);
    sinon.stub(api.ctx.provider, 'submit').rejects(new ProviderTransientError('down for maintenance'));
    await work(id);
    const after = await api.request('GET', `/api/payouts/${id}`, { key: client.key });
    expect(after.body).to.include({ status: 'failed', stage: null });
    expect(after.body.failure).to.deep.equal({ code: 'operator_failed', message: 'recipient asked to stop' });
    const effects = await api.db('provider_transfers').where({ idempotency_key: id });
    expect(effects).to.have.length(1);
    expect(effects[0]).to.include({ result: 'failed', failure_code: 'operator_failed' });
    // The key is closed: a submit that still arrives at the provider pays nothing.
    sinon.restore();
    const late = await api.ctx.provider.submit(await api.ctx.service.getPayout(client.principal, id), id);
    expect(late.status).to.equal('failed');
  });

  it('an operator may retry a payout that needs attention; a client may not', async () => {
    const payout = await payoutIn(api.ctx, client, 'processing');
    await api.ctx.service.applyEvent(
      { clientId: client.clientId, role: 'worker', actor: 'worker' },
      payout.id,
      { type: 'DEAD_LETTERED', code: 'processing_error', message: 'boom', at: new Date().toISOString() },
      { requestId: 'test' },
    );
    const seen = await api.request('GET', `/api/payouts/${payout.id}`, { key: client.operatorKey });
    expect(seen.body).to.include({ status: 'processing', stage: 'needs_attention' });
    expect(seen.body.available_actions).to.deep.equal(['succeed', 'fail', 'retry']);
    expect(seen.body.last_error).to.include({ code: 'processing_error', message: 'boom' });
    // A list page reads no snapshot, only its last error: the payout listed is the payout read.
    const listed = await api.request('GET', '/api/payouts?stage=needs_attention&limit=100', {
      key: client.operatorKey,
    });
    expect(listed.status).to.equal(200);
    const row = (listed.body.data as Array<{ id: string }>).find((item) => item.id === payout.id);
    expect(row).to.deep.equal(seen.body);
    const asClient = await api.request('POST', `/api/payouts/${payout.id}/retry`, {
      key: client.key,
      json: { reason: 'try again' },
    });
    expect(asClient.status).to.equal(403);
    const retried = await api.request('POST', `/api/payouts/${payout.id}/retry`, {
      key: client.operatorKey,
      json: { reason: 'the bank is back' },
    });
    expect(retried.status, retried.text).to.equal(202);
    expect(retried.body).to.include({ status: 'processing', stage: 'submitting' });
    const again = await api.request('POST', `/api/payouts/${payout.id}/retry`, {
      key: client.operatorKey,
      json: { reason: 'once more' },
    });
    expect(again.status).to.equal(409);
    await work(payout.id);
    const done = await api.request('GET', `/api/payouts/${payout.id}`, { key: client.key });
    expect(done.body).to.include({ status: 'completed', stage: null });
  });
});
