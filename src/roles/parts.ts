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

/** The role's pool on the configured database; knex's warnings go to the role's log. */
export function openDatabase(config: Config, log: Logger, poolMax = config.databasePoolMax): Db {
  return createDb(config.databaseUrl, poolMax, {
    warn: (message) => log.warn({ component: 'knex' }, message),
    error: (message) => log.error({ component: 'knex' }, message),
  });
}

/** Resolves when the database answers through the role's pool. */
export function databaseReady(db: Db): () => Promise<void> {
  return async () => {
    await db.raw('SELECT 1');
  };
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
  waker: OutboxWaker = new NotifyWaker(db, (error) =>
    log.warn({ err: error }, 'outbox NOTIFY failed; relays will poll'),
  ),
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
