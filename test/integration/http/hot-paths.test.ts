/**
 * The hot paths (src/http/hot-paths.ts): a create, a read and a list page served in front of Express by a key the
 * process authenticated before, with no separate key lookup. The key is still checked by the statement that
 * serves the request, so a revoked or expired key stops at once and a refused create writes nothing; and every
 * answer is the one the app gives when every request goes through Express (`hotPaths: false`).
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import sinon from 'sinon';
import { PgApiKeyStore } from '../../../src/persistence/client-repository.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutInput } from '../../support/fixtures.js';
import type { ApiResponse } from '../../support/http.js';
import type { DescribedApi } from './helpers.js';
import { useTestApi } from './helpers.js';

describe('hot paths', () => {
  const api = useTestApi(4);
  const framework = useTestApi(4, { hotPaths: false });
  afterEach(() => sinon.restore());

  const create = (on: DescribedApi, client: TestClient, body: unknown = payoutInput()) =>
    on.request('POST', '/api/payouts', {
      key: client.key,
      json: body,
      headers: { 'Idempotency-Key': randomUUID() },
    });

  /** What a client can tell of a create: every payout row, message and stored outcome of its client. */
  const writtenFor = async (client: TestClient) => {
    const count = async (table: string) =>
      Number(
        (
          (await api.db(table).where({ client_id: client.clientId }).count({ n: '*' }).first()) as {
            n: string;
          }
        ).n,
      );
    const messages = await api
      .db('outbox')
      .join('payouts', 'payouts.id', 'outbox.payout_id')
      .where('payouts.client_id', client.clientId)
      .count({ n: '*' })
      .first();
    return {
      payouts: await count('payouts'),
      outcomes: await count('idempotency_keys'),
      messages: Number((messages as { n: string }).n),
    };
  };

  const setRevoked = (client: TestClient, revoked: boolean) =>
    api
      .db('api_keys')
      .where({ client_id: client.clientId, role: 'client' })
      .update({ revoked_at: revoked ? api.db.fn.now() : null });

  it('serves a remembered key with no lookup, and refuses it at once once revoked: a create writes nothing', async () => {
    const client = await createTestClient(api.db, 'hot');
    expect((await api.request('GET', '/api/payouts', { key: client.key })).status).to.equal(200);
    const lookups = sinon.spy(PgApiKeyStore.prototype, 'findActive');
    const created = await create(api, client);
    expect(created.status, created.text).to.equal(201);
    const id = created.body.id as string;
    expect((await api.request('GET', `/api/payouts/${id}`, { key: client.key })).status).to.equal(200);
    expect((await api.request('GET', '/api/payouts?limit=5', { key: client.key })).status).to.equal(200);
    expect(lookups.callCount, 'the remembered key is not looked up again').to.equal(0);

    const before = await writtenFor(client);
    await setRevoked(client, true);
    const refused = await create(api, client);
    expect(refused.status, refused.text).to.equal(401);
    expect(refused.body.code).to.equal('unauthenticated');
    expect(refused.headers.get('www-authenticate')).to.equal('Bearer realm="payouts"');
    expect(await writtenFor(client), 'a refused create writes nothing').to.deep.equal(before);

    // Each hot read, with the key remembered again and then revoked.
    for (const path of [`/api/payouts/${id}`, '/api/payouts?limit=5']) {
      await setRevoked(client, false);
      expect((await api.request('GET', path, { key: client.key })).status, path).to.equal(200);
      expect((await api.request('GET', path, { key: client.key })).status, path).to.equal(200);
      await setRevoked(client, true);
      const read = await api.request('GET', path, { key: client.key });
      expect(read.status, path).to.equal(401);
      expect(read.body.code).to.equal('unauthenticated');
    }
  });

  it('refuses an expired remembered key on a create', async () => {
    const client = await createTestClient(api.db, 'hot');
    expect((await create(api, client)).status).to.equal(201);
    const before = await writtenFor(client);
    await api
      .db('api_keys')
      .where({ client_id: client.clientId, role: 'client' })
      .update({ expires_at: api.db.raw(`now() - interval '1 second'`) });
    expect((await create(api, client)).status).to.equal(401);
    expect(await writtenFor(client)).to.deep.equal(before);
  });

  describe('answers as the app answers with every request through Express', () => {
    let client: TestClient;
    before(async () => {
      client = await createTestClient(api.db, 'same');
      // Remembered by the hot-path API; the other never remembers.
      expect((await api.request('GET', '/api/payouts', { key: client.key })).status).to.equal(200);
    });

    /** The response without what differs between any two requests: its request id, date and the payout's id. */
    const comparable = (response: ApiResponse, id?: string) => {
      const headers: Record<string, string> = Object.fromEntries(response.headers.entries());
      for (const name of ['date', 'x-request-id', 'keep-alive', 'connection']) delete headers[name];
      let text = response.text.replace(/"request_id":"[^"]+"/, '"request_id":"-"');
      if (id !== undefined) {
        text = text
          .split(id)
          .join('<id>')
          .replace(/"(created|updated)_at":"[^"]+"/g, '"$1_at":"-"');
        headers.location = String(headers.location).split(id).join('<id>');
        headers['content-length'] = '-';
      }
      return { status: response.status, headers, text };
    };

    it('a create, a read, a 304 and a list page', async () => {
      const lookups = sinon.spy(PgApiKeyStore.prototype, 'findActive');
      const hot = await create(api, client);
      expect(lookups.callCount, 'served on the hot path').to.equal(0);
      const slow = await create(framework, client);
      expect(lookups.callCount, 'served by Express').to.equal(1);
      expect(comparable(hot, hot.body.id as string)).to.deep.equal(comparable(slow, slow.body.id as string));

      const id = hot.body.id as string;
      const read = (on: DescribedApi, headers: Record<string, string> = {}) =>
        on.request('GET', `/api/payouts/${id}`, { key: client.key, headers });
      expect(comparable(await read(api))).to.deep.equal(comparable(await read(framework)));
      const notModified = { 'If-None-Match': '"1"' };
      const hot304 = await read(api, notModified);
      expect(hot304.status).to.equal(304);
      expect(comparable(hot304)).to.deep.equal(comparable(await read(framework, notModified)));

      const list = (on: DescribedApi) =>
        on.request('GET', '/api/payouts?limit=1&currency=EUR', { key: client.key });
      const page = await list(api);
      expect(page.body.data).to.have.length(1);
      expect(comparable(page)).to.deep.equal(comparable(await list(framework)));
      expect(lookups.callCount, 'only the app looked the key up').to.equal(4);
    });

    it('the errors a hot request can end with', async () => {
      const key = randomUUID();
      const send = (on: DescribedApi, body: unknown) =>
        on.request('POST', '/api/payouts', {
          key: client.key,
          json: body,
          headers: { 'Idempotency-Key': key },
        });
      // The same key for a different request (422), from either path.
      expect((await send(api, payoutInput())).status).to.equal(201);
      const reused = payoutInput({ amount: '1.00' });
      const hot = await send(api, reused);
      expect(hot.status).to.equal(422);
      expect(comparable(hot)).to.deep.equal(comparable(await send(framework, reused)));

      // A rule beyond the contract (the IBAN's checksum), and a body that is not JSON.
      const badIban = payoutInput({
        recipient: { type: 'iban', iban: 'DE89370400440532013001', holder_name: 'J' },
      });
      const hotIban = await create(api, client, badIban);
      expect(hotIban.status).to.equal(400);
      expect(comparable(hotIban)).to.deep.equal(comparable(await create(framework, client, badIban)));
      const malformed = (on: DescribedApi) =>
        on.request('POST', '/api/payouts', {
          key: client.key,
          body: '{"amount": ',
          headers: { 'Content-Type': 'application/json' },
        });
      const hotMalformed = await malformed(api);
      expect(hotMalformed.status).to.equal(400);
      expect(comparable(hotMalformed)).to.deep.equal(comparable(await malformed(framework)));
    });
  });
});
