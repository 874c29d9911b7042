/**
 * A fresh PostgreSQL database per test run, never the developer's own: created and migrated by the mocha
 * global setup, dropped by the global teardown. Tests share it and isolate themselves by client (every test
 * creates its own clients, so no test sees another's payouts).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig } from '../../src/config.js';
import type { TestContext as AppContext } from './context.js';
import { createTestContext as createContext } from './context.js';
import { createDb, migrateLatest } from '../../src/persistence/db.js';
import type { Db } from '../../src/persistence/db.js';

export const ADMIN_URL = process.env.TEST_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url)
    throw new Error(
      'TEST_DATABASE_URL is not set: run integration tests through mocha (test/support/global.ts)',
    );
  return url;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(): Promise<{ name: string; url: string }> {
  const name = `payouts_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const db = createDb(url.toString(), 2);
  try {
    await migrateLatest(db);
  } finally {
    await db.destroy();
  }
  return { name, url: url.toString() };
}

export async function dropTestDatabase(name: string): Promise<void> {
  await admin((client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
}

/** A small pool on the run's database (the server allows 100 connections for everybody). */
export function openTestDb(poolMax = 5): Db {
  return createDb(testDatabaseUrl(), poolMax);
}

/** The app's context on the run's database with its own pool and logs off: for tests of the service itself. */
export function serviceTestContext(): AppContext {
  const config = loadConfig({ DATABASE_URL: testDatabaseUrl(), LOG_LEVEL: 'silent' });
  return createContext(config, { db: openTestDb(10) });
}
