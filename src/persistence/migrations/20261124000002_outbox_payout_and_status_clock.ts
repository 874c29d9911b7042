import type { Knex } from 'knex';

/**
 * - `outbox.payout_id`: the sweeper re-drives a payout only when no unsent message for it is waiting, so a broker
 *   outage does not pile up one more message per payout every sweep.
 * - `payouts.status_changed_at`: when the payout entered its current status. The stuck gauge counts from here, so
 *   a description edit (which bumps `updated_at`) cannot hide a stuck payout.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE outbox ADD COLUMN payout_id uuid;
    UPDATE outbox SET payout_id = (payload->>'payout_id')::uuid
     WHERE payload->>'payout_id' IS NOT NULL AND published_at IS NULL;
    CREATE INDEX outbox_unpublished_payout_idx ON outbox (payout_id) WHERE published_at IS NULL;

    ALTER TABLE payouts ADD COLUMN status_changed_at timestamptz;
    UPDATE payouts SET status_changed_at = updated_at;
    ALTER TABLE payouts ALTER COLUMN status_changed_at SET DEFAULT now(), ALTER COLUMN status_changed_at SET NOT NULL;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE payouts DROP COLUMN status_changed_at;
    DROP INDEX outbox_unpublished_payout_idx;
    ALTER TABLE outbox DROP COLUMN payout_id;
  `);
}
