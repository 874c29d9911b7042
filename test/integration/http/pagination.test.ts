/**
 * Keyset pagination over HTTP: newest first, every row exactly once while another task keeps inserting, and
 * filters that hold across pages.
 */
import { expect } from 'chai';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutIn, payoutInput } from '../../support/fixtures.js';
import type { ApiResponse } from '../../support/http.js';
import { createPayoutOverHttp, useTestApi } from './helpers.js';
import { waitFor } from '../../support/wait.js';

describe('GET /api/payouts', () => {
  const api = useTestApi(8);

  async function create(client: TestClient, overrides = {}): Promise<string> {
    return createPayoutOverHttp(api, client.key, payoutInput(overrides));
  }

  async function walk(client: TestClient, query: string, onPage?: () => Promise<void>): Promise<string[][]> {
    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const response: ApiResponse = await api.request(
        'GET',
        `/api/payouts?${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        { key: client.key },
      );
      expect(response.status, response.text).to.equal(200);
      pages.push(response.body.data.map((payout: { id: string }) => payout.id));
      cursor = response.body.next_cursor;
      await onPage?.();
    } while (cursor !== null);
    return pages;
  }

  it('walks every page with no duplicate and no gap while another task inserts rows', async () => {
    const client = await createTestClient(api.db, 'pages');
    const existing: string[] = [];
    for (let i = 0; i < 53; i += 1) existing.push(await create(client));

    let inserting = true;
    const inserted: string[] = [];
    const inserter = (async () => {
      while (inserting) inserted.push(await create(client));
    })();
    // Let the inserter get going, and wait for some of its rows between pages.
    const pages = await walk(client, 'limit=5', async () => {
      const target = inserted.length + 1;
      await waitFor(() => !inserting || inserted.length >= target, {
        timeoutMs: 20_000,
        intervalMs: 2,
        message: `the inserter made no row (${inserted.length} so far)`,
      });
    });
    inserting = false;
    await inserter;

    const seen = pages.flat();
    expect(new Set(seen).size, 'no duplicate').to.equal(seen.length);
    // Rows that existed when the walk began: all of them, newest first. Rows inserted during the walk are newer
    // than the first page, so a walk that started before them does not show them.
    expect(seen.filter((id) => existing.includes(id))).to.deep.equal([...existing].reverse());
    expect(inserted.length).to.be.greaterThan(5);
    expect(pages.slice(0, -1).every((page) => page.length === 5)).to.equal(true);

    // A second walk, after the inserts, sees everything exactly once.
    const everything = (await walk(client, 'limit=100')).flat();
    expect(everything).to.deep.equal([...existing, ...inserted].reverse());
  });

  it('the last page has next_cursor null; an empty list is one empty page', async () => {
    const client = await createTestClient(api.db, 'empty');
    expect(await walk(client, 'limit=10')).to.deep.equal([[]]);
    const id = await create(client);
    expect(await walk(client, 'limit=1')).to.deep.equal([[id]]);
  });

  it('defaults to 20 per page', async () => {
    const client = await createTestClient(api.db, 'default');
    for (let i = 0; i < 21; i += 1) await create(client);
    const first = await api.request('GET', '/api/payouts', { key: client.key });
    expect(first.body.data).to.have.length(20);
    expect(first.body.next_cursor).to.be.a('string');
  });

  it('filters by status, currency and creation time, across pages', async () => {
    const client = await createTestClient(api.db, 'filters');
    const eur = [await create(client), await create(client), await create(client)];
    const jpy = [
      await create(client, { currency: 'JPY', amount: '1000' }),
      await create(client, { currency: 'JPY', amount: '2000' }),
    ];
    const cancelled = (await payoutIn(api.ctx, client, 'cancelled')).id;
    const completed = (await payoutIn(api.ctx, client, 'completed')).id;

    expect((await walk(client, 'limit=1&currency=JPY')).flat()).to.deep.equal([...jpy].reverse());
    expect((await walk(client, 'limit=2&status=cancelled')).flat()).to.deep.equal([cancelled]);
    expect((await walk(client, 'limit=2&status=completed&currency=EUR')).flat()).to.deep.equal([completed]);
    expect((await walk(client, 'limit=2&status=created&currency=EUR')).flat()).to.deep.equal(
      [...eur].reverse(),
    );

    const jpyCreated = (await api.request('GET', `/api/payouts/${jpy[0]}`, { key: client.key })).body
      .created_at as string;
    const from = (await walk(client, `limit=2&created_gte=${encodeURIComponent(jpyCreated)}`)).flat();
    expect(from).to.include.members([...jpy, cancelled, completed]);
    expect(from).to.not.include.members(eur);
    expect(
      from.filter((id) => eur.includes(id)),
      'no EUR payout created before the JPY one',
    ).to.deep.equal([]);
    const before = (await walk(client, `limit=2&created_lt=${encodeURIComponent(jpyCreated)}`)).flat();
    expect(before).to.deep.equal([...eur].reverse());
    expect((await walk(client, 'limit=2&created_gte=2999-01-01T00:00:00%2B01:00')).flat()).to.deep.equal([]);
  });

  it('a deleted payout leaves the list', async () => {
    const client = await createTestClient(api.db, 'deleted');
    const kept = await create(client);
    const deleted = await create(client);
    expect((await api.request('DELETE', `/api/payouts/${deleted}`, { key: client.key })).status).to.equal(
      204,
    );
    expect((await walk(client, 'limit=10')).flat()).to.deep.equal([kept]);
  });
});
