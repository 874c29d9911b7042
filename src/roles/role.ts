/**
 * What the worker, relay and sweeper roles share: their handle, the operations server with its readiness checks,
 * the topology step at start, and closing their broker connection.
 */
import type { Connection } from 'rabbitmq-client';
import type { Config } from '../config.js';
import type { AppContext } from '../context.js';
import type { Logger } from '../logger.js';
import type { OpsServer, ReadinessCheck } from '../ops-server.js';
import { startOpsServer } from '../ops-server.js';
import type { Db } from '../persistence/db.js';
import { backoffMs, sleep } from '../messaging/amqp.js';
import type { TopologyNames, TopologyOptions } from '../messaging/topology.js';
import { verifyTopology } from '../messaging/topology.js';

export interface RoleHandle {
  /** Stops taking work, finishes or releases what is in flight, closes the role's own connections (not `ctx.db`). */
  stop(): Promise<void>;
  /** The port of the role's /metrics, /healthz, /readyz server, when it started one. */
  readonly opsPort: number | undefined;
}

export interface RoleOptions {
  /**
   * Serve /metrics, /healthz and /readyz on `METRICS_PORT` (default true). The all-in-one `dev` role turns it off
   * for all but one role, or serves them from the API.
   */
  opsServer?: boolean;
}

export function topologyOptions(config: Config): TopologyOptions {
  return {
    namespace: config.amqpNamespace,
    retryDelaysMs: config.retryDelaysMs,
    expiresMs: config.amqpQueueExpiresMs > 0 ? config.amqpQueueExpiresMs : undefined,
  };
}

/**
 * The topology check at role start: the `migrate` step declares the exchanges and queues; a role only verifies
 * them passively, retried until they are there or the role is stopped. A role started before the broker (or
 * before `migrate`) keeps trying and stays not ready instead of exiting; a missing queue is logged as an error
 * on every try, because it needs `migrate` to run.
 */
export async function ensureTopology(
  connection: Connection,
  config: Config,
  log: Logger,
  signal: AbortSignal,
): Promise<TopologyNames | undefined> {
  for (let failures = 0; !signal.aborted;) {
    try {
      return await verifyTopology(connection, topologyOptions(config));
    } catch (error) {
      failures += 1;
      const missing = /NOT_FOUND/.test(String((error as Error).message));
      if (missing) log.error({ err: error, failures }, 'broker topology missing: run `migrate`; retrying');
      else log.warn({ err: error, failures }, 'broker topology check failed; retrying');
      await sleep(backoffMs(failures, 500, 10_000), signal);
    }
  }
  return undefined;
}

export async function databaseReachable(db: Db): Promise<boolean> {
  await db.raw('SELECT 1');
  return true;
}

/**
 * Serves the role's /metrics, /healthz and /readyz on `METRICS_PORT`, unless `options.opsServer` is false. Ready
 * means the database answers and `brokerReady` holds.
 */
export async function startRoleOpsServer(
  ctx: AppContext,
  options: RoleOptions,
  brokerReady: ReadinessCheck,
): Promise<OpsServer | undefined> {
  if (options.opsServer === false) return undefined;
  return startOpsServer({
    port: ctx.config.metricsPort,
    host: ctx.config.host,
    registry: ctx.metrics.registry,
    checks: { database: () => databaseReachable(ctx.db), broker: brokerReady },
  });
}

/** Closes a role's broker connection at stop; a failure is only logged, the role is stopping anyway. */
export async function closeBrokerConnection(connection: Connection, log: Logger): Promise<void> {
  await connection
    .close()
    .catch((error: unknown) => log.warn({ err: error }, 'broker connection close failed'));
}
