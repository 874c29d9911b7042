/** Authentication and tenancy over HTTP: every payout route checks the key; another client's payout does not exist. */
import { expect } from 'chai';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutInput, revokeApiKeys } from '../../support/fixtures.js';
import { createPayoutOverHttp, useTestApi } from './helpers.js';

const UNKNOWN_ID = '0192f4f2-7c3e-7a51-9d0e-6c1f2b3a4d5e';

/** Every operation on payouts, as [method, path, body]. */
function payoutRoutes(id: string): Array<[string, string, unknown]> {
  return [
    ['POST', '/api/payouts', payoutInput()],
    ['GET', '/api/payouts', undefined],
    ['GET', `/api/payouts/${id}`, undefined],
    ['PATCH', `/api/payouts/${id}`, { description: 'hijacked' }],
    ['DELETE', `/api/payouts/${id}`, undefined],
    ['GET', `/api/payouts/${id}/events`, undefined],
  ];
}

describe('authentication and tenancy', () => {
  const api = useTestApi(5);
  let alice: TestClient;
  let bob: TestClient;
  let aliceId: string;

  before(async () => {
    alice = await createTestClient(api.db, 'alice');
    bob = await createTestClient(api.db, 'bob');
    aliceId = await createPayoutOverHttp(api, alice.key);
  });

  describe('401', () => {
    const badCredentials: Array<[string, Record<string, string>]> = [
      ['no Authorization header', {}],
      ['an empty Authorization header', { authorization: '' }],
      ['a Basic credential', { authorization: `Basic ${Buffer.from('user:pass').toString('base64')}` }],
      ['Bearer without a key', { authorization: 'Bearer ' }],
      ['an unknown key', { authorization: 'Bearer pk_live_0000000000000000000000000000000000000000000' }],
      ['a key too short to be one', { authorization: 'Bearer abc' }],
      ['a key too long to be one', { authorization: `Bearer ${'k'.repeat(500)}` }],
      ['a key with latin-1 bytes', { authorization: 'Bearer pk_live_ÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿ' }],
    ];
    for (const [what, headers] of badCredentials) {
      it(`${what} → 401 with WWW-Authenticate on every payout route`, async () => {
        for (const [method, path, json] of payoutRoutes(aliceId)) {
          const response = await api.request(method, path, { headers, json });
          expect(response.status, `${method} ${path}`).to.equal(401);
          expect(response.body.code).to.equal('unauthenticated');
          expect(response.headers.get('www-authenticate')).to.match(/^Bearer /);
        }
      });
    }

    it('the key is checked before the body: an invalid body without a key is 401, not 400', async () => {
      const response = await api.request('POST', '/api/payouts', { json: { amount: 1 } });
      expect(response.status).to.equal(401);
    });

    it('a revoked key stops working at once, on every route; other clients keep working', async () => {
      const carol = await createTestClient(api.db, 'carol');
      const id = await createPayoutOverHttp(api, carol.key);
      expect((await api.request('GET', `/api/payouts/${id}`, { key: carol.key })).status).to.equal(200);

      expect(await revokeApiKeys(api.db, carol.name)).to.equal(2);

      for (const key of [carol.key, carol.operatorKey]) {
        for (const [method, path, json] of payoutRoutes(id)) {
          const response = await api.request(method, path, { key, json });
          expect(response.status, `${method} ${path}`).to.equal(401);
          expect(response.body.detail).to.match(/unknown, revoked or expired/);
        }
      }
      expect((await api.request('GET', `/api/payouts/${aliceId}`, { key: alice.key })).status).to.equal(200);
    });

    it('the scheme name is case-insensitive', async () => {
      const response = await api.request('GET', `/api/payouts/${aliceId}`, {
        headers: { authorization: `bearer ${alice.key}` },
      });
      expect(response.status).to.equal(200);
    });

    it('documentation, the machine and liveness need no key', async () => {
      for (const path of ['/api/machine', '/api/openapi.json', '/api/openapi.yaml', '/healthz']) {
        expect((await api.request('GET', path)).status, path).to.equal(200);
      }
    });

    it('readiness and metrics are not on the public port (they are on the operations port)', async () => {
      for (const path of ['/readyz', '/metrics']) {
        const response = await api.request('GET', path);
        expect(response.status, path).to.equal(404);
        expect(response.body.code, path).to.equal('route_not_found');
      }
    });
  });

  describe("another client's payout is 404 everywhere", () => {
    for (const key of ['key', 'operatorKey'] as const) {
      it(`for ${key === 'key' ? 'a client' : 'an operator'} key of another client`, async () => {
        for (const [method, path, json] of payoutRoutes(aliceId).filter(([, path]) =>
          path.includes(aliceId),
        )) {
          const response = await api.request(method, path, { key: bob[key], json });
          expect(response.status, `${method} ${path}`).to.equal(404);
          expect(response.body.code).to.equal('payout_not_found');
        }
        // Operator-only changes too: the payout is not there to be resolved.
        const resolve = await api.request('PATCH', `/api/payouts/${aliceId}`, {
          key: bob.operatorKey,
          json: { status: 'cancelled', reason: 'not mine' },
        });
        expect(resolve.status).to.equal(404);
      });
    }

    it('answers exactly like an unknown id, so ids cannot be probed', async () => {
      const foreign = await api.request('GET', `/api/payouts/${aliceId}`, { key: bob.key });
      const unknown = await api.request('GET', `/api/payouts/${UNKNOWN_ID}`, { key: bob.key });
      expect(foreign.status).to.equal(unknown.status);
      expect(Object.keys(foreign.body).sort()).to.deep.equal(Object.keys(unknown.body).sort());
      expect(foreign.body.title).to.equal(unknown.body.title);
    });

    it("never lists another client's payout, and the foreign attempts changed nothing", async () => {
      await createPayoutOverHttp(api, bob.key);
      const bobs = await api.request('GET', '/api/payouts?limit=100', { key: bob.key });
      expect(bobs.body.data.map((payout: { id: string }) => payout.id)).to.not.include(aliceId);
      for (const status of ['created', 'cancelled']) {
        const filtered = await api.request('GET', `/api/payouts?limit=100&status=${status}`, {
          key: bob.operatorKey,
        });
        expect(filtered.body.data.map((payout: { id: string }) => payout.id)).to.not.include(aliceId);
      }
      const alices = await api.request('GET', `/api/payouts/${aliceId}`, { key: alice.key });
      expect(alices.body).to.include({ status: 'created', version: 1, description: 'Invoice 42' });
      const events = await api.request('GET', `/api/payouts/${aliceId}/events`, { key: alice.key });
      expect(events.body.data).to.have.length(1);
    });
  });
});
