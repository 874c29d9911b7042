/**
 * The dead-letter queue as the console reaches it: the DLQ tools of `make dlq-list / dlq-replay / dlq-drop`
 * (src/dlq/dead-letters.ts), each call on a connection of its own that gives up quickly, so a page never hangs on
 * a broker that is away (`BrokerUnreachable`, shown as a 503 page). The API's readiness never asks the broker.
 */
import type { Connection } from 'rabbitmq-client';
import type {
  DeadLetter,
  DropOptions,
  DropReport,
  ReplayOptions,
  ReplayReport,
} from '../dlq/dead-letters.js';
import { dropDeadLetters, listDeadLetters, replayDeadLetters } from '../dlq/dead-letters.js';
import type { Logger } from '../logger.js';
import type { BrokerSettings } from '../messaging/amqp.js';
import { withBrokerConnection } from '../messaging/amqp.js';
import { topologyNames } from '../messaging/topology.js';

export type { DeadLetter, DropReport, ReplayReport };

/** What the console does with the dead-letter queue. */
export interface DeadLetterDesk {
  list(limit: number): Promise<DeadLetter[]>;
  replay(options: ReplayOptions): Promise<ReplayReport>;
  drop(options: DropOptions): Promise<DropReport>;
}

/** How long a console page waits for the broker before it says that the broker is unreachable. */
export const CONSOLE_BROKER_WAIT_MS = 3_000;

export function brokerDeadLetters(
  broker: BrokerSettings & { amqpNamespace: string },
  log: Logger,
  waitMs = CONSOLE_BROKER_WAIT_MS,
): DeadLetterDesk {
  const names = topologyNames(broker.amqpNamespace);
  const withConnection = <T>(fn: (connection: Connection) => Promise<T>): Promise<T> =>
    withBrokerConnection(broker, 'console', { waitMs }, fn);
  return {
    list: (limit) => withConnection((connection) => listDeadLetters(connection, names, limit)),
    replay: (options) => withConnection((connection) => replayDeadLetters(connection, names, log, options)),
    drop: (options) => withConnection((connection) => dropDeadLetters(connection, names, log, options)),
  };
}
