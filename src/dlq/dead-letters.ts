/**
 * The dead-letter queue commands: list (what and why) and replay (back to the work queue).
 *
 * Neither can lose a message if interrupted. Listing takes messages without acknowledging them and closes its
 * channel, which returns every one of them to the queue (a crash closes it too). Replaying publishes a copy to the
 * work exchange, waits for the broker's confirm, and only then acknowledges the dead letter: an interruption in
 * between leaves a duplicate, which the idempotent worker absorbs.
 */
import type { Channel, Connection, SyncMessage } from 'rabbitmq-client';
import type { Logger } from '../logger.js';
import { UnroutableMessage } from '../messaging/amqp.js';
import type { TopologyNames } from '../messaging/topology.js';
import { HEADERS, republishedHeaders, workDestination } from '../messaging/topology.js';

export interface DeadLetter {
  messageId: string | null;
  payoutId: string | null;
  requestId: string | null;
  reason: string;
  detail: string | null;
  deadLetteredAt: string | null;
  /** The body as text, cut to 2000 characters (ids only: messages carry no account data). */
  body: string;
}

/** Lists up to `limit` dead letters, leaving every one of them in the queue. */
export async function listDeadLetters(
  connection: Connection,
  names: TopologyNames,
  limit = 100,
): Promise<DeadLetter[]> {
  const channel = await connection.acquire();
  const letters: DeadLetter[] = [];
  let lastTag: number | undefined;
  try {
    for (let index = 0; index < limit; index += 1) {
      const message = await channel.basicGet({ queue: names.deadLetterQueue, noAck: false });
      if (!message) break;
      lastTag = message.deliveryTag;
      letters.push(describe(message));
    }
    // Give them all back explicitly. Were this skipped (a crash), closing the channel would return them too.
    if (lastTag !== undefined) channel.basicNack({ deliveryTag: lastTag, multiple: true, requeue: true });
  } finally {
    await channel.close().catch(() => undefined);
  }
  return letters;
}

export interface ReplayReport {
  replayed: number;
  failed: number;
}

/**
 * Moves up to `limit` dead letters (by default, those waiting when the replay starts, so a message that fails
 * again and comes back is not replayed in a loop) to the work exchange, with fresh attempt counters.
 */
export async function replayDeadLetters(
  connection: Connection,
  names: TopologyNames,
  log: Logger,
  limit?: number,
): Promise<ReplayReport> {
  const channel = await connection.acquire();
  const report: ReplayReport = { replayed: 0, failed: 0 };
  const returned = new Set<string>();
  channel.on('basic.return', (message) => {
    if (typeof message.messageId === 'string') returned.add(message.messageId);
  });
  try {
    await channel.confirmSelect();
    const { messageCount } = await channel.queueDeclare({ queue: names.deadLetterQueue, passive: true });
    const count = Math.min(limit ?? messageCount, messageCount);
    for (let index = 0; index < count; index += 1) {
      const message = await channel.basicGet({ queue: names.deadLetterQueue, noAck: false });
      if (!message) break;
      try {
        await replayOne(channel, names, message, returned);
        channel.basicAck({ deliveryTag: message.deliveryTag });
        report.replayed += 1;
        log.info({ message_id: message.messageId, reason: describe(message).reason }, 'dead letter replayed');
      } catch (error) {
        // Not acknowledged: the message goes back to the dead-letter queue when the channel closes.
        report.failed += 1;
        log.error(
          { err: error, message_id: message.messageId },
          'dead letter replay failed; left in the queue',
        );
        break;
      }
    }
  } finally {
    await channel.close().catch(() => undefined);
  }
  return report;
}

async function replayOne(
  channel: Channel,
  names: TopologyNames,
  message: SyncMessage,
  returned: Set<string>,
): Promise<void> {
  // Fresh counters, and none of the broker's or our death headers: the replay is a new first delivery.
  const headers = republishedHeaders(message.headers, [
    HEADERS.attempt,
    HEADERS.waits,
    HEADERS.deathReason,
    HEADERS.deathDetail,
    HEADERS.deadLetteredAt,
  ]);
  headers[HEADERS.replayedAt] = new Date().toISOString();
  const messageId = message.messageId ?? `replay-${Date.now()}-${Math.random()}`;
  await channel.basicPublish(
    {
      ...workDestination(names),
      mandatory: true,
      durable: true,
      contentType: message.contentType,
      messageId,
      correlationId: message.correlationId,
      type: message.type,
      headers,
    },
    message.body,
  );
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (returned.delete(messageId)) throw new UnroutableMessage(names.exchange, 'NO_ROUTE');
}

function describe(message: SyncMessage): DeadLetter {
  const headers = message.headers ?? {};
  const text = (name: string): string | null => {
    const value: unknown = headers[name];
    return typeof value === 'string' && value !== '' ? value : null;
  };
  // Messages the broker dead-lettered itself (over the delivery limit) carry its reason, not ours.
  const brokerReason = text('x-first-death-reason');
  const body = Buffer.isBuffer(message.body)
    ? message.body.toString('utf8')
    : typeof message.body === 'string'
      ? message.body
      : JSON.stringify(message.body);
  return {
    messageId: message.messageId ?? null,
    payoutId: text(HEADERS.payoutId),
    requestId: text(HEADERS.requestId),
    reason: text(HEADERS.deathReason) ?? brokerReason ?? 'unknown',
    detail: text(HEADERS.deathDetail),
    deadLetteredAt: text(HEADERS.deadLetteredAt),
    body: body.slice(0, 2000),
  };
}
