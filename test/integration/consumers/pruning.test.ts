/**
 * Pruning keeps up: the relay removes every published outbox row past its retention and the sweeper every expired
 * idempotency outcome, however many there are, batch after batch, and leaves the rows still within it. One
 * batch per round would leave the rest for the next round, minutes later, while creates add thousands a minute.
 */
import { expect } from 'chai';
import { sweepOnce } from '../../../src/sweeper/sweeper.js';
import { createPayouts, useConsumerHarness, waitFor } from '../../support/consumers.js';
import { createTestClient } from '../../support/fixtures.js';

/** More than two batches of the pruners (5,000 rows each). */
const EXPIRED = 12_000;

describe('consumers: pruning keeps up', function () {
  this.timeout(60_000);
  const harness = useConsumerHarness();

  it('the relay removes every published outbox row past its retention, and only those', async () => {
    const { db } = harness.ctx;
    const topic = `pruning-test-${harness.config.amqpNamespace}`;
    const insert = (count: number, age: string) =>
      db.raw(
        `INSERT INTO outbox (id, topic, payload, created_at, published_at)
         SELECT gen_random_uuid(), ?, '{}'::jsonb, now() - ?::interval, now() - ?::interval
           FROM generate_series(1, ?)`,
        [topic, age, age, count],
      );
    await insert(EXPIRED, `${harness.config.outboxRetentionHours + 1} hours`);
    await insert(10, '1 hour');
    harness.defer(async () => {
      await db('outbox').where({ topic }).delete();
    });

    await harness.startRelay();
    await waitFor(async () => Number((await db('outbox').where({ topic }).count({ n: '*' }))[0]!.n) === 10, {
      timeoutMs: 20_000,
    });
  });

  it('the sweeper removes every expired idempotency outcome in one sweep, and only those', async () => {
    const { db } = harness.ctx;
    const client = await createTestClient(db, 'pruning');
    const [payoutId] = await createPayouts(harness.ctx, client.principal, 1);
    if (!payoutId) throw new Error('no payout created');
    const insert = (prefix: string, count: number, age: string) =>
      db.raw(
        `INSERT INTO idempotency_keys (client_id, key, request_hash, payout_id, response_status, response_body, created_at)
         SELECT ?, ? || n, 'hash', ?, 201, '{}'::json, now() - ?::interval FROM generate_series(1, ?) n`,
        [client.clientId, prefix, payoutId, age, count],
      );
    await insert('expired-', EXPIRED, `${harness.config.idempotencyTtlHours + 1} hours`);
    await insert('fresh-', 10, '1 hour');

    const report = await sweepOnce(harness.ctx, harness.ctx.log);
    expect(report.expiredKeysDeleted).to.be.at.least(EXPIRED);
    const left = await db('idempotency_keys')
      .where({ client_id: client.clientId })
      .whereLike('key', 'expired-%')
      .count<Array<{ n: string }>>({ n: '*' });
    expect(Number(left[0]!.n)).to.equal(0);
    const fresh = await db('idempotency_keys')
      .where({ client_id: client.clientId })
      .whereLike('key', 'fresh-%');
    expect(fresh).to.have.length(10);
  });
});
