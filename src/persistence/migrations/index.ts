/**
 * Every migration, in order. Listed explicitly (not read from a folder) so that the same names are recorded
 * whether the code runs from TypeScript sources or from the compiled `dist/`: names carry no extension.
 */
import type { Knex } from 'knex';
import * as initialSchema from './20261124000001_initial_schema.js';
import * as outboxPayoutAndStatusClock from './20261124000002_outbox_payout_and_status_clock.js';
import * as payoutStageAndCommands from './20261201000001_payout_stage_and_commands.js';
import * as apiKeyUseAndExpiry from './20261201000003_api_key_use_and_expiry.js';
import * as webhooks from './20261201000004_webhooks.js';
import * as consoleSessions from './20261201000005_console_sessions.js';
import * as payoutsListIndexes from './20261201000006_payouts_list_indexes.js';
import * as outboxVacuum from './20261202000001_outbox_vacuum.js';
import * as payoutsCurrencyPageIndex from './20261202000002_payouts_currency_page_index.js';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
  /** `{ transaction: false }` runs the migration outside a transaction (knex reads it). */
  config?: { transaction?: boolean };
}

const MIGRATIONS: ReadonlyArray<[name: string, migration: Migration]> = [
  ['20261124000001_initial_schema', initialSchema],
  ['20261124000002_outbox_payout_and_status_clock', outboxPayoutAndStatusClock],
  ['20261201000001_payout_stage_and_commands', payoutStageAndCommands],
  ['20261201000003_api_key_use_and_expiry', apiKeyUseAndExpiry],
  ['20261201000004_webhooks', webhooks],
  ['20261201000005_console_sessions', consoleSessions],
  ['20261201000006_payouts_list_indexes', payoutsListIndexes],
  ['20261202000001_outbox_vacuum', outboxVacuum],
  ['20261202000002_payouts_currency_page_index', payoutsCurrencyPageIndex],
];

export const migrationSource: Knex.MigrationSource<string> = {
  getMigrations: () => Promise.resolve(MIGRATIONS.map(([name]) => name)),
  getMigrationName: (name) => name,
  getMigration: (name) => {
    const found = MIGRATIONS.find(([candidate]) => candidate === name);
    if (!found) throw new Error(`unknown migration ${name}`);
    return Promise.resolve(found[1]);
  },
};
