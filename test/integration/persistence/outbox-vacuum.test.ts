/**
 * The outbox's vacuum settings (migration 20261202000001): a vacuum of a large outbox whose few dead rows sit on its
 * last pages still cleans the indexes of unsent rows, so the relay's claim stops reading through the entries the
 * sent rows left there. Real PostgreSQL, a database of its own (the test fills and vacuums the outbox).
 */
import { expect } from 'chai';
import type { Db } from '../../../src/persistence/db.js';
import { createDb } from '../../../src/persistence/db.js';
import { CLAIMABLE_ROWS } from '../../../src/persistence/outbox-repository.js';
import { createTestDatabase, dropTestDatabase } from '../../support/database.js';

/** Shared buffers the relay's claim reads to find its rows (`CLAIMABLE_ROWS`), planning excluded. */
async function claimBuffers(db: Db): Promise<number> {
  const result = await db.raw<{ rows: Array<{ 'QUERY PLAN': Array<{ Plan: Record<string, number> }> }> }>(
    `EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${CLAIMABLE_ROWS}`,
    [100],
  );
  const plan = result.rows[0]!['QUERY PLAN'][0]!.Plan;
  return plan['Shared Hit Blocks']! + plan['Shared Read Blocks']!;
}

async function addRows(db: Db, count: number, sent: boolean): Promise<void> {
  await db.raw(
    `INSERT INTO outbox (id, topic, payload, published_at)
     SELECT gen_random_uuid(), 'payout.process', '{}', ${sent ? 'now()' : 'NULL'} FROM generate_series(1, ?::integer)`,
    [count],
  );
}

describe('outbox vacuum settings (real PostgreSQL)', function () {
  this.timeout(120_000);
  let name: string;
  let db: Db;

  before(async () => {
    const created = await createTestDatabase();
    name = created.name;
    db = createDb(created.url, 2);
    // Only the vacuums the test runs: an autovacuum or autoanalyze running beside the UPDATE below (on a server
    // with autovacuum on) could hold back what the test's VACUUM may remove.
    await db.raw('ALTER TABLE outbox SET (autovacuum_enabled = off)');
  });
  after(async () => {
    await db.destroy();
    await dropTestDatabase(name);
  });

  it('are set on the outbox', async () => {
    const { rows } = await db.raw<{ rows: Array<{ reloptions: string[] }> }>(
      `SELECT reloptions FROM pg_class WHERE oid = 'outbox'::regclass`,
    );
    expect(rows[0]!.reloptions).to.include.members([
      'autovacuum_vacuum_scale_factor=0',
      'autovacuum_vacuum_threshold=50000',
      'vacuum_index_cleanup=on',
    ]);
  });

  it('let a vacuum of a large outbox clear the entries sent rows left where the relay claims', async () => {
    // A large outbox of sent rows, vacuumed: the claim finds nothing to read through.
    await addRows(db, 400_000, true);
    await db.raw('VACUUM outbox');
    const clean = await claimBuffers(db);
    // 6,000 rows inserted unsent, then sent: on fewer than 2 % of the outbox's pages, where PostgreSQL's default
    // vacuum skips the indexes.
    await addRows(db, 6_000, false);
    await db.raw('UPDATE outbox SET published_at = now() WHERE published_at IS NULL');
    await claimBuffers(db); // the first scan marks the dead entries; the next reads past them
    const bloated = await claimBuffers(db);
    expect(bloated, 'the sent rows leave entries the claim reads through').to.be.greaterThan(clean + 10);
    await db.raw('VACUUM outbox');
    const vacuumed = await claimBuffers(db);
    expect(vacuumed, `clean ${clean}, before the vacuum ${bloated}`).to.be.at.most(clean + 2);
  });
});
