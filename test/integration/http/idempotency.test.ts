/**
 * Idempotency-Key on POST /api/payouts over HTTP (issue 5): a retried create never becomes a second payout,
 * races included, and never a 5xx.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { TestClient } from '../../support/fixtures.js';
import { BAD_CHECKSUM_IBAN, IBANS, createTestClient, payoutInput } from '../../support/fixtures.js';
import type { ApiResponse } from '../../support/http.js';
import { useTestApi } from './helpers.js';

describe('Idempotency-Key', () => {
  const api = useTestApi(10);
  let client: TestClient;

  beforeEach(async () => {
    client = await createTestClient(api.db, 'idem');
  });

  const create = (key: string, body: unknown = payoutInput(), apiKey: string = client.key) =>
    api.request('POST', '/api/payouts', { key: apiKey, json: body, headers: { 'idempotency-key': key } });

  async function payoutsOf(clientId: string): Promise<string[]> {
    const rows: Array<{ id: string }> = await api.db('payouts').where({ client_id: clientId }).select('id');
    return rows.map((row) => row.id);
  }

  function expectCreatedOrInFlight(responses: ApiResponse[], id: string): void {
    for (const response of responses) {
      expect([201, 409], response.text).to.include(response.status);
      if (response.status === 201) expect(response.body.id).to.equal(id);
      if (response.status === 409) {
        expect(response.body.code).to.equal('idempotency_key_in_flight');
        expect(response.headers.get('retry-after')).to.match(/^\d+$/);
      }
    }
  }

  it('50 concurrent POSTs with one key and one body → exactly one payout; every answer 201 with its id or 409', async () => {
    const key = randomUUID();
    const responses = await Promise.all(Array.from({ length: 50 }, () => create(key)));
    const ids = await payoutsOf(client.clientId);
    expect(ids).to.have.length(1);
    expectCreatedOrInFlight(responses, ids[0]!);
    expect(responses.filter((response) => response.status === 201).length).to.be.at.least(1);
    const outbox = await api.db('outbox').whereRaw(`payload->>'payout_id' = ?`, [ids[0]!]);
    expect(outbox).to.have.length(1);
    // A retry once the dust settles replays the one payout.
    const retry = await create(key);
    expect(retry.status).to.equal(201);
    expect(retry.body.id).to.equal(ids[0]);
  });

  it('a create whose key is held by a request still in flight is 409 with Retry-After and writes nothing', async () => {
    const key = randomUUID();
    // Stands in for a first request mid-transaction: it holds the key's lock, as the create statement takes it.
    const holder = await api.db.client.acquireConnection();
    try {
      await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`${client.clientId}:${key}`]);
      const refused = await create(key);
      expect(refused.status, refused.text).to.equal(409);
      expect(refused.body.code).to.equal('idempotency_key_in_flight');
      expect(refused.headers.get('retry-after')).to.match(/^\d+$/);
      expect(await payoutsOf(client.clientId)).to.deep.equal([]);
      expect(await api.db('idempotency_keys').where({ client_id: client.clientId, key })).to.deep.equal([]);
    } finally {
      await holder.query('SELECT pg_advisory_unlock_all()');
      await api.db.client.releaseConnection(holder);
    }
    const created = await create(key);
    expect(created.status, created.text).to.equal(201);
    expect(await payoutsOf(client.clientId)).to.deep.equal([created.body.id]);
  });

  it('10 keys × 12 concurrent requests → exactly 10 payouts', async () => {
    const keys = Array.from({ length: 10 }, () => randomUUID());
    const responses = await Promise.all(
      keys.flatMap((key) =>
        Array.from({ length: 12 }, () => create(key).then((response) => ({ key, response }))),
      ),
    );
    const ids = await payoutsOf(client.clientId);
    expect(ids).to.have.length(10);
    const idByKey = new Map<string, string>();
    for (const { key, response } of responses) {
      expect([201, 409], response.text).to.include(response.status);
      if (response.status !== 201) continue;
      expect(idByKey.get(key) ?? response.body.id).to.equal(response.body.id);
      idByKey.set(key, response.body.id as string);
    }
    expect([...idByKey.values()].every((id) => ids.includes(id))).to.equal(true);
    expect(new Set(idByKey.values()).size).to.equal(idByKey.size);
    expect(idByKey.size, 'every key created its payout once').to.equal(10);
  });

  it('a replay returns the identical status and body with Idempotent-Replayed: true', async () => {
    const key = randomUUID();
    const first = await create(key);
    expect(first.status).to.equal(201);
    expect(first.headers.get('idempotent-replayed')).to.equal(null);
    // Key order and whitespace do not make another request.
    const reordered = JSON.stringify({
      recipient: payoutInput().recipient,
      description: 'Invoice 42',
      currency: 'EUR',
      amount: '1250.50',
    });
    const replay = await api.request('POST', '/api/payouts', {
      key: client.key,
      headers: { 'idempotency-key': key, 'content-type': 'application/json' },
      body: ` ${reordered} `,
    });
    expect(replay.status).to.equal(201);
    expect(replay.headers.get('idempotent-replayed')).to.equal('true');
    // Byte for byte: the stored response is kept as json text, key order included.
    expect(replay.text).to.equal(first.text);
    expect(replay.headers.get('location')).to.equal(first.headers.get('location'));
    expect(await payoutsOf(client.clientId)).to.have.length(1);
  });

  it('the same key with a different body → 422, and nothing is created', async () => {
    const key = randomUUID();
    expect((await create(key)).status).to.equal(201);
    for (const other of [
      payoutInput({ amount: '1250.51' }),
      payoutInput({ description: null }),
      payoutInput({ recipient: { type: 'iban', iban: IBANS.GB, holder_name: 'Jane Doe' } }),
    ]) {
      const response = await create(key, other);
      expect(response.status).to.equal(422);
      expect(response.body.code).to.equal('idempotency_key_reused');
    }
    expect(await payoutsOf(client.clientId)).to.have.length(1);
  });

  it('a validation failure stores nothing: the corrected request with the same key is 201', async () => {
    const key = randomUUID();
    expect((await create(key, { ...payoutInput(), amount: 12.5 })).status).to.equal(400);
    expect(
      (
        await create(
          key,
          payoutInput({ recipient: { type: 'iban', iban: BAD_CHECKSUM_IBAN, holder_name: 'J' } }),
        )
      ).status,
    ).to.equal(400);
    const fixed = await create(key);
    expect(fixed.status).to.equal(201);
    expect(fixed.headers.get('idempotent-replayed')).to.equal(null);
  });

  it('the same key from two clients → two payouts', async () => {
    const other = await createTestClient(api.db, 'idem-other');
    const key = randomUUID();
    const [mine, theirs] = await Promise.all([create(key), create(key, payoutInput(), other.key)]);
    expect(mine.status).to.equal(201);
    expect(theirs.status).to.equal(201);
    expect(mine.body.id).to.not.equal(theirs.body.id);
    expect(await payoutsOf(client.clientId)).to.deep.equal([mine.body.id]);
    expect(await payoutsOf(other.clientId)).to.deep.equal([theirs.body.id]);
  });

  it('a client key and an operator key of the same client share the key space', async () => {
    const key = randomUUID();
    const first = await create(key);
    const second = await create(key, payoutInput(), client.operatorKey);
    expect(second.status).to.equal(201);
    expect(second.body.id).to.equal(first.body.id);
    expect(second.headers.get('idempotent-replayed')).to.equal('true');
  });

  it('creation without a key still works, and creates each time', async () => {
    const a = await api.request('POST', '/api/payouts', { key: client.key, json: payoutInput() });
    const b = await api.request('POST', '/api/payouts', { key: client.key, json: payoutInput() });
    expect([a.status, b.status]).to.deep.equal([201, 201]);
    expect(a.body.id).to.not.equal(b.body.id);
  });
});
