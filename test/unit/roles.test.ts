/**
 * The role rules as the machine states them (`mayEverSend`, read off its `sentBy` guards) against SPEC's table,
 * copied by hand into the fixtures; and principals as the machine's senders.
 */
import { expect } from 'chai';
import type { Role } from '../../src/domain/principal.js';
import { senderOf, systemPrincipal, workerPrincipal } from '../../src/domain/principal.js';
import { ROLES } from '../../src/machines/payout.machine.js';
import { PAYOUT_EVENT_TYPES, mayEverSend } from '../../src/machines/payout-lifecycle.js';
import { SPEC_ROLE_EVENTS } from '../support/fixtures.js';

describe('roles', () => {
  it('the machine knows exactly the four roles of SPEC', () => {
    expect(Object.keys(SPEC_ROLE_EVENTS)).to.have.members(['client', 'operator', 'worker', 'system']);
    expect([...ROLES]).to.have.members(Object.keys(SPEC_ROLE_EVENTS));
    expect(ROLES).to.have.lengthOf(4);
  });

  it('mayEverSend agrees with the SPEC role table for every role and event type', () => {
    const roles = Object.keys(SPEC_ROLE_EVENTS) as Role[];
    let checked = 0;
    for (const role of roles) {
      for (const type of PAYOUT_EVENT_TYPES) {
        expect(mayEverSend(role, type), `${role} may send ${type}`).to.equal(
          SPEC_ROLE_EVENTS[role].includes(type),
        );
        checked += 1;
      }
    }
    expect(checked).to.equal(4 * 11);
  });

  it('every event type of SPEC is one the machine has, and someone may send each', () => {
    for (const [role, types] of Object.entries(SPEC_ROLE_EVENTS)) {
      for (const type of types) expect(PAYOUT_EVENT_TYPES, `${role} ${type}`).to.include(type);
    }
    for (const type of PAYOUT_EVENT_TYPES) {
      expect(
        ROLES.some((role) => mayEverSend(role, type)),
        type,
      ).to.equal(true);
    }
  });

  it('an unknown event type may be sent by nobody', () => {
    for (const role of ROLES) {
      expect(mayEverSend(role, 'DELETE' as never)).to.equal(false);
    }
  });

  it('principals become senders with their role and actor', () => {
    expect(senderOf(workerPrincipal('c1'))).to.deep.equal({ role: 'worker', id: 'worker' });
    expect(senderOf(systemPrincipal('c1'))).to.deep.equal({ role: 'system', id: 'sweeper' });
    expect(senderOf({ clientId: 'c1', role: 'operator', actor: 'key:7' })).to.deep.equal({
      role: 'operator',
      id: 'key:7',
    });
  });
});
