/**
 * Plain node-postgres on a connection of knex's pool, for the statements every create runs: knex's query
 * builder and transaction machinery cost more CPU per statement than PostgreSQL spends executing it. The
 * connection comes from knex's pool, so `DATABASE_POOL_MAX` still bounds the process, and a connection that
 * fails is dropped by that pool's own check (knex marks it when node-postgres reports the error).
 */
import type { Knex } from 'knex';
import type pg from 'pg';

export type PgClient = pg.ClientBase;

/** The part of knex's client used here: its pool's checkout and return. */
interface PoolOwner {
  acquireConnection(): Promise<PgClient>;
  releaseConnection(connection: PgClient): Promise<void>;
}

/**
 * A named statement that this connection can no longer run: its cached plan no longer fits the table after a
 * schema change (0A000, "cached plan must not change result type"), or the server no longer knows it (26000, a
 * pooler's `DISCARD ALL`). node-postgres would send the name again and again on that connection.
 */
const STALE_STATEMENT_SQLSTATES = new Set(['0A000', '26000']);

/** Enough tries to get past every pooled connection that prepared the statement before a migration. */
const STALE_STATEMENT_TRIES = 20;

function isStaleStatement(error: unknown): boolean {
  return STALE_STATEMENT_SQLSTATES.has((error as { code?: unknown } | null)?.code as string);
}

/**
 * Runs `work` on one pooled connection and gives the connection back however `work` ends. A connection whose
 * named statement went stale is retired (knex's own mark for a broken connection, so its pool destroys it
 * instead of lending it again) and `work` runs again on another one, which prepares the statement afresh.
 */
export async function withConnection<T>(db: Knex, work: (client: PgClient) => Promise<T>): Promise<T> {
  const owner = db.client as PoolOwner;
  for (let attempt = 1; ; attempt += 1) {
    const client = await owner.acquireConnection();
    try {
      return await work(client);
    } catch (error) {
      if (!isStaleStatement(error) || attempt >= STALE_STATEMENT_TRIES) throw error;
      (client as PgClient & { __knex__disposed?: unknown }).__knex__disposed = error;
    } finally {
      await owner.releaseConnection(client);
    }
  }
}
