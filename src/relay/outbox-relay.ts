/**
 * The relay role: publishes outbox rows to the work exchange (a webhook delivery's to the webhooks queue).
 *
 * A round claims a bounded batch (`FOR UPDATE SKIP LOCKED` inside one short statement that sets a lease, so no
 * row lock is held while publishing and several relays split the rows), publishes each row with a publisher
 * confirm, marks the confirmed rows published and releases the others with a back-off. A crash anywhere leaves
 * rows either unclaimed or leased; a lease expires and another round publishes them again. The worst case is a
 * message published twice (confirmed but not yet marked), which the idempotent worker absorbs; never a row
 * without its message.
 *
 * Rounds are woken by NOTIFY on a dedicated connection (LISTEN again after every reconnect) and by a poll, so a
 * lost notification or a dead listener only delays a message by one poll interval.
 */
import pg from 'pg';
import type { Connection } from 'rabbitmq-client';
import type { Knex } from 'knex';
import type { Logger } from '../logger.js';
import type { ProcessMessage } from '../messaging/payout-message.js';
import { PROCESS_TOPIC } from '../messaging/payout-message.js';
import { connectionSettings } from '../persistence/db.js';
import type { WebhookDeliveryMessage } from '../messaging/webhook-message.js';
import { WEBHOOK_DELIVERY_TOPIC, webhookEnvelope } from '../messaging/webhook-message.js';
import type { OutboxMessage } from '../persistence/outbox-repository.js';
import {
  OUTBOX_CHANNEL,
  claimOutboxBatch,
  markOutboxPublished,
  outboxBacklog,
  pruneOutbox,
  releaseOutboxMessage,
} from '../persistence/outbox-repository.js';
import { ConfirmedPublisher, backoffMs, openBrokerConnection, sleep } from '../messaging/amqp.js';
import type { RoleDeps, RoleHandle, RoleOptions } from '../ops-server.js';
import { startRoleOpsServer } from '../ops-server.js';
import { closeBrokerConnection, ensureTopology } from '../messaging/amqp.js';
import { pruneInBatches } from '../persistence/pruning.js';
import type { TopologyNames } from '../messaging/topology.js';
import {
  delayTierFor,
  processEnvelope,
  queueDestination,
  retryQueueName,
  topologyNames,
  workDestination,
} from '../messaging/topology.js';

/** Gauges are refreshed at most this often (a COUNT over the partial index of unsent rows). */
const GAUGE_INTERVAL_MS = 5_000;
/**
 * Published rows older than the retention are pruned once a minute, batch after batch for at most a quarter of a
 * second per round, so publishing is never held up for long. A round that ran out of time before catching up is
 * followed by another at the next round, until the pruner has caught up.
 */
const PRUNE_INTERVAL_MS = 60_000;
const OUTBOX_PRUNING = { batchSize: 5_000, budgetMs: 250 };
/** The LISTEN statement's answer is waited for at most this long; then the listener reconnects. */
const LISTEN_TIMEOUT_MS = 10_000;

/**
 * A wake-up flag with a timeout, for the relay's lanes. A `wake()` wakes every lane waiting; one while nobody waits
 * is remembered, so a NOTIFY that arrives during a round is not lost: the next wait returns at once.
 */
export class Wakeup {
  private pending = false;
  private readonly waiting = new Set<() => void>();

  /** Wakes every waiter at once; with none waiting, the next `wait` returns at once. */
  wake(): void {
    if (this.waiting.size === 0) {
      this.pending = true;
      return;
    }
    const waiting = [...this.waiting];
    this.waiting.clear();
    for (const resolve of waiting) resolve();
  }

  wait(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.waiting.add(done);
    });
  }
}

/**
 * LISTEN on a connection of its own (a pooled connection would be handed to other queries and lose the LISTEN).
 * On any error or end it reconnects with back-off and LISTENs again, then wakes the relay once, since
 * notifications sent while it was away are lost.
 */
