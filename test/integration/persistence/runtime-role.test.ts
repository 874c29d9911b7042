/**
 * Least privilege: the role the running processes connect as may read and write rows, never change the schema.
 * `migrate` creates it (idempotently, also when several databases of the server do it at once) and grants it DML.
 */
import { expect } from 'chai';
import type { Db } from '../../../src/persistence/db.js';
import { createDb } from '../../../src/persistence/db.js';
import { ensureRuntimeRole } from '../../../src/persistence/runtime-role.js';
import { openTestDb, testDatabaseUrl } from '../../support/database.js';

const ROLE = 'payouts_app_test';

describe('the runtime database role', () => {
  let admin: Db;
  let app: Db;

  before(async () => {
    admin = openTestDb(3);
    // Three at once, as parallel test databases or replicas of `migrate` would: none fails.
    await Promise.all(Array.from({ length: 3 }, () => ensureRuntimeRole(admin, { name: ROLE })));
    const url = new URL(testDatabaseUrl());
    url.username = ROLE;
    url.password = '';
    app = createDb(url.toString(), 1, { warn: () => undefined, error: () => undefined });
  });
  after(async () => {
    await app?.destroy();
    await admin?.destroy();
  });

  it('reads and writes rows', async () => {
    const name = `least-privilege-${Date.now()}`;
    await app('clients').insert({ id: '0190a000-0000-7000-8000-00000000beef', name });
    expect(await app('clients').where({ name }).count({ count: '*' })).to.deep.equal([{ count: '1' }]);
    expect(await app('clients').where({ name }).delete()).to.equal(1);
  });

  for (const [what, sql] of [
    ['drop a table', 'DROP TABLE payouts'],
    ['alter a table', 'ALTER TABLE payouts ADD COLUMN x integer'],
    ['create a table', 'CREATE TABLE sneaky (id integer)'],
    ['truncate a table', 'TRUNCATE payout_events'],
  ] as const) {
    it(`cannot ${what}`, async () => {
      const error = await app.raw(sql).then(
        () => null,
        (caught: unknown) => caught as { code?: string },
      );
      expect(error?.code, sql).to.equal('42501');
    });
  }
});
