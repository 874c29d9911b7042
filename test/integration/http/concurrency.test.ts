/** Concurrent changes of one payout over HTTP: the version check holds, nothing is lost, nothing is a 5xx. */
import { expect } from 'chai';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient } from '../../support/fixtures.js';
import type { ApiResponse } from '../../support/http.js';
import { createPayoutOverHttp, useTestApi } from './helpers.js';

function countBy(responses: ApiResponse[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const response of responses) counts[response.status] = (counts[response.status] ?? 0) + 1;
  return counts;
}

describe('concurrent PATCHes of one payout', () => {
  const api = useTestApi(10);
  let client: TestClient;

  before(async () => {
    client = await createTestClient(api.db, 'concurrency');
  });

  async function newPayout(): Promise<string> {
    return createPayoutOverHttp(api, client.key);
  }

  it('30 with the same If-Match: exactly one 200, the other 29 are 412 and change nothing', async () => {
    const id = await newPayout();
    const responses = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        api.request('PATCH', `/api/payouts/${id}`, {
          key: client.key,
          json: { description: `writer ${i}` },
          headers: { 'if-match': '"1"' },
        }),
      ),
    );
    expect(countBy(responses)).to.deep.equal({ 200: 1, 412: 29 });
    const winner = responses.find((response) => response.status === 200)!;
    for (const loser of responses.filter((response) => response.status === 412)) {
      expect(loser.body).to.include({ code: 'version_mismatch', current_version: 2 });
    }
    const current = await api.request('GET', `/api/payouts/${id}`, { key: client.key });
    expect(current.body.version).to.equal(2);
    expect(current.body.description).to.equal(winner.body.description);
    const events = await api.request('GET', `/api/payouts/${id}/events`, { key: client.key });
    expect(events.body.data).to.have.length(2);
  });

  it('50 without If-Match: no 5xx, and the final version is 1 + the successes', async () => {
    const id = await newPayout();
    // Description changes always apply; a few cancels race them: one wins, the rest are 409.
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        api.request('PATCH', `/api/payouts/${id}`, {
          key: client.key,
          json: i % 10 === 3 ? { status: 'cancelled' } : { description: `writer ${i}` },
        }),
      ),
    );
    const counts = countBy(responses);
    // 45 description changes all apply; of the 5 cancels exactly one does.
    expect(counts).to.deep.equal({ 200: 46, 409: 4 });
    const current = await api.request('GET', `/api/payouts/${id}`, { key: client.key });
    expect(current.body.version).to.equal(1 + counts[200]!);
    expect(current.body.status).to.equal('cancelled');
    // One history row per success (47: more than a default page), and the versions the successes saw are all
    // different.
    const events = await api.request('GET', `/api/payouts/${id}/events?limit=100`, { key: client.key });
    expect(events.body.data).to.have.length(1 + counts[200]!);
    expect(events.body.next_cursor).to.equal(null);
    const versions = responses
      .filter((response) => response.status === 200)
      .map((response) => response.body.version as number);
    expect(new Set(versions).size).to.equal(versions.length);
  });

  it('a stale If-Match on DELETE is 412 and the payout stays', async () => {
    const id = await newPayout();
    await api.request('PATCH', `/api/payouts/${id}`, { key: client.key, json: { description: 'moved on' } });
    const stale = await api.request('DELETE', `/api/payouts/${id}`, {
      key: client.key,
      headers: { 'if-match': '"1"' },
    });
    expect(stale.status).to.equal(412);
    expect((await api.request('GET', `/api/payouts/${id}`, { key: client.key })).status).to.equal(200);
    const fresh = await api.request('DELETE', `/api/payouts/${id}`, {
      key: client.key,
      headers: { 'if-match': '"2"' },
    });
    expect(fresh.status).to.equal(204);
  });
});
