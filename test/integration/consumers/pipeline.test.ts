/**
 * The pipeline end to end against real PostgreSQL and RabbitMQ: create → outbox → relay → broker → worker →
 * provider → completed; and the relay's guarantees (nothing lost between commit and publish, no row published
 * twice by two relays).
 */
import { expect } from 'chai';
import { claimOutboxBatch } from '../../../src/persistence/outbox-repository.js';
import {
  createPayouts,
  expectAllCompletedOnce,
  histories,
  providerEffects,
  statusCounts,
  useConsumerHarness,
  waitFor,
  waitForStatus,
  waitUntilFinal,
} from '../../support/consumers.js';
import type { TestClient } from '../../support/fixtures.js';
import { IBANS, createTestClient, payoutInput, createWire } from '../../support/fixtures.js';

describe('consumers: pipeline', function () {
  this.timeout(120_000);
  const harness = useConsumerHarness();

  it('takes a created payout to completed through the broker, with its history once', async () => {
    const client = await createTestClient(harness.ctx.db, 'e2e');
    await harness.startRelay();
    await harness.startWorker();
    const created = await createWire(harness.ctx.service, client.principal, payoutInput(), {
      requestId: 'e2e-request-1',
    });

    await waitForStatus(harness.ctx, client.principal, created.body.id, 'completed');
    const { items: events } = await harness.ctx.service.listEvents(client.principal, created.body.id, {
      limit: 20,
    });
    expect(events.map((event) => `${event.from ?? ''}>${event.to}`)).to.deep.equal([
      '>created',
      'created>processing',
      'processing>completed',
    ]);
    // The request id travels from the create call through the message into the worker's history rows.
    expect(events.map((event) => event.requestId)).to.deep.equal([
      'e2e-request-1',
      'e2e-request-1',
      'e2e-request-1',
    ]);
    expect(events[1]!.actorRole).to.equal('worker');
    const effects = await providerEffects(harness.ctx.db, client.clientId);
    expect(effects.get(created.body.id)).to.deep.equal({ count: 1, results: ['succeeded'] });
  });

  it('fails payouts the provider refuses, with its code, and completes the rest', async () => {
    const client = await createTestClient(harness.ctx.db, 'refused');
    await harness.startRelay();
    await harness.startWorker({ PROVIDER_BLOCKED_IBANS: IBANS.NL, PROVIDER_LIMITS: 'EUR:1000.00' });
    const [blocked, overLimit, atLimit] = await createPayouts(harness.ctx, client.principal, 3, (index) =>
      index === 0
        ? payoutInput({ recipient: { type: 'iban', iban: IBANS.NL, holder_name: 'Blocked' } })
        : payoutInput({ amount: index === 1 ? '1000.01' : '1000.00' }),
    );
    await waitUntilFinal(harness.ctx.db, client.clientId);
    const get = (id: string) => harness.ctx.service.getPayout(client.principal, id);
    expect((await get(blocked!)).failure?.code).to.equal('recipient_blocked');
    expect((await get(overLimit!)).failure?.code).to.equal('provider_limit_exceeded');
    expect((await get(atLimit!)).status).to.equal('completed');
  });

  it('withdraws the message of a payout deleted before it went out: the cancel settles its command', async () => {
    const client = await createTestClient(harness.ctx.db, 'withdrawn');
    const [id] = await createPayouts(harness.ctx, client.principal, 1);
    await harness.ctx.service.deletePayout(client.principal, id!, { requestId: null });
    const rows = await harness.ctx.db('outbox').where({ payout_id: id });
    expect(rows).to.have.length(1);
    expect(rows[0].published_at, 'marked done by the cancel').to.not.equal(null);
  });

  it('acknowledges the message of a payout deleted before processing, without dead-lettering it', async () => {
    const client = await createTestClient(harness.ctx.db, 'deleted');
    const [id] = await createPayouts(harness.ctx, client.principal, 1);
    // The message goes out first; the delete then races it to the worker.
    await harness.startRelay();
    await waitFor(
      async () =>
        (await harness.ctx.db('outbox').where({ payout_id: id }).whereNull('published_at')).length === 0,
    );
    await harness.ctx.service.deletePayout(client.principal, id!, { requestId: null });
    const worker = await harness.startWorker();
    await waitFor(async () =>
      (await worker.ctx.metrics.redeliveries.get()).values.some(
        (v) => v.labels.status === 'cancelled' && v.value > 0,
      ),
    );
    await harness.expectNothingDeadLettered();
    expect((await histories(harness.ctx.db, client.clientId)).get(id!)).to.deep.equal([
      '>created',
      'created>cancelled',
    ]);
  });

  it('loses nothing when a relay dies between commit and publish', async () => {
    const client = await createTestClient(harness.ctx.db, 'relay-crash');
    // Payouts committed while no relay runs: their outbox rows wait.
    const ids = await createPayouts(harness.ctx, client.principal, 30);
    // A relay claims a batch (leasing it) and dies before publishing: the rows stay leased, unpublished.
    const claimed = await claimOutboxBatch(harness.ctx.db, 10, 1_000);
    expect(claimed.length).to.be.greaterThan(0);
    const claimedOurs = claimed.filter((message) => ids.includes(message.payload.payout_id as string));
    expect(claimedOurs.length, 'the dead relay leased payouts of this test').to.be.greaterThan(0);

    await harness.startRelay({ RELAY_LEASE_MS: '1000' });
    await harness.startWorker();
    await waitUntilFinal(harness.ctx.db, client.clientId, { timeoutMs: 30_000 });
    expect(await statusCounts(harness.ctx.db, client.clientId)).to.deep.equal({ completed: ids.length });
    const effects = await providerEffects(harness.ctx.db, client.clientId);
    expect([...effects.values()].every((effect) => effect.count === 1)).to.equal(true);
    expect(effects.size).to.equal(ids.length);
  });

  it('never publishes a row twice when two relays run, each with several rounds in flight', async () => {
    const client = await createTestClient(harness.ctx.db, 'two-relays');
    const ids = await createPayouts(harness.ctx, client.principal, 300);
    const wanted = new Set(ids);
    const names = harness.names;
    const seen = new Map<string, number>();
    // A bare consumer instead of the worker: it records every message the relays published.
    const consumer = harness.broker.createConsumer(
      { queue: names.workQueue, queueOptions: { passive: true }, qos: { prefetchCount: 500 } },
      (message) => {
        const payoutId = (message.body as { payout_id?: string }).payout_id;
        if (payoutId && wanted.has(payoutId)) seen.set(payoutId, (seen.get(payoutId) ?? 0) + 1);
      },
    );
    try {
      await harness.startRelay({ RELAY_BATCH_SIZE: '20', RELAY_CONCURRENCY: '4' });
      await harness.startRelay({ RELAY_BATCH_SIZE: '20', RELAY_CONCURRENCY: '4' });
      await waitFor(() => seen.size === wanted.size, {
        timeoutMs: 30_000,
        message: () => `${seen.size}/${wanted.size}`,
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect([...seen.values()].filter((count) => count > 1)).to.deep.equal([]);
      const unpublished = await harness.ctx
        .db('outbox')
        .whereNull('published_at')
        .whereRaw(`payload->>'client_id' = ?`, [client.clientId])
        .count({ count: '*' });
      expect(Number(unpublished[0]!.count)).to.equal(0);
    } finally {
      await consumer.close();
    }
    // The payouts of this test stay created (no worker ran): leave them to nobody.
    await harness.ctx
      .db('payouts')
      .where({ client_id: client.clientId })
      .update({ scheduled_at: harness.ctx.db.raw(`now() + interval '1 day'`) });
  });

  it('is woken by NOTIFY, and LISTENs again after its database connection was cut', async () => {
    const client = await createTestClient(harness.ctx.db, 'notify');
    const proxy = await harness.databaseProxy();
    // Polling once a minute: only a notification can explain a quick publish.
    await harness.startRelay({ DATABASE_URL: proxy.url(harness.config.databaseUrl), RELAY_POLL_MS: '60000' });
    await harness.startWorker();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const quick = async () => {
      const created = await createWire(harness.ctx.service, client.principal, payoutInput(), {
        requestId: null,
      });
      await waitForStatus(harness.ctx, client.principal, created.body.id, 'completed', { timeoutMs: 8_000 });
    };
    await quick();
    await proxy.cut();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await proxy.restore();
    // The relay's pool and its listener reconnect; the listener LISTENs again and new payouts flow at once.
    await new Promise((resolve) => setTimeout(resolve, 6_000));
    await quick();
    await quick();
  });

  it('prunes published rows after the retention and exports the backlog gauges', async () => {
    const client = await createTestClient(harness.ctx.db, 'prune');
    const [id, waiting] = await createPayouts(harness.ctx, client.principal, 2);
    const row = harness.ctx.db('outbox').whereRaw(`payload->>'payout_id' = ?`, [id!]);
    await row.clone().update({ published_at: harness.ctx.db.raw(`now() - interval '2 hours'`) });
    // An unsent row an hour old, leased by a relay that is gone: the backlog the gauges must show.
    const stuck = harness.ctx.db('outbox').whereRaw(`payload->>'payout_id' = ?`, [waiting!]);
    await stuck.clone().update({
      created_at: harness.ctx.db.raw(`now() - interval '1 hour'`),
      locked_until: harness.ctx.db.raw(`now() + interval '1 hour'`),
    });
    const relay = await harness.startRelay({ OUTBOX_RETENTION_HOURS: '1' });
    await waitFor(async () => (await row.clone()).length === 0);
    await waitFor(async () => (await relay.ctx.metrics.outboxBacklog.get()).values.length > 0);
    const gauge = async (metric: 'outboxBacklog' | 'outboxOldestAge') =>
      (await relay.ctx.metrics[metric].get()).values[0]?.value ?? Number.NaN;
    await waitFor(async () => (await gauge('outboxOldestAge')) >= 3600, {
      timeoutMs: 15_000,
      message: async () => `oldest age ${await gauge('outboxOldestAge')}`,
    });
    expect((await relay.ctx.metrics.outboxOldestAge.get()).values[0]!.value).to.be.a('number');
    expect(await gauge('outboxOldestAge')).to.be.within(3600, 3660);
    expect(await gauge('outboxBacklog'), 'the stuck row is in the backlog').to.be.at.least(1);
    // Give the row back, so that a later relay sends it.
    await stuck.clone().update({ locked_until: null });
  });

  it('keeps the history of every payout to one transition per step under load', async () => {
    const client: TestClient = await createTestClient(harness.ctx.db, 'history');
    await harness.startRelay();
    await harness.startWorker();
    await harness.startWorker();
    const ids = await createPayouts(harness.ctx, client.principal, 100);
    await waitUntilFinal(harness.ctx.db, client.clientId);
    await expectAllCompletedOnce(harness.ctx, client.clientId, ids);
  });
});
