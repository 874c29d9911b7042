/**
 * Every (role, current status, requested status) over PATCH, with the expected answer computed from the
 * machine definition and SPEC's role table (SPEC_ROLE_EVENTS) — not listed by hand, so a change of either changes the cases:
 * a role that may not send the event behind the requested status → 403; a state that does not accept it →
 * 409 with the available actions; otherwise 200 and the payout in the requested status.
 */
import { expect } from 'chai';
import type { API_KEY_ROLES } from '../../../src/domain/principal.js';
import type { PayoutStatus } from '../../../src/machines/payout.machine.js';
import { PAYOUT_STATUSES, eventInto } from '../../../src/machines/payout.machine.js';
import { machineDefinition } from '../../../src/machines/definition.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutIn, specAllows } from '../../support/fixtures.js';
import { useTestApi } from './helpers.js';

type ApiRole = (typeof API_KEY_ROLES)[number];
const ROLES: readonly ApiRole[] = ['client', 'operator'];

function expectedStatus(role: ApiRole, from: PayoutStatus, to: PayoutStatus): 200 | 403 | 409 {
  const event = eventInto(to);
  if (event === undefined || !specAllows(role, event)) return 403;
  return machineDefinition().states[from]?.on?.[event] !== undefined ? 200 : 409;
}

describe('PATCH status: every (role, status, requested status)', () => {
  const api = useTestApi(5);
  let client: TestClient;

  before(async () => {
    client = await createTestClient(api.db, 'transitions');
  });

  it('covers all 50 combinations, with each outcome present', () => {
    const outcomes = ROLES.flatMap((role) =>
      PAYOUT_STATUSES.flatMap((from) => PAYOUT_STATUSES.map((to) => expectedStatus(role, from, to))),
    );
    expect(outcomes).to.have.length(ROLES.length * PAYOUT_STATUSES.length ** 2);
    expect(new Set(outcomes)).to.deep.equal(new Set([200, 403, 409]));
  });

  for (const role of ROLES) {
    for (const from of PAYOUT_STATUSES) {
      for (const to of PAYOUT_STATUSES) {
        const expected = expectedStatus(role, from, to);
        it(`${role}: ${from} → ${to} is ${expected}`, async () => {
          const id = (await payoutIn(api.ctx, client, from)).id;
          if (from === 'processing' && to === 'completed') {
            // An operator's SUCCEED needs the provider's payment (a worker that died after the provider paid).
            await api.ctx.provider.submit(await api.ctx.service.getPayout(client.principal, id), id);
          }
          const key = role === 'operator' ? client.operatorKey : client.key;
          const before = await api.request('GET', `/api/payouts/${id}`, { key });
          const response = await api.request('PATCH', `/api/payouts/${id}`, {
            key,
            json: { status: to, reason: `test: ${role} moves ${from} to ${to}` },
            headers: { 'x-request-id': `transition-${role}-${from}-${to}` },
          });
          expect(response.status, response.text).to.equal(expected);

          const after = await api.request('GET', `/api/payouts/${id}`, { key });
          if (expected === 200) {
            expect(response.body.status).to.equal(to);
            expect(response.body.version).to.equal(before.body.version + 1);
            expect(response.headers.get('etag')).to.equal(`"${before.body.version + 1}"`);
            const events = await api.request('GET', `/api/payouts/${id}/events`, { key: client.key });
            const last = events.body.data.at(-1);
            expect(last).to.include({
              from,
              to,
              actor_role: role,
              request_id: `transition-${role}-${from}-${to}`,
            });
            expect(last.reason).to.equal(`test: ${role} moves ${from} to ${to}`);
            if (to === 'failed')
              expect(response.body.failure).to.deep.equal({ code: 'operator_failed', message: last.reason });
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

  it('an operator cannot complete a payout the provider has not paid, nor fail one it has paid', async () => {
    const unpaid = (await payoutIn(api.ctx, client, 'processing')).id;
    const complete = await api.request('PATCH', `/api/payouts/${unpaid}`, {
      key: client.operatorKey,
      json: { status: 'completed', reason: 'the bank says it went out' },
    });
    expect(complete.status).to.equal(409);
    expect(complete.body).to.include({ code: 'provider_disagrees', payout_status: 'processing' });

    const paid = (await payoutIn(api.ctx, client, 'processing')).id;
    await api.ctx.provider.submit(await api.ctx.service.getPayout(client.principal, paid), paid);
    const fail = await api.request('PATCH', `/api/payouts/${paid}`, {
      key: client.operatorKey,
      json: { status: 'failed', reason: 'looks stuck' },
    });
    expect(fail.status).to.equal(409);
    expect(fail.body).to.include({ code: 'provider_disagrees' });
    expect(fail.body.available_actions).to.deep.equal(['succeed']);
    const after = await api.request('GET', `/api/payouts/${paid}`, { key: client.key });
    expect(after.body.status).to.equal('processing');
  });

  it("an operator's FAIL closes the provider key: the worker's later submit pays nothing", async () => {
    const id = (await payoutIn(api.ctx, client, 'processing')).id;
    const fail = await api.request('PATCH', `/api/payouts/${id}`, {
      key: client.operatorKey,
      json: { status: 'failed', reason: 'recipient asked to stop' },
    });
    expect(fail.status).to.equal(200);
    const late = await api.ctx.provider.submit(await api.ctx.service.getPayout(client.principal, id), id);
    expect(late.status).to.equal('failed');
    const effects = await api.db('provider_transfers').where({ idempotency_key: id });
    expect(effects).to.have.length(1);
    expect(effects[0]).to.include({ result: 'failed', failure_code: 'operator_failed' });
  });
});
