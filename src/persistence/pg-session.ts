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
 * schema change (0A000 raised by plan revalidation, "cached plan must not change result type"), or the server no
 * longer knows it (26000, a pooler's `DISCARD ALL`). node-postgres would send the name again and again on that
 * connection. Both are raised before the statement runs: nothing was written.
 */
function isStaleStatement(error: unknown): boolean {
  const { code, routine } = (error ?? {}) as { code?: unknown; routine?: unknown };
  return code === '26000' || (code === '0A000' && routine === 'RevalidateCachedQuery');
}

/** Enough tries to get past every pooled connection that prepared the statement before the change. */
function staleStatementTries(db: Knex): number {
  const poolMax = (db.client as { config?: { pool?: { max?: number } } }).config?.pool?.max ?? 10;
  return poolMax + 1;
}

/**
 * Runs `work` on one pooled connection and gives the connection back however `work` ends. A connection whose
 * named statement went stale is retired (knex's own mark for a broken connection, so its pool destroys it
 * instead of lending it again) and `work` runs again on another one, which prepares the statement afresh.
 */
export async function withConnection<T>(db: Knex, work: (client: PgClient) => Promise<T>): Promise<T> {
  const owner = db.client as PoolOwner;
  const tries = staleStatementTries(db);
  for (let attempt = 1; ; attempt += 1) {
    const client = await owner.acquireConnection();
    try {
      return await work(client);
    } catch (error) {
      if (!isStaleStatement(error)) throw error;
      (client as PgClient & { __knex__disposed?: unknown }).__knex__disposed = error;
      if (attempt >= tries) throw error;
    } finally {
      await owner.releaseConnection(client);
    }
  }
}
