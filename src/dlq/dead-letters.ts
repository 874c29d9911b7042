/**
 * The dead-letter queue commands: list (what and why), replay (back to the work queue) and drop (gone for good).
 * Replay and drop act only on the dead letters matching a filter (reason, payout or message id, a limit); the others
 * stay in the queue, in their order.
 *
 * None can lose a message if interrupted. Each takes messages without acknowledging them, and a message it does
 * not move goes back to the queue when it ends or its channel closes (a crash closes it too). Replaying publishes
 * a copy to the work exchange, waits for the broker's confirm, and only then acknowledges the dead letter: an
 * interruption in between leaves a duplicate, which the idempotent worker absorbs. Dropping acknowledges without
 * a copy, so it only happens when the operator confirmed the exact number of messages it matches.
 *
 * All read bodies as raw bytes (`keepRawBodies`), never decoded: whatever the queue holds — not JSON, invalid
 * UTF-8, JSON nested thousands of levels deep — is listed (as text, or base64 when it is not UTF-8) and replayed
 * byte for byte with its content type.
 */
import { isUtf8 } from 'node:buffer';
import type { Channel, Connection, SyncMessage } from 'rabbitmq-client';
import type { Logger } from '../logger.js';
import { UnroutableMessage } from '../messaging/amqp.js';
import type { Destination, TopologyNames } from '../messaging/topology.js';
import { keepRawBodies, rawBody } from '../messaging/raw-bodies.js';
import {
  HEADERS,
  queueDestination,
  republishedHeaders,
  republishedProperties,
  workDestination,
} from '../messaging/topology.js';

/** Which dead-letter queue a command reads: the payouts' processing one (the default) or the webhooks' one. */
export type DeadLetterQueueName = 'payouts' | 'webhooks';
export const DEAD_LETTER_QUEUES: readonly DeadLetterQueueName[] = ['payouts', 'webhooks'];

/** A dead-letter queue and where its letters go back to when replayed. */
interface DeadLetterSource {
  queue: string;
  replayTo: Destination;
}

function sourceOf(names: TopologyNames, which: DeadLetterQueueName): DeadLetterSource {
  return which === 'webhooks'
    ? { queue: names.webhookDeadLetterQueue, replayTo: queueDestination(names.webhookQueue) }
    : { queue: names.deadLetterQueue, replayTo: workDestination(names) };
}

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

/** Which dead letters a replay or a drop acts on; every filter given must match. */
export interface DeadLetterFilter {
  /** The queue they are in (default `payouts`). */
  queue?: DeadLetterQueueName;
  /** The dead letter's reason, as `dlq-list` shows it. */
  reason?: string;
  /**
   * A payout id (the `x-payout-id` header: every message of that payout) or a message id (that one message, the
   * only id a body that could not be parsed may have).
   */
  id?: string;
  /** At most this many are moved (replayed or dropped): the first matching ones in the queue. */
  limit?: number;
  /**
   * Only dead letters of these payouts (their `x-payout-id`): how the operator console keeps an operator to the
   * payouts of their own client. A dead letter without a payout id never matches it.
   */
  payoutIds?: ReadonlySet<string>;
}

/**
 * Reasons the worker gives a message that can never be processed, however often it comes back: a body that is not
 * a process message (`unparseable`, `invalid_message`: src/messaging/payout-message.ts) and a payout that does not
 * exist (`unknown_payout`: src/consumers/payout-consumer.ts). Replaying one only dead-letters it again, so replay
 * refuses them unless forced.
 */
export const NEVER_SUCCEEDS: ReadonlySet<string> = new Set([
  'unparseable',
  'invalid_message',
  'unknown_payout',
]);

export function matchesFilter(letter: DeadLetter, filter: DeadLetterFilter): boolean {
  if (filter.reason !== undefined && letter.reason !== filter.reason) return false;
  if (filter.payoutIds !== undefined && (letter.payoutId === null || !filter.payoutIds.has(letter.payoutId)))
    return false;
  return filter.id === undefined || letter.payoutId === filter.id || letter.messageId === filter.id;
}

