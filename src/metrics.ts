/**
 * Prometheus metrics. One registry per app instance (tests build many apps in one process), so nothing here
 * is global. Labels are bounded: route templates, statuses, outcomes, currencies — never ids or account data.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequestDuration: Histogram<'route' | 'method' | 'status'>;
  payoutsCreated: Counter<'currency'>;
  transitions: Counter<'from' | 'to' | 'event'>;
  processingDuration: Histogram<'outcome'>;
  consumerOutcomes: Counter<'outcome' | 'reason'>;
  redeliveries: Counter<'status'>;
  providerCalls: Counter<'outcome'>;
  providerDuration: Histogram<'outcome'>;
  outboxPublished: Counter;
  outboxPublishFailures: Counter;
  outboxBacklog: Gauge;
  outboxOldestAge: Gauge;
  stuckPayouts: Gauge<'status'>;
  sweeperRedriven: Counter<'status'>;
  dlqDepth: Gauge;
  needsAttention: Gauge;
  idempotencyReplays: Counter<'outcome'>;
}

export function createMetrics(options: { defaults?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaults ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    httpRequestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route template, method and status.',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    payoutsCreated: new Counter({
      name: 'payouts_created_total',
      help: 'Payouts created, by currency.',
      labelNames: ['currency'],
      registers,
    }),
    transitions: new Counter({
      name: 'payouts_transitions_total',
      help: 'Payout state transitions, by from and to status and event.',
      labelNames: ['from', 'to', 'event'],
      registers,
    }),
    processingDuration: new Histogram({
      name: 'payouts_processing_duration_seconds',
      help: 'Time from creation to a final state, by final outcome.',
      labelNames: ['outcome'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers,
    }),
    consumerOutcomes: new Counter({
      name: 'payouts_consumer_messages_total',
      help: 'Messages handled by the worker, by outcome (ack, retry, dead_letter) and reason.',
      labelNames: ['outcome', 'reason'],
      registers,
    }),
    redeliveries: new Counter({
      name: 'payouts_consumer_redelivered_total',
      help: 'Messages for payouts that had already moved past the step, acknowledged without reprocessing.',
      labelNames: ['status'],
      registers,
    }),
    providerCalls: new Counter({
      name: 'payouts_provider_calls_total',
      help: 'Calls to the payment provider, by outcome (succeeded, failed, transient_error).',
      labelNames: ['outcome'],
      registers,
    }),
    providerDuration: new Histogram({
      name: 'payouts_provider_call_duration_seconds',
      help: 'Duration of calls to the payment provider, by outcome.',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    outboxPublished: new Counter({
      name: 'payouts_outbox_published_total',
      help: 'Outbox messages published and confirmed by the broker.',
      registers,
    }),
    outboxPublishFailures: new Counter({
      name: 'payouts_outbox_publish_failures_total',
      help: 'Outbox messages whose publish failed and will be retried.',
      registers,
    }),
    outboxBacklog: new Gauge({
      name: 'payouts_outbox_backlog',
      help: 'Outbox messages not yet published.',
      registers,
    }),
    outboxOldestAge: new Gauge({
      name: 'payouts_outbox_oldest_age_seconds',
      help: 'Age of the oldest unpublished outbox message.',
      registers,
    }),
    stuckPayouts: new Gauge({
      name: 'payouts_stuck',
      help: 'Payouts in created or processing for longer than the stuck threshold, by status.',
      labelNames: ['status'],
      registers,
    }),
    sweeperRedriven: new Counter({
      name: 'payouts_sweeper_redriven_total',
      help: 'Stuck payouts re-driven by the sweeper (a REDRIVE event: its command sent again), by status.',
      labelNames: ['status'],
      registers,
    }),
    needsAttention: new Gauge({
      name: 'payouts_needs_attention',
      help: 'Payouts the pipeline gave up on (dead-lettered, or re-driven past MAX_REDRIVES): a person retries or resolves them.',
      registers,
    }),
    dlqDepth: new Gauge({
      name: 'payouts_dlq_depth',
      help: 'Messages waiting in the dead-letter queue.',
      registers,
    }),
    idempotencyReplays: new Counter({
      name: 'payouts_idempotency_total',
      help: 'Requests carrying an Idempotency-Key, by outcome (new, replayed, mismatch, in_flight).',
      labelNames: ['outcome'],
      registers,
    }),
  };
}
