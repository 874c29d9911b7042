import { expect } from 'chai';
import { classifyError } from '../../src/consumers/retry-policy.js';
import { toProblem } from '../../src/http/problem.js';
import { translated } from '../../src/persistence/payout-store.js';
import { isDataError, isDatabaseUnavailable } from '../../src/database-errors.js';

function withCode(message: string, code?: string, name?: string): Error {
  const error = new Error(message) as Error & { code?: string };
  if (code !== undefined) error.code = code;
  if (name !== undefined) error.name = name;
  return error;
}

/** The problem the API answers for a database error thrown by the store. */
async function problemOf(error: Error) {
  const thrown = await translated(() => Promise.reject(error)).catch((caught: unknown) => caught);
  return toProblem(thrown, 'body');
}

describe('database errors: one classification for the API and the worker', () => {
  const unavailable = [
    withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
    withCode('Connection terminated unexpectedly'),
    withCode('terminating connection due to administrator command', '57P01'),
    withCode('sorry, too many clients already', '53300'),
    withCode('Knex: Timeout acquiring a connection.', undefined, 'KnexTimeoutError'),
  ];

  for (const error of unavailable) {
    it(`"${error.message}" is the database being away: 503 over HTTP, a wait for the worker`, async () => {
      expect(isDatabaseUnavailable(error)).to.equal(true);
      expect((await problemOf(error)).status).to.equal(503);
      const verdict = classifyError(error);
      expect(verdict.transient && !verdict.rule.spendsAttempt).to.equal(true);
    });
  }

  it('a data error is the request, not the database: 400, never 503 or 500', async () => {
    const error = withCode('invalid byte sequence for encoding "UTF8": 0x00', '22021');
    expect(isDataError(error)).to.equal(true);
    expect(isDatabaseUnavailable(error)).to.equal(false);
    expect((await problemOf(error)).status).to.equal(400);
  });

  it('anything else is a 500 that says nothing of its cause', async () => {
    const problem = await problemOf(withCode('relation "payouts" does not exist', '42P01'));
    expect(problem.status).to.equal(500);
    expect(problem.detail).to.not.include('payouts');
  });
});
