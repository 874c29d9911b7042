/**
 * The RabbitMQ topology of payout processing, declared by one step (`migrate` and every role's start):
 *
 *   exchange payouts.process (direct) ──process──▶ queue payouts.process (quorum, the work queue)
 *        ▲                                            │ x-delivery-limit exceeded (a backstop only)
 *        │ TTL expired                                ▼
 *   queues payouts.process.retry.<delay>ms      exchange payouts.process.dlx (fanout) ──▶ queue payouts.process.dlq
 *
 * Webhook deliveries have queues of their own, all reached through the default exchange by name: the work queue
 * `payouts.webhooks`, its delay queues `payouts.webhooks.delay.<delay>ms` (which hand a message back to it when the
 * delay is over) and `payouts.webhooks.dlq`.
 *
 * The worker publishes retries straight to a delay queue (default exchange) and poison messages straight to the
 * dead-letter queue with their reason in headers; the work queue's own dead-lettering only catches messages that
 * exceeded the delivery limit. Every name carries the configured namespace suffix, so a test run owns its queues.
 *
 * Queue arguments cannot change once a queue exists (a redeclare with other arguments fails with
 * PRECONDITION_FAILED). So the tunables that do change live in names: a delay tier is named after its TTL and a
 * new RETRY_DELAYS_MS simply declares new tiers. Anything else that must change takes a new queue name.
 */
import type { Connection, Envelope, HeaderFields } from 'rabbitmq-client';
import { namespaceProblem } from '../config.js';
import type { ProcessMessage } from './payout-message.js';
import { PROCESS_TOPIC } from './payout-message.js';

/** The routing key of processing messages on the work exchange. */
export const PROCESS_ROUTING_KEY = 'process';

/**
 * A high backstop against poison messages that crash the worker before it can dead-letter them. Every worker
 * crash or lost connection adds one delivery to each unacknowledged message, so this must stay far above what
 * outages produce; our own retries go through the delay queues and never count here.
 */
export const DELIVERY_LIMIT = 20;

/**
 * Browsing the dead-letter queue returns each message to it, which a quorum queue counts as a delivery: the DLQ's
 * limit is set so high that listing can never drop a message (RabbitMQ 4 would otherwise apply its default 20).
 */
const DLQ_DELIVERY_LIMIT = 1_000_000_000;

/** Headers of our messages. The attempt header is ours, not the broker's delivery count. */
export const HEADERS = {
  payoutId: 'x-payout-id',
  requestId: 'x-request-id',
  schemaVersion: 'x-schema-version',
  /** Retries already spent on this message (0 on the first delivery). */
  attempt: 'x-attempt',
  /** Waits for our own infrastructure (database or broker down), which do not spend the payout's retries. */
  waits: 'x-waits',
  deathReason: 'x-death-reason',
  deathDetail: 'x-death-detail',
  deadLetteredAt: 'x-dead-lettered-at',
  replayedAt: 'x-replayed-at',
} as const;

/**
 * Headers the broker writes when it dead-letters a message (`x-death`, `x-first-death-*`, `x-last-death-*`). The
 * prefix also covers our own `x-death-reason` and `x-death-detail`.
 */
export const BROKER_DEATH_HEADERS = /^x-(death|first-death-|last-death-)/;

/** Sender-selected distribution headers: on a copy they would route it to more queues than the one we name. */
const ROUTING_HEADERS = new Set(['CC', 'BCC']);

/**
 * The headers of a message we publish again (to the dead-letter queue, or replayed from it): all of them but the
 * broker's death headers, which would be misleading on a copy, the routing headers `CC` and `BCC`, and the names in
 * `drop`.
 */
export function republishedHeaders(
  headers: Record<string, unknown> | undefined,
  drop: readonly string[] = [],
): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (!BROKER_DEATH_HEADERS.test(name) && !ROUTING_HEADERS.has(name) && !drop.includes(name))
      kept[name] = value;
  }
  return kept;
}

const REPUBLISHED_PROPERTIES = [
  'contentType',
  'contentEncoding',
  'messageId',
  'correlationId',
  'type',
  'appId',
  'timestamp',
  'priority',
] as const;

export type RepublishedProperties = Pick<HeaderFields, (typeof REPUBLISHED_PROPERTIES)[number]>;

/**
 * The properties of a message we publish again, as it had them: what its body is (content type and encoding, so
 * the copy's bytes mean what the original's meant) and where it came from. Never its expiration (a dead letter
 * must not expire) nor its user id (the broker checks that against the publishing connection).
 */
export function republishedProperties(message: HeaderFields): RepublishedProperties {
  const kept: Record<string, unknown> = {};
  for (const name of REPUBLISHED_PROPERTIES) {
    if (message[name] !== undefined) kept[name] = message[name];
  }
  return kept;
}

