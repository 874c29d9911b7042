/**
 * Transient provider faults (seeded): retried through the delay queues with our attempt header; after the last
 * attempt the payout is FAILED with `retries_exhausted`. Every payout ends final; no payout is paid twice.
 */
import { expect } from 'chai';
import {
  createPayouts,
  providerEffects,
  query,
  statusCounts,
  useConsumerHarness,
  waitUntilFinal,
} from '../../support/consumers.js';
import { createTestClient } from '../../support/fixtures.js';

describe('consumers: transient faults and retries', function () {
  this.timeout(180_000);
  // Every role of this file uses the file's delay tiers, so the cleanup deletes every tier it declared.
  const delayTiers = { RETRY_DELAYS_MS: '20,50,100' };
  const harness = useConsumerHarness({ env: delayTiers, roleEnv: delayTiers });

  afterEach(() => harness.expectNothingDeadLettered());

  it('with PROVIDER_FAULT_RATE=0.3 over 500 payouts, finishes every one and pays none twice', async () => {
    const client = await createTestClient(harness.ctx.db, 'faults');
    const faulty = {
      RETRY_DELAYS_MS: '20,50,100',
      PROVIDER_FAULT_RATE: '0.3',
      PROVIDER_SEED: '20261124',
      WORKER_CONCURRENCY: '16',
      DATABASE_POOL_MAX: '8',
    };
    await harness.startRelay();
    const worker = await harness.startWorker(faulty);
    const ids = await createPayouts(harness.ctx, client.principal, 500, undefined, 8);
    await waitUntilFinal(harness.ctx.db, client.clientId, { timeoutMs: 120_000 });

    const counts = await statusCounts(harness.ctx.db, client.clientId);
    expect((counts.completed ?? 0) + (counts.failed ?? 0)).to.equal(ids.length);
    const failures = await query<{ failure_code: string }>(
      harness.ctx.db,
      `SELECT DISTINCT failure_code FROM payouts WHERE client_id = ? AND status = 'failed'`,
      [client.clientId],
    );
    expect(
      failures.map((row) => row.failure_code).filter((code) => code !== 'retries_exhausted'),
    ).to.deep.equal([]);

    const effects = await providerEffects(harness.ctx.db, client.clientId);
    const idsWithStatus = async (status: string) =>
      (
        await query<{ id: string }>(
          harness.ctx.db,
          `SELECT id FROM payouts WHERE client_id = ? AND status = ?`,
          [client.clientId, status],
        )
      ).map((row) => row.id);
    const completed = await idsWithStatus('completed');
    for (const id of completed) expect(effects.get(id)).to.deep.equal({ count: 1, results: ['succeeded'] });
    // An exhausted payout's key is voided: the provider holds a refusal for it, never a payment.
    const failed = await idsWithStatus('failed');
    for (const id of failed) expect(effects.get(id)).to.deep.equal({ count: 1, results: ['failed'] });
    // The loops above cover every payout (`failed` may be empty: 0.3 over four attempts rarely exhausts one).
    expect(completed.length + failed.length).to.equal(ids.length);

    // Each transient fault was reported to the payout's machine, which spent a retry on it.
    const unavailable = (await worker.ctx.metrics.providerCalls.get()).values
      .filter((value) => value.labels.outcome === 'transient_error')
      .reduce((sum, value) => sum + value.value, 0);
    expect(unavailable).to.be.greaterThan(100);
    const [reported] = await query<{ count: string }>(
      harness.ctx.db,
      `SELECT count(*) AS count FROM payout_events e JOIN payouts p ON p.id = e.payout_id
        WHERE p.client_id = ? AND e.event = 'PROVIDER_UNAVAILABLE'`,
      [client.clientId],
    );
    expect(Number(reported!.count)).to.equal(unavailable);
  });

  it('fails a payout with retries_exhausted after the last attempt', async () => {
    const client = await createTestClient(harness.ctx.db, 'exhausted');
    await harness.startRelay();
    await harness.startWorker({ RETRY_DELAYS_MS: '20,50,100', PROVIDER_FAULT_RATE: '1' });
    const [id] = await createPayouts(harness.ctx, client.principal, 1);
    await waitUntilFinal(harness.ctx.db, client.clientId);
    const payout = await harness.ctx.service.getPayout(client.principal, id!);
    expect(payout.status).to.equal('failed');
    expect(payout.failure?.code).to.equal('retries_exhausted');
    const { items: events } = await harness.ctx.service.listEvents(client.principal, id!, { limit: 20 });
    // Three retries with their back-off, then the fourth unavailability gives up: the key is voided.
    expect(events.map((event) => event.event)).to.deep.equal([
      'CREATE',
      'START',
      'PROVIDER_UNAVAILABLE',
      'PROVIDER_UNAVAILABLE',
      'PROVIDER_UNAVAILABLE',
      'PROVIDER_UNAVAILABLE',
      'PROVIDER_FAILED',
    ]);
    expect(events.map((event) => event.to).filter((to, index, all) => to !== all[index - 1])).to.deep.equal([
      'created',
      'processing',
      'failed',
    ]);
    // Its provider key is voided: exactly one refusal, never a payment.
    const effects = await providerEffects(harness.ctx.db, client.clientId);
    expect(effects.get(id!)).to.deep.equal({ count: 1, results: ['failed'] });
  });
});
