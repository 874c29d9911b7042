/**
 * The `webhooks` role: consumes `payouts.webhooks` with manual acknowledgements and bounded concurrency. Each
 * message names one delivery; the dispatcher makes one attempt and records it. A retry is a copy of the message
 * published to the delay queue of that wait (confirmed) before the original is acknowledged; a message that is not
 * a delivery goes to `payouts.webhooks.dlq` with its reason. A crash before the acknowledgement redelivers the
 * message, and the attempt is made again: at least once, never lost. The payout path never waits for any of this.
 */
import type { AsyncMessage, Connection } from 'rabbitmq-client';
import { ConsumerStatus } from 'rabbitmq-client';
import type { DispatchOutcome, WebhookDispatcher } from '../domain/webhook-delivery.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { zeroed } from '../metrics.js';
import {
  ConfirmedPublisher,
  closeBrokerConnection,
  ensureTopology,
  openBrokerConnection,
  sleep,
} from '../messaging/amqp.js';
import { createDrainingConsumer } from '../messaging/draining-consumer.js';
import { keepRawBodiesOn, rawBody } from '../messaging/raw-bodies.js';
import type { TopologyNames } from '../messaging/topology.js';
import {
  counterHeader,
  queueDepth,
  queueDestination,
  republishedHeaders,
  republishedProperties,
  topologyNames,
  webhookDelayQueueName,
} from '../messaging/topology.js';
import { WEBHOOK_HEADERS, decodeWebhookMessage, webhookEnvelope } from '../messaging/webhook-message.js';
import type { RoleDeps, RoleHandle, RoleOptions } from '../ops-server.js';
import { startRoleOpsServer } from '../ops-server.js';
import { pruneInBatches } from '../persistence/pruning.js';

/** The outcomes of `payouts_webhook_deliveries_total`, created at 0. */
const OUTCOMES = ['delivered', 'retried', 'failed', 'skipped', 'dead_letter'] as const;
/** Gauges are refreshed at most this often. */
const GAUGE_INTERVAL_MS = 5_000;

/** The pending deliveries: their backlog, for the gauges, and the re-drive of those whose message was lost. */
export interface WebhookBacklog {
  deliveryBacklog(): Promise<{ count: number; oldestAgeSeconds: number }>;
  redriveLostDeliveries(overdueSeconds: number, limit: number): Promise<number>;
  pruneDeliveries(days: number, limit: number): Promise<number>;
}

/**
 * Settled deliveries are pruned this often, this many per statement, until none is left: the round runs beside the
 * consumer, never in its way, so it needs no time budget.
 */
const PRUNE_INTERVAL_MS = 10 * 60_000;
const DELIVERY_PRUNING = { batchSize: 5_000, budgetMs: Number.POSITIVE_INFINITY };

/** Lost deliveries queued again per round, at most. */
const REDRIVE_BATCH = 500;

export interface WebhooksDeps extends RoleDeps {
  dispatcher: WebhookDispatcher;
  backlog: WebhookBacklog;
}

/** Turns one message into one attempt, and the attempt's outcome into an acknowledgement. */
export class WebhookMessageHandler {
  constructor(
    private readonly deps: {
      dispatcher: WebhookDispatcher;
      publisher: ConfirmedPublisher;
      names: TopologyNames;
      metrics: Metrics;
      log: Logger;
    },
  ) {
    zeroed(
      deps.metrics.webhookDeliveries,
      OUTCOMES.map((outcome) => ({ outcome })),
    );
    zeroed(
      deps.metrics.webhookAttemptDuration,
      (['delivered', 'retried', 'failed'] as const).map((outcome) => ({ outcome })),
    );
    deps.metrics.webhookEndpointsDisabled.inc(0);
    deps.metrics.webhookRedriven.inc(0);
  }

