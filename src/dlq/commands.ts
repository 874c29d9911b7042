/**
 * One-shot broker commands of the program: the topology step of `migrate`, `dlq-list`, `dlq-replay` and `dlq-drop`. Each opens
 * its own connection and closes it, whatever happens.
 */
import type { Connection } from 'rabbitmq-client';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type {
  DeadLetter,
  DeadLetterQueueName,
  DropOptions,
  DropReport,
  ReplayOptions,
  ReplayReport,
} from './dead-letters.js';
import { dropDeadLetters, listDeadLetters, replayDeadLetters } from './dead-letters.js';
import { topologyOptions, withBrokerConnection } from '../messaging/amqp.js';
import type { TopologyNames } from '../messaging/topology.js';
import { declareTopology, topologyNames } from '../messaging/topology.js';

/** How long a one-shot command waits for the broker in all (it says that it waits after a second). */
const CONNECT_WAIT_MS = 15_000;

function withBroker<T>(
  config: Config,
  name: string,
  fn: (connection: Connection) => Promise<T>,
  log?: Pick<Logger, 'info'>,
): Promise<T> {
  return withBrokerConnection(config, name, { waitMs: CONNECT_WAIT_MS, log }, fn);
}

/** The topology step of `migrate`: declares the exchanges and queues, fails loudly on changed queue arguments. */
export async function migrateTopology(config: Config, log: Logger): Promise<TopologyNames> {
  const names = await withBroker(
    config,
    'migrate',
    (connection) => declareTopology(connection, topologyOptions(config)),
    log,
  );
  log.info(
    { exchange: names.exchange, queue: names.workQueue, dlq: names.deadLetterQueue },
    'broker topology declared',
  );
  return names;
}

/** `dlq-list`: the dead letters (up to `limit`) with their reasons; every one stays in the queue. */
export async function dlqList(
  config: Config,
  limit = 100,
  queue: DeadLetterQueueName = 'payouts',
): Promise<DeadLetter[]> {
  return withBroker(config, 'dlq-list', (connection) =>
    listDeadLetters(connection, topologyNames(config.amqpNamespace), limit, queue),
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
