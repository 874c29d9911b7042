/**
 * A client's list page keeps one plan: PostgreSQL plans a named statement for the values of its first five
 * executions, then keeps its generic plan unless that plan looks dearer than the ones it made for the values. A
 * page whose generic plan looked dearer was planned afresh at every execution, and planning a page's statement
 * (the resource's long expression included) costs PostgreSQL about as much as running it (bench/README.md). Each
 * page's statement runs here on the largest client of seeded payouts, then must have been executed with its generic
 * plan.
 * Real PostgreSQL, a database of its own (seeded and analyzed by scripts/seed.ts).
 */
import { expect } from 'chai';
import pg from 'pg';
import type { PayoutListFilter } from '../../../src/domain/ports.js';
import type { Db } from '../../../src/persistence/db.js';
import { createDb } from '../../../src/persistence/db.js';
import { KEY_REFUSED, listPayoutResourcePage } from '../../../src/persistence/payout-repository.js';
import { seed } from '../../../scripts/seed.js';
import { createTestDatabase, dropTestDatabase } from '../../support/database.js';

/** PostgreSQL's plan cache makes a plan for the values of the first five executions, then chooses. */
const EXECUTIONS = 8;

/**
 * The pages `make bench-scale` reads, each with values the largest client has many payouts in. Other pages may
 * still be planned at each execution: on this database, those filtered by `stage`, `status=failed`,
 * `currency=JPY` or a creation window were (bench/README.md).
 */
const FILTERS: Array<[label: string, filter: Omit<PayoutListFilter, 'limit'>]> = [
  ['no filter', {}],
  ['status=completed', { status: 'completed' }],
  ['currency=EUR', { currency: 'EUR' }],
];

describe("a list page's plan (real PostgreSQL, seeded payouts)", function () {
  this.timeout(120_000);
  let name: string;
  let db: Db;
  let bigClientId: string;

  before(async () => {
    const created = await createTestDatabase();
    name = created.name;
    const client = new pg.Client({ connectionString: created.url });
    await client.connect();
    try {
      await seed(client, { payouts: 40_000, clients: 100, bigClientShare: 0.2 });
      const { rows } = await client.query<{ id: string }>(
        `SELECT id FROM clients WHERE name = 'seed-000001'`,
      );
      bigClientId = rows[0]!.id;
    } finally {
      await client.end();
    }
    // One connection, so that every execution and the look into its prepared statements share it.
    db = createDb(created.url, 1);
  });
  after(async () => {
    await db.destroy();
    await dropTestDatabase(name);
  });

  /** How the connection's prepared statement `name` was planned over its executions. */
  async function plans(statement: string): Promise<{ generic: number; custom: number }> {
    const { rows } = await db.raw<{ rows: Array<{ generic_plans: string; custom_plans: string }> }>(
      'SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = ?',
      [statement],
    );
    expect(rows, `prepared statement ${statement}`).to.have.length(1);
    return { generic: Number(rows[0]!.generic_plans), custom: Number(rows[0]!.custom_plans) };
  }

  for (const [label, filter] of FILTERS) {
    const suffix = Object.keys(filter)
      .map((field) => `.${field}`)
      .join('');

    it(`keeps the generic plan of a page, ${label}`, async () => {
      for (let i = 0; i < EXECUTIONS; i += 1) {
        await listPayoutResourcePage(db, bigClientId, 'client', { limit: 20, ...filter });
      }
      expect(await plans(`payouts.list.resource${suffix}`)).to.deep.equal({
        generic: EXECUTIONS - 5,
        custom: 5,
      });
    });
  }

  it('keeps the generic plan of the page after a position', async () => {
    const first = await listPayoutResourcePage(db, bigClientId, 'client', { limit: 20 });
    if (first === KEY_REFUSED || first.last === null) throw new Error('the first page came back empty');
    const after = first.last;
    for (let i = 0; i < EXECUTIONS; i += 1) {
      await listPayoutResourcePage(db, bigClientId, 'client', { limit: 20, after });
    }
    expect(await plans('payouts.list.resource.after')).to.deep.equal({ generic: EXECUTIONS - 5, custom: 5 });
  });
});
