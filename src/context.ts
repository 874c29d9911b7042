/**
 * Everything a role needs, built once per process (and once per test app): configuration, the database pool,
 * the logger, a metrics registry, the payment provider and the payout service wired to the outbox.
 */
import type { Config } from './config.js';
import { MaintenanceService } from './domain/maintenance-service.js';
import { PayoutLifecycle } from './machines/payout-lifecycle.js';
import { PayoutService } from './domain/payout-service.js';
import type { PaymentProvider } from './domain/provider.js';
import type { OutboxWaker, ProcessingScheduler } from './domain/scheduling.js';
import { SimulatedProvider, simulatedProviderOptions } from './adapters/simulated-provider.js';
import type { Logger } from './logger.js';
import { createLogger } from './logger.js';
import type { Metrics } from './metrics.js';
import { createMetrics } from './metrics.js';
import type { Db } from './persistence/db.js';
import { createDb } from './persistence/db.js';
import { PayoutMessages } from './messaging/payout-message.js';
import { NotifyWaker } from './persistence/outbox-waker.js';

export interface AppContext {
  config: Config;
  db: Db;
  log: Logger;
  metrics: Metrics;
  scheduler: ProcessingScheduler;
  waker: OutboxWaker;
  /** The payment provider: the simulated one unless a test or a real adapter provides another. */
  provider: PaymentProvider;
  service: PayoutService;
  maintenance: MaintenanceService;
}

export interface ContextOverrides {
  db?: Db;
  log?: Logger;
  metrics?: Metrics;
  scheduler?: ProcessingScheduler;
  waker?: OutboxWaker;
  provider?: PaymentProvider;
}

export function createContext(config: Config, overrides: ContextOverrides = {}): AppContext {
  const log = overrides.log ?? createLogger({ level: config.logLevel });
  const db =
    overrides.db ??
    createDb(config.databaseUrl, config.databasePoolMax, {
      warn: (message) => log.warn({ component: 'knex' }, message),
      error: (message) => log.error({ component: 'knex' }, message),
    });
  const metrics = overrides.metrics ?? createMetrics();
  const scheduler = overrides.scheduler ?? new PayoutMessages();
  const waker =
    overrides.waker ??
    new NotifyWaker(db, (error) => log.warn({ err: error }, 'outbox NOTIFY failed; relays will poll'));
  const provider = overrides.provider ?? new SimulatedProvider(simulatedProviderOptions(config, db));
  const service = new PayoutService({
    db,
    lifecycle: new PayoutLifecycle({ retryDelaysMs: config.retryDelaysMs, maxRedrives: config.maxRedrives }),
    commandLeaseMs: config.commandLeaseMs,
    currencies: config.currencies,
    scheduler,
    waker,
    metrics,
    idempotencyTtlHours: config.idempotencyTtlHours,
  });
  const maintenance = new MaintenanceService({
    db,
    service,
    stuckAfterSeconds: config.stuckAfterSeconds,
    idempotencyTtlHours: config.idempotencyTtlHours,
  });
  return { config, db, log, metrics, scheduler, waker, provider, service, maintenance };
}