/** A dead letter under the field names of the service's logs (`message_id`, `payout_id`, `reason`, …). */
export function deadLetterFields(letter: DeadLetter): Record<string, unknown> {
  return {
    message_id: letter.messageId,
    payout_id: letter.payoutId,
    request_id: letter.requestId,
    reason: letter.reason,
    detail: letter.detail,
    dead_lettered_at: letter.deadLetteredAt,
    content_type: letter.contentType,
    body_bytes: letter.bodyBytes,
    body_encoding: letter.bodyEncoding,
    body: letter.body,
  };
}

type NextDeadLetter = () => Promise<{ message: SyncMessage; letter: DeadLetter } | undefined>;

/**
 * Runs `use` on a channel and a `next` that takes the dead letters waiting when it starts, one at a time, in order,
 * unacknowledged. `use` acknowledges those it moves or drops; everything else goes back to the queue at the end.
 *
 * The whole queue is taken even when `use` stops early. A quorum queue hands out returned messages in the order
 * they came back, behind those returned earlier: returning only the first few would move them behind the rest
 * (after a listing, every dead letter is a returned one), while returning all of them, in the order taken, leaves
 * the order as it was. Only those waiting at the start are taken, so a message that fails again after a replay and comes back is not seen twice. A crash
 * closes the channel, which returns every unacknowledged message too (then possibly in another order; never lost).
 */