  async handle(message: AsyncMessage): Promise<ConsumerStatus> {
    const decoded = decodeWebhookMessage(rawBody(message));
    if (!decoded) return this.deadLetter(message, 'invalid_message');
    const attempt = counterHeader(message.headers, WEBHOOK_HEADERS.attempt);
    const log = this.deps.log.child({ delivery_id: decoded.delivery_id, attempt });
    const started = process.hrtime.bigint();
    // A failure of our own (the database away) throws: the message is requeued after a pause, no attempt spent.
    let outcome: DispatchOutcome;
    try {
      outcome = await this.deps.dispatcher.deliver(decoded.delivery_id);
    } catch (error) {
      log.warn({ err: error }, 'webhook delivery could not be carried out; requeued');
      await sleep(1_000);
      throw error;
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const { metrics } = this.deps;
    switch (outcome.kind) {
      case 'delivered':
        metrics.webhookDeliveries.inc({ outcome: 'delivered' });
        metrics.webhookAttemptDuration.observe({ outcome: 'delivered' }, seconds);
        log.info({ status_code: outcome.statusCode }, 'webhook delivered');
        return ConsumerStatus.ACK;
      case 'retry': {
        const queue = webhookDelayQueueName(this.deps.names, outcome.delayMs);
        await this.publishOrRequeue(
          webhookEnvelope(queueDestination(queue), decoded, outcome.attempt),
          decoded,
        );
        metrics.webhookDeliveries.inc({ outcome: 'retried' });
        metrics.webhookAttemptDuration.observe({ outcome: 'retried' }, seconds);
        log.info(
          { delay_ms: outcome.delayMs, detail: outcome.detail },
          'webhook attempt failed; retrying later',
        );
        return ConsumerStatus.ACK;
      }
      case 'failed':
        metrics.webhookDeliveries.inc({ outcome: 'failed' });
        metrics.webhookAttemptDuration.observe({ outcome: 'failed' }, seconds);
        if (outcome.endpointDisabled) metrics.webhookEndpointsDisabled.inc();
        log.warn(
          { detail: outcome.detail, endpoint_disabled: outcome.endpointDisabled },
          'webhook delivery failed: its retries are spent',
        );
        return ConsumerStatus.ACK;
      case 'skipped':
        metrics.webhookDeliveries.inc({ outcome: 'skipped' });
        log.info({ reason: outcome.reason }, 'webhook message skipped');
        return ConsumerStatus.ACK;
    }
  }

  /** The message as it came, with its reason, to the webhook DLQ (confirmed); then the original is acknowledged. */
  private async deadLetter(message: AsyncMessage, reason: string): Promise<ConsumerStatus> {
    await this.publishOrRequeue(
      {
        ...republishedProperties(message),
        exchange: '',
        routingKey: this.deps.names.webhookDeadLetterQueue,
        durable: true,
        headers: {
          ...republishedHeaders(message.headers),
          [WEBHOOK_HEADERS.deathReason]: reason,
          'x-original-queue': this.deps.names.webhookQueue,
        },
      },
      rawBody(message),
    );
    this.deps.metrics.webhookDeliveries.inc({ outcome: 'dead_letter' });
    this.deps.log.error({ reason, message_id: message.messageId }, 'webhook message dead-lettered');
    return ConsumerStatus.ACK;
  }

  private async publishOrRequeue(envelope: Parameters<ConfirmedPublisher['publish']>[0], body: unknown) {
    try {
      await this.deps.publisher.publish(envelope, body);
    } catch (error) {
      await sleep(1_000);
      throw error;
    }
  }
}

export async function startWebhooks(ctx: WebhooksDeps, options: RoleOptions = {}): Promise<RoleHandle> {
  const { config, metrics } = ctx;
  const log = ctx.log.child({ component: 'webhooks' });
  const names = topologyNames(config.amqpNamespace);
  const connection: Connection = keepRawBodiesOn(openBrokerConnection(config, log, 'webhooks'));
  const publisher = new ConfirmedPublisher(connection);
  const handler = new WebhookMessageHandler({ dispatcher: ctx.dispatcher, publisher, names, metrics, log });
  const { consumer, close: closeConsumer } = createDrainingConsumer(
    connection,
    {
      queue: names.webhookQueue,
      queueOptions: { passive: true },
      qos: { prefetchCount: config.webhookConcurrency * 2 },
      concurrency: config.webhookConcurrency,
      requeue: true,
      lazy: true,
    },
    (message) => handler.handle(message),
  );
  consumer.on('error', (error: unknown) => log.warn({ err: error }, 'webhook consumer error'));

  const gauges = setInterval(() => {
    void (async () => {
      try {
        const backlog = await ctx.backlog.deliveryBacklog();
        metrics.webhookBacklog.set(backlog.count);
        metrics.webhookOldestAge.set(backlog.oldestAgeSeconds);
        if (connection.ready)
          metrics.webhookDlqDepth.set(await queueDepth(connection, names.webhookDeadLetterQueue));
      } catch (error) {
        log.debug({ err: error }, 'webhook gauges not refreshed');
      }
    })();
  }, GAUGE_INTERVAL_MS);
  gauges.unref();

  // A quarter of the allowed lateness between two looks, within 0.25 s and a minute.
  const redriveEveryMs = Math.min(60_000, Math.max(250, Math.floor(config.webhookRedriveAfterMs / 4)));
  const redrive = setInterval(() => {
    void (async () => {
      try {
        const redriven = await ctx.backlog.redriveLostDeliveries(
          config.webhookRedriveAfterMs / 1000,
          REDRIVE_BATCH,
        );
        if (redriven > 0) {
          metrics.webhookRedriven.inc(redriven);
          log.warn({ redriven }, 'webhook deliveries had lost their message: queued again');
        }
      } catch (error) {
        log.warn({ err: error }, 'webhook re-drive failed; tried again later');
      }
    })();
  }, redriveEveryMs);
  redrive.unref();

  const prune = setInterval(() => {
    void (async () => {
      try {
        const { deleted } = await pruneInBatches(
          (limit) => ctx.backlog.pruneDeliveries(config.webhookRetentionDays, limit),
          DELIVERY_PRUNING,
        );
        if (deleted > 0) log.info({ pruned: deleted }, 'pruned settled webhook deliveries');
      } catch (error) {
        log.warn({ err: error }, 'webhook delivery pruning failed; tried again later');
      }
    })();
  }, PRUNE_INTERVAL_MS);
  prune.unref();

  const ops = await startRoleOpsServer(ctx, options, () => connection.ready && consumer.consumerTag !== '');
  const abort = new AbortController();
  const starting = ensureTopology(connection, config, log, abort.signal).then((declared) => {
    if (declared && !abort.signal.aborted) consumer.start();
  });
  log.info(
    { queue: names.webhookQueue, concurrency: config.webhookConcurrency, ops_port: ops?.port },
    'webhooks started',
  );
  let stopping: Promise<void> | undefined;
  return {
    opsPort: ops?.port,
    /** Stops once: a second call waits for the first. */
    stop() {
      stopping ??= (async () => {
        abort.abort();
        clearInterval(gauges);
        clearInterval(redrive);
        clearInterval(prune);
        await starting;
        await closeConsumer().catch((error: unknown) =>
          log.warn({ err: error }, 'webhook consumer close failed'),
        );
        await publisher.close().catch(() => undefined);
        await closeBrokerConnection(connection, log);
        await ops?.close();
        log.info('webhooks stopped');
      })();
      return stopping;
    },
  };
}
