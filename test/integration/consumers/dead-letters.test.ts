/**
 * Poison messages (not JSON, wrong shape, unknown payout) go to the dead-letter queue with their reason, are
 * counted, and never block the work queue; the DLQ can be listed without losing anything and replayed.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import type { Connection } from 'rabbitmq-client';
import { ConsumerStatus } from 'rabbitmq-client';
import type { Config } from '../../../src/config.js';
import { ConfirmedPublisher } from '../../../src/consumers/amqp.js';
import { dlqList, dlqReplay, migrateTopology } from '../../../src/consumers/commands.js';
import { listDeadLetters } from '../../../src/consumers/dlq.js';
import { startRelay } from '../../../src/consumers/outbox-relay.js';
import { startWorker } from '../../../src/consumers/payout-consumer.js';
import type { RoleHandle } from '../../../src/consumers/role.js';
import type { TopologyNames } from '../../../src/consumers/topology.js';
import {
  DELIVERY_LIMIT,
  processEnvelope,
  queueDepth,
  queueDestination,
  workDestination,
} from '../../../src/consumers/topology.js';
import type { AppContext } from '../../../src/context.js';
import type { ProcessMessage } from '../../../src/persistence/outbox-scheduler.js';
import {
  consumerConfig,
  createPayouts,
  deleteTestTopology,
  statusCounts,
  testBroker,
  testContext,
  testNamespace,
  unfinishedCount,
  waitFor,
} from '../../support/consumers.js';
import { createTestClient } from '../../support/fixtures.js';

describe('consumers: dead letters', function () {
  this.timeout(120_000);
  let config: Config;
  let ctx: AppContext;
  let broker: Connection;
  let names: TopologyNames;
  let publisher: ConfirmedPublisher;
  const roles: RoleHandle[] = [];
  const contexts: AppContext[] = [];

  function roleContext(overrides: Record<string, string> = {}): AppContext {
    const roleCtx = testContext(consumerConfig(config.amqpNamespace, overrides));
    contexts.push(roleCtx);
    return roleCtx;
  }

  before(async () => {
    config = consumerConfig(testNamespace());
    ctx = testContext(config);
    broker = await testBroker();
    // The topology step of `migrate`.
    names = await migrateTopology(config, ctx.log);
    publisher = new ConfirmedPublisher(broker);
  });

  afterEach(async () => {
    await Promise.all(roles.splice(0).map((role) => role.stop()));
    await Promise.all(contexts.splice(0).map((roleCtx) => roleCtx.db.destroy()));
    await broker.queuePurge({ queue: names.deadLetterQueue });
  });

  after(async () => {
    await publisher.close();
    await deleteTestTopology(broker, config);
    await broker.close();
    await ctx.db.destroy();
  });

  it('dead-letters poison messages with their reason and keeps the queue flowing', async () => {
    const client = await createTestClient(ctx.db, 'poison');
    const workerCtx = roleContext();
    roles.push(await startWorker(workerCtx), await startRelay(roleContext()));
    const work = { ...workDestination(names), durable: true };
    const unknownPayout: ProcessMessage = {
      schema_version: 1,
      message_id: randomUUID(),
      payout_id: randomUUID(),
      client_id: client.clientId,
      request_id: 'poison-unknown',
    };
    await publisher.publish({ ...work, messageId: 'poison-text' }, 'this is not JSON');
    await publisher.publish(
      { ...work, messageId: 'poison-json', contentType: 'application/json' },
      Buffer.from('{"schema_version": 1,'),
    );
    await publisher.publish(
      { ...work, messageId: 'poison-shape' },
      { schema_version: 2, payout_id: 'urn:uuid:nope' },
    );
    await publisher.publish(processEnvelope(workDestination(names), unknownPayout), unknownPayout);
    // Good payouts created around the poison keep flowing.
    const ids = await createPayouts(ctx, client.principal, 20);

    await waitFor(async () => (await unfinishedCount(ctx.db, client.clientId)) === 0);
    expect(await statusCounts(ctx.db, client.clientId)).to.deep.equal({ completed: ids.length });
    await waitFor(async () => (await queueDepth(broker, names.deadLetterQueue)) === 4);

    const letters = await listDeadLetters(broker, names);
    const byId = new Map(letters.map((letter) => [letter.messageId, letter]));
    expect(byId.get('poison-text')?.reason).to.equal('unparseable');
    expect(byId.get('poison-json')?.reason).to.equal('unparseable');
    expect(byId.get('poison-shape')?.reason).to.equal('invalid_message');
    expect(byId.get('poison-shape')?.detail).to.match(/schema_version/);
    expect(byId.get(unknownPayout.message_id)?.reason).to.equal('unknown_payout');
    expect(byId.get(unknownPayout.message_id)?.payoutId).to.equal(unknownPayout.payout_id);
    // Listing loses nothing, however often it runs.
    expect(await listDeadLetters(broker, names)).to.have.length(4);
    // The queue counts returned messages again a moment after the listing's channel closes.
    await waitFor(async () => (await queueDepth(broker, names.deadLetterQueue)) === 4, { timeoutMs: 5_000 });
    expect(await listDeadLetters(broker, names)).to.have.length(4);

    const metrics = await workerCtx.metrics.consumerOutcomes.get();
    const deadLettered = metrics.values
      .filter((value) => value.labels.outcome === 'dead_letter')
      .reduce((sum, value) => sum + value.value, 0);
    expect(deadLettered).to.equal(4);
  });

  it('dead-letters a message redelivered past the delivery limit (the backstop), with the broker reason', async () => {
    const message: ProcessMessage = {
      schema_version: 1,
      message_id: randomUUID(),
      payout_id: randomUUID(),
      client_id: randomUUID(),
      request_id: null,
    };
    // A consumer that crashes on every delivery, as a poison message could make a worker do.
    let deliveries = 0;
    const crashing = broker.createConsumer(
      { queue: names.workQueue, queueOptions: { passive: true }, qos: { prefetchCount: 1 } },
      () => {
        deliveries += 1;
        return ConsumerStatus.REQUEUE;
      },
    );
    try {
      await publisher.publish(processEnvelope(workDestination(names), message), message);
      await waitFor(async () => (await queueDepth(broker, names.deadLetterQueue)) === 1, {
        timeoutMs: 20_000,
      });
    } finally {
      await crashing.close();
    }
    expect(deliveries).to.be.greaterThanOrEqual(DELIVERY_LIMIT);
    const [letter] = await listDeadLetters(broker, names);
    expect(letter?.reason).to.equal('delivery_limit');
    expect(letter?.messageId).to.equal(message.message_id);
  });

  it('replays dead letters to the work queue, where the worker finishes them', async () => {
    const client = await createTestClient(ctx.db, 'replay');
    // A payout whose message ended in the DLQ (say, over the delivery limit during an outage).
    const [id] = await createPayouts(ctx, client.principal, 1);
    await ctx
      .db('outbox')
      .whereRaw(`payload->>'payout_id' = ?`, [id!])
      .update({ published_at: ctx.db.fn.now() });
    const message: ProcessMessage = {
      schema_version: 1,
      message_id: randomUUID(),
      payout_id: id!,
      client_id: client.clientId,
      request_id: 'replayed',
    };
    await publisher.publish(
      processEnvelope(
        queueDestination(names.deadLetterQueue),
        message,
        { attempt: 3, waits: 0 },
        { 'x-death-reason': 'delivery_limit' },
      ),
      message,
    );
    expect(await queueDepth(broker, names.deadLetterQueue)).to.equal(1);

    // The commands behind `make dlq-list` and `make dlq-replay`.
    const listed = await dlqList(config);
    expect(listed.map((letter) => [letter.payoutId, letter.reason])).to.deep.equal([[id, 'delivery_limit']]);
    await waitFor(async () => (await queueDepth(broker, names.deadLetterQueue)) === 1, { timeoutMs: 5_000 });
    const report = await dlqReplay(config, ctx.log);
    expect(report).to.deep.equal({ replayed: 1, failed: 0 });
    expect(await queueDepth(broker, names.deadLetterQueue)).to.equal(0);

    roles.push(await startWorker(roleContext()));
    await waitFor(async () => (await ctx.service.getPayout(client.principal, id!)).status === 'completed');
  });
});
