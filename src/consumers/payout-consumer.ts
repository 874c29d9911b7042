/**
 * The worker role: consumes `payouts.process` with manual acknowledgements and bounded concurrency. Each message
 * becomes one call of the payout processor; the message is acknowledged only after that call's commits, or after
 * a copy of it was confirmed by the broker in a delay queue or the dead-letter queue. So a crash at any point
 * leaves the message unacknowledged, and its redelivery finishes the payout.
 */
import type { AsyncMessage, Connection } from 'rabbitmq-client';
import { ConsumerStatus } from 'rabbitmq-client';
import { PayoutNotFound } from '../domain/errors.js';
import { clipNote } from '../domain/text.js';
import type { Logger } from '../logger.js';
import { maskAccountNumbers } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { zeroed } from '../metrics.js';
import { PAYOUT_STATUSES } from '../machines/payout-lifecycle.js';
import type { ProcessMessage } from '../messaging/payout-message.js';
import { ConfirmedPublisher, openBrokerConnection, sleep } from '../messaging/amqp.js';
import { createDrainingConsumer } from '../messaging/draining-consumer.js';
import { decodeProcessMessage } from '../messaging/payout-message.js';
import { keepRawBodiesOn, rawBody } from '../messaging/raw-bodies.js';
import type { ProcessOutcome } from './process-payout.js';
import { PayoutProcessor } from './process-payout.js';
import type { PaymentProvider } from '../domain/provider.js';
import type { RetryDecision } from './retry-policy.js';
import { TRANSIENT_ERRORS, classifyError, decideRetry } from './retry-policy.js';
import type { RoleDeps, RoleHandle, RoleOptions } from '../ops-server.js';
import type { PayoutService } from '../domain/payout-service.js';
import { startRoleOpsServer } from '../ops-server.js';
import { closeBrokerConnection, ensureTopology } from '../messaging/amqp.js';
import type { TopologyNames } from '../messaging/topology.js';
import {
  HEADERS,
  counterHeader,
  processEnvelope,
  queueDestination,
  republishedHeaders,
  republishedProperties,
  retryQueueName,
  topologyNames,
} from '../messaging/topology.js';

export interface WorkerOptions extends RoleOptions {
  /** The payment provider; the simulated one from configuration by default. */
  provider?: PaymentProvider;
}

/** How long the consumer may stay without a ready channel before an error is logged (the client retries silently). */
const NOT_READY_ALERT_MS = 30_000;

export interface ProcessMessageHandlerDeps {
  processor: PayoutProcessor;
  publisher: ConfirmedPublisher;
  names: TopologyNames;
  retryDelaysMs: readonly number[];
  metrics: Metrics;
  log: Logger;
}

/**
 * The reasons a message is dead-lettered for: undecodable, an unknown payout, a permanent error, or its tries spent.
 */
const DEAD_LETTER_REASONS = [
  'unparseable',
  'invalid_message',
  'unknown_payout',
  'processing_error',
  'retries_exhausted',
] as const;

/** Turns one delivery into one processor call and the result into an acknowledgement. */
/**
 * What a dead letter's `detail` header says of the error: its message without the statement knex puts before it
 * ("<sql with its values> - <message>") and with account numbers masked — the header is listed by `dlq-list` and
 * kept as long as the message.
 */
export function deadLetterDetail(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const withoutStatement = message.includes(' - ') ? message.slice(message.lastIndexOf(' - ') + 3) : message;
  return maskAccountNumbers(withoutStatement);
}

export class ProcessMessageHandler {
  constructor(private readonly deps: ProcessMessageHandlerDeps) {
    // Retries, dead letters and redeliveries are what a healthy worker rarely does: their series start at 0, so
    // their panels show 0 rather than "No data".
    zeroed(deps.metrics.consumerOutcomes, [
      ...TRANSIENT_ERRORS.map(({ reason }) => ({ outcome: 'retry', reason })),
      ...DEAD_LETTER_REASONS.map((reason) => ({ outcome: 'dead_letter', reason })),
    ]);
    zeroed(
      deps.metrics.redeliveries,
      PAYOUT_STATUSES.map((status) => ({ status })),
    );
  }

