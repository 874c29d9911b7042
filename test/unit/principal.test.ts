/** The role table of src/domain/principal.ts against SPEC's, copied by hand into the fixtures. */
import { expect } from 'chai';
import type { Role } from '../../src/domain/principal.js';
import { roleMaySend } from '../../src/domain/principal.js';
import { PAYOUT_EVENT_TYPES } from '../../src/machines/payout.machine.js';
import { SPEC_ROLE_EVENTS } from '../support/fixtures.js';

describe('roles', () => {
  it('roleMaySend agrees with the SPEC role table for every role and event', () => {
    const roles = Object.keys(SPEC_ROLE_EVENTS) as Role[];
    expect(roles).to.have.members(['client', 'operator', 'worker']);
    for (const role of roles) {
      for (const event of PAYOUT_EVENT_TYPES) {
        expect(roleMaySend(role, event), `${role} may send ${event}`).to.equal(
          SPEC_ROLE_EVENTS[role].includes(event),
        );
      }
    }
  });
});
