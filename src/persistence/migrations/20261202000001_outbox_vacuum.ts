import type { Knex } from 'knex';

/**
 * The outbox is a queue: every row is inserted unsent, updated once when sent, and deleted after the retention.
 * The update leaves a dead entry in the indexes of unsent rows (`outbox_unpublished_idx`,
 * `outbox_unpublished_payout_idx`), at their old end, where no insert comes to clean it up; every claim of the relay
 * reads through those entries until a vacuum removes them. Measured on PostgreSQL 15: a claim took 0.24 ms on a
 * vacuumed outbox, 1.9 ms after 10,000 rows were sent, 7 to 9.5 ms after 100,000 to 300,000 (bench/README.md).
 *
 * PostgreSQL's defaults vacuum a table when a fifth of it is dead — for an outbox holding a week of sent rows,
 * hundreds of thousands of dead entries — and, when the dead rows sit on fewer than 2 % of its pages (the sent rows
 * are the newest, on the last pages), skip the indexes altogether, leaving exactly these entries. So the outbox is
 * vacuumed after every 50,000 dead rows, whatever its size, always with its indexes.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE outbox SET (
      autovacuum_vacuum_scale_factor = 0,
      autovacuum_vacuum_threshold = 50000,
      vacuum_index_cleanup = on
    )
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(
    `ALTER TABLE outbox RESET (autovacuum_vacuum_scale_factor, autovacuum_vacuum_threshold, vacuum_index_cleanup)`,
  );
}
