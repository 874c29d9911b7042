/** The table of expected PATCH answers that test/integration/http/transitions.test.ts runs over HTTP. */
import { expect } from 'chai';
import { PAYOUT_STATUSES } from '../../src/machines/payout-lifecycle.js';
import { API_ROLES, expectedPatchStatus } from '../support/patch-status-table.js';

describe('the PATCH status table of the transition tests', () => {
  it('covers all 50 combinations, with each outcome present', () => {
    const outcomes = API_ROLES.flatMap((role) =>
      PAYOUT_STATUSES.flatMap((from) => PAYOUT_STATUSES.map((to) => expectedPatchStatus(role, from, to))),
    );
    expect(outcomes).to.have.length(API_ROLES.length * PAYOUT_STATUSES.length ** 2);
    expect(new Set(outcomes)).to.deep.equal(new Set([200, 202, 403, 409]));
  });
});