async function withDeadLetters<T>(
  connection: Connection,
  source: DeadLetterSource,
  use: (channel: Channel, next: NextDeadLetter) => Promise<T>,
): Promise<T> {
  const channel = keepRawBodies(await connection.acquire());
  let lastTag: number | undefined;
  try {
    const { messageCount } = await channel.queueDeclare({ queue: source.queue, passive: true });
    let left = messageCount;
    const next: NextDeadLetter = async () => {
      if (left <= 0) return undefined;
      const message = await channel.basicGet({ queue: source.queue, noAck: false });
      left = message ? left - 1 : 0;
      if (!message) return undefined;
      lastTag = message.deliveryTag;
      return { message, letter: describe(message) };
    };
    const result = await use(channel, next);
    while (await next());
    if (lastTag !== undefined) channel.basicNack({ deliveryTag: lastTag, multiple: true, requeue: true });
    return result;
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/** Lists the first `limit` dead letters, leaving every one of them in the queue, in its place. */
export async function listDeadLetters(
  connection: Connection,
  names: TopologyNames,
  limit = 100,
  queue: DeadLetterQueueName = 'payouts',
): Promise<DeadLetter[]> {
  return withDeadLetters(connection, sourceOf(names, queue), async (_channel, next) => {
    const letters: DeadLetter[] = [];
    while (letters.length < limit) {
      const taken = await next();
      if (!taken) break;
      letters.push(taken.letter);
    }
    return letters;
  });
}

export interface ReplayOptions extends DeadLetterFilter {
  /** Report what would be replayed and move nothing. */
  dryRun?: boolean;
  /** Replay even dead letters whose reason says they can never succeed (`NEVER_SUCCEEDS`). */
  force?: boolean;
}

export interface ReplayReport {
  /** Replayed (with `dryRun`, would be). */
  replayed: number;
  /** Matched, but left in the queue because their reason never succeeds. */
  refused: number;
  /** Matched, but the publish failed: left in the queue, and nothing after it was moved. */
  failed: number;
  /** The dead letters counted in `replayed`. */
  letters: DeadLetter[];
}

/**
 * Moves the matching dead letters to the work exchange with fresh attempt counters; every other one stays in the
 * queue. Each copy is confirmed by the broker before its dead letter is acknowledged.
 */
export async function replayDeadLetters(
  connection: Connection,
  names: TopologyNames,
  log: Logger,
  options: ReplayOptions = {},
): Promise<ReplayReport> {
  const limit = options.limit ?? Infinity;
  const source = sourceOf(names, options.queue ?? 'payouts');
  return withDeadLetters(connection, source, async (channel, next) => {
    const report: ReplayReport = { replayed: 0, refused: 0, failed: 0, letters: [] };
    const returned = new Set<string>();
    channel.on('basic.return', (message) => {
      if (typeof message.messageId === 'string') returned.add(message.messageId);
    });
    await channel.confirmSelect();
    while (report.failed === 0 && report.replayed < limit) {
      const taken = await next();
      if (!taken) break;
      const { message, letter } = taken;
      if (!matchesFilter(letter, options)) continue;
      const fields = { message_id: letter.messageId, payout_id: letter.payoutId, reason: letter.reason };
      if (NEVER_SUCCEEDS.has(letter.reason) && !options.force) {
        report.refused += 1;
        log.warn(fields, 'dead letter not replayed: its reason never succeeds (FORCE=1 replays it)');
        continue;
      }
      if (!options.dryRun) {
        try {
          await replayOne(channel, source.replayTo, message, returned);
        } catch (error) {
          // Not acknowledged: it goes back to the queue with the others.
          report.failed += 1;
          log.error({ ...fields, err: error }, 'dead letter replay failed; left in the queue');
          break;
        }
        channel.basicAck({ deliveryTag: message.deliveryTag });
        log.info(fields, 'dead letter replayed');
      }
      report.replayed += 1;
      report.letters.push(letter);
    }
    return report;
  });
}

export interface DropOptions extends DeadLetterFilter {
  /** Report what would be dropped and drop nothing. */
  dryRun?: boolean;
  /**
   * How many dead letters the operator expects to drop. Anything but the number that match now drops nothing, so
   * a filter wider than meant never drops more than were counted. It does not pin which ones: a matching message
   * dead-lettered since the operator looked can take the place of one that left (`ID=` a message id drops exactly
   * that one).
   */
  confirm?: number;
}

export interface DropReport {
  /** The dead letters that match (at most `limit`), dropped or not. */
  matched: DeadLetter[];
  /** 0, or all of `matched` when `confirm` equalled their number. */
  dropped: number;
}

/**
 * Deletes the matching dead letters for good, if `confirm` is their number; every other one stays in the queue.
 * Each dropped one is logged (ids and reason), since nothing else will ever show it again.
 */
export async function dropDeadLetters(
  connection: Connection,
  names: TopologyNames,
  log: Logger,
  options: DropOptions = {},
): Promise<DropReport> {
  const limit = options.limit ?? Infinity;
  return withDeadLetters(connection, sourceOf(names, options.queue ?? 'payouts'), async (channel, next) => {
    const matched: { tag: number; letter: DeadLetter }[] = [];
    while (matched.length < limit) {
      const taken = await next();
      if (!taken) break;
      if (matchesFilter(taken.letter, options))
        matched.push({ tag: taken.message.deliveryTag, letter: taken.letter });
    }
    const report: DropReport = { matched: matched.map(({ letter }) => letter), dropped: 0 };
    if (options.dryRun || options.confirm !== matched.length) return report;
    for (const { tag, letter } of matched) {
      channel.basicAck({ deliveryTag: tag });
      log.info(
        { message_id: letter.messageId, payout_id: letter.payoutId, reason: letter.reason },
        'dead letter dropped',
      );
    }
    report.dropped = matched.length;
    return report;
  });
}

async function replayOne(
  channel: Channel,
  destination: Destination,
  message: SyncMessage,
  returned: Set<string>,
): Promise<void> {
  // Fresh counters, and none of the broker's or our death headers: the replay is a new first delivery. (A
  // webhook message's counter and reason have the same names; `x-original-queue` is its dead-lettering's.)
  const headers = republishedHeaders(message.headers, [
    HEADERS.attempt,
    HEADERS.waits,
    HEADERS.deathReason,
    HEADERS.deathDetail,
    HEADERS.deadLetteredAt,
    'x-original-queue',
  ]);
  headers[HEADERS.replayedAt] = new Date().toISOString();
  const messageId = message.messageId ?? `replay-${Date.now()}-${Math.random()}`;
  // The bytes and properties as they are: a Buffer body is sent untouched under the original content type.
  await channel.basicPublish(
    {
      ...republishedProperties(message),
      ...destination,
      mandatory: true,
      durable: true,
      messageId,
      headers,
    },
    rawBody(message),
  );
  await new Promise<void>((resolve) => setImmediate(resolve));
  if (returned.delete(messageId))
    throw new UnroutableMessage(destination.exchange || destination.routingKey, 'NO_ROUTE');
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
