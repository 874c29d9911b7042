/**
 * A payout's history over HTTP: `/events` one page at a time (oldest first, an exact keyset on the rows' ids), and
 * the bound on description changes (`MAX_DESCRIPTION_CHANGES`) that keeps a history from growing without end.
 */
import { expect } from 'chai';
import type { Db } from '../../../src/persistence/db.js';
import { openTestDb } from '../../support/database.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient } from '../../support/fixtures.js';
import type { ApiResponse, TestApi } from '../../support/http.js';
import { startTestApi } from '../../support/http.js';
import { createPayoutOverHttp, fieldErrorsOf, useTestApi } from './helpers.js';

interface EventRow {
  id: string;
  event: string;
  request_id: string | null;
}

/** Description changes over HTTP, each with its own request id (`describe-<n>`); every one must be 200. */
async function changeDescriptions(
  api: Pick<TestApi, 'request'>,
  client: TestClient,
  id: string,
  from: number,
  to: number,
): Promise<void> {
  for (let n = from; n <= to; n += 1) {
    const response = await api.request('PATCH', `/api/payouts/${id}`, {
      key: client.key,
      json: { description: `Invoice 42, take ${n}` },
      headers: { 'x-request-id': `describe-${n}` },
    });
    expect(response.status, response.text).to.equal(200);
  }
}

