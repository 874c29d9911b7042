import { authenticate, issueApiKey } from '../../support/fixtures.js';
import { expect } from 'chai';
import type { Db } from '../../../src/persistence/db.js';
import { createDb } from '../../../src/persistence/db.js';
import { createTestDatabase, dropTestDatabase } from '../../support/database.js';

describe('named statements on pooled connections (real PostgreSQL)', () => {
  // Its own database: the test changes a column type, which no other test may see.
  let name: string;
  let db: Db;

  before(async () => {
    const created = await createTestDatabase();
    name = created.name;
    // knex warns when it retires a connection; here that is the expected outcome.
    const quiet = { warn: () => undefined, error: () => undefined };
    db = createDb(created.url, 3, quiet);
  });
  after(async () => {
    await db.destroy();
    await dropTestDatabase(name);
  });

  it('keeps answering after a migration makes the prepared key lookup stale', async () => {
    const issued = await issueApiKey(db, 'stale-statements', 'client');
    // Prepare the lookup on every connection of the pool.
    await Promise.all(Array.from({ length: 3 }, () => authenticate(db, issued.key)));
    // A result column changes type: PostgreSQL now refuses the prepared plan (0A000) on those connections.
    await db.raw('ALTER TABLE api_keys ALTER COLUMN role TYPE varchar(16)');
    const principals = await Promise.all(Array.from({ length: 3 }, () => authenticate(db, issued.key)));
    expect(principals.map((principal) => principal.role)).to.deep.equal(['client', 'client', 'client']);
  });
});

/**
 * `withConnection` reaches into knex's client: its pool's `acquireConnection`/`releaseConnection`, the pool size in
 * its config, and the `__knex__disposed` mark that makes the pool destroy a connection instead of lending it again.
 * None of that is public API: these tests fail loudly on a knex version that changes it.
 */
describe('knex internals that pg-session relies on (pinned)', () => {
  let db: Db;
  before(() => {
    db = createDb(process.env.TEST_DATABASE_URL!, 2, { warn: () => undefined, error: () => undefined });
  });
  after(() => db.destroy());

  it('lends and takes back raw node-postgres connections from its pool, and exposes the pool size', async () => {
    const client = db.client as {
      acquireConnection(): Promise<{ query(text: string): Promise<{ rows: unknown[] }> }>;
      releaseConnection(connection: unknown): Promise<void>;
      config: { pool?: { max?: number } };
    };
    expect(client.config.pool?.max).to.equal(2);
    const connection = await client.acquireConnection();
    expect((await connection.query('SELECT 1 AS one')).rows).to.deep.equal([{ one: 1 }]);
    await client.releaseConnection(connection);
  });

  it('destroys a connection marked __knex__disposed when it is released, instead of lending it again', async () => {
    const client = db.client as {
      acquireConnection(): Promise<object>;
      releaseConnection(connection: object): Promise<void>;
      pool: { numUsed(): number; numFree(): number };
    };
    const marked = await client.acquireConnection();
    (marked as { __knex__disposed?: unknown }).__knex__disposed = new Error('retired in a test');
    await client.releaseConnection(marked);
    // A healthy connection goes back to the free list; the marked one must not.
    const next = await client.acquireConnection();
    expect(next).to.not.equal(marked);
    await client.releaseConnection(next);
  });
});
