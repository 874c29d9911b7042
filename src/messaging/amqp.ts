/** The broker connection of a role and the one way we publish: persistent, mandatory, with publisher confirms. */
import { randomUUID } from 'node:crypto';
import { Connection } from 'rabbitmq-client';
import type { Envelope, Publisher } from 'rabbitmq-client';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { withTimeout } from '../timeout.js';
import type { TopologyNames, TopologyOptions } from './topology.js';
import { verifyTopology } from './topology.js';

/**
 * One connection per role. It reconnects by itself (quickly: outages in tests last seconds, and in production a
 * broker restart should not cost half a minute of backlog); channels are recreated by the consumer and publisher.
 */
export function openBrokerConnection(config: Config, log: Logger, name: string): Connection {
  const connection = new Connection({
    ...brokerEndpoints(config),
    connectionName: `payouts-${name}`,
    acquireTimeout: 10_000,
    connectionTimeout: 10_000,
    retryLow: 200,
    retryHigh: 5_000,
    heartbeat: 30,
  });
  let connected = false;
  connection.on('error', (error: unknown) => {
    log.warn({ err: error }, 'broker connection error');
  });
  connection.on('connection', () => {
    log.info(connected ? 'broker connection re-established' : 'broker connected');
    connected = true;
  });
  connection.on('connection.blocked', (reason: string) => log.warn({ reason }, 'broker blocked publishing'));
  connection.on('connection.unblocked', () => log.info('broker unblocked publishing'));
  return connection;
}

/** Where the broker is: `AMQP_URL`, and every node of `AMQP_HOSTS` when it is a cluster. */
export type BrokerSettings = Pick<Config, 'amqpUrl' | 'amqpHosts'>;

/**
 * The part of every connection's options that says where to connect: the URL (credentials, TLS, vhost) and, for
 * a cluster, its nodes, which rabbitmq-client tries in turn, so that a node that is lost means a reconnect to
 * another one.
 */
export function brokerEndpoints(broker: BrokerSettings): { url: string; hosts?: string[] } {
  return broker.amqpHosts.length > 0
    ? { url: broker.amqpUrl, hosts: [...broker.amqpHosts] }
    : { url: broker.amqpUrl };
}

/** Where the broker is, without credentials: for messages a person reads. */
export function brokerAddress(broker: BrokerSettings): string {
  const url = new URL(broker.amqpUrl);
  const vhost = url.pathname.length > 1 ? url.pathname : '';
  if (broker.amqpHosts.length > 0) return `${broker.amqpHosts.join(',')}${vhost}`;
  return `${url.hostname}:${url.port || (url.protocol === 'amqps:' ? 5671 : 5672)}${vhost}`;
}

/** A one-shot command's broker could not be reached in time: the message names the address and the setting. */
export class BrokerUnreachable extends Error {
  constructor(broker: BrokerSettings, waitedMs: number, cause: unknown) {
    // rabbitmq-client's timeout error carries the last connection error (refused, a DNS failure, a login) as its cause.
    const last = cause instanceof Error ? cause.cause : undefined;
    const said = last instanceof Error ? last.message : '';
    super(
      `RabbitMQ is unreachable at ${brokerAddress(broker)} after ${waitedMs / 1000} s` +
        `${said ? ` (${said})` : ''}; check that it runs and ${broker.amqpHosts.length > 0 ? 'AMQP_HOSTS' : 'AMQP_URL'}`,
      { cause },
    );
    this.name = 'BrokerUnreachable';
  }
}

export interface ShortConnectionOptions {
  /** How long to wait for the broker in all before `BrokerUnreachable`. */
  waitMs: number;
  /** Told once, after a second, that the broker is being waited for (one-shot commands say so). */
  log?: Pick<Logger, 'info'>;
}

/**
 * Runs `fn` on a connection of its own, closed however `fn` ends: what the one-shot commands and the console's
 * dead-letters page use. A broker that does not answer within `waitMs` fails the call with `BrokerUnreachable`,
 * which names where it was looked for and the setting.
 */
export async function withBrokerConnection<T>(
  broker: BrokerSettings,
  name: string,
  options: ShortConnectionOptions,
  fn: (connection: Connection) => Promise<T>,
): Promise<T> {
  const { waitMs, log } = options;
  const connection = new Connection({
    ...brokerEndpoints(broker),
    connectionName: `payouts-${name}`,
    connectionTimeout: Math.min(waitMs, 10_000),
    acquireTimeout: waitMs,
    retryLow: 200,
    retryHigh: Math.min(2_000, Math.round(waitMs / 3)),
  });
  // Errors surface through the calls below; the event only needs a listener so it never crashes the process.
  connection.on('error', () => undefined);
  const address = brokerAddress(broker);
  const setting = broker.amqpHosts.length > 0 ? 'AMQP_HOSTS' : 'AMQP_URL';
  const waiting = setTimeout(
    () => log?.info({ broker: address }, `waiting for RabbitMQ at ${address} (${setting})`),
    1_000,
  );
  try {
    await connection.onConnect(waitMs, true).catch((error: unknown) => {
      throw new BrokerUnreachable(broker, waitMs, error);
    });
    clearTimeout(waiting);
    return await fn(connection);
  } finally {
    clearTimeout(waiting);
    await connection.close().catch(() => undefined);
  }
}

