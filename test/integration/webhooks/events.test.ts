/**
 * Webhook events are written by the statement of the change that causes them (PostgreSQL, no mocks): one delivery
 * per enabled, subscribed endpoint of the payout's client, with its outbox row; none for a change that was not
 * written; none at all for a client without endpoints.
 */
import { expect } from 'chai';
import { workerPrincipal } from '../../../src/domain/principal.js';
import type { Payout } from '../../../src/domain/payout.js';
import type { TestClient } from '../../support/fixtures.js';
import { createTestClient, payoutInput } from '../../support/fixtures.js';
import { useTestApi } from '../http/helpers.js';

interface DeliveryRow {
  id: string;
  event_id: string;
  endpoint_id: string;
  type: string;
  payout_id: string;
  payout_version: number;
  payout: Record<string, unknown>;
  status: string;
}

describe('webhook events: written with the change', () => {
  const api = useTestApi(5);
  const ctx = { requestId: 'req-events' };

  async function createPayout(client: TestClient): Promise<Payout> {
    const result = await api.ctx.service.createPayout(client.principal, payoutInput({ amount: '1250.50' }), {
      ...ctx,
      answer: (payout) => ({ status: 201, body: { id: payout.id } }),
    });
    if (result.replayed) throw new Error('replayed');
    return result.payout;
  }

  async function endpoint(client: TestClient, events?: string[], status: 'enabled' | 'disabled' = 'enabled') {
    const { endpoint: made } = await api.ctx.webhooks.createEndpoint(client.principal, {
      url: 'https://hooks.example.com/in',
      ...(events ? { events: events as never } : {}),
    });
    if (status === 'disabled') await api.ctx.webhooks.updateEndpoint(client.principal, made.id, { status });
    return made.id;
  }

  async function deliveriesOf(payoutId: string): Promise<DeliveryRow[]> {
    return api.db('webhook_deliveries').where({ payout_id: payoutId }).orderBy('seq');
  }

  it('a client without endpoints: the create and its changes write no delivery and no extra outbox row', async () => {
    const client = await createTestClient(api.db, 'events-none');
    const payout = await createPayout(client);
    await api.ctx.service.applyEvent(workerPrincipal(client.clientId), payout.id, { type: 'START' }, ctx);
    expect(await deliveriesOf(payout.id)).to.deep.equal([]);
    const outbox = await api.db('outbox').whereRaw(`payload->>'payout_id' = ?`, [payout.id]);
    expect(outbox.every((row: { topic: string }) => row.topic === 'payout.process')).to.equal(true);
  });

  it('fans out to each subscribed, enabled endpoint of the client only, with the version and one id per event', async () => {
    const client = await createTestClient(api.db, 'events');
    const other = await createTestClient(api.db, 'events-other');
    const all = await endpoint(client);
    const completedOnly = await endpoint(client, ['payout.completed']);
    await endpoint(client, undefined, 'disabled');
    await endpoint(other);

    const payout = await createPayout(client);
    const worker = workerPrincipal(client.clientId);
    await api.ctx.service.applyEvent(worker, payout.id, { type: 'START' }, ctx);
    await api.ctx.service.applyEvent(worker, payout.id, { type: 'PROVIDER_SUCCEEDED', seq: 2 }, ctx);

    const rows = await deliveriesOf(payout.id);
    expect(rows.map((row) => [row.endpoint_id, row.type, row.payout_version])).to.deep.equal([
      [all, 'payout.created', 1],
      [all, 'payout.processing', 2],
      [all, 'payout.completed', 3],
      [completedOnly, 'payout.completed', 3],
    ]);
    expect(rows[2]!.event_id).to.equal(rows[3]!.event_id);
    expect(new Set(rows.map((row) => row.event_id)).size).to.equal(3);
    expect(rows.every((row) => row.status === 'pending')).to.equal(true);
    // The payout as it was at that version, its amount as text (never a JSON number).
    expect(rows[0]!.payout).to.include({
      status: 'created',
      version: 1,
      amount_minor: '125050',
      currency: 'EUR',
    });
    expect(rows[2]!.payout).to.include({ status: 'completed', version: 3 });

    const outbox = await api
      .db('outbox')
      .where({ topic: 'webhook.deliver' })
      .whereRaw(`payload->>'delivery_id' = ANY (?)`, [rows.map((row) => row.id)]);
    expect(outbox).to.have.length(4);
    expect(outbox.every((row: { payout_id: string | null }) => row.payout_id === null)).to.equal(true);
  });

  it('a change that was not written writes no event: a lost version race, a statement refused, a replayed create', async () => {
    const client = await createTestClient(api.db, 'events-rollback');
    await endpoint(client);
    const payout = await createPayout(client);
    const before = (await deliveriesOf(payout.id)).length;
    expect(before).to.equal(1);

    const change = {
      clientId: client.clientId,
      id: payout.id,
      expectedVersion: 7,
      changes: { status: 'processing' as const, stage: 'submitting' as const },
      history: {
        from: 'created' as const,
        event: 'START',
        actor: 'test',
        actorRole: 'worker',
        reason: null,
        requestId: null,
      },
      webhookEvent: { eventId: 'evt_lost_race', type: 'payout.processing' },
    };
    expect(await api.ctx.store.save(change)).to.equal(null);

    // `failed` without a failure breaks a CHECK: the whole statement, its event included, is rolled back.
    let refused: unknown;
    await api.ctx.store
      .save({
        ...change,
        expectedVersion: 1,
        changes: { status: 'failed', stage: null },
        webhookEvent: { eventId: 'evt_refused', type: 'payout.failed' },
      })
      .catch((error: unknown) => {
        refused = error;
      });
    expect(refused).to.be.an('error');

    const key = 'events-replay-key';
    const answer = () => ({ status: 201, body: { ok: true } });
    await api.ctx.service.createPayout(client.principal, payoutInput(), {
      ...ctx,
      idempotencyKey: key,
      answer,
    });
    const replay = await api.ctx.service.createPayout(client.principal, payoutInput(), {
      ...ctx,
      idempotencyKey: key,
      answer,
    });
    expect(replay.replayed).to.equal(true);

    expect(await deliveriesOf(payout.id)).to.have.length(before);
    expect(
      await api.db('webhook_deliveries').whereIn('event_id', ['evt_lost_race', 'evt_refused']),
    ).to.deep.equal([]);
    const created = await api
      .db('webhook_deliveries')
      .where({ client_id: client.clientId, type: 'payout.created' })
      .count({ n: '*' });
    expect(Number(created[0]!.n)).to.equal(2);
  });

  it('prunes delivered and failed deliveries past the retention, never pending ones', async () => {
    const client = await createTestClient(api.db, 'events-prune');
    await endpoint(client);
    const payouts = [await createPayout(client), await createPayout(client), await createPayout(client)];
    const ids = payouts.map((payout) => payout.id);
    await api
      .db('webhook_deliveries')
      .whereIn('payout_id', ids)
      .update({
        created_at: api.db.raw(`now() - interval '40 days'`),
      });
    await api.db('webhook_deliveries').where({ payout_id: ids[0] }).update({ status: 'delivered' });
    await api.db('webhook_deliveries').where({ payout_id: ids[1] }).update({ status: 'failed' });
    expect(await api.ctx.webhookStore.pruneDeliveries(30, 1000)).to.be.at.least(2);
    const left = await api.db('webhook_deliveries').whereIn('payout_id', ids);
    expect(left.map((row: DeliveryRow) => [row.payout_id, row.status])).to.deep.equal([[ids[2], 'pending']]);
  });
});
