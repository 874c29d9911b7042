/**
 * A dead letter's `detail` header is listed by `dlq-list` and kept as long as the message: it says what went wrong
 * without the statement knex puts before a database error (its values can hold a recipient) and with account
 * numbers masked.
 */
import { expect } from 'chai';
import { deadLetterDetail } from '../../src/consumers/payout-consumer.js';

describe('deadLetterDetail', () => {
  it('drops the statement knex puts before the message, values and all', () => {
    const error = new Error(
      `update "payouts" set "recipient" = '{"iban":"DE89370400440532013000"}' where "id" = 'x' - value too long for type character varying(140)`,
    );
    expect(deadLetterDetail(error)).to.equal('value too long for type character varying(140)');
  });

  it('masks an account number in the message itself', () => {
    expect(deadLetterDetail(new Error('provider refused DE89370400440532013000'))).to.equal(
      'provider refused ******************3000',
    );
  });

  it('says what a thrown non-error is', () => {
    expect(deadLetterDetail('boom')).to.equal('boom');
  });
});
