/**
 * Prometheus metrics. One registry per app instance (tests build many apps in one process), so nothing here
 * is global. Labels are bounded: route templates, statuses, outcomes, currencies — never ids or account data.
 *
 * Each role's registry holds only the metrics that role writes (`METRIC_OWNERS`): a gauge another role sets
 * would sit at 0 in this one, and `max()` over every instance, or a person reading one scrape, would take that
 * 0 for the truth. The metrics a role does not own are still built, unregistered, so shared code (the payout
 * service runs in the API, the worker and the sweeper) writes to them without asking which role it is in.
 *
 * A labelled counter has no series until its first increment, so a dashboard panel of a healthy service would
 * say "No data" rather than 0. The code that writes a labelled metric creates the label values it knows at 0
 * when it starts (`zeroed` below): the API's routes, the worker's outcomes and reasons, the sweeper's statuses.
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
  webhookDeliveries: Counter<'outcome'>;
  webhookAttemptDuration: Histogram<'outcome'>;
  webhookBacklog: Gauge;
  webhookOldestAge: Gauge;
  webhookDlqDepth: Gauge;
  webhookEndpointsDisabled: Counter;
  webhookRedriven: Counter;
}

/** The long-running roles; `dev` runs them all in one process and registers every metric. */
export type MetricsRole = 'api' | 'worker' | 'relay' | 'sweeper' | 'webhooks';
export const METRICS_ROLES: readonly MetricsRole[] = ['api', 'worker', 'relay', 'sweeper', 'webhooks'];

/** Which roles write each metric, and so export it. */
export const METRIC_OWNERS: Readonly<Record<Exclude<keyof Metrics, 'registry'>, readonly MetricsRole[]>> = {
  httpRequestDuration: ['api'],
  payoutsCreated: ['api'],
  idempotencyReplays: ['api'],
  // Clients' and operators' changes happen in the API, the provider's answers in the worker, re-drives in the sweeper.
  transitions: ['api', 'worker', 'sweeper'],
  // A payout reaches a final state through a provider's answer, which only the worker hears.
  processingDuration: ['worker'],
  consumerOutcomes: ['worker'],
  redeliveries: ['worker'],
  providerCalls: ['worker'],
  providerDuration: ['worker'],
  outboxPublished: ['relay'],
  outboxPublishFailures: ['relay'],
  outboxBacklog: ['relay'],
  outboxOldestAge: ['relay'],
  stuckPayouts: ['sweeper'],
  sweeperRedriven: ['sweeper'],
  dlqDepth: ['sweeper'],
  needsAttention: ['sweeper'],
  webhookDeliveries: ['webhooks'],
  webhookAttemptDuration: ['webhooks'],
  webhookBacklog: ['webhooks'],
  webhookOldestAge: ['webhooks'],
  webhookDlqDepth: ['webhooks'],
  webhookEndpointsDisabled: ['webhooks'],
  webhookRedriven: ['webhooks'],
};

export interface MetricsOptions {
  /** Node's default process metrics (memory, CPU, event loop); default true. */
  defaults?: boolean;
  /** The roles this process runs: their metrics are registered, no others. Default: every role, as `dev` runs. */
  roles?: readonly MetricsRole[];
}

