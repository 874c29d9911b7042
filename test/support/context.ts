/**
 * Everything a test may need of the service, built the way the roles build it (src/roles/parts.ts), in one kit:
 * configuration, pool, logger, registry, the payout store and service, the maintenance service, the provider, the
 * API keys. Each role's start function takes only what it needs; this kit has all of it, so a test passes it to
 * any role. Production code has no such locator: each role composes its own (src/roles/roles.ts).
 */
import type { Config } from '../../src/config.js';
import { ApiKeys } from '../../src/domain/api-keys.js';
import { MaintenanceService } from '../../src/domain/maintenance-service.js';
import { PayoutService } from '../../src/domain/payout-service.js';
import type { OutboxWaker, PaymentProvider, ProcessingScheduler } from '../../src/domain/ports.js';
import type { Logger } from '../../src/logger.js';
import { createLogger } from '../../src/logger.js';
import { PayoutLifecycle } from '../../src/machines/payout-lifecycle.js';
import { PayoutMessages } from '../../src/messaging/payout-message.js';
import type { Metrics } from '../../src/metrics.js';
import { createMetrics } from '../../src/metrics.js';
import { PgApiKeyStore } from '../../src/persistence/client-repository.js';
import type { Db } from '../../src/persistence/db.js';
import { NotifyWaker } from '../../src/persistence/outbox-waker.js';
import { PgPayoutStore } from '../../src/persistence/payout-store.js';
import type { WebhookService } from '../../src/domain/webhook-service.js';
import type { PgWebhookStore } from '../../src/persistence/webhook-store.js';
import {
  databaseReady,
  openDatabase,
  paymentProvider,
  webhookService,
  webhookStore,
} from '../../src/roles/parts.js';

export interface TestContext {
  config: Config;
  db: Db;
  log: Logger;
  metrics: Metrics;
  store: PgPayoutStore;
  scheduler: ProcessingScheduler;
  waker: OutboxWaker;
  provider: PaymentProvider;
  service: PayoutService;
  maintenance: MaintenanceService;
  keys: ApiKeys;
  webhooks: WebhookService;
  webhookStore: PgWebhookStore;
  ready: () => Promise<void>;
}

export interface TestContextOverrides {
  db?: Db;
  log?: Logger;
  metrics?: Metrics;
  scheduler?: ProcessingScheduler;
  waker?: OutboxWaker;
  provider?: PaymentProvider;
}

export function createTestContext(config: Config, overrides: TestContextOverrides = {}): TestContext {
  const log = overrides.log ?? createLogger({ level: config.logLevel });
  const db = overrides.db ?? openDatabase(config, log);
  const metrics = overrides.metrics ?? createMetrics();
  const store = new PgPayoutStore(db);
  const scheduler = overrides.scheduler ?? new PayoutMessages();
  const waker =
    overrides.waker ?? new NotifyWaker(db, (error) => log.warn({ err: error }, 'outbox NOTIFY failed'));
  const service = new PayoutService({
    store,
    lifecycle: new PayoutLifecycle({ retryDelaysMs: config.retryDelaysMs, maxRedrives: config.maxRedrives }),
    commandLeaseMs: config.commandLeaseMs,
    currencies: config.currencies,
    scheduler,
    waker,
    metrics,
    idempotencyTtlHours: config.idempotencyTtlHours,
    maxDescriptionChanges: config.maxDescriptionChanges,
  });
  const maintenance = new MaintenanceService({
    store,
    service,
    stuckAfterSeconds: config.stuckAfterSeconds,
    idempotencyTtlHours: config.idempotencyTtlHours,
  });
  return {
    config,
    db,
    log,
    metrics,
    store,
    scheduler,
    waker,
    provider: overrides.provider ?? paymentProvider(config, db),
    service,
    maintenance,
    keys: new ApiKeys(new PgApiKeyStore(db)),
    webhooks: webhookService(config, db),
    webhookStore: webhookStore(config, db),
    ready: databaseReady(db),
  };
}
