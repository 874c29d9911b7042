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

/** Runs `work` on one pooled connection and gives the connection back however `work` ends. */
export async function withConnection<T>(db: Knex, work: (client: PgClient) => Promise<T>): Promise<T> {
  const owner = db.client as PoolOwner;
  const client = await owner.acquireConnection();
  try {
    return await work(client);
  } finally {
    await owner.releaseConnection(client);
  }
}