export interface TopologyNames {
  namespace: string;
  /** The work exchange (direct). */
  exchange: string;
  /** The work queue. */
  workQueue: string;
  /** Where the work queue dead-letters messages over the delivery limit (fanout to the DLQ). */
  deadLetterExchange: string;
  deadLetterQueue: string;
  /** The webhook deliveries' work queue, reached through the default exchange. */
  webhookQueue: string;
  /** Where webhook deliveries that cannot be carried out (or exceed the delivery limit) wait for a person. */
  webhookDeadLetterQueue: string;
}

export interface TopologyOptions {
  /** Suffix of every name (`AMQP_NAMESPACE`). */
  namespace: string;
  /** The delay tiers, in milliseconds (`RETRY_DELAYS_MS`). */
  retryDelaysMs: readonly number[];
  /** The webhook deliveries' delay queues, in milliseconds (`WEBHOOK_RETRY_SCHEDULE`); none when absent. */
  webhookRetryScheduleMs?: readonly number[];
  /** When set (tests), queues are deleted by the broker after this long unused, so a crashed run leaves nothing. */
  expiresMs?: number;
}

export function topologyNames(namespace: string): TopologyNames {
  const problem = namespaceProblem(namespace);
  if (problem) throw new Error(`AMQP namespace "${namespace}": ${problem}`);
  return {
    namespace,
    exchange: `payouts.process${namespace}`,
    workQueue: `payouts.process${namespace}`,
    deadLetterExchange: `payouts.process.dlx${namespace}`,
    deadLetterQueue: `payouts.process.dlq${namespace}`,
    webhookQueue: `payouts.webhooks${namespace}`,
    webhookDeadLetterQueue: `payouts.webhooks.dlq${namespace}`,
  };
}

/** A webhook delay queue: named after its delay, like the processing tiers, so a new schedule never redeclares one. */
export function webhookDelayQueueName(names: TopologyNames, delayMs: number): string {
  return `payouts.webhooks.delay.${delayMs}ms${names.namespace}`;
}

/** The delay queue of one tier: its TTL is in its name, so changing the tiers never redeclares a queue. */
export function retryQueueName(names: TopologyNames, delayMs: number): string {
  return `payouts.process.retry.${delayMs}ms${names.namespace}`;
}

/**
 * Declares everything, idempotently. Safe to run from every role at start and from `migrate`: with the same
 * arguments a declare is a no-op; with different ones it fails loudly (PRECONDITION_FAILED) instead of silently
 * running with the old arguments.
 */
export async function declareTopology(
  connection: Connection,
  options: TopologyOptions,
): Promise<TopologyNames> {
  const names = topologyNames(options.namespace);
  const expires = options.expiresMs ? { 'x-expires': options.expiresMs } : {};
  // At-least-once dead-lettering (no message lost between a queue and its dead-letter target) requires
  // reject-publish overflow: a full queue refuses new messages (the publisher sees a nack) instead of dropping.
  const quorum = {
    'x-queue-type': 'quorum' as const,
    'x-overflow': 'reject-publish' as const,
    ...expires,
  };
  const channel = await connection.acquire();
  try {
    await channel.exchangeDeclare({ exchange: names.exchange, type: 'direct', durable: true });
    await channel.exchangeDeclare({ exchange: names.deadLetterExchange, type: 'fanout', durable: true });
    await channel.queueDeclare({
      queue: names.deadLetterQueue,
      durable: true,
      arguments: { ...quorum, 'x-delivery-limit': DLQ_DELIVERY_LIMIT },
    });
    await channel.queueBind({
      queue: names.deadLetterQueue,
      exchange: names.deadLetterExchange,
      routingKey: '',
    });
    await channel.queueDeclare({
      queue: names.workQueue,
      durable: true,
      arguments: {
        ...quorum,
        'x-dead-letter-exchange': names.deadLetterExchange,
        'x-dead-letter-strategy': 'at-least-once',
        'x-delivery-limit': DELIVERY_LIMIT,
      },
    });
    await channel.queueBind({
      queue: names.workQueue,
      exchange: names.exchange,
      routingKey: PROCESS_ROUTING_KEY,
    });
    for (const delayMs of new Set(options.retryDelaysMs)) {
      // Quorum queues expire messages only at the head; one TTL per queue keeps expiry in arrival order.
      await channel.queueDeclare({
        queue: retryQueueName(names, delayMs),
        durable: true,
        arguments: {
          ...quorum,
          'x-message-ttl': delayMs,
          'x-dead-letter-exchange': names.exchange,
          'x-dead-letter-routing-key': PROCESS_ROUTING_KEY,
          'x-dead-letter-strategy': 'at-least-once',
        },
      });
    }
    await channel.queueDeclare({
      queue: names.webhookDeadLetterQueue,
      durable: true,
      arguments: { ...quorum, 'x-delivery-limit': DLQ_DELIVERY_LIMIT },
    });
    await channel.queueDeclare({
      queue: names.webhookQueue,
      durable: true,
      arguments: {
        ...quorum,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': names.webhookDeadLetterQueue,
        'x-dead-letter-strategy': 'at-least-once',
        'x-delivery-limit': DELIVERY_LIMIT,
      },
    });
    for (const delayMs of new Set(options.webhookRetryScheduleMs ?? [])) {
      await channel.queueDeclare({
        queue: webhookDelayQueueName(names, delayMs),
        durable: true,
        arguments: {
          ...quorum,
          'x-message-ttl': delayMs,
          'x-dead-letter-exchange': '',
          'x-dead-letter-routing-key': names.webhookQueue,
          'x-dead-letter-strategy': 'at-least-once',
        },
      });
    }
  } finally {
    await channel.close().catch(() => undefined);
  }
  return names;
}

