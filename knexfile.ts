/**
 * Knex CLI configuration (`NODE_OPTIONS='--import tsx' npx knex migrate:status`). The service itself migrates
 * with `node dist/src/main.js migrate` (or `make migrate`), which uses the same migration source.
 */
import { loadConfig } from './src/config.js';
import { migrationSource } from './src/persistence/migrations/index.js';

const config = loadConfig();

export default {
  client: 'pg',
  connection: config.databaseUrl,
  pool: { min: 0, max: 2 },
  migrations: { migrationSource, tableName: 'knex_migrations' },
};
