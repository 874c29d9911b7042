/**
 * Errors in the logs (src/logger.ts): a real PostgreSQL error keeps what says what went wrong (its SQLSTATE
 * `code`, the constraint, the message) and loses what can quote the data: `detail` ("Failing row contains (…)",
 * which can hold the recipient), `where`, `hint`, `internalQuery`, and any `query`/`sql`/`bindings`/`parameters`
 * a library attaches — on the error itself and on every error it carries.
 */
import { expect } from 'chai';
import { createLogger } from '../../src/logger.js';
import type { Db } from '../../src/persistence/db.js';
import { openTestDb } from '../support/database.js';
import { IBANS } from '../support/fixtures.js';
import { LogCapture } from '../support/logs.js';

const HOLDER = 'Jane Quotable-Holder';

/** The keys no serialized error may have, at any depth. */
const DATA_KEYS = [
  'detail',
  'where',
  'hint',
  'internalQuery',
  'parameters',
  'parameter',
  'query',
  'sql',
  'bindings',
];

/** Every object under `value` (itself included) that has one of `keys`, as `path: key`. */
function keysFound(value: unknown, keys: string[], path = 'err'): string[] {
  if (value === null || typeof value !== 'object') return [];
  const found: string[] = [];
  for (const [key, item] of Object.entries(value)) {
    if (keys.includes(key)) found.push(`${path}.${key}`);
    found.push(...keysFound(item, keys, `${path}.${key}`));
  }
  return found;
}

describe('logger: errors', () => {
  let db: Db;
  let pgError: Error & { code?: string; detail?: string };

  before(async () => {
    db = openTestDb(1);
    // A CHECK violation on a row that holds a recipient: PostgreSQL's detail quotes the whole row.
    await db.transaction(async (tx) => {
      await tx.raw(
        'CREATE TEMP TABLE logged_recipients (iban text, holder_name text, amount int CHECK (amount > 0)) ON COMMIT DROP',
      );
      try {
        await tx('logged_recipients').insert({ iban: IBANS.DE, holder_name: HOLDER, amount: -1 });
        expect.fail('the insert should have been refused');
      } catch (error) {
        pgError = error as typeof pgError;
      }
    });
  });

  after(async () => {
    await db.destroy();
  });

  const logged = (fields: Record<string, unknown>): { line: string; record: Record<string, unknown> } => {
    const capture = new LogCapture();
    createLogger({ destination: capture }).error(fields, 'request failed');
    expect(capture.lines).to.have.length(1);
    return { line: capture.lines[0]!, record: capture.records()[0]! };
  };

  it('the error is what it should be: a check violation whose detail quotes the row', () => {
    expect(pgError.code).to.equal('23514');
    expect(pgError.detail).to.include('Failing row contains').and.include(IBANS.DE).and.include(HOLDER);
  });

  it('a PostgreSQL error keeps its code and constraint, never the failing row', () => {
    const { line, record } = logged({ err: pgError });
    const err = record.err as Record<string, unknown>;
    expect(err).to.include({ code: '23514', constraint: 'logged_recipients_amount_check' });
    expect(err.message).to.match(/violates check constraint/);
    expect(line).to.not.include('Failing row');
    expect(line).to.not.include(IBANS.DE);
    expect(line).to.not.include(HOLDER);
    expect(keysFound(err, DATA_KEYS)).to.deep.equal([]);
    // The error object itself is untouched: whoever catches it still sees everything.
    expect(pgError.detail).to.include('Failing row contains');
  });

  it('the same for a PostgreSQL error in the cause chain or carried by another error', () => {
    const wrapped = new Error('payout store failed', { cause: pgError });
    const carrier = Object.assign(new Error('objection-style wrapper'), { nativeError: pgError });
    const aggregate = new AggregateError([pgError], 'several failed');
    const plainCause = new Error('plain cause', {
      cause: { detail: `Failing row contains (${IBANS.DE})`, sql: 'insert …', bindings: [IBANS.DE] },
    });
    for (const err of [wrapped, carrier, aggregate, plainCause]) {
      const { line, record } = logged({ err });
      expect(line, err.message).to.not.include('Failing row');
      expect(line, err.message).to.not.include(IBANS.DE);
      expect(keysFound(record.err, DATA_KEYS), err.message).to.deep.equal([]);
    }
    const { record } = logged({ err: carrier });
    expect((record.err as { nativeError: Record<string, unknown> }).nativeError).to.include({
      code: '23514',
    });
  });

  it('drops the query a library attaches (sql, bindings, parameters, query) and keeps the rest', () => {
    const err = Object.assign(new Error('query failed'), {
      code: '57014',
      sql: `insert into payouts values ('${IBANS.DE}')`,
      bindings: [IBANS.DE, HOLDER],
      parameters: [IBANS.DE],
      parameter: IBANS.DE,
      query: `select '${IBANS.DE}'`,
      where: `PL/pgSQL function f(text) line 3 at RAISE: ${HOLDER}`,
      hint: `Perhaps you meant ${HOLDER}`,
      internalQuery: `select '${IBANS.DE}'`,
      attempt: 3,
    });
    const { line, record } = logged({ err });
    expect(record.err).to.include({ code: '57014', attempt: 3, message: 'query failed' });
    expect(keysFound(record.err, DATA_KEYS)).to.deep.equal([]);
    expect(line).to.not.include(IBANS.DE);
    expect(line).to.not.include(HOLDER);
  });
});
