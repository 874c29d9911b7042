/**
 * One-shot broker commands of the program: the topology step of `migrate`, `dlq-list`, `dlq-replay` and `dlq-drop`. Each opens
 * its own connection and closes it, whatever happens.
 */
import { Connection } from 'rabbitmq-client';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { DeadLetter, DropOptions, DropReport, ReplayOptions, ReplayReport } from './dead-letters.js';
import { dropDeadLetters, listDeadLetters, replayDeadLetters } from './dead-letters.js';
import { topologyOptions } from '../messaging/amqp.js';
import type { TopologyNames } from '../messaging/topology.js';
import { declareTopology, topologyNames } from '../messaging/topology.js';

async function withBroker<T>(
  config: Config,
  name: string,
  fn: (connection: Connection) => Promise<T>,
): Promise<T> {
  const connection = new Connection({
    url: config.amqpUrl,
    connectionName: `payouts-${name}`,
    retryLow: 200,
    retryHigh: 2_000,
  });
  // Errors surface through the calls below; the event only needs a listener so it never crashes the process.
  connection.on('error', () => undefined);
  try {
    await connection.onConnect(15_000, true);
    return await fn(connection);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/** The topology step of `migrate`: declares the exchanges and queues, fails loudly on changed queue arguments. */
export async function migrateTopology(config: Config, log: Logger): Promise<TopologyNames> {
  const names = await withBroker(config, 'migrate', (connection) =>
    declareTopology(connection, topologyOptions(config)),
  );
  log.info(
    { exchange: names.exchange, queue: names.workQueue, dlq: names.deadLetterQueue },
    'broker topology declared',
  );
  return names;
}

/** `dlq-list`: the dead letters (up to `limit`) with their reasons; every one stays in the queue. */
export async function dlqList(config: Config, limit = 100): Promise<DeadLetter[]> {
  return withBroker(config, 'dlq-list', (connection) =>
    listDeadLetters(connection, topologyNames(config.amqpNamespace), limit),
  );
}

/**
 * `dlq-replay`: moves the matching dead letters waiting now back to the work queue (with `dryRun`, says which it
 * would move), except those whose reason never succeeds unless `force`.
 */
export async function dlqReplay(
  config: Config,
  log: Logger,
  options: ReplayOptions = {},
): Promise<ReplayReport> {
  return withBroker(config, 'dlq-replay', (connection) =>
    replayDeadLetters(connection, topologyNames(config.amqpNamespace), log, options),
  );
}

/** `dlq-drop`: deletes the matching dead letters for good, when `confirm` is their number. */
export async function dlqDrop(config: Config, log: Logger, options: DropOptions = {}): Promise<DropReport> {
  return withBroker(config, 'dlq-drop', (connection) =>
    dropDeadLetters(connection, topologyNames(config.amqpNamespace), log, options),
  );
}
