/**
 * The composition root of each long-running role: what it is made of, built from the configuration, and how it
 * stops. Each role builds only what it uses; `dev` runs them all on one pool.
 */
import type { Config } from '../config.js';
import { ApiKeys } from '../domain/api-keys.js';
import { startWorker } from '../consumers/payout-consumer.js';
import { startApi } from '../http/server.js';
import type { Logger } from '../logger.js';
import type { MetricsRole } from '../metrics.js';
import { METRICS_ROLES, createMetrics } from '../metrics.js';
import type { RoleOptions } from '../ops-server.js';
import { startApiOpsServer } from '../ops-server.js';
import type { Db } from '../persistence/db.js';
import { PgApiKeyStore } from '../persistence/client-repository.js';
import { startRelay } from '../relay/outbox-relay.js';
import { startSweeper } from '../sweeper/sweeper.js';
import { startWebhooks } from '../consumers/webhook-consumer.js';
import {
  databaseReady,
  maintenanceOf,
  notifyWaker,
  openDatabase,
  operatorConsoleOf,
  paymentProvider,
  payoutParts,
  webhookDispatcher,
  webhookService,
  webhookStore,
} from './parts.js';

export interface RunningRole {
  stop(): Promise<void>;
}

/**
 * What every role builds first: its pool, its registry (with only the metrics of the roles it runs), and whether
 * its database answers.
 */
function foundation(config: Config, log: Logger, roles: readonly MetricsRole[], poolMax?: number) {
  const db = openDatabase(config, log, poolMax);
  return { db, metrics: createMetrics({ roles }), ready: databaseReady(db) };
}

/** The API keys on the role's pool; a failure to record a key's use is only a warning. */
function apiKeysOn(db: Db, log: Logger): ApiKeys {
  return new ApiKeys(new PgApiKeyStore(db), (error) =>
    log.warn({ err: error }, "recording an API key's use failed; tried again on its next use"),
  );
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
  const { db, metrics, ready } = foundation(config, log, ['api']);
  const { service } = payoutParts(config, db, metrics, log);
  const webhooks = webhookService(config, db, notifyWaker(db, log));
  const keys = apiKeysOn(db, log);
  const consolePages = operatorConsoleOf(config, db, log, { service, webhooks, keys });
  const api = await startApi({ config, log, metrics, service, webhooks, keys, console: consolePages });
  const ops = await startApiOpsServer({ config, log, metrics, ready });
  return { ...running(db, [{ stop: () => ops.close() }, api]), port: api.port };
}

/** A role that runs on its own: the `worker`, `relay` and `sweeper` commands (their ops server unless told not to). */
type RoleRunner = (config: Config, log: Logger, options?: RoleOptions) => Promise<RunningRole>;

export const runWorker: RoleRunner = async (config, log, options = {}) => {
  const { db, metrics, ready } = foundation(config, log, ['worker']);
  const { service } = payoutParts(config, db, metrics, log);
  const provider = paymentProvider(config, db);
  const worker = await startWorker({ config, log, metrics, ready, service, provider }, options);
  return running(db, [worker]);
};

export const runRelay: RoleRunner = async (config, log, options = {}) => {
  const { db, metrics, ready } = foundation(config, log, ['relay']);
  const relay = await startRelay({ config, log, metrics, ready, db }, options);
  return running(db, [relay]);
};

export const runSweeper: RoleRunner = async (config, log, options = {}) => {
  const { db, metrics, ready } = foundation(config, log, ['sweeper']);
  const maintenance = maintenanceOf(config, payoutParts(config, db, metrics, log));
  const sweeper = await startSweeper({ config, log, metrics, ready, maintenance }, options);
  return running(db, [sweeper]);
};

export const runWebhooks: RoleRunner = async (config, log, options = {}) => {
  const { db, metrics, ready } = foundation(config, log, ['webhooks']);
  const store = webhookStore(config, db);
  const dispatcher = webhookDispatcher(config, store);
  const webhooks = await startWebhooks({ config, log, metrics, ready, dispatcher, backlog: store }, options);
  return running(db, [webhooks]);
};

/**
 * Everything on one laptop, in one process on one pool (twice a single role's default size): relay, worker,
 * sweeper, webhooks and the API, whose ops port serves every role's metrics. Returns the API's port and the key store for the
 * development key.
 */
export async function runDev(
  config: Config,
  log: Logger,
): Promise<RunningRole & { port: number; keys: ApiKeys }> {
  const { db, metrics, ready } = foundation(config, log, METRICS_ROLES, Math.max(config.databasePoolMax, 20));
  const parts = payoutParts(config, db, metrics, log);
  const { service } = parts;
  const keys = apiKeysOn(db, log);
  const quiet = { opsServer: false };
  const handles: RunningRole[] = [];
  handles.push(await startRelay({ config, log, metrics, db, ready }, quiet));
  handles.push(
    await startWorker({ config, log, metrics, service, provider: paymentProvider(config, db), ready }, quiet),
  );
  const maintenance = maintenanceOf(config, parts);
  handles.push(await startSweeper({ config, log, metrics, maintenance, ready }, quiet));
  const deliveries = webhookStore(config, db);
  handles.push(
    await startWebhooks(
      { config, log, metrics, ready, dispatcher: webhookDispatcher(config, deliveries), backlog: deliveries },
      quiet,
    ),
  );
  const webhooks = webhookService(config, db, notifyWaker(db, log));
  const api = await startApi({
    config,
    log,
    metrics,
    service,
    webhooks,
    keys,
    console: operatorConsoleOf(config, db, log, { service, webhooks, keys }),
  });
  // One registry for every role here: the API's ops port serves all their metrics.
  const ops = await startApiOpsServer({ config, log, metrics, ready });
  handles.push({ stop: () => ops.close() });
  handles.push(api);
  return { ...running(db, handles), port: api.port, keys };
}
