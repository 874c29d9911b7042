import knexFactory from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { migrationSource } from './migrations/index.js';

export type Db = Knex;
export type Tx = Knex.Transaction;

/** Where knex's own warnings go (connection errors during an outage); the console when not given. */
export interface DbLog {
  warn(message: string): void;
  error(message: string): void;
}

/**
 * The limits every connection of a running role has (src/config.ts), so that no statement, lock wait, idle
 * transaction or silent socket holds a connection, a request or a message for long.
 */
export interface DbLimits {
  /** PostgreSQL's `statement_timeout`: it cancels a longer statement (57014). */
  statementTimeoutMs: number;
  /** `lock_timeout`: a statement waiting longer for a lock fails (55P03). */
  lockTimeoutMs: number;
  /** `idle_in_transaction_session_timeout`: a transaction idle longer has its session ended (25P03). */
  idleInTransactionTimeoutMs: number;
}

/** How long a new connection may take (TCP, TLS, authentication) before it counts as unreachable. */
export const CONNECT_TIMEOUT_MS = 5_000;
/** An idle connection's first TCP keepalive probe is sent after this long (the kernel's interval and count after it). */
export const KEEPALIVE_INITIAL_DELAY_MS = 10_000;
/**
 * A statement still unanswered this long after its `statement_timeout` would have cancelled it has not reached the
 * server or cannot be answered: its socket is silent (a peer gone without a reset), and the connection is dropped.
 */
export const SILENT_SOCKET_MARGIN_MS = 2_000;

/** What `connectionSettings` sets: node-postgres's names, read by knex's pool and by a `pg.Client` alike. */
export interface ConnectionSettings {
  connectionString: string;
  application_name: string;
  keepAlive: boolean;
  keepAliveInitialDelayMillis: number;
  connectionTimeoutMillis: number;
  statement_timeout?: number;
  lock_timeout?: number;
  idle_in_transaction_session_timeout?: number;
  query_timeout?: number;
}

/** node-postgres's settings of a connection: always TCP keepalive and a connect timeout; the limits when given. */
export function connectionSettings(databaseUrl: string, limits?: DbLimits): ConnectionSettings {
  return {
    connectionString: databaseUrl,
    application_name: 'payouts',
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    ...(limits && {
      // Sent in the startup packet (as `-c name=value` options would be): set before the first statement, on
      // every connection of the pool, including those pg-session.ts borrows for its named statements. A setting
      // given in the URL's query wins.
      statement_timeout: limits.statementTimeoutMs,
      lock_timeout: limits.lockTimeoutMs,
      idle_in_transaction_session_timeout: limits.idleInTransactionTimeoutMs,
      // The client-side bound (node-postgres's "Query read timeout"): a statement the server would have
      // cancelled by now is waiting on a silent socket.
      query_timeout: limits.statementTimeoutMs + SILENT_SOCKET_MARGIN_MS,
    }),
  };
}

/** node-postgres's error when `query_timeout` ran out: the connection's socket did not answer in time. */
export function isQueryReadTimeout(error: unknown): boolean {
  // knex puts the statement before the message of a statement's error ("<sql> - Query read timeout").
  return error instanceof Error && /(^|- )Query read timeout$/.test(error.message);
}

/** The node-postgres client under knex's connection (its socket and knex's mark for a broken connection). */
interface PooledClient {
  query: (...args: unknown[]) => unknown;
  connection: { stream: { destroy(): void } };
  __knex__disposed?: unknown;
}

/**
 * Makes a connection whose statement went unanswered past `query_timeout` unusable: node-postgres gives up on the
 * statement but would keep the connection, its next statements queued behind the unanswered one. The socket is
 * destroyed (whatever else waits on it fails at once with "Connection terminated") and knex's mark tells its pool
 * never to lend the connection again. Statements with a callback (knex) and without (pg-session.ts) alike.
 */
function retireWhenSilent(client: PooledClient): void {
  const query = client.query.bind(client);
  const retire = (error: unknown) => {
    if (!isQueryReadTimeout(error)) return;
    client.__knex__disposed = error;
    client.connection.stream.destroy();
  };
  client.query = (...args: unknown[]) => {
    const last = args.length - 1;
    const callback = args[last];
    if (typeof callback === 'function') {
      args[last] = (error: unknown, result: unknown) => {
        retire(error);
        (callback as (error: unknown, result: unknown) => void)(error, result);
      };
      return query(...args);
    }
    const result = query(...args);
    if (!(result instanceof Promise)) return result;
    return result.catch((error: unknown) => {
      retire(error);
      throw error;
    });
  };
}

/**
 * A pool on `databaseUrl`. Given `limits` (the running roles), every connection has them, a connection is waited
 * for at most a statement's time, and a connection whose socket went silent is dropped; without (`migrate`, the
 * one-shot commands), statements are not limited. Every connection has TCP keepalive and a connect timeout.
 */
export function createDb(databaseUrl: string, poolMax = 10, log?: DbLog, limits?: DbLimits): Db {
  return knexFactory({
    client: 'pg',
    ...(log && {
      log: {
        warn: (message: unknown) => log.warn(String(message)),
        error: (message: unknown) => log.error(String(message)),
        deprecate: (method: string, alternative: string) =>
          log.warn(`${method} is deprecated, use ${alternative}`),
        debug: () => undefined,
      },
    }),
    connection: connectionSettings(databaseUrl, limits),
    ...(limits && {
      acquireConnectionTimeout: limits.statementTimeoutMs + SILENT_SOCKET_MARGIN_MS,
    }),
    pool: {
      min: 0,
      max: poolMax,
      ...(limits && {
        afterCreate: (client: PooledClient, done: (error: Error | null, client: PooledClient) => void) => {
          retireWhenSilent(client);
          done(null, client);
        },
      }),
    },
    migrations: { migrationSource, tableName: 'knex_migrations' },
  });
}

/** Creates the database named in the URL when it does not exist (connecting to `postgres` to do so). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  // The pool's connect timeout and keepalive: an unreachable host fails in seconds, not at the kernel's TCP timeout.
  const admin = new pg.Client(connectionSettings(url.toString()));
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
}

export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest()) as [number, string[]];
  return applied;
}

export { isDataError, isDatabaseUnavailable } from '../database-errors.js';
