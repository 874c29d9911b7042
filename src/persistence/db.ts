import knexFactory from 'knex';
import type { Knex } from 'knex';
import pg from 'pg';
import { migrationSource } from './migrations/index.js';

export type Db = Knex;
export type Tx = Knex.Transaction;

/** Where knex's own warnings go (connection errors during an outage); the console when not given. */
export interface DbLog {
  warn(message: string): void;
  error(message: string): void;
}

export function createDb(databaseUrl: string, poolMax = 10, log?: DbLog): Db {
  return knexFactory({
    client: 'pg',
    ...(log && {
      log: {
        warn: (message: unknown) => log.warn(String(message)),
        error: (message: unknown) => log.error(String(message)),
        deprecate: (method: string, alternative: string) =>
          log.warn(`${method} is deprecated, use ${alternative}`),
        debug: () => undefined,
      },
    }),
    connection: { connectionString: databaseUrl, application_name: 'payouts' },
    pool: { min: 0, max: poolMax },
    migrations: { migrationSource, tableName: 'knex_migrations' },
  });
}

/** Creates the database named in the URL when it does not exist (connecting to `postgres` to do so). */
export async function ensureDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: url.toString() });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
  } finally {
    await admin.end();
  }
}

export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest()) as [number, string[]];
  return applied;
}

export { isDataError, isDatabaseUnavailable } from '../database-errors.js';
