/** What the worker, relay and sweeper roles share: their handle, the topology step at start, readiness checks. */
import type { Connection } from 'rabbitmq-client';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Db } from '../persistence/db.js';
import { backoffMs, sleep } from './amqp.js';
import type { TopologyNames, TopologyOptions } from './topology.js';
import { declareTopology } from './topology.js';

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
 * The topology step at role start, retried until it succeeds or the role is stopped: a role started before the
 * broker keeps trying (and stays not ready) instead of exiting. A PRECONDITION_FAILED means the queue exists
 * with other arguments: that needs a person (a new queue name), so it is logged as an error on every try.
 */
export async function ensureTopology(
  connection: Connection,
  config: Config,
  log: Logger,
  signal: AbortSignal,
): Promise<TopologyNames | undefined> {
  for (let failures = 0; !signal.aborted;) {
    try {
      return await declareTopology(connection, topologyOptions(config));
    } catch (error) {
      failures += 1;
      const mismatch = /PRECONDITION_FAILED/.test(String((error as Error).message));
      const line = mismatch
        ? 'topology declaration refused: a queue exists with other arguments; version its name'
        : 'topology declaration failed; retrying';
      if (mismatch) log.error({ err: error }, line);
      else log.warn({ err: error, failures }, line);
      await sleep(backoffMs(failures, 500, 10_000), signal);
    }
  }
  return undefined;
}

export async function databaseReachable(db: Db): Promise<boolean> {
  await db.raw('SELECT 1');
  return true;
}