/** Creates each labelled series at 0, so that it is scraped before anything happened to it. */
export function zeroed<T extends string>(
  metric: Counter<T> | Gauge<T> | Histogram<T>,
  combinations: Iterable<Partial<Record<T, string>>>,
): void {
  for (const labels of combinations) {
    if (metric instanceof Counter) metric.inc(labels, 0);
    else if (metric instanceof Gauge) metric.set(labels, 0);
    else metric.zero(labels);
  }
}

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.defaults ?? true) collectDefaultMetrics({ register: registry });
  const roles = options.roles ?? METRICS_ROLES;
  /** The registries of a metric: this one when one of the process's roles owns it, none otherwise. */
  const on = (metric: keyof typeof METRIC_OWNERS) =>
    METRIC_OWNERS[metric].some((owner) => roles.includes(owner)) ? [registry] : [];
  return {
    registry,
    httpRequestDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by route template, method and status.',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: on('httpRequestDuration'),
    }),
    payoutsCreated: new Counter({
      name: 'payouts_created_total',
      help: 'Payouts created, by currency.',
      labelNames: ['currency'],
      registers: on('payoutsCreated'),
    }),
    transitions: new Counter({
      name: 'payouts_transitions_total',
      help: 'Payout state transitions, by from and to status and event.',
      labelNames: ['from', 'to', 'event'],
      registers: on('transitions'),
    }),
    processingDuration: new Histogram({
      name: 'payouts_processing_duration_seconds',
      help: 'Time from creation to a final state, by final outcome.',
      labelNames: ['outcome'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers: on('processingDuration'),
    }),
    consumerOutcomes: new Counter({
      name: 'payouts_consumer_messages_total',
      help: 'Messages handled by the worker, by outcome (ack, retry, dead_letter) and reason.',
      labelNames: ['outcome', 'reason'],
      registers: on('consumerOutcomes'),
    }),
    redeliveries: new Counter({
      name: 'payouts_consumer_redelivered_total',
      help: 'Messages for payouts that had already moved past the step, acknowledged without reprocessing.',
      labelNames: ['status'],
      registers: on('redeliveries'),
    }),
    providerCalls: new Counter({
      name: 'payouts_provider_calls_total',
      help: 'Calls to the payment provider, by outcome (succeeded, failed, transient_error).',
      labelNames: ['outcome'],
      registers: on('providerCalls'),
    }),
    providerDuration: new Histogram({
      name: 'payouts_provider_call_duration_seconds',
      help: 'Duration of calls to the payment provider, by outcome.',
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: on('providerDuration'),
    }),
    outboxPublished: new Counter({
      name: 'payouts_outbox_published_total',
      help: 'Outbox messages published and confirmed by the broker.',
      registers: on('outboxPublished'),
    }),
    outboxPublishFailures: new Counter({
      name: 'payouts_outbox_publish_failures_total',
      help: 'Outbox messages whose publish failed and will be retried.',
      registers: on('outboxPublishFailures'),
    }),
    outboxBacklog: new Gauge({
      name: 'payouts_outbox_backlog',
      help: 'Outbox messages not yet published.',
      registers: on('outboxBacklog'),
    }),
    outboxOldestAge: new Gauge({
      name: 'payouts_outbox_oldest_age_seconds',
      help: 'Age of the oldest unpublished outbox message.',
      registers: on('outboxOldestAge'),
    }),
    stuckPayouts: new Gauge({
      name: 'payouts_stuck',
      help: 'Payouts in created or processing for longer than the stuck threshold, by status.',
      labelNames: ['status'],
      registers: on('stuckPayouts'),
    }),
    sweeperRedriven: new Counter({
      name: 'payouts_sweeper_redriven_total',
      help: 'Stuck payouts re-driven by the sweeper (a REDRIVE event: its command sent again), by status.',
      labelNames: ['status'],
      registers: on('sweeperRedriven'),
    }),
    needsAttention: new Gauge({
      name: 'payouts_needs_attention',
      help: 'Payouts the pipeline gave up on (dead-lettered, or re-driven past MAX_REDRIVES): a person retries or resolves them.',
      registers: on('needsAttention'),
    }),
    dlqDepth: new Gauge({
      name: 'payouts_dlq_depth',
      help: 'Messages waiting in the dead-letter queue.',
      registers: on('dlqDepth'),
    }),
    idempotencyReplays: new Counter({
      name: 'payouts_idempotency_total',
      help: 'Requests carrying an Idempotency-Key, by outcome (new, replayed, mismatch, in_flight).',
      labelNames: ['outcome'],
      registers: on('idempotencyReplays'),
    }),
    webhookDeliveries: new Counter({
      name: 'payouts_webhook_deliveries_total',
      help: 'Webhook delivery attempts and their end, by outcome (delivered, retried, failed, skipped, dead_letter).',
      labelNames: ['outcome'],
      registers: on('webhookDeliveries'),
    }),
    webhookAttemptDuration: new Histogram({
      name: 'payouts_webhook_attempt_duration_seconds',
      help: "Duration of one webhook POST, until the receiver's answer or the failure, by outcome.",
      labelNames: ['outcome'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: on('webhookAttemptDuration'),
    }),
    webhookBacklog: new Gauge({
      name: 'payouts_webhook_backlog',
      help: 'Webhook deliveries not yet delivered nor failed (waiting for an attempt or a retry).',
      registers: on('webhookBacklog'),
    }),
    webhookOldestAge: new Gauge({
      name: 'payouts_webhook_oldest_pending_age_seconds',
      help: 'Age of the oldest webhook delivery neither delivered nor failed.',
      registers: on('webhookOldestAge'),
    }),
    webhookDlqDepth: new Gauge({
      name: 'payouts_webhook_dlq_depth',
      help: 'Messages waiting in the webhook dead-letter queue.',
      registers: on('webhookDlqDepth'),
    }),
    webhookEndpointsDisabled: new Counter({
      name: 'payouts_webhook_endpoints_disabled_total',
      help: 'Webhook endpoints disabled after WEBHOOK_DISABLE_AFTER events in a row failed for good.',
      registers: on('webhookEndpointsDisabled'),
    }),
    webhookRedriven: new Counter({
      name: 'payouts_webhook_redriven_total',
      help: 'Pending webhook deliveries whose message was lost (WEBHOOK_REDRIVE_AFTER overdue), queued again.',
      registers: on('webhookRedriven'),
    }),
  };
}
