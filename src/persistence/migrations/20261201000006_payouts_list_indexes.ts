import type { Knex } from 'knex';

/**
 * The indexes a client's list page is read through, as `make bench-scale` found them wanting on millions of rows:
 *
 * - `payouts.seq` loses its table-wide unique index (`payouts_seq_key`). Every read of payouts is scoped by client
 *   and reads `payouts_client_page_idx (client_id, seq DESC)`; the table-wide index only gave the planner a second
 *   way to produce `ORDER BY seq DESC`, which it took for a client whose payouts are mostly old: it walked the
 *   newest payouts of every client until 21 of that client's turned up (48 ms a page on 300,000 payouts, against
 *   0.07 ms through the client's index). It also cost every create an index entry. `seq` stays unique by
 *   construction: only its sequence writes it.
 * - `payouts_client_status_page_idx (client_id, status, seq DESC)`: a page filtered by a status the client has few
 *   payouts in (`failed`, or none at all) no longer reads the client's whole index to fill 21 rows.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE payouts DROP CONSTRAINT payouts_seq_key;
    CREATE INDEX payouts_client_status_page_idx ON payouts (client_id, status, seq DESC) WHERE deleted_at IS NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    DROP INDEX payouts_client_status_page_idx;
    ALTER TABLE payouts ADD CONSTRAINT payouts_seq_key UNIQUE (seq);
  `);
}
