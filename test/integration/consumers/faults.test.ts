/**
 * Transient provider faults (seeded): retried through the delay queues with our attempt header; after the last
 * attempt the payout is FAILED with `retries_exhausted`. Every payout ends final; no payout is paid twice.
 */
import { expect } from 'chai';
import type { Connection } from 'rabbitmq-client';
import type { Config } from '../../../src/config.js';
import { startRelay } from '../../../src/consumers/outbox-relay.js';
import { startWorker } from '../../../src/consumers/payout-consumer.js';
import type { RoleHandle } from '../../../src/consumers/role.js';
import { queueDepth, topologyNames } from '../../../src/consumers/topology.js';
import type { AppContext } from '../../../src/context.js';
import {
  consumerConfig,
  createPayouts,
  declareTestTopology,
  deleteTestTopology,
  providerEffects,
  query,
  statusCounts,
  testBroker,
  testContext,
  testNamespace,
  unfinishedCount,
  waitFor,
} from '../../support/consumers.js';
import { createTestClient } from '../../support/fixtures.js';

describe('consumers: transient faults and retries', function () {
  this.timeout(180_000);
  let config: Config;
  let ctx: AppContext;
  let broker: Connection;
  const roles: RoleHandle[] = [];
  const contexts: AppContext[] = [];

  function roleContext(overrides: Record<string, string> = {}): AppContext {
    // Every role of this file uses the file's delay tiers, so the cleanup deletes every tier it declared.
    const roleCtx = testContext(
      consumerConfig(config.amqpNamespace, { RETRY_DELAYS_MS: '20,50,100', ...overrides }),
    );
    contexts.push(roleCtx);
    return roleCtx;
  }

  before(async () => {
    config = consumerConfig(testNamespace(), { RETRY_DELAYS_MS: '20,50,100' });
    ctx = testContext(config);
    broker = await testBroker();
    await declareTestTopology(broker, config);
  });

  afterEach(async () => {
    await Promise.all(roles.splice(0).map((role) => role.stop()));
    await Promise.all(contexts.splice(0).map((roleCtx) => roleCtx.db.destroy()));
    expect(await queueDepth(broker, topologyNames(config.amqpNamespace).deadLetterQueue)).to.equal(
      0,
      'nothing dead-lettered',
    );
  });

  after(async () => {
    await deleteTestTopology(broker, config);
    await broker.close();
    await ctx.db.destroy();
  });

  it('with PROVIDER_FAULT_RATE=0.3 over 500 payouts, finishes every one and pays none twice', async () => {
    const client = await createTestClient(ctx.db, 'faults');
    const faulty = {
      RETRY_DELAYS_MS: '20,50,100',
      PROVIDER_FAULT_RATE: '0.3',
      PROVIDER_SEED: '20261124',
      WORKER_CONCURRENCY: '16',
      DATABASE_POOL_MAX: '8',
    };
    const workerCtx = roleContext(faulty);
    roles.push(await startRelay(roleContext()), await startWorker(workerCtx));
    const ids = await createPayouts(ctx, client.principal, 500, undefined, 8);
    await waitFor(async () => (await unfinishedCount(ctx.db, client.clientId)) === 0, {
      timeoutMs: 120_000,
      message: async () => JSON.stringify(await statusCounts(ctx.db, client.clientId)),
    });

    const counts = await statusCounts(ctx.db, client.clientId);
    expect((counts.completed ?? 0) + (counts.failed ?? 0)).to.equal(ids.length);
    const failures = await query<{ failure_code: string }>(
      ctx.db,
      `SELECT DISTINCT failure_code FROM payouts WHERE client_id = ? AND status = 'failed'`,
      [client.clientId],
    );
    expect(
      failures.map((row) => row.failure_code).filter((code) => code !== 'retries_exhausted'),
    ).to.deep.equal([]);

    const effects = await providerEffects(ctx.db, client.clientId);
    const completed = (
      await query<{ id: string }>(
        ctx.db,
        `SELECT id FROM payouts WHERE client_id = ? AND status = 'completed'`,
        [client.clientId],
      )
    ).map((row) => row.id);
    for (const id of completed) expect(effects.get(id)).to.deep.equal({ count: 1, results: ['succeeded'] });
    // An exhausted payout's key is voided: the provider holds a refusal for it, never a payment.
    const failed = (
      await query<{ id: string }>(
        ctx.db,
        `SELECT id FROM payouts WHERE client_id = ? AND status = 'failed'`,
        [client.clientId],
      )
    ).map((row) => row.id);
    for (const id of failed) expect(effects.get(id)).to.deep.equal({ count: 1, results: ['failed'] });

    const retries = (await workerCtx.metrics.consumerOutcomes.get()).values
      .filter((value) => value.labels.outcome === 'retry' && value.labels.reason === 'provider_unavailable')
      .reduce((sum, value) => sum + value.value, 0);
    expect(retries).to.be.greaterThan(100);
  });

  it('fails a payout with retries_exhausted after the last attempt', async () => {
    const client = await createTestClient(ctx.db, 'exhausted');
    roles.push(
      await startRelay(roleContext()),
      await startWorker(roleContext({ RETRY_DELAYS_MS: '20,50,100', PROVIDER_FAULT_RATE: '1' })),
    );
    const [id] = await createPayouts(ctx, client.principal, 1);
    await waitFor(async () => (await unfinishedCount(ctx.db, client.clientId)) === 0);
    const payout = await ctx.service.getPayout(client.principal, id!);
    expect(payout.status).to.equal('failed');
    expect(payout.failure?.code).to.equal('retries_exhausted');
    const events = await ctx.service.listEvents(client.principal, id!);
    expect(events.map((event) => event.to)).to.deep.equal(['created', 'processing', 'failed']);
  });
});
