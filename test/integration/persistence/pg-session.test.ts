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
