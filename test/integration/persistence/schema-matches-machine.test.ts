/**
 * The migrations repeat the machine's statuses and stages in CHECK constraints (a bug above cannot store a state
 * the machine does not have). Migrations are frozen history, so they hold literals: this test holds them equal to
 * the machine, read from the live schema.
 */
import { expect } from 'chai';
import type { Db } from '../../../src/persistence/db.js';
import {
  PAYOUT_STAGES,
  PAYOUT_STATUSES,
  UNFINISHED_STATUSES,
} from '../../../src/machines/payout-lifecycle.js';
import { openTestDb } from '../../support/database.js';

/** The quoted words of a CHECK constraint of `payouts`, by constraint name. */
async function checkLiterals(db: Db, name: string): Promise<string[]> {
  const result = await db.raw<{ rows: Array<{ definition: string }> }>(
    `SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint
      WHERE conrelid = 'payouts'::regclass AND conname = ?`,
    [name],
  );
  expect(result.rows, name).to.have.length(1);
  return [...result.rows[0]!.definition.matchAll(/'([a-z_]+)'::text/g)].map((match) => match[1]!);
}

describe('the schema agrees with the machine', () => {
  let db: Db;
  before(() => {
    db = openTestDb(1);
  });
  after(() => db.destroy());

  it('payouts.status admits exactly the machine’s statuses', async () => {
    expect(await checkLiterals(db, 'payouts_status_check')).to.have.members([...PAYOUT_STATUSES]);
  });

  it('payouts.stage admits exactly the machine’s stages, and only unfinished payouts have one', async () => {
    expect(await checkLiterals(db, 'payouts_stage_check')).to.have.members([...PAYOUT_STAGES]);
    expect(await checkLiterals(db, 'payouts_stage_iff_unfinished')).to.have.members([...UNFINISHED_STATUSES]);
  });
});
