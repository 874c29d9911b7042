/**
 * Every (role, current status, requested status) over PATCH, with the expected answer computed from the
 * machine definition and the role table — not listed by hand, so a change of either changes the cases:
 * a role that may not send the event behind the requested status → 403; a state that does not accept it →
 * 409 with the available actions; otherwise 200 and the payout in the requested status.
 */
import { expect } from 'chai';
import type { API_KEY_ROLES } from '../../../src/domain/principal.js';
import { roleMaySend } from '../../../src/domain/principal.js';
import type { PayoutStatus } from '../../../src/machines/payout.machine.js';
import { PAYOUT_STATUSES } from '../../../src/machines/payout.machine.js';
import { machineDefinition } from '../../../src/machines/definition.js';
import type { Db } from '../../../src/persistence/db.js';
import { openTestDb } from '../../support/database.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient } from '../../support/fixtures.js';
import type { TestApi } from '../../support/http.js';
import { startTestApi } from '../../support/http.js';
import { payoutIn, transitionsInto } from './helpers.js';

type ApiRole = (typeof API_KEY_ROLES)[number];
const ROLES: readonly ApiRole[] = ['client', 'operator'];

/** The one event that leads into each status, from the machine (undefined: nothing leads there, e.g. created). */
function eventInto(status: PayoutStatus) {
  const events = [...new Set((transitionsInto().get(status) ?? []).map((step) => step.event))];
  expect(events.length, `at most one event leads into ${status}`).to.be.at.most(1);
  return events[0];
}

function expectedStatus(role: ApiRole, from: PayoutStatus, to: PayoutStatus): 200 | 403 | 409 {
  const event = eventInto(to);
  if (event === undefined || !roleMaySend(role, event)) return 403;
  return machineDefinition().states[from]?.on?.[event] !== undefined ? 200 : 409;
}

describe('PATCH status: every (role, status, requested status)', () => {
  let db: Db;
  let api: TestApi;
  let client: TestClient;

  before(async () => {
    db = openTestDb(5);
    api = await startTestApi(db);
    client = await createTestClient(db, 'transitions');
  });
  after(async () => {
    await api.close();
    await db.destroy();
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
          const id = await payoutIn(api.ctx, client, from);
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
    const id = await payoutIn(api.ctx, client, 'processing');
    const asClient = await api.request('GET', `/api/payouts/${id}`, { key: client.key });
    const asOperator = await api.request('GET', `/api/payouts/${id}`, { key: client.operatorKey });
    expect(asClient.body.available_actions).to.deep.equal([]);
    expect(asOperator.body.available_actions).to.deep.equal(['succeed', 'fail']);
  });
});
