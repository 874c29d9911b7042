import type { Knex } from 'knex';

/**
 * API keys that say when they were last used and when they stop working.
 *
 * - `last_used_at`: touched at most once a minute per key by the process that authenticated with it, off the
 *   request's path; null until the key is first used.
 * - `expires_at`: optional; a key past it is refused like a revoked one.
 * - `key_prefix` of new keys holds the key's first 12 characters (`pk_live_` or `pk_op_` and random ones), so a
 *   listing tells keys of one client apart; older keys keep the 6–8 characters they were issued with.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz, ADD COLUMN expires_at timestamptz;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE api_keys DROP COLUMN expires_at, DROP COLUMN last_used_at;`);
}
