/** A consumer's close() against the real broker: it returns only when no handler runs, and nothing is lost. */
import { expect } from 'chai';
import type { Connection } from 'rabbitmq-client';
import { ConsumerStatus } from 'rabbitmq-client';
import { sleep } from '../../../src/messaging/amqp.js';
import { createDrainingConsumer } from '../../../src/messaging/draining-consumer.js';
import { testBroker, waitFor } from '../../support/consumers.js';

const CONCURRENCY = 8;
const ROUNDS = 10;

describe('messaging: a draining consumer', function () {
  this.timeout(60_000);
  let broker: Connection;

  before(async () => {
    broker = await testBroker();
  });

  after(async () => {
    await broker.close();
  });

  it('returns from close() with no handler running, though messages arrive while it cancels', async () => {
    for (let round = 0; round < ROUNDS; round += 1) {
      // Every handler busy and the queue empty; then messages are published as the consumer is closed, so the
      // broker sends some of them just before its cancel-ok: the case the client's own close() lets through.
      const channel = await broker.acquire();
      const { queue } = await channel.queueDeclare({
        queue: `test-draining-${process.pid}-${round}`,
        exclusive: true,
      });
      const publisher = broker.createPublisher({ confirm: true });
      let running = 0;
      let handled = 0;
      let closed = false;
      let startedAfterClose = 0;
      const subscription = createDrainingConsumer(
        broker,
        {
          queue,
          queueOptions: { passive: true },
          concurrency: CONCURRENCY,
          qos: { prefetchCount: CONCURRENCY * 2 },
          requeue: true,
        },
        async () => {
          if (closed) startedAfterClose += 1;
          running += 1;
          await sleep(100);
          running -= 1;
          handled += 1;
          return ConsumerStatus.ACK;
        },
      );
      subscription.consumer.on('error', () => undefined);
      for (let i = 0; i < CONCURRENCY; i += 1) await publisher.send(queue, 'first');
      await waitFor(() => running === CONCURRENCY, { intervalMs: 2 });
      const late = Array.from({ length: CONCURRENCY }, () => publisher.send(queue, 'late'));
      await subscription.close();
      closed = true;
      const runningAtClose = running;
      await Promise.all(late);
      await sleep(200);

      expect(runningAtClose, `round ${round}: handlers running after close()`).to.equal(0);
      expect(startedAfterClose, `round ${round}: handlers started after close()`).to.equal(0);
      // Nothing lost: what was not handled is back in the queue.
      const { messageCount } = await channel.queueDeclare({ queue, passive: true });
      expect(handled + messageCount, `round ${round}: handled + waiting`).to.equal(CONCURRENCY * 2);
      await publisher.close();
      await channel.queueDelete({ queue });
      await channel.close();
    }
  });
});