  /** `delivery` comes from a raw-body channel (`keepRawBodiesOn`): its body is the Buffer of the bytes sent. */
  async handle(delivery: AsyncMessage): Promise<ConsumerStatus> {
    const decoded = decodeProcessMessage(rawBody(delivery));
    if (!decoded.ok) return this.deadLetter(delivery, decoded.reason, decoded.detail);
    const message = decoded.message;
    const counters = {
      attempt: counterHeader(delivery.headers, HEADERS.attempt),
      waits: counterHeader(delivery.headers, HEADERS.waits),
    };
    const context = {
      message_id: message.message_id,
      payout_id: message.payout_id,
      request_id: message.request_id,
      attempt: counters.attempt,
    };
    try {
      return this.acknowledge(await this.deps.processor.process(message), 'processed', context);
    } catch (error) {
      // A child logger carries the message's context on every line of the failure path. The usual path logs one
      // line and makes none: a child per message cost the worker its redaction setup even when info was off.
      return this.onFailure(delivery, message, counters, error, this.deps.log.child(context));
    }
  }

  private async onFailure(
    delivery: AsyncMessage,
    message: ProcessMessage,
    counters: { attempt: number; waits: number },
    error: unknown,
    log: Logger,
  ): Promise<ConsumerStatus> {
    if (error instanceof PayoutNotFound) return this.deadLetter(delivery, 'unknown_payout', error.detail);
    const verdict = classifyError(error);
    if (!verdict.transient) {
      log.error({ err: error }, 'permanent processing error');
      return this.deadLetter(delivery, verdict.reason, deadLetterDetail(error), message);
    }
    const decision = decideRetry(verdict.rule, counters, this.deps.retryDelaysMs);
    if (decision.action === 'retry') return this.retry(message, decision, verdict.rule.reason, error, log);
    // The message's tries are spent (the payout kept conflicting): it leaves the queue, and a person looks.
    return this.deadLetter(delivery, 'retries_exhausted', deadLetterDetail(error), message);
  }

  private acknowledge(
    outcome: ProcessOutcome,
    reason: string,
    context: Record<string, unknown>,
  ): ConsumerStatus {
    if (!outcome.acted) {
      // A redelivery or a duplicate for a payout that already moved past the message's command: acknowledged and
      // counted, never carried out again.
      this.deps.metrics.redeliveries.inc({ status: outcome.found });
    }
    const label = outcome.acted ? reason : 'already_moved_on';
    this.deps.metrics.consumerOutcomes.inc({ outcome: 'ack', reason: label });
    this.deps.log.info(
      { ...context, found: outcome.found, status: outcome.status },
      'payout message processed',
    );
    return ConsumerStatus.ACK;
  }

  /** Publishes a copy to the delay tier (confirmed) and only then acknowledges the original. */
  private async retry(
    message: ProcessMessage,
    decision: RetryDecision,
    reason: string,
    error: unknown,
    log: Logger,
  ): Promise<ConsumerStatus> {
    const queue = retryQueueName(this.deps.names, decision.delayMs);
    await this.publishOrRequeue(
      processEnvelope(queueDestination(queue), message, { attempt: decision.attempt, waits: decision.waits }),
      message,
    );
    this.deps.metrics.consumerOutcomes.inc({ outcome: 'retry', reason });
    log.warn(
      {
        reason,
        delay_ms: decision.delayMs,
        next_attempt: decision.attempt,
        waits: decision.waits,
        err: error,
      },
      'retrying later',
    );
    return ConsumerStatus.ACK;
  }

  /**
   * Publishes the message to the dead-letter queue with the reason in its headers (confirmed), then acknowledges
   * the original: a poison message leaves the work queue once, visibly, and is never requeued forever. The copy is
   * the original as it arrived — its bytes (never a re-serialization of what was parsed), content type and
   * encoding, ids and headers — so the DLQ tools can show and replay anything, and a replay is the same message.
   * A message of a known payout also tells its machine, which moves the payout to `needs_attention` (if that
   * cannot be written now, the sweeper's re-drive bound gets it there).
   */
  private async deadLetter(
    delivery: AsyncMessage,
    reason: string,
    detail: string,
    message?: ProcessMessage,
  ): Promise<ConsumerStatus> {
    const headers = {
      ...republishedHeaders(delivery.headers),
      [HEADERS.deathReason]: reason,
      [HEADERS.deathDetail]: detail.slice(0, 1000),
      [HEADERS.deadLetteredAt]: new Date().toISOString(),
      'x-original-queue': this.deps.names.workQueue,
    };
    await this.publishOrRequeue(
      {
        ...republishedProperties(delivery),
        exchange: '',
        routingKey: this.deps.names.deadLetterQueue,
        durable: true,
        headers,
      },
      rawBody(delivery),
    );
    this.deps.metrics.consumerOutcomes.inc({ outcome: 'dead_letter', reason });
    this.deps.log.error(
      {
        reason,
        detail: detail.slice(0, 1000),
        message_id: delivery.messageId,
        payout_id: delivery.headers?.[HEADERS.payoutId],
      },
      'message dead-lettered',
    );
    if (message) {
      await this.deps.processor
        .reportDeadLetter(message, reason, clipNote(detail))
        .catch((error: unknown) =>
          this.deps.log.warn(
            { err: error, payout_id: message.payout_id },
            'could not mark a dead-lettered payout',
          ),
        );
    }
    return ConsumerStatus.ACK;
  }

