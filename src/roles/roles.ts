/**
 * The composition root of each long-running role: what it is made of, built from the configuration, and how it
 * stops. Each role builds only what it uses; `dev` runs them all on one pool.
 */
import type { Config } from '../config.js';
import { ApiKeys } from '../domain/api-keys.js';
import { MaintenanceService } from '../domain/maintenance-service.js';
import { startWorker } from '../consumers/payout-consumer.js';
import { startApi } from '../http/server.js';
import type { Logger } from '../logger.js';
import { createMetrics } from '../metrics.js';
import type { Db } from '../persistence/db.js';
import { PgApiKeyStore } from '../persistence/client-repository.js';
import { startRelay } from '../relay/outbox-relay.js';
import { startSweeper } from '../sweeper/sweeper.js';
import { databaseReady, openDatabase, paymentProvider, payoutParts } from './parts.js';
import type { RoleOptions } from '../ops-server.js';

export interface RunningRole {
  stop(): Promise<void>;
}

/** A role's handles, stopped in reverse order of their start, then its pool. */
function running(db: Db, handles: RunningRole[]): RunningRole {
  return {
    async stop() {
      for (const handle of handles.reverse()) await handle.stop();
      await db.destroy();
    },
  };
}

export async function runApi(config: Config, log: Logger): Promise<RunningRole & { port: number }> {
  const db = openDatabase(config, log);
  const metrics = createMetrics();
  const { service } = payoutParts(config, db, metrics, log);
  const api = await startApi({
    config,
    log,
    metrics,
    service,
    keys: new ApiKeys(new PgApiKeyStore(db)),
    ready: databaseReady(db),
  });
  return { ...running(db, [api]), port: api.port };
}

export async function runWorker(
  config: Config,
  log: Logger,
  options: RoleOptions = {},
): Promise<RunningRole> {
  const db = openDatabase(config, log);
  const metrics = createMetrics();
  const { service } = payoutParts(config, db, metrics, log);
  const worker = await startWorker(
    { config, log, metrics, service, provider: paymentProvider(config, db), ready: databaseReady(db) },
    options,
  );
  return running(db, [worker]);
}

export async function runRelay(config: Config, log: Logger, options: RoleOptions = {}): Promise<RunningRole> {
  const db = openDatabase(config, log);
  const relay = await startRelay(
    { config, log, metrics: createMetrics(), db, ready: databaseReady(db) },
    options,
  );
  return running(db, [relay]);
}

export async function runSweeper(
  config: Config,
  log: Logger,
  options: RoleOptions = {},
): Promise<RunningRole> {
  const db = openDatabase(config, log);
  const metrics = createMetrics();
  const { store, service } = payoutParts(config, db, metrics, log);
  const maintenance = new MaintenanceService({
    store,
    service,
    stuckAfterSeconds: config.stuckAfterSeconds,
    idempotencyTtlHours: config.idempotencyTtlHours,
  });
  const sweeper = await startSweeper(
    { config, log, metrics, maintenance, ready: databaseReady(db) },
    options,
  );
  return running(db, [sweeper]);
}

/**
 * Everything on one laptop, in one process on one pool (twice a single role's default size): relay, worker,
 * sweeper and the API, whose ops port serves every role's metrics. Returns the API's port and the key store for the
 * development key.
 */
export async function runDev(
  config: Config,
  log: Logger,
): Promise<RunningRole & { port: number; keys: ApiKeys }> {
  const db = openDatabase(config, log, Math.max(config.databasePoolMax, 20));
  const metrics = createMetrics();
  const ready = databaseReady(db);
  const { store, service } = payoutParts(config, db, metrics, log);
  const keys = new ApiKeys(new PgApiKeyStore(db));
  const quiet = { opsServer: false };
  const handles: RunningRole[] = [];
  handles.push(await startRelay({ config, log, metrics, db, ready }, quiet));
  handles.push(
    await startWorker({ config, log, metrics, service, provider: paymentProvider(config, db), ready }, quiet),
  );
  const maintenance = new MaintenanceService({
    store,
    service,
    stuckAfterSeconds: config.stuckAfterSeconds,
    idempotencyTtlHours: config.idempotencyTtlHours,
  });
  handles.push(await startSweeper({ config, log, metrics, maintenance, ready }, quiet));
  const api = await startApi({ config, log, metrics, service, keys, ready });
  handles.push(api);
  return { ...running(db, handles), port: api.port, keys };
}
