/**
 * The parts the roles' composition roots build from: the database pool, its readiness check, and the payout
 * service with what it stands on (the store, the messages, the waker). Each role takes only the parts it needs.
 */
import type { Config } from '../config.js';
import type { OutboxWaker, PaymentProvider } from '../domain/ports.js';
import { MaintenanceService } from '../domain/maintenance-service.js';
import { PayoutService } from '../domain/payout-service.js';
import { SimulatedProvider, simulatedProviderOptions } from '../adapters/simulated-provider.js';
import type { Logger } from '../logger.js';
import { PayoutLifecycle } from '../machines/payout-lifecycle.js';
import { PayoutMessages } from '../messaging/payout-message.js';
import type { Metrics } from '../metrics.js';
import type { Db } from '../persistence/db.js';
import { createDb } from '../persistence/db.js';
import { NotifyWaker } from '../persistence/outbox-waker.js';
import { PgPayoutStore } from '../persistence/payout-store.js';
import { SecretBox } from '../persistence/secret-box.js';
import { PgWebhookStore } from '../persistence/webhook-store.js';
import { WebhookService } from '../domain/webhook-service.js';
import { WebhookDispatcher } from '../domain/webhook-delivery.js';
import { HttpWebhookSender } from '../adapters/webhook-http.js';
import { CheckTimedOut } from '../ops-server.js';
import type { ApiKeys } from '../domain/api-keys.js';
import { operatorConsole } from '../console/console.js';
import { brokerDeadLetters } from '../console/dead-letters.js';
import { PgConsoleSessions } from '../persistence/console-sessions.js';
import type { RequestHandler } from 'express';
import { withTimeout } from '../timeout.js';

/**
 * knex's words for a connection it could not make or had to drop, with the error's stack: the same error reaches
 * whoever asked for the connection (a request's 503, a relay round, the readiness check, which says it once).
 */
const KNEX_CONNECTION_TROUBLE = /^(Acquire connection error|Connection Error)\b/;

/**
 * The role's pool on the configured database, with the configured limits on every connection (statement, lock,
 * idle transaction; src/persistence/db.ts); knex's warnings go to the role's log, its reports of connection
 * trouble only to the debug log (an outage would otherwise log a stack per connection attempt).
 */
export function openDatabase(config: Config, log: Logger, poolMax = config.databasePoolMax): Db {
  const knexLog = log.child({ component: 'knex' });
  return createDb(
    config.databaseUrl,
    poolMax,
    {
      warn: (message) =>
        KNEX_CONNECTION_TROUBLE.test(message) ? knexLog.debug(message) : knexLog.warn(message),
      error: (message) => knexLog.error(message),
    },
    {
      statementTimeoutMs: config.databaseStatementTimeoutMs,
      lockTimeoutMs: config.databaseLockTimeoutMs,
      idleInTransactionTimeoutMs: config.databaseIdleInTransactionTimeoutMs,
    },
  );
}

/** How long the database's readiness check waits for a connection of the role's pool and its answer together. */
export const DATABASE_READY_TIMEOUT_MS = 2_000;

/**
 * Resolves when the database answers through the role's own pool — the connections its work uses, not a fresh
 * one — within `timeoutMs`: a pool whose connections all hang (a silent socket, a lock) fails the check as surely
 * as a database that is gone, and the error says why (src/database-errors.ts: `unavailabilityCause`). A
 * connection whose `SELECT 1` goes unanswered that long is dropped (src/persistence/db.ts).
 */
export function databaseReady(db: Db, timeoutMs = DATABASE_READY_TIMEOUT_MS): () => Promise<void> {
  return async () => {
    await withTimeout(
      db.raw('SELECT 1').options({ query_timeout: timeoutMs }),
      timeoutMs,
      () => new CheckTimedOut(timeoutMs),
    );
  };
}

/** Wakes the relays after a commit that left rows in the outbox; a failure only makes them poll. */
export function notifyWaker(db: Db, log: Logger): OutboxWaker {
  return new NotifyWaker(db, (error) => log.warn({ err: error }, 'outbox NOTIFY failed; relays will poll'));
}

export interface PayoutParts {
  store: PgPayoutStore;
  service: PayoutService;
}

/** The payout service on PostgreSQL, its machine built with the configured policy. */
export function payoutParts(
  config: Config,
  db: Db,
  metrics: Metrics,
  log: Logger,
  waker: OutboxWaker = notifyWaker(db, log),
): PayoutParts {
  const store = new PgPayoutStore(db);
  const service = new PayoutService({
    store,
    lifecycle: new PayoutLifecycle({ retryDelaysMs: config.retryDelaysMs, maxRedrives: config.maxRedrives }),
    commandLeaseMs: config.commandLeaseMs,
    currencies: config.currencies,
    scheduler: new PayoutMessages(),
    waker,
    metrics,
    idempotencyTtlHours: config.idempotencyTtlHours,
    maxDescriptionChanges: config.maxDescriptionChanges,
  });
  return { store, service };
}

/** The configured payment provider: the simulated one, with its ledger on the role's database. */
export function paymentProvider(config: Config, db: Db): PaymentProvider {
  return new SimulatedProvider(simulatedProviderOptions(config, db));
}

/** The sweeper's housekeeping on the payout store, with the configured thresholds. */
export function maintenanceOf(config: Config, parts: PayoutParts): MaintenanceService {
  return new MaintenanceService({
    store: parts.store,
    service: parts.service,
    stuckAfterSeconds: config.stuckAfterSeconds,
    idempotencyTtlHours: config.idempotencyTtlHours,
  });
}

/** The webhook endpoints' store on the role's pool, secrets sealed with the configured key. */
export function webhookStore(config: Config, db: Db): PgWebhookStore {
  return new PgWebhookStore(db, new SecretBox(config.webhookSecretKey));
}

/** The webhook endpoints' service with the configured egress rules and secret overlap. */
export function webhookService(config: Config, db: Db, waker?: OutboxWaker): WebhookService {
  return new WebhookService({
    store: webhookStore(config, db),
    waker,
    egress: { allowHttp: config.webhookAllowHttp, allowPrivate: config.webhookAllowPrivate },
    secretOverlapMs: config.webhookSecretOverlapMs,
  });
}

/** The webhook dispatcher: deliveries on the role's pool, sent over HTTP under the configured egress rules. */
export function webhookDispatcher(config: Config, store: PgWebhookStore): WebhookDispatcher {
  return new WebhookDispatcher({
    store,
    sender: new HttpWebhookSender({
      allowHttp: config.webhookAllowHttp,
      allowPrivate: config.webhookAllowPrivate,
      timeoutMs: config.webhookTimeoutMs,
    }),
    retryScheduleMs: config.webhookRetryScheduleMs,
    disableAfter: config.webhookDisableAfter,
  });
}

/**
 * The operator console on the API's pool and service: sessions in PostgreSQL, dead letters through the configured
 * broker (a connection per page, given up after a few seconds: the API's readiness never depends on it).
 */
export function operatorConsoleOf(
  config: Config,
  db: Db,
  log: Logger,
  parts: { service: PayoutService; webhooks: WebhookService; keys: ApiKeys },
): RequestHandler {
  return operatorConsole({
    ...parts,
    sessions: new PgConsoleSessions(db),
    deadLetters: brokerDeadLetters(config, log.child({ component: 'console' })),
    log: log.child({ component: 'console' }),
    settings: {
      secureCookies: config.consoleSecureCookies,
      sessionHours: config.consoleSessionHours,
      stuckAfterSeconds: config.stuckAfterSeconds,
      currencies: [...config.currencies.keys()],
    },
  });
}
