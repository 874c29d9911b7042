import type { Knex } from 'knex';

/**
 * `payouts.seq` loses its table-wide unique index (`payouts_seq_key`). Every read of payouts is scoped by client,
 * and a client's page is read through `payouts_client_page_idx (client_id, seq DESC)`; the table-wide index only
 * gave the planner a second way to produce `ORDER BY seq DESC`, which it took for a client whose payouts are
 * mostly old (walking the newest payouts of every client until 21 of that client's turned up: 48 ms for a page on
 * 300,000 payouts, against 0.07 ms through the client's index; `make bench-scale`). It also cost every create an
 * index entry. `seq` stays unique by construction: only its sequence writes it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE payouts DROP CONSTRAINT payouts_seq_key;`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE payouts ADD CONSTRAINT payouts_seq_key UNIQUE (seq);`);
}