export class OutboxListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  listening = false;

  constructor(
    private readonly databaseUrl: string,
    private readonly onNotify: () => void,
    private readonly log: Logger,
  ) {}

  start(): void {
    void this.connect();
  }

  private async connect(): Promise<void> {
    this.retryTimer = undefined;
    if (this.stopped) return;
    // The pool's connection settings (TCP keepalive, connect timeout), and a bound on the LISTEN itself. A socket
    // that goes silent while listening is noticed by keepalive only; meanwhile the relay's poll does the work.
    const client = new pg.Client({
      ...connectionSettings(this.databaseUrl),
      application_name: 'payouts-relay-listen',
      query_timeout: LISTEN_TIMEOUT_MS,
    });
    this.client = client;
    let lost = false;
    const onLost = (error?: Error) => {
      if (lost) return;
      lost = true;
      this.listening = false;
      if (this.stopped) return;
      this.failures += 1;
      this.log.warn(
        { err: error, failures: this.failures },
        'outbox listener lost its connection; reconnecting',
      );
      client.removeAllListeners('notification');
      void client.end().catch(() => undefined);
      this.retryTimer = setTimeout(() => void this.connect(), backoffMs(this.failures, 250, 5_000));
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', () => this.onNotify());
    try {
      await client.connect();
      await client.query(`LISTEN ${pg.escapeIdentifier(OUTBOX_CHANNEL)}`);
      if (this.stopped) {
        await client.end();
        return;
      }
      this.listening = true;
      this.failures = 0;
      this.onNotify();
    } catch (error) {
      onLost(error as Error);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.listening = false;
    await this.client?.end().catch(() => undefined);
  }
}

export interface RelayOptions extends RoleOptions {
  /** Start the LISTEN connection (default true); tests of the polling path turn it off. */
  listen?: boolean;
}

export class OutboxRelay {
  readonly wakeup = new Wakeup();
  private readonly abort = new AbortController();
  private lastGauges = 0;
  private lastPrune = 0;
  private pruneBehind = false;

  constructor(
    private readonly ctx: RelayDeps,
    private readonly publisher: ConfirmedPublisher,
    private readonly names: TopologyNames,
    private readonly log: Logger,
  ) {}

  /**
   * `relayConcurrency` lanes of rounds until stopped, so one lane's claim or mark overlaps another's wait for its
   * confirms; the first lane also keeps the gauges and prunes. Never throws: every failure is logged and backed
   * off, in its own lane.
   */
  async run(): Promise<void> {
    const lanes = Array.from({ length: this.ctx.config.relayConcurrency }, (_, lane) =>
      this.lane(lane === 0),
    );
    await Promise.all(lanes);
  }

  private async lane(maintains: boolean): Promise<void> {
    const { relayBatchSize, relayPollMs } = this.ctx.config;
    let failures = 0;
    while (!this.abort.signal.aborted) {
      let claimed = 0;
      try {
        const round = await this.relayRound();
        claimed = round.claimed;
        failures = round.failed > 0 ? failures + 1 : 0;
      } catch (error) {
        failures += 1;
        this.log.warn({ err: error, failures }, 'outbox relay round failed');
      }
      if (maintains) await this.maintain();
      if (this.abort.signal.aborted) break;
      if (failures > 0) await sleep(backoffMs(failures, 200, 10_000), this.abort.signal);
      // A full batch means more rows are probably waiting: go on at once.
      else if (claimed < relayBatchSize) await this.wakeup.wait(relayPollMs);
    }
  }

  stop(): void {
    this.abort.abort();
    this.wakeup.wake();
  }

  /** One round: claim, publish with confirms, mark the confirmed, release the rest. */
  async relayRound(): Promise<{ claimed: number; published: number; failed: number }> {
    const { db, config, metrics } = this.ctx;
    const rows = await claimOutboxBatch(db, config.relayBatchSize, config.relayLeaseMs);
    if (rows.length === 0) return { claimed: 0, published: 0, failed: 0 };
    const results = await Promise.allSettled(rows.map((row) => this.publish(row)));
    const published: string[] = [];
    const failed: Array<{ row: OutboxMessage; error: unknown }> = [];
    results.forEach((result, index) => {
      const row = rows[index]!;
      if (result.status === 'fulfilled') published.push(row.id);
      else failed.push({ row, error: result.reason });
    });
    // If marking fails (database gone), the rows stay leased and are published again after the lease:
    // a duplicate message, never a lost one.
    await markOutboxPublished(db, published);
    metrics.outboxPublished.inc(published.length);
    for (const { row, error } of failed) {
      metrics.outboxPublishFailures.inc();
      const retryInMs = backoffMs(row.attempts, 500, 30_000);
      this.log.warn(
        { err: error, outbox_id: row.id, attempts: row.attempts, retry_in_ms: retryInMs },
        'outbox publish failed',
      );
      await releaseOutboxMessage(db, row.id, String((error as Error)?.message ?? error), retryInMs);
    }
    return { claimed: rows.length, published: published.length, failed: failed.length };
  }

  private async publish(row: OutboxMessage): Promise<void> {
    if (row.topic === WEBHOOK_DELIVERY_TOPIC) {
      const message = row.payload as unknown as WebhookDeliveryMessage;
      await this.publisher.publish(
        webhookEnvelope(queueDestination(this.names.webhookQueue), message),
        message,
      );
      return;
    }
    if (row.topic !== PROCESS_TOPIC) throw new Error(`outbox row ${row.id} has unknown topic ${row.topic}`);
    const message = row.payload as unknown as ProcessMessage;
    // A command with a back-off waits it out in a delay queue, whose expiry sends it on to the work queue.
    const delayMs = message.command?.delay_ms ?? 0;
    const destination =
      delayMs > 0
        ? queueDestination(retryQueueName(this.names, delayTierFor(this.ctx.config.retryDelaysMs, delayMs)))
        : workDestination(this.names);
    // The publish must be confirmed well within the lease, or another relay could publish the row meanwhile.
    await this.publisher.publish(processEnvelope(destination, message), message);
  }

  /** Gauges and pruning, throttled; failures only logged (the next round tries again). */
  private async maintain(): Promise<void> {
    const { db, config, metrics } = this.ctx;
    const now = Date.now();
    try {
      if (now - this.lastGauges >= GAUGE_INTERVAL_MS) {
        this.lastGauges = now;
        const backlog = await outboxBacklog(db);
        metrics.outboxBacklog.set(backlog.count);
        metrics.outboxOldestAge.set(backlog.oldestAgeSeconds);
      }
      if (this.pruneBehind || now - this.lastPrune >= PRUNE_INTERVAL_MS) {
        this.lastPrune = now;
        const { deleted, caughtUp } = await pruneInBatches(
          (limit) => pruneOutbox(db, config.outboxRetentionHours, limit),
          OUTBOX_PRUNING,
        );
        this.pruneBehind = !caughtUp;
        if (deleted > 0) this.log.info({ pruned: deleted, caughtUp }, 'pruned published outbox rows');
      }
    } catch (error) {
      this.log.warn({ err: error }, 'outbox maintenance failed');
    }
  }
}

/** What the relay role is made of: its database (the outbox) and the role's own. */
export interface RelayDeps extends RoleDeps {
  db: Knex;
}

export async function startRelay(ctx: RelayDeps, options: RelayOptions = {}): Promise<RoleHandle> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'relay' });
  const names = topologyNames(config.amqpNamespace);
  const connection: Connection = openBrokerConnection(config, log, 'relay');
  // Half the lease: a publish that has not been confirmed by then is abandoned (and the row released) well before
  // another relay could claim the row again, so one relay never publishes a row another already holds.
  const publisher = new ConfirmedPublisher(connection, Math.floor(config.relayLeaseMs / 2));
  const relay = new OutboxRelay(ctx, publisher, names, log);
  const listener =
    options.listen === false
      ? undefined
      : new OutboxListener(config.databaseUrl, () => relay.wakeup.wake(), log);

  const ops = await startRoleOpsServer(ctx, options, () => connection.ready);

  const abort = new AbortController();
  const running = ensureTopology(connection, config, log, abort.signal).then(async (declared) => {
    if (!declared || abort.signal.aborted) return;
    listener?.start();
    await relay.run();
  });
  log.info({ exchange: names.exchange, ops_port: ops?.port }, 'relay started');

  return {
    opsPort: ops?.port,
    async stop() {
      abort.abort();
      relay.stop();
      // The rounds in flight finish: their confirmed rows are marked, the others released.
      await running;
      await listener?.stop();
      await publisher.close().catch(() => undefined);
      await closeBrokerConnection(connection, log);
      await ops?.close();
      log.info('relay stopped');
    },
  };
}
