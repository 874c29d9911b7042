/**
 * Payouts as PostgreSQL renders them (`payoutResourceSql`: a list page's, a read by id's) against the same payouts
 * read whole and rendered by the API's own function (`toPayoutResource`): equal, key for key and in the same order,
 * for payouts in every position of the machine, every currency at the edges of its amounts, recipients and
 * descriptions with text JSON has to escape, timestamps at every kind of sub-millisecond, deleted ones, every role,
 * every filter, with a key proven in the statement. Real PostgreSQL, a database of its own.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { MINOR_DIGITS } from '../../../src/domain/currency.js';
import { Unauthenticated, ValueRejected } from '../../../src/domain/errors.js';
import type { PayoutListFilter } from '../../../src/domain/ports.js';
import type { KeyProof, Role } from '../../../src/domain/principal.js';
import type { PayoutResource } from '../../../src/domain/payout-resource.js';
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
  let deleted = 0;
  const KEY_HASH = 'a'.repeat(64);

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
            status === 'cancelled' && n % 2 === 0 ? TIMES[n % TIMES.length]! : null,
          ]);
          if (status === 'cancelled' && n % 2 === 0) deleted += 1;
          n += 1;
        }
      }
    }
    for (const row of values) {
      await db.raw(
        `INSERT INTO payouts (id, client_id, amount_minor, currency, recipient, status, stage, snapshot,
           machine_version, version, description, failure_code, failure_message, created_at, updated_at, deleted_at)
         VALUES (?, ?, ?::bigint, ?, ?::jsonb, ?, ?, ?::jsonb, 2, ?, ?, ?, ?, ?::timestamptz, ?::timestamptz,
           ?::timestamptz)`,
        row,
      );
    }
    rows = values.length;
    await db.raw(
      `INSERT INTO api_keys (id, client_id, role, key_hash, key_prefix) VALUES (gen_random_uuid(), ?, 'client', ?, 'pk_test')`,
      [clientId, KEY_HASH],
    );
  });
  after(async () => {
    await db.destroy();
    await dropTestDatabase(name);
  });

  /** The resource `toPayoutResource` writes of the payout read whole by id (its last error from its snapshot). */
  async function expectedResource(store: PgPayoutStore, id: string, role: Role): Promise<PayoutResource> {
    const payout = await store.find({ clientId, id, includeDeleted: true });
    return JSON.parse(
      JSON.stringify(toPayoutResource(payout!, { clientId, role, actor: 'test' })),
    ) as PayoutResource;
  }

  function expectSame(rendered: string, expected: PayoutResource, id: string): void {
    const actual = JSON.parse(rendered) as Record<string, unknown>;
    expect(actual, id).to.deep.equal(expected);
    expect(Object.keys(actual), id).to.deep.equal(Object.keys(expected));
  }

  /** Every page of the list under `filter`, rendered, against the summaries' pages: the same payouts, in order. */
  async function compareList(
    role: Role,
    filter: Omit<PayoutListFilter, 'limit'>,
    proof?: KeyProof,
  ): Promise<number> {
    const store = new PgPayoutStore(db);
    let compared = 0;
    let after: string | undefined;
    for (;;) {
      const page = { ...filter, limit: 100, after };
      const [summaries, rendered] = await Promise.all([
        store.list(clientId, page, proof),
        store.listResources(clientId, role, page, proof),
      ]);
      expect(rendered.resources).to.have.length(summaries.payouts.length);
      expect([rendered.last, rendered.hasMore]).to.deep.equal([summaries.last, summaries.hasMore]);
      await Promise.all(
        summaries.payouts.map(async (summary, i) =>
          expectSame(rendered.resources[i]!, await expectedResource(store, summary.id, role), summary.id),
        ),
      );
      compared += summaries.payouts.length;
      if (!rendered.hasMore) return compared;
      after = rendered.last!;
    }
  }

  for (const role of ROLES) {
    it(`lists what toPayoutResource writes, for the role ${role}, filtered or not`, async () => {
      const listed = await compareList(role, {});
      expect(listed).to.equal(rows - deleted);
      for (const filter of [
        { status: 'failed' as const },
        { stage: 'needs_attention' as const },
        { currency: 'JPY' },
        { createdGte: new Date('2026-01-01T00:00:00Z') },
      ]) {
        expect(await compareList(role, filter), JSON.stringify(filter)).to.be.greaterThan(0);
      }
    });

    it(`reads by id what toPayoutResource writes, deleted payouts included, for the role ${role}`, async () => {
      const store = new PgPayoutStore(db);
      const { rows: ids } = await db.raw<{ rows: Array<{ id: string }> }>(
        'SELECT id FROM payouts WHERE client_id = ?',
        [clientId],
      );
      expect(ids).to.have.length(rows);
      await Promise.all(
        ids.map(async ({ id }) => {
          const rendered = await store.findResource({ clientId, id, includeDeleted: true }, role);
          const expected = await expectedResource(store, id, role);
          expectSame(rendered!.resource, expected, id);
          expect(rendered!.version, id).to.equal(expected.version);
        }),
      );
      const nobody = { clientId, id: randomUUID(), includeDeleted: true };
      expect(await store.findResource(nobody, role)).to.equal(null);
    });
  }

  it('lists and reads the same with a remembered key proven in the statement, and refuses a key not active', async () => {
    const store = new PgPayoutStore(db);
    const proof: KeyProof = { keyHash: KEY_HASH, role: 'client' };
    expect(await compareList('client', {}, proof)).to.equal(rows - deleted);
    const { rows: some } = await db.raw<{ rows: Array<{ id: string }> }>(
      'SELECT id FROM payouts WHERE client_id = ? AND deleted_at IS NULL LIMIT 20',
      [clientId],
    );
    for (const { id } of some) {
      const rendered = await store.findResource({ clientId, id, includeDeleted: false, proof }, 'client');
      expectSame(rendered!.resource, await expectedResource(store, id, 'client'), id);
    }
    const revoked: KeyProof = { keyHash: 'b'.repeat(64), role: 'client' };
    const refusals = await Promise.all([
      store.listResources(clientId, 'client', { limit: 5 }, revoked).catch((error: unknown) => error),
      store
        .findResource({ clientId, id: some[0]!.id, includeDeleted: false, proof: revoked }, 'client')
        .catch((error: unknown) => error),
    ]);
    for (const refusal of refusals) expect(refusal).to.be.instanceOf(Unauthenticated);
  });

  it('refuses a row in a currency it does not know, as reading it whole does: an error, not a bad request', async () => {
    const store = new PgPayoutStore(db);
    const other = randomUUID();
    const id = randomUUID();
    await db.raw('INSERT INTO clients (id, name) VALUES (?, ?)', [other, 'unknown-currency']);
    await db.raw(
      `INSERT INTO payouts (id, client_id, amount_minor, currency, recipient, status, stage, snapshot, machine_version)
       VALUES (?, ?, 100, 'XXX', ?::jsonb, 'created', 'queued', '{"value":{"created":"queued"},"context":{}}', 2)`,
      [id, other, JSON.stringify({ type: 'iban', iban: IBANS.DE, bic: null, holder_name: 'X' })],
    );
    const read = { clientId: other, id, includeDeleted: false };
    const outcomes = await Promise.all([
      store.find(read).catch((error: unknown) => error),
      store.findResource(read, 'client').catch((error: unknown) => error),
      store.listResources(other, 'client', { limit: 5 }).catch((error: unknown) => error),
    ]);
    for (const outcome of outcomes) {
      expect(outcome).to.be.instanceOf(Error).and.not.be.instanceOf(ValueRejected);
      expect((outcome as Error).message).to.match(/unknown currency XXX/);
    }
  });

  it('holds rows in every position and currency, with and without a last error, some deleted', async () => {
    const {
      rows: [cover],
    } = await db.raw<{
      rows: Array<{
        positions: number;
        currencies: number;
        errors: number;
        nulls: number;
        missing: number;
        deleted: number;
      }>;
    }>(
      `SELECT count(DISTINCT (status, stage))::int AS positions, count(DISTINCT currency)::int AS currencies,
              count(*) FILTER (WHERE jsonb_typeof(snapshot->'context'->'last_error') = 'object')::int AS errors,
              count(*) FILTER (WHERE jsonb_typeof(snapshot->'context'->'last_error') = 'null')::int AS nulls,
              count(*) FILTER (WHERE snapshot->'context'->'last_error' IS NULL)::int AS missing,
              count(*) FILTER (WHERE deleted_at IS NOT NULL)::int AS deleted
         FROM payouts WHERE client_id = ?`,
      [clientId],
    );
    expect(cover).to.include({
      positions: PAYOUT_POSITIONS.length,
      currencies: Object.keys(MINOR_DIGITS).length,
      deleted,
    });
    for (const kind of ['errors', 'nulls', 'missing', 'deleted'] as const) {
      expect(cover![kind], kind).to.be.greaterThan(0);
    }
  });
});
