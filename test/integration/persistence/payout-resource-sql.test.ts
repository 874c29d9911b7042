/**
 * Payouts as PostgreSQL renders them (`payoutResourceSql`: a list page's, a read by id's) against the same rows
 * rendered by the API's own function (`toPayoutResource`): equal, key for key and in the same order, for payouts in every position
 * of the machine, every currency at the edges of its amounts, recipients and descriptions with text JSON has to
 * escape, timestamps at every kind of sub-millisecond, and every role. Real PostgreSQL, a database of its own.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { MINOR_DIGITS } from '../../../src/domain/currency.js';
import { toPayoutResource } from '../../../src/domain/payout-resource.js';
import { ROLES } from '../../../src/machines/payout.machine.js';
import { PAYOUT_POSITIONS } from '../../../src/machines/payout-lifecycle.js';
import type { Db } from '../../../src/persistence/db.js';
import { createDb } from '../../../src/persistence/db.js';
import { PgPayoutStore } from '../../../src/persistence/payout-store.js';
import { createTestDatabase, dropTestDatabase } from '../../support/database.js';
import { IBANS } from '../../support/fixtures.js';

/** Text a JSON writer must escape or keep whole: quotes, backslashes, controls, separators, astral characters. */
const AWKWARD_TEXT = [
  'plain',
  'quote " and backslash \\ and slash /',
  'new\nline, tab\t, return\r, form\f, back\b, bell\u0007, unit\u001f, delete\u007f',
  'line\u2028and paragraph\u2029separators',
  'Zoë, Łukasz, 山田太郎, emoji 💸, combining e\u0301',
  '</script><b>&amp;</b>',
];

/** An amount's edges in minor units: the smallest, one short of a major unit, a major unit, and the largest. */
const MINOR_AMOUNTS = (digits: number): bigint[] => [
  1n,
  10n ** BigInt(digits) - 1n || 7n,
  10n ** BigInt(digits),
  123456789n,
  9223372036854775807n,
];

/** Sub-millisecond parts that rounding, rather than truncating, would move to another millisecond. */
const TIMES = [
  '2026-12-02 14:24:10+00',
  '2026-12-02 14:24:10.248999+00',
  '2026-12-02 14:24:10.9995+00',
  '2026-12-02 23:59:59.999999+00',
  '1999-01-01 00:00:00.000001+00',
  '2026-03-29 01:30:00.5+02',
];

const LAST_ERRORS = [undefined, null, { code: 'provider_timeout', message: 'No answer in 10 s', attempt: 3 }];

describe('payouts rendered by PostgreSQL (real PostgreSQL)', function () {
  this.timeout(60_000);
  let name: string;
  let db: Db;
  const clientId = randomUUID();
  let rows = 0;

  before(async () => {
    const created = await createTestDatabase();
    name = created.name;
    db = createDb(created.url, 2);
    await db.raw('INSERT INTO clients (id, name) VALUES (?, ?)', [clientId, 'rendering']);
    const values: Array<Array<string | number | null>> = [];
    const currencies = Object.entries(MINOR_DIGITS);
    let n = 0;
    for (const { status, stage } of PAYOUT_POSITIONS) {
      for (const [currency, digits] of currencies) {
        for (const minor of MINOR_AMOUNTS(digits)) {
          const text = AWKWARD_TEXT[n % AWKWARD_TEXT.length]!;
          const lastError = LAST_ERRORS[n % LAST_ERRORS.length];
          const context = lastError === undefined ? {} : { last_error: lastError };
          values.push([
            randomUUID(),
            clientId,
            minor.toString(),
            currency,
            JSON.stringify({
              type: 'iban',
              iban: Object.values(IBANS)[n % Object.values(IBANS).length],
              bic: n % 2 === 0 ? null : 'DEUTDEFF500',
              holder_name: AWKWARD_TEXT[(n + 1) % AWKWARD_TEXT.length],
            }),
            status,
            stage,
            JSON.stringify({ value: stage === null ? status : { [status]: stage }, context }),
            (n % 7) + 1,
            n % 3 === 0 ? null : text,
            status === 'failed' ? 'provider_refused' : null,
            status === 'failed' ? (n % 2 === 0 ? null : text) : null,
            TIMES[n % TIMES.length]!,
            TIMES[(n + 1) % TIMES.length]!,
          ]);
          n += 1;
        }
      }
    }
    for (const row of values) {
      await db.raw(
        `INSERT INTO payouts (id, client_id, amount_minor, currency, recipient, status, stage, snapshot,
           machine_version, version, description, failure_code, failure_message, created_at, updated_at)
         VALUES (?, ?, ?::bigint, ?, ?::jsonb, ?, ?, ?::jsonb, 2, ?, ?, ?, ?, ?::timestamptz, ?::timestamptz)`,
        row,
      );
    }
    rows = values.length;
  });
  after(async () => {
    await db.destroy();
    await dropTestDatabase(name);
  });

  for (const role of ROLES) {
    it(`writes what toPayoutResource writes, for the role ${role}`, async () => {
      const store = new PgPayoutStore(db);
      const principal = { clientId, role, actor: 'test' };
      const compared: string[] = [];
      let after: string | undefined;
      for (;;) {
        const filter = { limit: 100, after };
        const [summaries, rendered] = await Promise.all([
          store.list(clientId, filter),
          store.listResources(clientId, role, filter),
        ]);
        expect(rendered.resources).to.have.length(summaries.payouts.length);
        expect([rendered.last, rendered.hasMore]).to.deep.equal([summaries.last, summaries.hasMore]);
        summaries.payouts.forEach((summary, i) => {
          const expected = toPayoutResource(summary, principal);
          const actual = JSON.parse(rendered.resources[i]!) as Record<string, unknown>;
          expect(actual, summary.id).to.deep.equal(JSON.parse(JSON.stringify(expected)));
          expect(Object.keys(actual), summary.id).to.deep.equal(Object.keys(expected));
          compared.push(summary.id);
        });
        if (!rendered.hasMore) break;
        after = rendered.last!;
      }
      expect(compared).to.have.length(rows);
    });
  }

  for (const role of ROLES) {
    it(`writes what toPayoutResource writes of a payout read by id, for the role ${role}`, async () => {
      const store = new PgPayoutStore(db);
      const principal = { clientId, role, actor: 'test' };
      const { rows: ids } = await db.raw<{ rows: Array<{ id: string }> }>(
        'SELECT id FROM payouts WHERE client_id = ?',
        [clientId],
      );
      expect(ids).to.have.length(rows);
      await Promise.all(
        ids.map(async ({ id }) => {
          const read = { clientId, id, includeDeleted: false };
          const [payout, rendered] = await Promise.all([store.find(read), store.findResource(read, role)]);
          const expected = toPayoutResource(payout!, principal);
          const actual = JSON.parse(rendered!.resource) as Record<string, unknown>;
          expect(actual, id).to.deep.equal(JSON.parse(JSON.stringify(expected)));
          expect(Object.keys(actual), id).to.deep.equal(Object.keys(expected));
          expect(rendered!.version, id).to.equal(payout!.version);
        }),
      );
      expect(await store.findResource({ clientId, id: randomUUID(), includeDeleted: false }, role)).to.equal(
        null,
      );
    });
  }

  it('covers every position, currency and last error it claims to', () => {
    expect(rows).to.equal(PAYOUT_POSITIONS.length * Object.keys(MINOR_DIGITS).length * 5);
    expect(PAYOUT_POSITIONS.map(({ status }) => status)).to.include.members([
      'created',
      'processing',
      'completed',
      'failed',
      'cancelled',
    ]);
  });
});
