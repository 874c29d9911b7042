/**
 * A consumer whose `close()` returns only when none of its handlers runs any more.
 *
 * rabbitmq-client's `Consumer.close()` cancels the subscription, then waits for the handlers running at that
 * moment and closes the channel. But the client hands a delivery to the consumer on a later turn of the event loop
 * (`setImmediate`) than the one that resolves the cancel, so a message the broker sent just before its cancel-ok
 * is buffered after `close()` took its count, and a finishing handler starts it. That handler then runs on after
 * `close()` returned — after a role's pool and process are gone — and its acknowledgement fails on the closed
 * channel. Measured on a worker: eight payouts left mid-way (`submitting`) after a graceful stop.
 *
 * Here, a message that arrives once closing began is handed straight back (a `basic.nack` with requeue, which the
 * broker counts as the channel's close returning it would; from RabbitMQ 4.3 on, a nack is not counted), and
 * `close()` also waits for every handler this consumer started.
 */
import type { AsyncMessage, Connection, Consumer, ConsumerProps } from 'rabbitmq-client';
import { ConsumerStatus } from 'rabbitmq-client';

export interface DrainingConsumer {
  /** The client's consumer: its events, `start()` (when lazy), `consumerTag`. */
  readonly consumer: Consumer;
  /** Stops taking messages and returns once every handler started has ended; the rest go back to the queue. */
  close(this: void): Promise<void>;
}

export function createDrainingConsumer(
  connection: Connection,
  props: ConsumerProps,
  handle: (message: AsyncMessage) => Promise<ConsumerStatus>,
): DrainingConsumer {
  const running = new Set<Promise<ConsumerStatus>>();
  let closing = false;
  const consumer = connection.createConsumer(props, (message) => {
    if (closing) return Promise.resolve(ConsumerStatus.REQUEUE);
    const work = handle(message);
    running.add(work);
    const done = (): void => void running.delete(work);
    work.then(done, done);
    return work;
  });
  return {
    consumer,
    async close() {
      closing = true;
      try {
        await consumer.close();
      } finally {
        await Promise.allSettled(running);
      }
    },
  };
}
