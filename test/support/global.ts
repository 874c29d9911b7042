/** Mocha global fixtures for integration tests: one migrated database for the whole run. */
import { createTestDatabase, dropTestDatabase } from './database.js';

let created: string | undefined;

export async function mochaGlobalSetup(): Promise<void> {
  const { name, url } = await createTestDatabase();
  created = name;
  process.env.TEST_DATABASE_URL = url;
}

export async function mochaGlobalTeardown(): Promise<void> {
  if (created && !process.env.KEEP_TEST_DATABASE) await dropTestDatabase(created);
}