/** Deletes every queue and exchange of a namespace (tests clean up after themselves; `x-expires` is the backstop). */
export async function deleteTopology(connection: Connection, options: TopologyOptions): Promise<void> {
  const names = topologyNames(options.namespace);
  const channel = await connection.acquire();
  try {
    for (const queue of [
      names.workQueue,
      names.deadLetterQueue,
      ...options.retryDelaysMs.map((d) => retryQueueName(names, d)),
      names.webhookQueue,
      names.webhookDeadLetterQueue,
      ...(options.webhookRetryScheduleMs ?? []).map((d) => webhookDelayQueueName(names, d)),
    ]) {
      await channel.queueDelete({ queue });
    }
    await channel.exchangeDelete({ exchange: names.exchange });
    await channel.exchangeDelete({ exchange: names.deadLetterExchange });
  } finally {
    await channel.close().catch(() => undefined);
  }
}

/** Number of messages waiting in a queue, by passive declare (which never creates or changes the queue). */
export async function queueDepth(connection: Connection, queue: string): Promise<number> {
  const channel = await connection.acquire();
  try {
    const { messageCount } = await channel.queueDeclare({ queue, passive: true });
    return messageCount;
  } finally {
    await channel.close().catch(() => undefined);
  }
}

export interface Destination {
  exchange: string;
  routingKey: string;
}

/** Where the relay and a DLQ replay send a processing message. */
export function workDestination(names: TopologyNames): Destination {
  return { exchange: names.exchange, routingKey: PROCESS_ROUTING_KEY };
}

/** A delay queue is reached through the default exchange, by its name. */
export function queueDestination(queue: string): Destination {
  return { exchange: '', routingKey: queue };
}

/**
 * The delay tier a command's back-off waits in: the tier of exactly that delay, or, should the tiers have changed
 * since the command was issued, the longest tier not above it (the shortest when all are above).
 */
export function delayTierFor(retryDelaysMs: readonly number[], delayMs: number): number {
  const tiers = [...new Set(retryDelaysMs)].sort((a, b) => a - b);
  return tiers.filter((tier) => tier <= delayMs).pop() ?? tiers[0]!;
}

/** The envelope of a processing message: persistent JSON with its ids in properties and headers. */
export function processEnvelope(
  destination: Destination,
  message: ProcessMessage,
  counters: { attempt: number; waits: number } = { attempt: 0, waits: 0 },
  extraHeaders: Record<string, unknown> = {},
): Envelope {
  return {
    ...destination,
    durable: true,
    contentType: 'application/json',
    messageId: message.message_id,
    correlationId: message.request_id ?? undefined,
    type: PROCESS_TOPIC,
    headers: {
      ...extraHeaders,
      [HEADERS.payoutId]: message.payout_id,
      [HEADERS.requestId]: message.request_id ?? '',
      [HEADERS.schemaVersion]: message.schema_version,
      [HEADERS.attempt]: counters.attempt,
      [HEADERS.waits]: counters.waits,
    },
  };
}

/** A non-negative integer header, or 0 when missing or malformed (a malformed counter must not block retries). */
export function counterHeader(headers: Record<string, unknown> | undefined, name: string): number {
  const value = headers?.[name];
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? value : 0;
}

/**
 * What a role does at start instead of declaring: checks, passively, that the `migrate` step declared everything
 * it needs. A passive check never creates a queue and never meets PRECONDITION_FAILED, so a role whose settings
 * differ from the deployed topology cannot fight over queue arguments; a missing queue fails with NOT_FOUND.
 */
export async function verifyTopology(
  connection: Connection,
  options: TopologyOptions,
): Promise<TopologyNames> {
  const names = topologyNames(options.namespace);
  const queues = [
    names.workQueue,
    names.deadLetterQueue,
    ...[...new Set(options.retryDelaysMs)].map((delayMs) => retryQueueName(names, delayMs)),
    names.webhookQueue,
    names.webhookDeadLetterQueue,
    ...[...new Set(options.webhookRetryScheduleMs ?? [])].map((delayMs) =>
      webhookDelayQueueName(names, delayMs),
    ),
  ];
  const channel = await connection.acquire();
  try {
    await channel.exchangeDeclare({ exchange: names.exchange, passive: true });
    await channel.exchangeDeclare({ exchange: names.deadLetterExchange, passive: true });
    for (const queue of queues) await channel.queueDeclare({ queue, passive: true });
  } finally {
    await channel.close().catch(() => undefined);
  }
  return names;
}