  /**
   * A failed publish must not lose the original: the error propagates, the consumer nacks with requeue, and the
   * message comes back. The pause keeps a broker that refuses publishes from turning that into a hot loop; the
   * queue's delivery limit is the backstop.
   */
  private async publishOrRequeue(
    envelope: Parameters<ConfirmedPublisher['publish']>[0],
    body: unknown,
  ): Promise<void> {
    try {
      await this.deps.publisher.publish(envelope, body);
    } catch (error) {
      this.deps.metrics.consumerOutcomes.inc({ outcome: 'requeue', reason: 'publish_failed' });
      await sleep(1_000);
      throw error;
    }
  }
}

/** What the worker role is made of. */
export interface WorkerDeps extends RoleDeps {
  service: PayoutService;
  /** The payment provider: only the worker talks to it. */
  provider: PaymentProvider;
}

export async function startWorker(ctx: WorkerDeps, options: WorkerOptions = {}): Promise<RoleHandle> {
  const { config, metrics } = ctx;
  const log = ctx.log.child({ component: 'worker' });
  const names = topologyNames(config.amqpNamespace);
  // Raw bodies: the worker decodes the bytes itself, bounded, and dead-letters them exactly as they came.
  const connection: Connection = keepRawBodiesOn(openBrokerConnection(config, log, 'worker'));
  const publisher = new ConfirmedPublisher(connection);
  const provider = options.provider ?? ctx.provider;
  const handler = new ProcessMessageHandler({
    processor: new PayoutProcessor(ctx.service, provider, metrics, config.providerTimeoutMs * 3),
    publisher,
    names,
    retryDelaysMs: config.retryDelaysMs,
    metrics,
    log,
  });

  // The handlers share statements (the service's and the provider's batchers), so a high concurrency costs no
  // connection per handler: it is what fills the batches. Prefetch twice the concurrency keeps the next messages
  // at hand without hoarding work other workers could do.
  // The queue is declared passively: the topology step owns its arguments.
  const { consumer, close: closeConsumer } = createDrainingConsumer(
    connection,
    {
      queue: names.workQueue,
      queueOptions: { passive: true },
      qos: { prefetchCount: config.workerConcurrency * 2 },
      concurrency: config.workerConcurrency,
      requeue: true,
      lazy: true,
    },
    (delivery) => handler.handle(delivery),
  );
  consumer.on('error', (error: unknown) => log.warn({ err: error }, 'consumer error'));

  let notReadySince: number | undefined = Date.now();
  let alerted = false;
  consumer.on('ready', () => {
    if (alerted) log.info('consumer ready again');
    notReadySince = undefined;
    alerted = false;
  });
  const watchdog = setInterval(() => {
    if (consumer.consumerTag !== '') return;
    notReadySince ??= Date.now();
    if (!alerted && Date.now() - notReadySince > NOT_READY_ALERT_MS) {
      alerted = true;
      log.error(
        { queue: names.workQueue },
        'worker is not consuming: broker down or work queue missing (run migrate)',
      );
    }
  }, 5_000);
  watchdog.unref();

  const ops = await startRoleOpsServer(ctx, options, () => connection.ready && consumer.consumerTag !== '');

  const abort = new AbortController();
  const starting = ensureTopology(connection, config, log, abort.signal).then((declared) => {
    if (declared && !abort.signal.aborted) consumer.start();
  });
  log.info(
    { queue: names.workQueue, concurrency: config.workerConcurrency, ops_port: ops?.port },
    'worker started',
  );

  let stopping: Promise<void> | undefined;
  return {
    opsPort: ops?.port,
    /** Stops once: a second call waits for the first. */
    stop() {
      stopping ??= (async () => {
        abort.abort();
        clearInterval(watchdog);
        await starting;
        // Cancels the subscription, waits for the handlers in flight (each ends with its ack), and closes the
        // channel: prefetched messages not yet started go back to the queue.
        // A lost connection makes the cancel fail; the broker then returns the unacknowledged messages itself.
        await closeConsumer().catch((error: unknown) => log.warn({ err: error }, 'consumer close failed'));
        await publisher.close().catch(() => undefined);
        await closeBrokerConnection(connection, log);
        await ops?.close();
        log.info('worker stopped');
      })();
      return stopping;
    },
  };
}
