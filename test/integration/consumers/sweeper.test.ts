/**
 * The sweeper: a payout whose message was lost is re-driven through the outbox and completes; the stuck gauge
 * shows it meanwhile; past MAX_REDRIVES it needs a person and the sweeper leaves it alone, until an operator
 * retries it; expired idempotency keys are removed; the DLQ depth is exported.
 */
import { expect } from 'chai';
import { sweepOnce } from '../../../src/sweeper/sweeper.js';
import {
  createPayouts,
  expectAllCompletedOnce,
  providerEffects,
  useConsumerHarness,
  waitFor,
  waitForStatus,
} from '../../support/consumers.js';
import { createTestClient, payoutInput, createWire } from '../../support/fixtures.js';

describe('consumers: sweeper', function () {
  this.timeout(120_000);
  const harness = useConsumerHarness({ env: { STUCK_AFTER_SECONDS: '1' } });

  /** Waits until the relay published the payout's message, then drops it from the work queue unseen. */
  async function dropMessageOf(id: string): Promise<void> {
    await waitFor(
      async () =>
        (await harness.ctx.db('outbox').whereRaw(`payload->>'payout_id' = ?`, [id]).whereNull('published_at'))
          .length === 0,
    );
    await harness.broker.queuePurge({ queue: harness.names.workQueue });
  }

  it('re-drives a payout whose message was dropped, which then completes', async () => {
    const client = await createTestClient(harness.ctx.db, 'sweeper');
    // The relay publishes, and the message is dropped before any worker sees it.
    await harness.startRelay();
    const [id] = await createPayouts(harness.ctx, client.principal, 1);
    await dropMessageOf(id!);

    // Past the threshold the payout counts as stuck.
    await harness.ctx
      .db('payouts')
      .where({ id })
      .update({
        scheduled_at: harness.ctx.db.raw(`now() - interval '1 hour'`),
        status_changed_at: harness.ctx.db.raw(`now() - interval '1 hour'`),
      });
    const sweeperCtx = harness.roleContext({ STUCK_AFTER_SECONDS: '1' });
    const first = await sweepOnce(sweeperCtx, sweeperCtx.log, harness.broker);
    expect(first.redriven).to.be.greaterThanOrEqual(1);
    expect(first.stuck.created).to.be.greaterThanOrEqual(1);
    const gauge = (await sweeperCtx.metrics.stuckPayouts.get()).values.find(
      (value) => value.labels.status === 'created',
    );
    expect(gauge?.value).to.be.greaterThanOrEqual(1);
    expect(first.dlqDepth).to.equal(0);

    await harness.startWorker();
    await waitForStatus(harness.ctx, client.principal, id!, 'completed');
    expect((await providerEffects(harness.ctx.db, client.clientId)).get(id!)?.count).to.equal(1);
    await expectAllCompletedOnce(harness.ctx, client.clientId, [id!]);
  });

  it('runs as a role: re-drives on its interval, resumes a payout left in processing', async () => {
    const client = await createTestClient(harness.ctx.db, 'sweeper-role');
    await harness.startRelay();
    const [id] = await createPayouts(harness.ctx, client.principal, 1);
    await dropMessageOf(id!);
    // A worker that started the payout and died, its message gone.
    await harness.ctx.service.applyEvent(
      { clientId: client.clientId, role: 'worker', actor: 'worker' },
      id!,
      { type: 'START' },
      { requestId: null },
    );
    await harness.ctx
      .db('payouts')
      .where({ id })
      .update({ scheduled_at: harness.ctx.db.raw(`now() - interval '1 hour'`) });

    await harness.startSweeper({ STUCK_AFTER_SECONDS: '1', SWEEP_INTERVAL_MS: '100' });
    await harness.startWorker();
    await waitForStatus(harness.ctx, client.principal, id!, 'completed');
    await expectAllCompletedOnce(harness.ctx, client.clientId, [id!]);
  });

  it('gives a payout to a person after MAX_REDRIVES re-drives, stops re-driving it, and an operator retries it', async () => {
    const client = await createTestClient(harness.ctx.db, 'redrive-limit');
    const [id] = await createPayouts(harness.ctx, client.principal, 1);
    const sweeperCtx = harness.roleContext({ STUCK_AFTER_SECONDS: '1', MAX_REDRIVES: '2' });
    const age = () =>
      harness.ctx
        .db('payouts')
        .where({ id })
        .update({ scheduled_at: harness.ctx.db.raw(`now() - interval '1 hour'`) });
    /** Each message, the first and every re-drive, is lost before a worker sees it. */
    const loseMessages = () =>
      harness.ctx.db('outbox').where({ payout_id: id }).update({ published_at: harness.ctx.db.fn.now() });

    const redriven: number[] = [];
    for (let sweep = 0; sweep < 4; sweep += 1) {
      await loseMessages();
      await age();
      redriven.push((await sweepOnce(sweeperCtx, sweeperCtx.log)).redriven);
    }
    const payout = await harness.ctx.service.getPayout(client.operator, id!);
    expect(payout).to.include({ status: 'created', stage: 'needs_attention' });
    expect(payout.snapshot.context).to.deep.include({ redrives: 3, command: null });
    // Two re-drives sent the message again; the third gave the payout to a person; the fourth left it alone.
    const { items: events } = await harness.ctx.service.listEvents(client.operator, id!, { limit: 20 });
    expect(events.filter((event) => event.event === 'REDRIVE')).to.have.length(3);
    expect(redriven.at(-1)).to.equal(0);
    expect(await harness.ctx.db('outbox').where({ payout_id: id }).whereNull('published_at')).to.deep.equal(
      [],
    );
    expect((await sweeperCtx.metrics.needsAttention.get()).values[0]?.value).to.be.greaterThanOrEqual(1);

    // A person retries it: its message goes out again, and a worker completes it.
    await harness.ctx.service.retryPayout(client.operator, id!, {
      requestId: 'retry',
      reason: 'queue fixed',
    });
    await harness.startRelay();
    await harness.startWorker();
    await waitForStatus(harness.ctx, client.principal, id!, 'completed');
    await expectAllCompletedOnce(harness.ctx, client.clientId, [id!]);
  });

  it('removes expired idempotency keys, so a key can be used again', async () => {
    const client = await createTestClient(harness.ctx.db, 'keys');
    await createWire(harness.ctx.service, client.principal, payoutInput(), {
      requestId: null,
      idempotencyKey: 'old-key',
    });
    await createWire(harness.ctx.service, client.principal, payoutInput(), {
      requestId: null,
      idempotencyKey: 'fresh-key',
    });
    await harness.ctx
      .db('idempotency_keys')
      .where({ client_id: client.clientId, key: 'old-key' })
      .update({ created_at: harness.ctx.db.raw(`now() - interval '25 hours'`) });

    const report = await sweepOnce(harness.ctx, harness.ctx.log);
    expect(report.expiredKeysDeleted).to.be.greaterThanOrEqual(1);
    const keys = (await harness.ctx
      .db('idempotency_keys')
      .where({ client_id: client.clientId })
      .pluck('key')) as string[];
    expect(keys).to.deep.equal(['fresh-key']);
    const again = await createWire(harness.ctx.service, client.principal, payoutInput({ amount: '1.00' }), {
      requestId: null,
      idempotencyKey: 'old-key',
    });
    expect(again.replayed).to.equal(false);
  });
});