describe('GET /api/payouts/{id}/events: pages', () => {
  const api = useTestApi(5);
  let client: TestClient;

  before(async () => {
    client = await createTestClient(api.db, 'history');
  });

  async function page(id: string, query = ''): Promise<ApiResponse> {
    const response = await api.request('GET', `/api/payouts/${id}/events${query}`, { key: client.key });
    expect(response.status, response.text).to.equal(200);
    return response;
  }

  /** Every page of the history, `limit` rows each, following `next_cursor`; `between` runs between pages. */
  async function walk(id: string, limit: number, between?: () => Promise<void>): Promise<EventRow[][]> {
    const pages: EventRow[][] = [];
    let cursor: string | null = null;
    do {
      const response = await page(
        id,
        `?limit=${limit}${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
      );
      pages.push(response.body.data as EventRow[]);
      cursor = response.body.next_cursor as string | null;
      if (cursor !== null) await between?.();
    } while (cursor !== null);
    return pages;
  }

  /** The payout's history rows as stored, by id. */
  async function storedIds(id: string): Promise<string[]> {
    const rows: Array<{ id: string }> = await api.db('payout_events').where({ payout_id: id }).orderBy('id');
    return rows.map((row) => String(row.id));
  }

  it('25 description changes: 20 rows oldest first with a next_cursor, then the other 6, no overlap, no gap', async () => {
    const id = await createPayoutOverHttp(api, client.key);
    await changeDescriptions(api, client, id, 1, 25);

    const first = await page(id);
    const firstRows = first.body.data as EventRow[];
    expect(firstRows).to.have.length(20);
    expect(first.body.next_cursor).to.be.a('string');
    const second = await page(id, `?cursor=${encodeURIComponent(first.body.next_cursor as string)}`);
    const secondRows = second.body.data as EventRow[];
    expect(secondRows).to.have.length(6);
    expect(second.body.next_cursor).to.equal(null);

    const rows = [...firstRows, ...secondRows];
    // Oldest first: the creation, then the description changes in the order they were made.
    expect(rows.map((row) => row.event)).to.deep.equal(['CREATE', ...Array<string>(25).fill('DESCRIBE')]);
    expect(rows.slice(1).map((row) => row.request_id)).to.deep.equal(
      Array.from({ length: 25 }, (_, i) => `describe-${i + 1}`),
    );
    // No overlap, no gap: exactly the stored rows, each once, in the order of their ids.
    expect(rows.map((row) => row.id)).to.deep.equal(await storedIds(id));
    expect(new Set(rows.map((row) => row.id)).size).to.equal(26);
  });

  it('rows added while a client walks the pages come after the ones it has seen, none twice or skipped', async () => {
    const id = await createPayoutOverHttp(api, client.key);
    await changeDescriptions(api, client, id, 1, 11);
    let added = 11;
    // Two more rows between pages of five: the walk still reaches the end, and has then seen every row.
    const pages = await walk(id, 5, async () => {
      await changeDescriptions(api, client, id, added + 1, added + 2);
      added += 2;
    });
    const rows = pages.flat();
    expect(added).to.equal(17);
    expect(pages.map((rowsOf) => rowsOf.length)).to.deep.equal([5, 5, 5, 3]);
    expect(rows.map((row) => row.id)).to.deep.equal(await storedIds(id));
    expect(rows).to.have.length(1 + added);
  });

  it('an empty last page is never needed: a history of exactly one page has next_cursor null', async () => {
    const id = await createPayoutOverHttp(api, client.key);
    await changeDescriptions(api, client, id, 1, 3);
    const whole = await page(id, '?limit=4');
    expect(whole.body.data).to.have.length(4);
    expect(whole.body.next_cursor).to.equal(null);
    const pages = await walk(id, 2);
    expect(pages.map((rows) => rows.length)).to.deep.equal([2, 2]);
  });

  it('limit outside 1..100 is 400 naming /query/limit', async () => {
    const id = await createPayoutOverHttp(api, client.key);
    for (const limit of ['101', '0', '-1', 'many']) {
      const response = await api.request('GET', `/api/payouts/${id}/events?limit=${limit}`, {
        key: client.key,
      });
      expect(fieldErrorsOf(response), limit).to.have.property('/query/limit');
    }
    expect((await page(id, '?limit=100')).body.data).to.have.length(1);
  });

  it('a cursor this API did not issue for a history is 400 naming /query/cursor', async () => {
    const id = await createPayoutOverHttp(api, client.key);
    await createPayoutOverHttp(api, client.key);
    const list = await api.request('GET', '/api/payouts?limit=1', { key: client.key });
    const listCursor = list.body.next_cursor as string;
    expect(listCursor).to.be.a('string');
    for (const cursor of [listCursor, 'not-a-cursor', Buffer.from('h1:0').toString('base64url'), '%21%21']) {
      const response = await api.request('GET', `/api/payouts/${id}/events?cursor=${cursor}`, {
        key: client.key,
      });
      expect(fieldErrorsOf(response), cursor).to.have.property('/query/cursor');
    }
  });

  it('another client’s payout is 404, with or without a cursor', async () => {
    const id = await createPayoutOverHttp(api, client.key);
    await changeDescriptions(api, client, id, 1, 2);
    const cursor = (await page(id, '?limit=1')).body.next_cursor as string;
    const stranger = await createTestClient(api.db, 'history-stranger');
    for (const query of ['', `?cursor=${cursor}`]) {
      const response = await api.request('GET', `/api/payouts/${id}/events${query}`, { key: stranger.key });
      expect(response.status, response.text).to.equal(404);
      expect(response.body.code).to.equal('payout_not_found');
    }
  });
});

describe('PATCH /api/payouts/{id}: at most MAX_DESCRIPTION_CHANGES description changes', () => {
  const LIMIT = 3;
  let db: Db;
  let api: TestApi;
  let client: TestClient;

  before(async () => {
    db = openTestDb(5);
    api = await startTestApi(db, {}, { MAX_DESCRIPTION_CHANGES: String(LIMIT) });
    client = await createTestClient(db, 'described');
  });

  after(async () => {
    await api?.close();
    await db?.destroy();
  });

  async function read(id: string) {
    const response = await api.request('GET', `/api/payouts/${id}`, { key: client.key });
    expect(response.status, response.text).to.equal(200);
    return response.body as { version: number; description: string | null; status: string };
  }

  async function historyOf(id: string): Promise<EventRow[]> {
    const response = await api.request('GET', `/api/payouts/${id}/events?limit=100`, { key: client.key });
    expect(response.status, response.text).to.equal(200);
    return response.body.data as EventRow[];
  }

  function expectExhausted(response: ApiResponse): void {
    expect(response.status, response.text).to.equal(409);
    expect(response.body).to.include({ code: 'description_changes_exhausted', limit: LIMIT });
  }

  it('refuses the 4th description change with 409, writing nothing; a status change still works', async () => {
    const id = await createPayoutOverHttp(api, client.key);
    await changeDescriptions(api, client, id, 1, LIMIT);
    const before = await read(id);
    expect(before).to.include({ version: 1 + LIMIT, description: `Invoice 42, take ${LIMIT}` });

    expectExhausted(
      await api.request('PATCH', `/api/payouts/${id}`, {
        key: client.key,
        json: { description: 'one too many' },
      }),
    );
    // With the version it is at, too: the limit is not a stale read.
    expectExhausted(
      await api.request('PATCH', `/api/payouts/${id}`, {
        key: client.key,
        json: { description: 'one too many' },
        headers: { 'if-match': `"${before.version}"` },
      }),
    );
    // A description along with a status is a description change too.
    expectExhausted(
      await api.request('PATCH', `/api/payouts/${id}`, {
        key: client.key,
        json: { status: 'cancelled', description: 'one too many' },
      }),
    );
    expect(await read(id)).to.deep.equal(before);
    expect(await historyOf(id)).to.have.length(1 + LIMIT);

    // A stale If-Match is answered first: 412, as for any change.
    const stale = await api.request('PATCH', `/api/payouts/${id}`, {
      key: client.key,
      json: { description: 'one too many' },
      headers: { 'if-match': '"1"' },
    });
    expect(stale.status, stale.text).to.equal(412);

    const cancelled = await api.request('PATCH', `/api/payouts/${id}`, {
      key: client.key,
      json: { status: 'cancelled' },
    });
    expect(cancelled.status, cancelled.text).to.equal(200);
    expect(cancelled.body).to.include({ status: 'cancelled', version: before.version + 1 });
    expect((await historyOf(id)).map((row) => row.event)).to.deep.equal([
      'CREATE',
      ...Array<string>(LIMIT).fill('DESCRIBE'),
      'CANCEL',
    ]);
  });

  it('counts per payout: another payout of the same client still has all of its changes', async () => {
    const spent = await createPayoutOverHttp(api, client.key);
    await changeDescriptions(api, client, spent, 1, LIMIT);
    const fresh = await createPayoutOverHttp(api, client.key);
    await changeDescriptions(api, client, fresh, 1, LIMIT);
    expect((await read(fresh)).version).to.equal(1 + LIMIT);
  });

  it('another client’s payout is 404, never 409', async () => {
    const id = await createPayoutOverHttp(api, client.key);
    await changeDescriptions(api, client, id, 1, LIMIT);
    const stranger = await createTestClient(db, 'described-stranger');
    const response = await api.request('PATCH', `/api/payouts/${id}`, {
      key: stranger.key,
      json: { description: 'not mine' },
    });
    expect(response.status, response.text).to.equal(404);
  });
});
