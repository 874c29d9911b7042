/**
 * The sweeper: a payout whose message was lost is re-driven through the outbox and completes; the stuck gauge
 * shows it meanwhile; expired idempotency keys are removed; the DLQ depth is exported.
 */
import { expect } from 'chai';
import type { Connection } from 'rabbitmq-client';
import type { Config } from '../../../src/config.js';
import { startRelay } from '../../../src/consumers/outbox-relay.js';
import { startWorker } from '../../../src/consumers/payout-consumer.js';
import type { RoleHandle } from '../../../src/consumers/role.js';
import { startSweeper, sweepOnce } from '../../../src/consumers/sweeper.js';
import { topologyNames } from '../../../src/consumers/topology.js';
import type { AppContext } from '../../../src/context.js';
import {
  consumerConfig,
  createPayouts,
  declareTestTopology,
  deleteTestTopology,
  histories,
  providerEffects,
  testBroker,
  testContext,
  testNamespace,
  waitFor,
} from '../../support/consumers.js';
import { createTestClient, payoutInput } from '../../support/fixtures.js';

describe('consumers: sweeper', function () {
  this.timeout(120_000);
  let config: Config;
  let ctx: AppContext;
  let broker: Connection;
  const roles: RoleHandle[] = [];
  const contexts: AppContext[] = [];

  function roleContext(overrides: Record<string, string> = {}): AppContext {
    const roleCtx = testContext(consumerConfig(config.amqpNamespace, overrides));
    contexts.push(roleCtx);
    return roleCtx;
  }

  before(async () => {
    config = consumerConfig(testNamespace(), { STUCK_AFTER_SECONDS: '1' });
    ctx = testContext(config);
    broker = await testBroker();
    await declareTestTopology(broker, config);
  });

  afterEach(async () => {
    await Promise.all(roles.splice(0).map((role) => role.stop()));
    await Promise.all(contexts.splice(0).map((roleCtx) => roleCtx.db.destroy()));
  });

  after(async () => {
    await deleteTestTopology(broker, config);
    await broker.close();
    await ctx.db.destroy();
  });

  it('re-drives a payout whose message was dropped, which then completes', async () => {
    const client = await createTestClient(ctx.db, 'sweeper');
    const names = topologyNames(config.amqpNamespace);
    // The relay publishes, and the message is dropped before any worker sees it.
    const relay = await startRelay(roleContext());
    roles.push(relay);
    const [id] = await createPayouts(ctx, client.principal, 1);
    await waitFor(
      async () =>
        (await ctx.db('outbox').whereRaw(`payload->>'payout_id' = ?`, [id!]).whereNull('published_at'))
          .length === 0,
    );
    await broker.queuePurge({ queue: names.workQueue });

    // Past the threshold the payout counts as stuck.
    await ctx
      .db('payouts')
      .where({ id })
      .update({
        scheduled_at: ctx.db.raw(`now() - interval '1 hour'`),
        updated_at: ctx.db.raw(`now() - interval '1 hour'`),
      });
    const sweeperCtx = roleContext({ STUCK_AFTER_SECONDS: '1' });
    const first = await sweepOnce(sweeperCtx, sweeperCtx.log, broker);
    expect(first.redriven).to.be.greaterThanOrEqual(1);
    expect(first.stuck.created).to.be.greaterThanOrEqual(1);
    const gauge = (await sweeperCtx.metrics.stuckPayouts.get()).values.find(
      (value) => value.labels.status === 'created',
    );
    expect(gauge?.value).to.be.greaterThanOrEqual(1);
    expect(first.dlqDepth).to.equal(0);

    roles.push(await startWorker(roleContext()));
    await waitFor(async () => (await ctx.service.getPayout(client.principal, id!)).status === 'completed');
    expect((await providerEffects(ctx.db, client.clientId)).get(id!)?.count).to.equal(1);
    expect((await histories(ctx.db, client.clientId)).get(id!)).to.deep.equal([
      '>created',
      'created>processing',
      'processing>completed',
    ]);
  });

  it('runs as a role: re-drives on its interval, resumes a payout left in processing', async () => {
    const client = await createTestClient(ctx.db, 'sweeper-role');
    roles.push(await startRelay(roleContext()));
    const [id] = await createPayouts(ctx, client.principal, 1);
    const names = topologyNames(config.amqpNamespace);
    await waitFor(
      async () =>
        (await ctx.db('outbox').whereRaw(`payload->>'payout_id' = ?`, [id!]).whereNull('published_at'))
          .length === 0,
    );
    await broker.queuePurge({ queue: names.workQueue });
    // A worker that started the payout and died, its message gone.
    await ctx.service.applyEvent(
      { clientId: client.clientId, role: 'worker', actor: 'worker' },
      id!,
      { type: 'START' },
      { requestId: null },
    );
    await ctx
      .db('payouts')
      .where({ id })
      .update({ scheduled_at: ctx.db.raw(`now() - interval '1 hour'`) });

    roles.push(
      await startSweeper(roleContext({ STUCK_AFTER_SECONDS: '1', SWEEP_INTERVAL_MS: '100' })),
      await startWorker(roleContext()),
    );
    await waitFor(async () => (await ctx.service.getPayout(client.principal, id!)).status === 'completed');
    expect((await histories(ctx.db, client.clientId)).get(id!)).to.deep.equal([
      '>created',
      'created>processing',
      'processing>completed',
    ]);
  });

  it('removes expired idempotency keys, so a key can be used again', async () => {
    const client = await createTestClient(ctx.db, 'keys');
    await ctx.service.createPayout(client.principal, payoutInput(), {
      requestId: null,
      idempotencyKey: 'old-key',
    });
    await ctx.service.createPayout(client.principal, payoutInput(), {
      requestId: null,
      idempotencyKey: 'fresh-key',
    });
    await ctx
      .db('idempotency_keys')
      .where({ client_id: client.clientId, key: 'old-key' })
      .update({ created_at: ctx.db.raw(`now() - interval '25 hours'`) });

    const report = await sweepOnce(ctx, ctx.log);
    expect(report.expiredKeysDeleted).to.be.greaterThanOrEqual(1);
    const keys = (await ctx
      .db('idempotency_keys')
      .where({ client_id: client.clientId })
      .pluck('key')) as string[];
    expect(keys).to.deep.equal(['fresh-key']);
    const again = await ctx.service.createPayout(client.principal, payoutInput({ amount: '1.00' }), {
      requestId: null,
      idempotencyKey: 'old-key',
    });
    expect(again.replayed).to.equal(false);
  });
});
