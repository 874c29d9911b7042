/**
 * Mocha global fixtures for integration tests: one migrated database for the whole run; with `RECORD_STATEMENTS`
 * (a file), the service's SQL statements are recorded for `make plans-check`.
 */
import { createTestDatabase, dropTestDatabase } from './database.js';
import { recordStatements } from './statements.js';

let created: string | undefined;
let recording: { save(): void } | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  const { name, url } = await createTestDatabase();
  created = name;
  process.env.TEST_DATABASE_URL = url;
  if (process.env.RECORD_STATEMENTS) recording = recordStatements(process.env.RECORD_STATEMENTS);
}

export async function mochaGlobalTeardown(): Promise<void> {
  recording?.save();
  if (created && !process.env.KEEP_TEST_DATABASE) await dropTestDatabase(created);
}
