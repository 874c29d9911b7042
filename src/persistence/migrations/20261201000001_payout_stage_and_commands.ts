import type { Knex } from 'knex';

/**
 * Machine version 2: the payout actor's stage and its commands.
 *
 * - `payouts.stage`: the machine's child state (which provider command is in flight, or `needs_attention`), null
 *   once final. A list filter, and what the sweeper and the attention gauge read. Rows of machine version 1 get the
 *   stage their snapshot is upgraded to when read (created → queued, processing → submitting); the snapshot itself
 *   is rewritten as version 2 by the payout's next change.
 * - `outbox.command_seq`: which of the payout's commands an outbox row carries, so that the change answering a
 *   command marks its waiting rows done in the same statement.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE payouts ADD COLUMN stage text
      CHECK (stage IN ('queued', 'needs_attention', 'submitting', 'voiding', 'confirming'));
    UPDATE payouts SET stage = CASE status WHEN 'created' THEN 'queued' WHEN 'processing' THEN 'submitting' END
     WHERE status IN ('created', 'processing');
    ALTER TABLE payouts ADD CONSTRAINT payouts_stage_iff_unfinished
      CHECK ((stage IS NULL) = (status NOT IN ('created', 'processing')));
    CREATE INDEX payouts_attention_idx ON payouts (status_changed_at) WHERE stage = 'needs_attention';

    ALTER TABLE outbox ADD COLUMN command_seq integer;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE outbox DROP COLUMN command_seq;
    DROP INDEX payouts_attention_idx;
    ALTER TABLE payouts DROP CONSTRAINT payouts_stage_iff_unfinished;
    ALTER TABLE payouts DROP COLUMN stage;
  `);
}