/** The broker confirmed the publish but could route it nowhere (a missing queue or binding): nothing was stored. */
export class UnroutableMessage extends Error {
  constructor(destination: string, replyText: string) {
    super(`message to ${destination} was returned unroutable: ${replyText}`);
    this.name = 'UnroutableMessage';
  }
}

export class PublishTimeout extends Error {
  constructor(ms: number) {
    super(`publish not confirmed within ${ms} ms`);
    this.name = 'PublishTimeout';
  }
}

const PUBLISH_ID = 'x-publish-id';

/**
 * Publishes with confirms and `mandatory`. A publish resolves only once the broker has taken responsibility for
 * the message in a queue: a nack (e.g. a full queue with reject-publish) or a return (no queue bound) rejects.
 * Without `mandatory` an unroutable message is confirmed and silently dropped, which for the relay would mean
 * marking a row sent that no queue holds.
 */
export class ConfirmedPublisher {
  private readonly publisher: Publisher;
  private readonly returned = new Map<string, string>();
  private readonly pending = new Set<string>();

  constructor(
    connection: Connection,
    private readonly timeoutMs = 30_000,
  ) {
    // maxAttempts 1: a failed publish is reported to the caller, who decides (release the outbox row, requeue).
    this.publisher = connection.createPublisher({ confirm: true, maxAttempts: 1 });
    this.publisher.on('basic.return', (message) => {
      const id: unknown = message.headers?.[PUBLISH_ID];
      if (typeof id === 'string' && this.pending.has(id))
        this.returned.set(id, message.replyText ?? 'NO_ROUTE');
    });
  }

  async publish(envelope: Envelope, body: unknown): Promise<void> {
    const publishId = randomUUID();
    this.pending.add(publishId);
    try {
      await withTimeout(
        this.publisher.send(
          { ...envelope, mandatory: true, headers: { ...envelope.headers, [PUBLISH_ID]: publishId } },
          body,
        ),
        this.timeoutMs,
        () => new PublishTimeout(this.timeoutMs),
      );
      // The broker sends basic.return before the confirm, but the client emits it on setImmediate, after the
      // confirm's promise continuation: one macrotask turn lets it arrive.
      await new Promise<void>((resolve) => setImmediate(resolve));
      const replyText = this.returned.get(publishId);
      if (replyText !== undefined) {
        throw new UnroutableMessage(
          `${envelope.exchange || '(default)'}/${envelope.routingKey ?? ''}`,
          replyText,
        );
      }
    } finally {
      this.pending.delete(publishId);
      this.returned.delete(publishId);
    }
  }

  async close(): Promise<void> {
    await this.publisher.close();
  }
}

/** Sleeps `ms`, or less when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Exponential back-off with full jitter: `base·2^(n-1)` capped, then a random point in its upper half. */
export function backoffMs(failures: number, baseMs: number, capMs: number): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, Math.min(failures - 1, 30)));
  return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
}

export function topologyOptions(config: Config): TopologyOptions {
  return {
    namespace: config.amqpNamespace,
    retryDelaysMs: config.retryDelaysMs,
    webhookRetryScheduleMs: config.webhookRetryScheduleMs,
    expiresMs: config.amqpQueueExpiresMs > 0 ? config.amqpQueueExpiresMs : undefined,
  };
}

/**
 * The topology check at role start: the `migrate` step declares the exchanges and queues; a role only verifies
 * them passively, retried until they are there or the role is stopped. A role started before the broker (or
 * before `migrate`) keeps trying and stays not ready instead of exiting; a missing queue is logged as an error
 * on every try, because it needs `migrate` to run.
 */
export async function ensureTopology(
  connection: Connection,
  config: Config,
  log: Logger,
  signal: AbortSignal,
): Promise<TopologyNames | undefined> {
  for (let failures = 0; !signal.aborted;) {
    try {
      return await verifyTopology(connection, topologyOptions(config));
    } catch (error) {
      failures += 1;
      const missing = /NOT_FOUND/.test(String((error as Error).message));
      if (missing) log.error({ err: error, failures }, 'broker topology missing: run `migrate`; retrying');
      else log.warn({ err: error, failures }, 'broker topology check failed; retrying');
      await sleep(backoffMs(failures, 500, 10_000), signal);
    }
  }
  return undefined;
}

/** Closes a role's broker connection at stop; a failure is only logged, the role is stopping anyway. */
export async function closeBrokerConnection(connection: Connection, log: Logger): Promise<void> {
  await connection
    .close()
    .catch((error: unknown) => log.warn({ err: error }, 'broker connection close failed'));
}
