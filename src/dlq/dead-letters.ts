/**
 * The dead-letter queue commands: list (what and why) and replay (back to the work queue).
 *
 * Neither can lose a message if interrupted. Listing takes messages without acknowledging them and closes its
 * channel, which returns every one of them to the queue (a crash closes it too). Replaying publishes a copy to the
 * work exchange, waits for the broker's confirm, and only then acknowledges the dead letter: an interruption in
 * between leaves a duplicate, which the idempotent worker absorbs.
 *
 * Both read bodies as raw bytes (`keepRawBodies`), never decoded: whatever the queue holds — not JSON, invalid
 * UTF-8, JSON nested thousands of levels deep — is listed (as text, or base64 when it is not UTF-8) and replayed
 * byte for byte with its content type.
 */
import { isUtf8 } from 'node:buffer';
import type { Channel, Connection, SyncMessage } from 'rabbitmq-client';
import type { Logger } from '../logger.js';
import { UnroutableMessage } from '../messaging/amqp.js';
import type { TopologyNames } from '../messaging/topology.js';
import { keepRawBodies, rawBody } from '../messaging/raw-bodies.js';
import {
  HEADERS,
  republishedHeaders,
  republishedProperties,
  workDestination,
} from '../messaging/topology.js';

export interface DeadLetter {
  messageId: string | null;
  payoutId: string | null;
  requestId: string | null;
  reason: string;
  detail: string | null;
  deadLetteredAt: string | null;
  contentType: string | null;
  /** The body's size in bytes. */
  bodyBytes: number;
  /** `utf8`: `body` is the body's text; `base64`: the body is not UTF-8, and `body` is its bytes in base64. */
  bodyEncoding: 'utf8' | 'base64';
  /**
   * The beginning of the body (ids only: messages carry no account data): its text cut to 2000 characters, or the
   * base64 of its first 1500 bytes. Never a parse of it.
   */
  body: string;
}

const PREVIEW_CHARS = 2000;
const PREVIEW_BYTES = 1500;

/** Lists up to `limit` dead letters, leaving every one of them in the queue. */
export async function listDeadLetters(
  connection: Connection,
  names: TopologyNames,
  limit = 100,
): Promise<DeadLetter[]> {
  const channel = keepRawBodies(await connection.acquire());
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
  const channel = keepRawBodies(await connection.acquire());
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
        log.info({ message_id: message.messageId, reason: deathReason(message) }, 'dead letter replayed');
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
  // The bytes and properties as they are: a Buffer body is sent untouched under the original content type.
  await channel.basicPublish(
    {
      ...republishedProperties(message),
      ...workDestination(names),
      mandatory: true,
      durable: true,
      messageId,
      headers,
    },
    rawBody(message),
  );
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (returned.delete(messageId)) throw new UnroutableMessage(names.exchange, 'NO_ROUTE');
}

function headerText(message: SyncMessage, name: string): string | null {
  const value: unknown = message.headers?.[name];
  return typeof value === 'string' && value !== '' ? value : null;
}

/** Ours, or the broker's for a message it dead-lettered itself (over the delivery limit). */
function deathReason(message: SyncMessage): string {
  return headerText(message, HEADERS.deathReason) ?? headerText(message, 'x-first-death-reason') ?? 'unknown';
}

function describe(message: SyncMessage): DeadLetter {
  const bytes = rawBody(message);
  const utf8 = isUtf8(bytes);
  return {
    messageId: message.messageId ?? null,
    payoutId: headerText(message, HEADERS.payoutId),
    requestId: headerText(message, HEADERS.requestId),
    reason: deathReason(message),
    detail: headerText(message, HEADERS.deathDetail),
    deadLetteredAt: headerText(message, HEADERS.deadLetteredAt),
    contentType: message.contentType ?? null,
    bodyBytes: bytes.length,
    bodyEncoding: utf8 ? 'utf8' : 'base64',
    body: utf8
      ? bytes
          .subarray(0, PREVIEW_CHARS * 4)
          .toString('utf8')
          .slice(0, PREVIEW_CHARS)
      : bytes.subarray(0, PREVIEW_BYTES).toString('base64'),
  };
}
