/**
 * Poison messages (not JSON, wrong shape, unknown payout) go to the dead-letter queue with their reason, are
 * counted, and never block the work queue; the DLQ can be listed without losing anything and replayed.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { ConsumerStatus } from 'rabbitmq-client';
import { ConfirmedPublisher } from '../../../src/messaging/amqp.js';
import { dlqList, dlqReplay, migrateTopology } from '../../../src/dlq/commands.js';
import { listDeadLetters } from '../../../src/dlq/dead-letters.js';
import { startWorker } from '../../../src/consumers/payout-consumer.js';
import type { PaymentProvider } from '../../../src/domain/provider.js';
import type { TopologyNames } from '../../../src/messaging/topology.js';
import {
  DELIVERY_LIMIT,
  processEnvelope,
  queueDepth,
  queueDestination,
  workDestination,
} from '../../../src/messaging/topology.js';
import type { ProcessMessage } from '../../../src/messaging/payout-message.js';
import {
  createPayouts,
  statusCounts,
  useConsumerHarness,
  waitFor,
  waitForStatus,
  waitUntilFinal,
} from '../../support/consumers.js';
import { createTestClient } from '../../support/fixtures.js';

describe('consumers: dead letters', function () {
  this.timeout(120_000);
  const harness = useConsumerHarness({ declareTopology: false });
  let names: TopologyNames;
  let publisher: ConfirmedPublisher;

  before(async () => {
    // The topology step of `migrate`.
    names = await migrateTopology(harness.config, harness.ctx.log);
    publisher = new ConfirmedPublisher(harness.broker);
    harness.defer(() => publisher.close());
  });

  afterEach(async () => {
    await harness.broker.queuePurge({ queue: names.deadLetterQueue });
  });

  it('dead-letters poison messages with their reason and keeps the queue flowing', async () => {
    const client = await createTestClient(harness.ctx.db, 'poison');
    const worker = await harness.startWorker();
    await harness.startRelay();
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
      { schema_version: 3, payout_id: 'urn:uuid:nope' },
    );
    await publisher.publish(processEnvelope(workDestination(names), unknownPayout), unknownPayout);
    // Good payouts created around the poison keep flowing.
    const ids = await createPayouts(harness.ctx, client.principal, 20);

    await waitUntilFinal(harness.ctx.db, client.clientId);
    expect(await statusCounts(harness.ctx.db, client.clientId)).to.deep.equal({ completed: ids.length });
    await waitFor(async () => (await queueDepth(harness.broker, names.deadLetterQueue)) === 4);

    const letters = await listDeadLetters(harness.broker, names);
    const byId = new Map(letters.map((letter) => [letter.messageId, letter]));
    expect(byId.get('poison-text')?.reason).to.equal('unparseable');
    expect(byId.get('poison-json')?.reason).to.equal('unparseable');
    expect(byId.get('poison-shape')?.reason).to.equal('invalid_message');
    expect(byId.get('poison-shape')?.detail).to.match(/schema_version/);
    expect(byId.get(unknownPayout.message_id)?.reason).to.equal('unknown_payout');
    expect(byId.get(unknownPayout.message_id)?.payoutId).to.equal(unknownPayout.payout_id);
    // Listing loses nothing, however often it runs.
    expect(await listDeadLetters(harness.broker, names)).to.have.length(4);
    // The queue counts returned messages again a moment after the listing's channel closes.
    await waitFor(async () => (await queueDepth(harness.broker, names.deadLetterQueue)) === 4, {
      timeoutMs: 5_000,
    });
    expect(await listDeadLetters(harness.broker, names)).to.have.length(4);

    const metrics = await worker.ctx.metrics.consumerOutcomes.get();
    const deadLettered = metrics.values
      .filter((value) => value.labels.outcome === 'dead_letter')
      .reduce((sum, value) => sum + value.value, 0);
    expect(deadLettered).to.equal(4);
  });

  it('dead-letters the message of a payout that fails permanently, and gives the payout to a person', async () => {
    const client = await createTestClient(harness.ctx.db, 'attention');
    const [id] = await createPayouts(harness.ctx, client.principal, 1);
    await harness.startRelay();
    // A provider adapter with a bug: every call throws an error nobody classified as transient.
    const workerCtx = harness.roleContext();
    const broken: PaymentProvider = {
      submit: () => Promise.reject(new TypeError('adapter bug')),
      status: () => Promise.reject(new TypeError('adapter bug')),
      voidTransfer: () => Promise.reject(new TypeError('adapter bug')),
    };
    const worker = await startWorker(workerCtx, { provider: broken, opsServer: false });
    try {
      await waitFor(
        async () => (await harness.ctx.service.getPayout(client.operator, id!)).stage === 'needs_attention',
      );
    } finally {
      await worker.stop();
    }
    const payout = await harness.ctx.service.getPayout(client.operator, id!);
    expect(payout.status).to.equal('processing');
    expect((payout.snapshot.context as { last_error: { code: string } }).last_error.code).to.equal(
      'processing_error',
    );
    const letters = await listDeadLetters(harness.broker, names);
    expect(letters.map((letter) => letter.payoutId)).to.deep.equal([id]);
    expect(await harness.ctx.db('provider_transfers').where({ payout_id: id })).to.deep.equal([]);
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
    const crashing = harness.broker.createConsumer(
      { queue: names.workQueue, queueOptions: { passive: true }, qos: { prefetchCount: 1 } },
      () => {
        deliveries += 1;
        return ConsumerStatus.REQUEUE;
      },
    );
    try {
      await publisher.publish(processEnvelope(workDestination(names), message), message);
      await waitFor(async () => (await queueDepth(harness.broker, names.deadLetterQueue)) === 1, {
        timeoutMs: 20_000,
      });
    } finally {
      await crashing.close();
    }
    expect(deliveries).to.be.greaterThanOrEqual(DELIVERY_LIMIT);
    const [letter] = await listDeadLetters(harness.broker, names);
    expect(letter?.reason).to.equal('delivery_limit');
    expect(letter?.messageId).to.equal(message.message_id);
  });

  it('replays dead letters to the work queue, where the worker finishes them', async () => {
    const client = await createTestClient(harness.ctx.db, 'replay');
    // A payout whose message ended in the DLQ (say, over the delivery limit during an outage).
    const [id] = await createPayouts(harness.ctx, client.principal, 1);
    await harness.ctx
      .db('outbox')
      .whereRaw(`payload->>'payout_id' = ?`, [id!])
      .update({ published_at: harness.ctx.db.fn.now() });
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
    expect(await queueDepth(harness.broker, names.deadLetterQueue)).to.equal(1);

    // The commands behind `make dlq-list` and `make dlq-replay`.
    const listed = await dlqList(harness.config);
    expect(listed.map((letter) => [letter.payoutId, letter.reason])).to.deep.equal([[id, 'delivery_limit']]);
    await waitFor(async () => (await queueDepth(harness.broker, names.deadLetterQueue)) === 1, {
      timeoutMs: 5_000,
    });
    const report = await dlqReplay(harness.config, harness.ctx.log);
    expect(report).to.include({ replayed: 1, refused: 0, failed: 0 });
    expect(await queueDepth(harness.broker, names.deadLetterQueue)).to.equal(0);

    await harness.startWorker();
    await waitForStatus(harness.ctx, client.principal, id!, 'completed');
  });
});
